import { LoomError } from '../errors.js';
import type { SignerIdentity } from '../identity-types.js';
import { formatPolicy, type ImplicitMetaPolicy, type ImplicitMetaRule, type Policy } from './ast.js';
import { evaluateSignaturePolicy, type SignaturePolicyEvaluation } from './evaluate.js';
import { parsePolicy } from './parse.js';

export interface ImplicitMetaEvaluation {
  readonly kind: 'implicitMeta';
  readonly satisfied: boolean;
  readonly rule: ImplicitMetaRule;
  readonly subPolicy: string;
  /** How many organizations' sub-policies had to be satisfied. */
  readonly required: number;
  readonly satisfiedOrgs: readonly string[];
  readonly unsatisfiedOrgs: readonly string[];
  /** Per organization, why its sub-policy failed (or that it has none). */
  readonly orgReasons: Readonly<Record<string, string>>;
  readonly reason: string | undefined;
}

export type PolicyEvaluation = SignaturePolicyEvaluation | ImplicitMetaEvaluation;

/** Policy texts of a channel: each organization's named policies, and the channel's own. */
export interface ChannelPolicyDefinitions {
  readonly orgs: Readonly<Record<string, Readonly<Record<string, string>>>>;
  readonly channel: Readonly<Record<string, string>>;
}

export const PolicyEvaluationErrorCode = {
  NOT_FOUND: 'POLICY_NOT_FOUND',
  INVALID: 'POLICY_INVALID',
  NOT_SATISFIED: 'POLICY_NOT_SATISFIED',
} as const;

const TEXT_CACHE_LIMIT = 4096;

/** How many of `total` sub-policies an implicit meta rule needs; never zero, so an empty channel fails closed. */
export function implicitMetaThreshold(rule: ImplicitMetaRule, total: number): number {
  switch (rule) {
    case 'ANY':
      return 1;
    case 'ALL':
      return Math.max(total, 1);
    case 'MAJORITY':
      return Math.floor(total / 2) + 1;
  }
}

/**
 * The policies of one channel, each text parsed once. Channel-level implicit meta policies
 * (`MAJORITY Admins`) are evaluated over the named policy of every organization of the channel;
 * an organization that does not define that policy counts as not satisfying it.
 */
export class ChannelPolicies {
  readonly #orgs: ReadonlyMap<string, ReadonlyMap<string, Policy>>;
  readonly #channel: ReadonlyMap<string, Policy>;
  readonly #textCache = new Map<string, Policy>();

  constructor(defs: ChannelPolicyDefinitions) {
    const orgs = new Map<string, Map<string, Policy>>();
    for (const [mspId, policies] of Object.entries(defs.orgs)) {
      const named = new Map<string, Policy>();
      for (const [name, text] of Object.entries(policies)) {
        const p = this.#parse(text, `${mspId}/${name}`);
        // An organization's policy has no sub-organizations for an implicit meta rule to range over.
        if (p.type === 'implicitMeta') {
          throw new LoomError(
            PolicyEvaluationErrorCode.INVALID,
            `policy ${mspId}/${name} is an implicit meta policy ('${text}'); organization policies must be signature policies`,
            { details: { mspId, policy: name, text } },
          );
        }
        named.set(name, p);
      }
      orgs.set(mspId, named);
    }
    this.#orgs = orgs;
    const channel = new Map<string, Policy>();
    for (const [name, text] of Object.entries(defs.channel)) channel.set(name, this.#parse(text, name));
    this.#channel = channel;
  }

  /** MSP ids of the channel's organizations. */
  get orgIds(): string[] {
    return [...this.#orgs.keys()];
  }

  /** Names of the channel-level policies. */
  get policyNames(): string[] {
    return [...this.#channel.keys()];
  }

  has(name: string): boolean {
    return this.#channel.has(name);
  }

  /** The parsed channel-level policy, or undefined. */
  get(name: string): Policy | undefined {
    return this.#channel.get(name);
  }

  /** Evaluates a channel-level policy by name (`Readers`, `Writers`, `Admins`, `Endorsement`, ...). */
  evaluate(name: string, signers: readonly SignerIdentity[]): PolicyEvaluation {
    const policy = this.#channel.get(name);
    if (!policy) {
      throw new LoomError(PolicyEvaluationErrorCode.NOT_FOUND, `channel has no policy named '${name}'`, {
        details: { policy: name, known: this.policyNames },
        httpStatus: 404,
      });
    }
    return this.evaluatePolicy(policy, signers);
  }

  /** Evaluates an arbitrary policy text (a chaincode's endorsement policy, say), parsed once and cached. */
  evaluateText(text: string, signers: readonly SignerIdentity[]): PolicyEvaluation {
    return this.evaluatePolicy(this.parse(text), signers);
  }

  /** Parses a policy text through this channel's cache. */
  parse(text: string): Policy {
    return this.#parse(text, undefined);
  }

  evaluatePolicy(policy: Policy, signers: readonly SignerIdentity[]): PolicyEvaluation {
    if (policy.type !== 'implicitMeta') return evaluateSignaturePolicy(policy, signers);
    return this.#evaluateImplicitMeta(policy, signers);
  }

  /**
   * Throws a LoomError (403, `code`, default `POLICY_NOT_SATISFIED`) unless the named channel policy
   * is satisfied; returns the evaluation when it is.
   */
  require(name: string, signers: readonly SignerIdentity[], code: string = PolicyEvaluationErrorCode.NOT_SATISFIED) {
    const result = this.evaluate(name, signers);
    if (!result.satisfied) {
      throw new LoomError(code, `${name} policy not satisfied: ${result.reason}`, {
        details: { policy: name, reason: result.reason },
        httpStatus: 403,
      });
    }
    return result;
  }

  #parse(text: string, label: string | undefined): Policy {
    const cached = this.#textCache.get(text);
    if (cached) return cached;
    let p: Policy;
    try {
      p = parsePolicy(text);
    } catch (e) {
      if (label !== undefined && e instanceof LoomError) {
        throw new LoomError(e.code, `policy ${label}: ${e.message}`, { details: e.details, cause: e });
      }
      throw e;
    }
    // Texts can come from chaincode definitions and state; keep the cache bounded, oldest out first.
    if (this.#textCache.size >= TEXT_CACHE_LIMIT) {
      const oldest = this.#textCache.keys().next();
      if (!oldest.done) this.#textCache.delete(oldest.value);
    }
    this.#textCache.set(text, p);
    return p;
  }

  #evaluateImplicitMeta(policy: ImplicitMetaPolicy, signers: readonly SignerIdentity[]): ImplicitMetaEvaluation {
    const satisfiedOrgs: string[] = [];
    const unsatisfiedOrgs: string[] = [];
    const orgReasons: Record<string, string> = {};
    for (const [mspId, named] of this.#orgs) {
      const sub = named.get(policy.subPolicy);
      if (!sub) {
        unsatisfiedOrgs.push(mspId);
        orgReasons[mspId] = `${mspId} has no policy named '${policy.subPolicy}'`;
        continue;
      }
      const r = this.evaluatePolicy(sub, signers);
      if (r.satisfied) satisfiedOrgs.push(mspId);
      else {
        unsatisfiedOrgs.push(mspId);
        orgReasons[mspId] = r.reason ?? 'not satisfied';
      }
    }
    const total = this.#orgs.size;
    const required = implicitMetaThreshold(policy.rule, total);
    const satisfied = satisfiedOrgs.length >= required;
    return {
      kind: 'implicitMeta',
      satisfied,
      rule: policy.rule,
      subPolicy: policy.subPolicy,
      required,
      satisfiedOrgs,
      unsatisfiedOrgs,
      orgReasons,
      reason: satisfied
        ? undefined
        : `${formatPolicy(policy)} needs ${required} of ${total} organizations, satisfied by ${satisfiedOrgs.length}` +
          (satisfiedOrgs.length > 0 ? ` (${satisfiedOrgs.join(', ')})` : '') +
          `; missing ${unsatisfiedOrgs.join(', ')}`,
    };
  }
}
