/**
 * Governance by vote: the approval-threshold rule (Amazon Managed Blockchain's shape on top of
 * Fabric). One vote per member organization; the members are the channel's application orgs at
 * the time the proposal was made. Pure.
 *
 *   approved  when  yes / members  (> or ≥)  percentage
 *   rejected  when  even if every member that has not voted votes yes, it cannot be approved
 *   expired   when  still undecided at the deadline
 */
import { LoomError } from '../errors.js';

export type ThresholdComparator = 'GREATER_THAN' | 'GREATER_THAN_OR_EQUAL_TO';

export interface ApprovalThreshold {
  /** 0–100: the share of member orgs whose yes votes are needed. */
  readonly percentage: number;
  readonly comparator: ThresholdComparator;
}

export type VoteValue = 'YES' | 'NO';

/** A proposal's life: IN_PROGRESS → APPROVED → APPLIED, or → REJECTED, or → EXPIRED. */
export type ProposalStatus = 'IN_PROGRESS' | 'APPROVED' | 'REJECTED' | 'EXPIRED' | 'APPLIED';

export const GovernanceErrorCode = {
  INVALID_ARGUMENT: 'GOVERNANCE_INVALID_ARGUMENT',
  UNAUTHORIZED: 'GOVERNANCE_UNAUTHORIZED',
  NOT_FOUND: 'GOVERNANCE_PROPOSAL_NOT_FOUND',
  ALREADY_EXISTS: 'GOVERNANCE_PROPOSAL_EXISTS',
  NOT_A_MEMBER: 'GOVERNANCE_NOT_A_MEMBER',
  ALREADY_VOTED: 'GOVERNANCE_ALREADY_VOTED',
  VOTE_AFTER_DEADLINE: 'GOVERNANCE_VOTE_AFTER_DEADLINE',
  NOT_IN_PROGRESS: 'GOVERNANCE_PROPOSAL_CLOSED',
  BAD_SIGNATURE: 'GOVERNANCE_BAD_CONFIG_SIGNATURE',
  APPLY_ENVELOPE_MISMATCH: 'GOVERNANCE_APPLY_ENVELOPE_MISMATCH',
  ALREADY_APPLIED: 'GOVERNANCE_ALREADY_APPLIED',
  NOT_APPLIED: 'GOVERNANCE_NOT_APPLIED',
  NOT_APPROVED: 'GOVERNANCE_NOT_APPROVED',
  STALE_CONFIG: 'GOVERNANCE_STALE_CONFIG',
  CLOCK_SKEW: 'GOVERNANCE_TIMESTAMP_SKEW',
  NOT_EXPIRED: 'GOVERNANCE_NOT_EXPIRED',
  INVALID_ACTION: 'GOVERNANCE_INVALID_ACTION',
} as const;

export interface VoteTally {
  /** The outcome the votes so far decide: APPROVED, REJECTED, or IN_PROGRESS when undecided. */
  readonly outcome: 'IN_PROGRESS' | 'APPROVED' | 'REJECTED';
  readonly members: number;
  readonly yes: number;
  readonly no: number;
  readonly outstanding: number;
  /** The fewest yes votes that approve (members + 1 when none can, e.g. percentage 100 with GREATER_THAN). */
  readonly yesNeeded: number;
}

/** Validates a threshold (a percentage in [0, 100] and a known comparator). */
export function checkThreshold(t: unknown): ApprovalThreshold {
  const v = t as Partial<ApprovalThreshold> | null;
  if (
    !v ||
    typeof v.percentage !== 'number' ||
    !Number.isFinite(v.percentage) ||
    v.percentage < 0 ||
    v.percentage > 100
  ) {
    throw new LoomError(GovernanceErrorCode.INVALID_ARGUMENT, 'threshold percentage must be a number from 0 to 100', {
      httpStatus: 400,
      details: { threshold: t },
    });
  }
  if (v.comparator !== 'GREATER_THAN' && v.comparator !== 'GREATER_THAN_OR_EQUAL_TO') {
    throw new LoomError(
      GovernanceErrorCode.INVALID_ARGUMENT,
      'threshold comparator must be GREATER_THAN or GREATER_THAN_OR_EQUAL_TO',
      { httpStatus: 400, details: { threshold: t } },
    );
  }
  return { percentage: v.percentage, comparator: v.comparator };
}

/** Whether `yes` of `members` meets the threshold (integer arithmetic on percent × members). */
export function meetsThreshold(yes: number, members: number, t: ApprovalThreshold): boolean {
  if (members <= 0) return false;
  const lhs = yes * 100;
  const rhs = t.percentage * members;
  return t.comparator === 'GREATER_THAN' ? lhs > rhs : lhs >= rhs;
}

/**
 * Tallies the votes of `members` (votes by non-members are ignored: one vote per member org).
 * APPROVED as soon as the yes votes meet the threshold; REJECTED as soon as they no longer can.
 */
export function tallyVotes(
  members: readonly string[],
  votes: Readonly<Record<string, VoteValue>>,
  threshold: ApprovalThreshold,
): VoteTally {
  const set = [...new Set(members)];
  let yes = 0;
  let no = 0;
  for (const m of set) {
    if (votes[m] === 'YES') yes++;
    else if (votes[m] === 'NO') no++;
  }
  const outstanding = set.length - yes - no;
  let yesNeeded = set.length + 1;
  for (let k = 0; k <= set.length; k++) {
    if (meetsThreshold(k, set.length, threshold)) {
      yesNeeded = k;
      break;
    }
  }
  const outcome = meetsThreshold(yes, set.length, threshold)
    ? 'APPROVED'
    : meetsThreshold(yes + outstanding, set.length, threshold)
      ? 'IN_PROGRESS'
      : 'REJECTED';
  return { outcome, members: set.length, yes, no, outstanding, yesNeeded };
}

/**
 * The status a proposal has at `nowMs`: a recorded IN_PROGRESS proposal whose deadline has passed
 * is EXPIRED (the deadline is exclusive: a vote at exactly `deadlineMs` is too late).
 */
export function effectiveStatus(recorded: ProposalStatus, deadlineMs: number, nowMs: number): ProposalStatus {
  return recorded === 'IN_PROGRESS' && nowMs >= deadlineMs ? 'EXPIRED' : recorded;
}

/** Parses a duration: `24h`, `90m`, `30s`, `1500ms`, `2d`, `1h30m`, or plain milliseconds. */
export function parseDurationMs(text: string): number {
  const s = text.trim();
  if (/^\d+$/.test(s)) return Number(s);
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h|d)/gy;
  let total = 0;
  let matched = 0;
  for (let m = re.exec(s); m; m = re.exec(s)) {
    const n = Number(m[1]);
    const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] as 'ms'];
    total += n * unit;
    matched = re.lastIndex;
  }
  if (s.length === 0 || matched !== s.length || !Number.isFinite(total) || total <= 0) {
    throw new LoomError(
      GovernanceErrorCode.INVALID_ARGUMENT,
      `invalid duration ${JSON.stringify(text)} (e.g. 24h, 90m, 30s)`,
      {
        httpStatus: 400,
      },
    );
  }
  return Math.round(total);
}
