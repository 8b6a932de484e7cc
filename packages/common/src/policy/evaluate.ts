import { LoomError } from '../errors.js';
import type { SignerIdentity } from '../identity-types.js';
import { formatPolicy, formatPrincipal, type Principal, principalsOf, type SignaturePolicy } from './ast.js';

export interface PrincipalAssignment {
  readonly principal: Principal;
  readonly signerId: string;
}

export interface SignaturePolicyEvaluation {
  readonly kind: 'signature';
  readonly satisfied: boolean;
  /** When satisfied: which signer stood for which principal. Empty otherwise. */
  readonly assignment: readonly PrincipalAssignment[];
  /** When not satisfied: principals of the policy that no signer matches at all. */
  readonly unmatchedPrincipals: readonly Principal[];
  /** When not satisfied: MSP ids the policy names that no signer belongs to. */
  readonly missingOrgs: readonly string[];
  /** Why the policy failed, for error messages; undefined when satisfied. */
  readonly reason: string | undefined;
}

/** Whether one verified identity can stand for a principal. */
export function principalMatches(principal: Principal, signer: SignerIdentity): boolean {
  if (principal.mspId !== signer.mspId) return false;
  switch (principal.role) {
    case 'member':
      return true;
    case 'admin':
      return signer.isAdmin;
    default:
      return signer.role === principal.role;
  }
}

/** A signature policy with each leaf replaced by the index of its principal in `principals`. */
type Shape = { readonly leaf: number } | { readonly n: number; readonly rules: readonly Shape[] };

interface Prepared {
  readonly principals: readonly Principal[];
  readonly shape: Shape;
}

// Policies are parsed once and evaluated per transaction; what evaluation derives from the tree
// alone is kept with it.
const prepared = new WeakMap<SignaturePolicy, Prepared>();

function prepare(policy: SignaturePolicy): Prepared {
  let p = prepared.get(policy);
  if (p) return p;
  const principals = principalsOf(policy);
  const index = new Map(principals.map((x, i) => [formatPrincipal(x), i]));
  const shape = (node: SignaturePolicy): Shape =>
    node.type === 'signedBy'
      ? { leaf: index.get(formatPrincipal(node.principal))! }
      : { n: node.n, rules: node.rules.map(shape) };
  p = { principals, shape: shape(policy) };
  prepared.set(policy, p);
  return p;
}

/** Guard against pathological policies: evaluation steps before giving up. */
const DEFAULT_STEP_LIMIT = 1_000_000;

/**
 * Evaluates a signature policy against verified signers. Each signer (distinct by `id`) may stand
 * for at most one principal, so `AND('A.member', 'A.member')` needs two different members of A.
 *
 * The search is exhaustive (backtracking), so it finds an assignment whenever one exists, where a
 * greedy first-fit could spend a signer on the wrong principal. Signers that match exactly the same
 * principals are interchangeable and are searched as one class with a count, which keeps the work
 * bounded by the policy's size rather than by the number of signatures.
 */
export function evaluateSignaturePolicy(
  policy: SignaturePolicy,
  signers: readonly SignerIdentity[],
  options: { stepLimit?: number } = {},
): SignaturePolicyEvaluation {
  const { principals, shape } = prepare(policy);

  // Distinct signers, grouped by which of the policy's principals they match.
  const seen = new Set<string>();
  const classByKey = new Map<string, number>();
  const classSigners: string[][] = [];
  /** For each principal, the classes whose signers match it. */
  const classesOf: number[][] = principals.map(() => []);
  for (const s of signers) {
    if (seen.has(s.id)) continue;
    seen.add(s.id);
    let key = '';
    for (const p of principals) key += principalMatches(p, s) ? '1' : '0';
    if (!key.includes('1')) continue;
    let c = classByKey.get(key);
    if (c === undefined) {
      c = classSigners.length;
      classByKey.set(key, c);
      classSigners.push([]);
      for (let i = 0; i < key.length; i++) if (key[i] === '1') classesOf[i]!.push(c);
    }
    classSigners[c]!.push(s.id);
  }

  const available = classSigners.map((ids) => ids.length);
  const chosen: Array<{ principal: number; cls: number }> = [];
  const stepLimit = options.stepLimit ?? DEFAULT_STEP_LIMIT;
  let steps = 0;
  const tick = (): void => {
    if (++steps > stepLimit) {
      const text = formatPolicy(policy);
      throw new LoomError('POLICY_TOO_COMPLEX', `policy ${text} exceeded ${stepLimit} evaluation steps`, {
        details: { policy: text, stepLimit },
        httpStatus: 400,
      });
    }
  };

  // Continuation-passing backtracking: `satisfy` tries each way of satisfying `node` with the
  // signers still available and calls `then` in that state; a true answer ends the search with
  // `chosen` holding the assignment, a false one undoes the choice and tries the next.
  const satisfy = (node: Shape, then: () => boolean): boolean => {
    tick();
    if ('leaf' in node) {
      for (const c of classesOf[node.leaf]!) {
        if (available[c] === 0) continue;
        available[c]!--;
        chosen.push({ principal: node.leaf, cls: c });
        if (then()) return true;
        chosen.pop();
        available[c]!++;
      }
      return false;
    }
    return pick(node.rules, 0, node.n, then);
  };
  const pick = (rules: readonly Shape[], from: number, need: number, then: () => boolean): boolean => {
    if (need === 0) return then();
    if (rules.length - from < need) return false;
    return satisfy(rules[from]!, () => pick(rules, from + 1, need - 1, then)) || pick(rules, from + 1, need, then);
  };

  if (satisfy(shape, () => true)) {
    const next = new Array<number>(classSigners.length).fill(0);
    const assignment = chosen.map(({ principal, cls }) => ({
      principal: principals[principal]!,
      signerId: classSigners[cls]![next[cls]!++]!,
    }));
    return {
      kind: 'signature',
      satisfied: true,
      assignment,
      unmatchedPrincipals: [],
      missingOrgs: [],
      reason: undefined,
    };
  }

  const unmatchedPrincipals = principals.filter((_, i) => classesOf[i]!.length === 0);
  const signerOrgs = new Set(signers.map((s) => s.mspId));
  const missingOrgs = [...new Set(principals.map((p) => p.mspId))].filter((m) => !signerOrgs.has(m));
  const parts: string[] = [];
  if (unmatchedPrincipals.length > 0) {
    parts.push(`no signer matches ${unmatchedPrincipals.map((p) => `'${formatPrincipal(p)}'`).join(', ')}`);
  }
  if (missingOrgs.length > 0) parts.push(`no signature from ${missingOrgs.join(', ')}`);
  if (parts.length === 0) parts.push(`${seen.size} distinct signer(s) cannot cover enough principals`);
  return {
    kind: 'signature',
    satisfied: false,
    assignment: [],
    unmatchedPrincipals,
    missingOrgs,
    reason: `policy ${formatPolicy(policy)} not satisfied: ${parts.join('; ')}`,
  };
}
