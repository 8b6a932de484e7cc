/**
 * Which peers a gateway asks to endorse: the fewest organizations whose peers can satisfy the
 * chaincode's endorsement policy, then one peer per organization, the gateway's own organization
 * first (its peer answers fastest and is the one this gateway trusts most). Pure: the caller passes
 * the policy (common's AST) and the peers it can reach, best first within each organization.
 */
import {
  evaluateSignaturePolicy,
  formatPolicy,
  implicitMetaThreshold,
  LoomError,
  type Policy,
  principalsOf,
  type SignaturePolicy,
  type SignerIdentity,
} from '@loom/common';
import { GatewayErrorCode } from '@loom/common/gateway/index';

export interface EndorserTarget {
  readonly mspId: string;
  /** The peer's base URL (`https://host:port`), or a name the injected `endorse` understands. */
  readonly endpoint: string;
}

export interface EndorsementPlanInput {
  readonly policy: Policy;
  /** Reachable peers, in order of preference within each organization. */
  readonly peers: readonly EndorserTarget[];
  readonly localMspId: string;
  /**
   * For an implicit meta policy (`MAJORITY Endorsement`): each channel organization's signature
   * policy of that name. Organizations of the channel without one count as unable to satisfy it.
   */
  readonly orgSubPolicies?: Readonly<Record<string, SignaturePolicy>>;
  /** Stop searching organization subsets after this many (guards huge channels). Default 100,000. */
  readonly maxCombinations?: number;
}

/** Rewrites `MAJORITY Endorsement` as `OutOf(k, <each org's Endorsement policy>)`. */
function asSignaturePolicy(input: EndorsementPlanInput): SignaturePolicy {
  const p = input.policy;
  if (p.type !== 'implicitMeta') return p;
  const subs = Object.values(input.orgSubPolicies ?? {});
  return { type: 'outOf', op: 'OutOf', n: implicitMetaThreshold(p.rule, subs.length), rules: subs };
}

function* combinations<T>(items: readonly T[], k: number, from = 0): Generator<T[]> {
  if (k === 0) {
    yield [];
    return;
  }
  for (let i = from; i <= items.length - k; i++) {
    for (const rest of combinations(items, k - 1, i + 1)) yield [items[i]!, ...rest];
  }
}

/** The peers to ask, local organization first; throws NO_ENDORSEMENT_PLAN when none will do. */
export function planEndorsement(input: EndorsementPlanInput): EndorserTarget[] {
  const policy = asSignaturePolicy(input);
  const named = new Set(principalsOf(policy).map((p) => p.mspId));
  const orgs = [...new Set(input.peers.map((p) => p.mspId))]
    .filter((m) => named.has(m))
    .sort((a, b) => (a === input.localMspId ? -1 : b === input.localMspId ? 1 : a < b ? -1 : a > b ? 1 : 0));
  const limit = input.maxCombinations ?? 100_000;
  let tried = 0;
  for (let k = 1; k <= orgs.length; k++) {
    for (const subset of combinations(orgs, k)) {
      if (++tried > limit) break;
      const chosen = new Set(subset);
      const candidates = input.peers.filter((p) => chosen.has(p.mspId));
      // Every peer is a candidate signer with the peer role; the policy evaluator then picks which.
      const signers: SignerIdentity[] = candidates.map((p) => ({
        mspId: p.mspId,
        role: 'peer',
        isAdmin: false,
        id: `${p.mspId}|${p.endpoint}`,
      }));
      const result = evaluateSignaturePolicy(policy, signers);
      if (!result.satisfied) continue;
      const used = new Set(result.assignment.map((a) => a.signerId));
      return candidates
        .filter((p) => used.has(`${p.mspId}|${p.endpoint}`))
        .sort((a, b) => orgs.indexOf(a.mspId) - orgs.indexOf(b.mspId));
    }
  }
  const text = formatPolicy(input.policy);
  throw new LoomError(
    GatewayErrorCode.NO_ENDORSEMENT_PLAN,
    `no set of reachable peers satisfies the endorsement policy ${text}`,
    { httpStatus: 503, details: { policy: text, reachableOrgs: orgs } },
  );
}
