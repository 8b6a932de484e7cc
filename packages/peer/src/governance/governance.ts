/**
 * The `_governance` system chaincode: proposals to change a channel's config, decided by the member
 * organizations' admins voting yes/no before a deadline under an approval threshold (Amazon
 * Managed Blockchain's proposals, on Loom's config updates). Pure over the `_governance` namespace
 * (the endorser runs it in its simulator, so reads and writes form the rwset) and an injected view
 * of the channel (config in force, MSPs, the endorser's clock, where config updates landed).
 *
 * State (values canonical JSON): `proposals/<id>` → `ProposalRecord`, votes included, so two votes
 * on one proposal conflict under MVCC and are serialised by the ledger.
 *
 * Rules (each enforced by every endorser; the endorsements must agree byte for byte):
 * - The proposer and every voter are admins of an organization that is a member of the channel
 *   (the members are fixed when the proposal is made). One vote per member org: the first counts,
 *   a second vote by the same org is refused (GOVERNANCE_ALREADY_VOTED).
 * - Time is the transaction's timestamp (ChannelHeader.timestamp, signed by the client), identical
 *   for every endorser; each endorser also refuses a timestamp more than `maxSkewMs` from its own
 *   clock, so a client cannot backdate a vote past the deadline. A vote at or after the deadline is
 *   refused (GOVERNANCE_VOTE_AFTER_DEADLINE).
 * - A yes vote carries the voter's ConfigSignature over the proposal's ConfigUpdate bytes: the votes
 *   are the admin signatures the config's modification policy asks for.
 * - The vote that makes the threshold hold also carries the CONFIG_UPDATE envelope, signed by that
 *   voter, holding the update and the yes votes' signatures in MSP-id order (the voter builds it
 *   from the state it read; a vote whose envelope does not match is refused with
 *   GOVERNANCE_APPLY_ENVELOPE_MISMATCH). The proposal is then APPROVED with that envelope on the
 *   ledger, and member peers broadcast it to the orderer (identical bytes, deduplicated there).
 * - REJECTED as soon as the threshold can no longer hold; EXPIRED (derived at the deadline, recorded
 *   by `Expire`); APPLIED (derived once the config block holding the update is committed, recorded
 *   by `Apply`, which a second time is refused with GOVERNANCE_ALREADY_APPLIED).
 */
import {
  type ApprovalThreshold,
  bytesEqual,
  type ChannelConfig,
  checkThreshold,
  configSignatureSignedBytes,
  decodeChannelHeader,
  decodeConfigUpdateEnvelope,
  decodeEnvelope,
  decodeHeader,
  decodePayload,
  decodeSerializedIdentity,
  decodeSignatureHeader,
  describeGovernanceAction,
  effectiveStatus,
  encodeConfigUpdate,
  fromBase64,
  fromUtf8,
  type GovernanceAction,
  GovernanceErrorCode,
  HeaderType,
  isLoomError,
  LoomError,
  type ProposalStatus,
  parseGovernanceActions,
  proposedConfigUpdate,
  type SerializedIdentity,
  tallyVotes,
  toBase64,
  utf8,
  type VoteTally,
  type VoteValue,
} from '@loom/common';
import type { ValidatedIdentity } from '@loom/common/msp/types';
import { canonicalJson } from '../chaincode/lifecycle/lifecycle.js';

export const GOVERNANCE_NAMESPACE = '_governance';

export interface GovernanceState {
  getState(key: string): Promise<Uint8Array | undefined>;
  putState(key: string, value: Uint8Array): Promise<void> | void;
  getStateByRange(startKey: string, endKey: string): AsyncIterable<{ key: string; value: Uint8Array }>;
}

export interface GovernanceContext {
  readonly state: GovernanceState;
  /** The channel config in force at this endorser. */
  readonly config: ChannelConfig;
  /** Deserializes and validates identities against the channel's MSPs. */
  readonly msp: { deserialize(s: SerializedIdentity): ValidatedIdentity };
  readonly txId: string;
  /** The transaction's timestamp (ms), as signed by the client. */
  readonly txTimeMs: number;
  /** This endorser's clock (ms), only to bound the skew of `txTimeMs`. */
  readonly nowMs: number;
  /** Largest accepted |txTimeMs − nowMs| for writes; default 5 minutes. */
  readonly maxSkewMs?: number;
  /** The block number of the config block that applied exactly these ConfigUpdate bytes, if any. */
  appliedAt?(configUpdate: Uint8Array, baseSequence: number): Promise<number | undefined>;
}

export interface GovernanceCaller {
  readonly serialized: SerializedIdentity;
  readonly mspId: string;
  readonly isAdmin: boolean;
}

export interface VoteRecord {
  readonly vote: VoteValue;
  readonly txId: string;
  readonly atMs: number;
  /** For yes votes: the voter's ConfigSignature over the update, base64. */
  readonly configSignature?: { readonly signatureHeader: string; readonly signature: string };
}

export interface ProposalRecord {
  readonly id: string;
  readonly channelId: string;
  readonly proposer: string;
  readonly description: string;
  readonly actions: readonly GovernanceAction[];
  readonly summary: readonly string[];
  /** Encoded ConfigUpdate, base64: what yes votes sign and an approval applies. */
  readonly configUpdate: string;
  readonly baseSequence: number;
  readonly members: readonly string[];
  readonly threshold: ApprovalThreshold;
  readonly createdAtMs: number;
  readonly deadlineMs: number;
  readonly txId: string;
  readonly votes: Readonly<Record<string, VoteRecord>>;
  readonly status: ProposalStatus;
  readonly decidedAtMs?: number;
  /** The CONFIG_UPDATE envelope an approval carries (base64). */
  readonly applyEnvelope?: string;
  readonly appliedBlock?: number;
}

/** A proposal as queries return it: the recorded one plus its status now and the tally. */
export interface ProposalView extends ProposalRecord {
  readonly recordedStatus: ProposalStatus;
  readonly tally: VoteTally;
}

const DEFAULT_THRESHOLD: ApprovalThreshold = { percentage: 50, comparator: 'GREATER_THAN' };
const DEFAULT_DURATION_MS = 24 * 3600_000;
const MAX_DURATION_MS = 366 * 24 * 3600_000;
const DEFAULT_MAX_SKEW_MS = 5 * 60_000;

const err = (code: string, message: string, httpStatus = 400, details: Record<string, unknown> = {}) =>
  new LoomError(code, message, { httpStatus, details });

export const proposalKey = (id: string) => `proposals/${id}`;
const encode = (v: unknown) => utf8(canonicalJson(v));

/** The application orgs of a config (their MSP ids, sorted). */
export function memberOrgs(config: ChannelConfig): string[] {
  return Object.values(config.orgs)
    .map((o) => o.mspId)
    .sort();
}

async function load(ctx: GovernanceContext, id: unknown): Promise<ProposalRecord> {
  if (typeof id !== 'string' || !/^[A-Za-z0-9_-]{1,80}$/.test(id)) {
    throw err(GovernanceErrorCode.INVALID_ARGUMENT, 'proposalId must be a proposal id');
  }
  const b = await ctx.state.getState(proposalKey(id));
  if (!b) throw err(GovernanceErrorCode.NOT_FOUND, `no proposal ${id} on channel ${ctx.config.channelId}`, 404, { id });
  return JSON.parse(fromUtf8(b)) as ProposalRecord;
}

function requireAdminMember(caller: GovernanceCaller, members: readonly string[], what: string) {
  if (!caller.isAdmin) {
    throw err(GovernanceErrorCode.UNAUTHORIZED, `${what} must be signed by an organization admin`, 403, {
      mspId: caller.mspId,
    });
  }
  if (!members.includes(caller.mspId)) {
    throw err(
      GovernanceErrorCode.NOT_A_MEMBER,
      `${caller.mspId} is not a member organization of this ${what === 'a proposal' ? 'channel' : 'proposal'}`,
      403,
      { mspId: caller.mspId, members },
    );
  }
}

function requireSaneTime(ctx: GovernanceContext) {
  const skew = Math.abs(ctx.txTimeMs - ctx.nowMs);
  if (skew > (ctx.maxSkewMs ?? DEFAULT_MAX_SKEW_MS)) {
    throw err(
      GovernanceErrorCode.CLOCK_SKEW,
      `the transaction timestamp is ${Math.round(skew / 1000)} s away from this peer's clock`,
      400,
      { txTimeMs: ctx.txTimeMs, peerTimeMs: ctx.nowMs },
    );
  }
}

async function view(ctx: GovernanceContext, p: ProposalRecord): Promise<ProposalView> {
  let status = effectiveStatus(p.status, p.deadlineMs, ctx.txTimeMs);
  let appliedBlock = p.appliedBlock;
  if (status === 'APPROVED' && ctx.appliedAt) {
    const at = await ctx.appliedAt(fromBase64(p.configUpdate), p.baseSequence);
    if (at !== undefined) {
      status = 'APPLIED';
      appliedBlock = at;
    }
  }
  const votes: Record<string, VoteValue> = {};
  for (const [m, v] of Object.entries(p.votes)) votes[m] = v.vote;
  return {
    ...p,
    status,
    recordedStatus: p.status,
    ...(appliedBlock !== undefined ? { appliedBlock } : {}),
    tally: tallyVotes(p.members, votes, p.threshold),
  };
}

export interface ProposeInput {
  readonly actions: unknown;
  readonly description?: unknown;
  readonly threshold?: unknown;
  readonly durationMs?: unknown;
}

export async function propose(ctx: GovernanceContext, caller: GovernanceCaller, input: ProposeInput) {
  const members = memberOrgs(ctx.config);
  requireAdminMember(caller, members, 'a proposal');
  requireSaneTime(ctx);
  const actions = parseGovernanceActions(input.actions);
  const gov = ctx.config.governance;
  const threshold = checkThreshold(
    input.threshold ??
      (gov ? { percentage: gov.thresholdPercentage, comparator: gov.thresholdComparator } : DEFAULT_THRESHOLD),
  );
  const durationMs = input.durationMs ?? gov?.proposalDurationMs ?? DEFAULT_DURATION_MS;
  if (
    typeof durationMs !== 'number' ||
    !Number.isSafeInteger(durationMs) ||
    durationMs < 1000 ||
    durationMs > MAX_DURATION_MS
  ) {
    throw err(GovernanceErrorCode.INVALID_ARGUMENT, 'durationMs must be an integer from 1000 ms to 366 days');
  }
  const description = input.description ?? '';
  if (typeof description !== 'string' || description.length > 1024) {
    throw err(GovernanceErrorCode.INVALID_ARGUMENT, 'description must be text of at most 1024 characters');
  }
  const update = proposedConfigUpdate(ctx.config, actions);
  const id = `p-${ctx.txId.slice(0, 16)}`;
  if (await ctx.state.getState(proposalKey(id))) {
    throw err(GovernanceErrorCode.ALREADY_EXISTS, `proposal ${id} exists`, 409, { id });
  }
  const record: ProposalRecord = {
    id,
    channelId: ctx.config.channelId,
    proposer: caller.mspId,
    description,
    actions,
    summary: actions.map(describeGovernanceAction),
    configUpdate: toBase64(encodeConfigUpdate(update)),
    baseSequence: update.baseSequence,
    members,
    threshold,
    createdAtMs: ctx.txTimeMs,
    deadlineMs: ctx.txTimeMs + durationMs,
    txId: ctx.txId,
    votes: {},
    status: 'IN_PROGRESS',
  };
  await ctx.state.putState(proposalKey(id), encode(record));
  return view(ctx, record);
}

export interface VoteInput {
  readonly proposalId: unknown;
  readonly vote: unknown;
  /** Yes votes: the voter's ConfigSignature over the proposal's configUpdate bytes (base64 fields). */
  readonly configSignature?: unknown;
  /** The vote that approves: the CONFIG_UPDATE envelope (base64) signed by the voter. */
  readonly applyEnvelope?: unknown;
}

function readB64(v: unknown, what: string): Uint8Array {
  if (typeof v !== 'string' || v.length === 0)
    throw err(GovernanceErrorCode.INVALID_ARGUMENT, `${what} must be base64`);
  try {
    return fromBase64(v);
  } catch {
    throw err(GovernanceErrorCode.INVALID_ARGUMENT, `${what} must be base64`);
  }
}

/** Checks a ConfigSignature: made by `caller` (same identity bytes) over the update. */
function checkConfigSignature(
  ctx: GovernanceContext,
  caller: GovernanceCaller,
  configUpdate: Uint8Array,
  sig: unknown,
): { signatureHeader: string; signature: string } {
  const s = sig as { signatureHeader?: unknown; signature?: unknown } | null;
  if (!s || typeof s !== 'object') {
    throw err(GovernanceErrorCode.BAD_SIGNATURE, 'a yes vote carries the voter’s configSignature over the update');
  }
  const header = readB64(s.signatureHeader, 'configSignature.signatureHeader');
  const signature = readB64(s.signature, 'configSignature.signature');
  try {
    const creator = decodeSerializedIdentity(decodeSignatureHeader(header).creator);
    if (creator.mspId !== caller.serialized.mspId || !bytesEqual(creator.idBytes, caller.serialized.idBytes)) {
      throw new Error('the signature header names another identity than the voter');
    }
    ctx.msp.deserialize(creator).verify(configSignatureSignedBytes(header, configUpdate), signature);
  } catch (e) {
    throw err(
      GovernanceErrorCode.BAD_SIGNATURE,
      `configSignature does not verify: ${isLoomError(e) ? `${e.code}: ` : ''}${(e as Error).message}`,
      400,
    );
  }
  return { signatureHeader: toBase64(header), signature: toBase64(signature) };
}

/** The ConfigSignatures an approval's envelope must carry: the yes votes', by MSP id. */
export function approvalSignatures(votes: Readonly<Record<string, VoteRecord>>) {
  return Object.keys(votes)
    .sort()
    .filter((m) => votes[m]!.vote === 'YES' && votes[m]!.configSignature)
    .map((m) => ({
      signatureHeader: fromBase64(votes[m]!.configSignature!.signatureHeader),
      signature: fromBase64(votes[m]!.configSignature!.signature),
    }));
}

function checkApplyEnvelope(
  ctx: GovernanceContext,
  caller: GovernanceCaller,
  p: ProposalRecord,
  votes: Readonly<Record<string, VoteRecord>>,
  raw: unknown,
): string {
  const expected = approvalSignatures(votes);
  const mismatch = (why: string) =>
    err(
      GovernanceErrorCode.APPLY_ENVELOPE_MISMATCH,
      `this vote approves proposal ${p.id}: it must carry the CONFIG_UPDATE envelope with the ${expected.length} yes signatures (${why}); read the proposal again and retry`,
      409,
      {
        id: p.id,
        signers: Object.keys(votes)
          .filter((m) => votes[m]!.vote === 'YES')
          .sort(),
      },
    );
  if (raw === undefined || raw === null || raw === '') throw mismatch('none was given');
  const bytes = readB64(raw, 'applyEnvelope');
  try {
    const env = decodeEnvelope(bytes);
    const payload = decodePayload(env.payload);
    const header = decodeHeader(payload.header);
    const ch = decodeChannelHeader(header.channelHeader);
    if (ch.type !== HeaderType.CONFIG_UPDATE || ch.channelId !== p.channelId) {
      throw new Error('not a CONFIG_UPDATE of this channel');
    }
    const creator = decodeSerializedIdentity(decodeSignatureHeader(header.signatureHeader).creator);
    if (creator.mspId !== caller.serialized.mspId || !bytesEqual(creator.idBytes, caller.serialized.idBytes)) {
      throw new Error('signed by another identity than the voter');
    }
    ctx.msp.deserialize(creator).verify(env.payload, env.signature);
    const cue = decodeConfigUpdateEnvelope(payload.data);
    if (!bytesEqual(cue.configUpdate, fromBase64(p.configUpdate))) throw new Error('another config update');
    if (
      cue.signatures.length !== expected.length ||
      cue.signatures.some(
        (s, i) =>
          !bytesEqual(s.signatureHeader, expected[i]!.signatureHeader) ||
          !bytesEqual(s.signature, expected[i]!.signature),
      )
    ) {
      throw new Error('other signatures than the yes votes');
    }
  } catch (e) {
    if (isLoomError(e, GovernanceErrorCode.APPLY_ENVELOPE_MISMATCH)) throw e;
    throw mismatch((e as Error).message);
  }
  return toBase64(bytes);
}

export async function vote(ctx: GovernanceContext, caller: GovernanceCaller, input: VoteInput) {
  const p = await load(ctx, input.proposalId);
  const value = typeof input.vote === 'string' ? input.vote.toUpperCase() : '';
  if (value !== 'YES' && value !== 'NO') throw err(GovernanceErrorCode.INVALID_ARGUMENT, 'vote must be YES or NO');
  requireAdminMember(caller, p.members, 'a vote');
  requireSaneTime(ctx);
  const status = effectiveStatus(p.status, p.deadlineMs, ctx.txTimeMs);
  if (status === 'EXPIRED') {
    throw err(
      GovernanceErrorCode.VOTE_AFTER_DEADLINE,
      `voting on ${p.id} closed at ${new Date(p.deadlineMs).toISOString()}`,
      409,
      { id: p.id, deadline: new Date(p.deadlineMs).toISOString(), txTime: new Date(ctx.txTimeMs).toISOString() },
    );
  }
  if (status !== 'IN_PROGRESS') {
    throw err(GovernanceErrorCode.NOT_IN_PROGRESS, `proposal ${p.id} is ${status}: voting is closed`, 409, {
      id: p.id,
      status,
    });
  }
  const prior = p.votes[caller.mspId];
  if (prior) {
    throw err(
      GovernanceErrorCode.ALREADY_VOTED,
      `${caller.mspId} already voted ${prior.vote} on ${p.id} (transaction ${prior.txId}); one vote per organization`,
      409,
      { id: p.id, mspId: caller.mspId, vote: prior.vote },
    );
  }
  if (ctx.config.sequence !== p.baseSequence) {
    throw err(
      GovernanceErrorCode.STALE_CONFIG,
      `proposal ${p.id} was made on config sequence ${p.baseSequence}; the channel is at ${ctx.config.sequence}, so it can no longer apply`,
      409,
      { id: p.id, baseSequence: p.baseSequence, sequence: ctx.config.sequence },
    );
  }
  const record: VoteRecord = {
    vote: value,
    txId: ctx.txId,
    atMs: ctx.txTimeMs,
    ...(value === 'YES'
      ? { configSignature: checkConfigSignature(ctx, caller, fromBase64(p.configUpdate), input.configSignature) }
      : {}),
  };
  const votes = { ...p.votes, [caller.mspId]: record };
  const plain: Record<string, VoteValue> = {};
  for (const [m, v] of Object.entries(votes)) plain[m] = v.vote;
  const tally = tallyVotes(p.members, plain, p.threshold);
  let next: ProposalRecord = { ...p, votes };
  if (tally.outcome === 'APPROVED') {
    next = {
      ...next,
      status: 'APPROVED',
      decidedAtMs: ctx.txTimeMs,
      applyEnvelope: checkApplyEnvelope(ctx, caller, p, votes, input.applyEnvelope),
    };
  } else if (tally.outcome === 'REJECTED') {
    next = { ...next, status: 'REJECTED', decidedAtMs: ctx.txTimeMs };
  }
  await ctx.state.putState(proposalKey(p.id), encode(next));
  return view(ctx, next);
}

/** Records APPLIED once the config block holding the proposal's update is committed. */
export async function apply(ctx: GovernanceContext, caller: GovernanceCaller, input: { proposalId: unknown }) {
  const p = await load(ctx, input.proposalId);
  requireAdminMember(caller, memberOrgs(ctx.config).concat(p.members), 'an apply');
  if (p.status === 'APPLIED') {
    throw err(
      GovernanceErrorCode.ALREADY_APPLIED,
      `proposal ${p.id} was already applied (config block ${p.appliedBlock}); a proposal applies once`,
      409,
      { id: p.id, appliedBlock: p.appliedBlock },
    );
  }
  if (p.status !== 'APPROVED') {
    throw err(
      GovernanceErrorCode.NOT_APPROVED,
      `proposal ${p.id} is ${effectiveStatus(p.status, p.deadlineMs, ctx.txTimeMs)}, not APPROVED`,
      409,
      {
        id: p.id,
        status: p.status,
      },
    );
  }
  const at = ctx.appliedAt ? await ctx.appliedAt(fromBase64(p.configUpdate), p.baseSequence) : undefined;
  if (at === undefined) {
    throw err(
      GovernanceErrorCode.NOT_APPLIED,
      `the config update of ${p.id} is not in a committed config block yet (channel at sequence ${ctx.config.sequence})`,
      409,
      { id: p.id, baseSequence: p.baseSequence, sequence: ctx.config.sequence },
    );
  }
  const next: ProposalRecord = { ...p, status: 'APPLIED', appliedBlock: at };
  await ctx.state.putState(proposalKey(p.id), encode(next));
  return view(ctx, next);
}

/** Records EXPIRED for a proposal still undecided at its deadline. */
export async function expire(ctx: GovernanceContext, caller: GovernanceCaller, input: { proposalId: unknown }) {
  const p = await load(ctx, input.proposalId);
  requireAdminMember(caller, memberOrgs(ctx.config).concat(p.members), 'an expiry');
  requireSaneTime(ctx);
  if (p.status !== 'IN_PROGRESS') {
    throw err(GovernanceErrorCode.NOT_IN_PROGRESS, `proposal ${p.id} is ${p.status}`, 409, {
      id: p.id,
      status: p.status,
    });
  }
  if (ctx.txTimeMs < p.deadlineMs) {
    throw err(
      GovernanceErrorCode.NOT_EXPIRED,
      `proposal ${p.id} is open until ${new Date(p.deadlineMs).toISOString()}`,
      409,
      { id: p.id, deadline: new Date(p.deadlineMs).toISOString() },
    );
  }
  const next: ProposalRecord = { ...p, status: 'EXPIRED', decidedAtMs: ctx.txTimeMs };
  await ctx.state.putState(proposalKey(p.id), encode(next));
  return view(ctx, next);
}

export async function getProposal(ctx: GovernanceContext, input: { proposalId: unknown }) {
  return view(ctx, await load(ctx, input.proposalId));
}

export async function listProposals(ctx: GovernanceContext) {
  const out: ProposalView[] = [];
  for await (const { value } of ctx.state.getStateByRange('proposals/', 'proposals0')) {
    out.push(await view(ctx, JSON.parse(fromUtf8(value)) as ProposalRecord));
  }
  return out.sort((a, b) => a.createdAtMs - b.createdAtMs || (a.id < b.id ? -1 : 1));
}

/** Functions that write (submit them; evaluating them changes nothing). */
export const GOVERNANCE_WRITE_FUNCTIONS: ReadonlySet<string> = new Set(['Propose', 'Vote', 'Apply', 'Expire']);

/** Runs one `_governance` function: `args[0]` the name, `args[1]` its JSON argument. */
export async function invokeGovernance(
  ctx: GovernanceContext,
  args: readonly Uint8Array[],
  caller: GovernanceCaller,
): Promise<Uint8Array> {
  const fn = args[0] ? fromUtf8(args[0]) : '';
  let arg: Record<string, unknown> = {};
  if (args[1] && args[1].length > 0) {
    let v: unknown;
    try {
      v = JSON.parse(fromUtf8(args[1]));
    } catch {
      throw err(GovernanceErrorCode.INVALID_ARGUMENT, '_governance argument must be JSON');
    }
    if (v === null || typeof v !== 'object' || Array.isArray(v)) {
      throw err(GovernanceErrorCode.INVALID_ARGUMENT, '_governance argument must be a JSON object');
    }
    arg = v as Record<string, unknown>;
  }
  const out = (v: unknown) => utf8(canonicalJson(v ?? null));
  switch (fn) {
    case 'Propose':
      return out(await propose(ctx, caller, arg as unknown as ProposeInput));
    case 'Vote':
      return out(await vote(ctx, caller, arg as unknown as VoteInput));
    case 'Apply':
      return out(await apply(ctx, caller, arg as { proposalId: unknown }));
    case 'Expire':
      return out(await expire(ctx, caller, arg as { proposalId: unknown }));
    case 'GetProposal':
      return out(await getProposal(ctx, arg as { proposalId: unknown }));
    case 'ListProposals':
      return out(await listProposals(ctx));
    default:
      throw err(GovernanceErrorCode.INVALID_ARGUMENT, `unknown _governance function ${JSON.stringify(fn)}`, 400, {
        function: fn,
      });
  }
}
