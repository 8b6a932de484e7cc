/**
 * Endorsement policies for the validator from policy texts, through common's policy module.
 *
 * A chaincode's or collection's policy is either a signature policy (`AND('Org1MSP.peer', ...)`) or
 * an implicit meta policy over the organizations' named policies (`MAJORITY Endorsement`), evaluated
 * with the channel's `ChannelPolicies`. A key-level `VALIDATION_PARAMETER` is the UTF-8 text of a
 * signature policy (what the chaincode SDK's state-based endorsement writes). `_lifecycle` approval
 * keys carry their own rule (`keyRule`): a write of org X's approval needs a peer of X.
 */
import { fromUtf8 } from '@loom/common';
import { type ChannelPolicies, type Policy, parseSignaturePolicy } from '@loom/common/policy/index';
import { approvalEndorsementPolicy, approvalOrgOfKey, LIFECYCLE_NAMESPACE } from '../chaincode/lifecycle/lifecycle.js';
import type { EndorsementPolicy, EndorsementPolicySource } from './types.js';

const NEVER: EndorsementPolicy = { evaluate: () => false };

type Lookup = (...names: string[]) => string | undefined | Promise<string | undefined>;

export interface EndorsementPolicyTexts {
  /** A chaincode's endorsement policy text; undefined when the chaincode is not defined on the channel. */
  readonly chaincode: (namespace: string) => string | undefined | Promise<string | undefined>;
  /** A collection's endorsement policy text; undefined when it has none. */
  readonly collection?: (namespace: string, collection: string) => string | undefined | Promise<string | undefined>;
}

export function createEndorsementPolicySource(
  channelPolicies: ChannelPolicies,
  texts: EndorsementPolicyTexts,
): EndorsementPolicySource {
  const cache = new Map<string, EndorsementPolicy>();
  // A block's transactions mostly carry the same few endorser sets: the answer is a pure function of
  // the policy and the endorsers' (MSP, role, admin flag, id), so it is computed once per set.
  const wrap = (policy: Policy): EndorsementPolicy => {
    const answers = new Map<string, boolean>();
    return {
      evaluate: (endorsers) => {
        let key = '';
        for (const e of endorsers)
          key += `${e.mspId}\u0000${e.role ?? ''}\u0000${e.isAdmin ? 1 : 0}\u0000${e.id}\u0001`;
        let ok = answers.get(key);
        if (ok === undefined) {
          ok = channelPolicies.evaluatePolicy(policy, endorsers).satisfied;
          if (answers.size >= 1024) answers.clear();
          answers.set(key, ok);
        }
        return ok;
      },
    };
  };
  const fromText = (text: string | undefined, parse: (t: string) => Policy): EndorsementPolicy | undefined => {
    if (text === undefined) return undefined;
    let p = cache.get(text);
    if (!p) {
      p = wrap(parse(text));
      cache.set(text, p);
    }
    return p;
  };
  const lookup = async (f: Lookup | undefined, ...names: string[]) => (f ? await f(...names) : undefined);
  return {
    chaincodePolicy: async (ns) => fromText(await texts.chaincode(ns), (t) => channelPolicies.parse(t)),
    collectionPolicy: async (ns, coll) =>
      fromText(await lookup(texts.collection as Lookup | undefined, ns, coll), (t) => channelPolicies.parse(t)),
    keyLevelPolicy: (vp) => fromText(`vp:${fromUtf8(vp)}`, (t) => parseSignaturePolicy(t.slice(3)))!,
    keyRule(ns, key) {
      if (ns !== LIFECYCLE_NAMESPACE) return undefined;
      const org = approvalOrgOfKey(key);
      if (org === undefined) return undefined;
      if (org === null) return { policy: NEVER, requirement: 'is not a valid approval key' };
      return {
        policy: fromText(approvalEndorsementPolicy(org), (t) => parseSignaturePolicy(t))!,
        requirement: `must be endorsed by a peer of ${org} (the approving org)`,
      };
    },
  };
}
