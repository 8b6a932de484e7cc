/**
 * Policy syntax trees. A signature policy is a tree of `n out of` gates over principals; `AND` and
 * `OR` are the gates where `n` is all or one of the rules (kept as written, for messages). An
 * implicit meta policy names a sub-policy that every organization of the channel defines.
 */

/** What a principal asks of a signer, beyond belonging to the MSP. */
export type PrincipalRole = 'member' | 'admin' | 'client' | 'peer' | 'orderer';

export const PRINCIPAL_ROLES: readonly PrincipalRole[] = ['member', 'admin', 'client', 'peer', 'orderer'];

export interface Principal {
  readonly mspId: string;
  readonly role: PrincipalRole;
}

export interface SignedByRule {
  readonly type: 'signedBy';
  readonly principal: Principal;
}

export interface OutOfRule {
  readonly type: 'outOf';
  /** How the gate was written: `AND`/`OR` are `OutOf(all)`/`OutOf(1)`. */
  readonly op: 'AND' | 'OR' | 'OutOf';
  readonly n: number;
  readonly rules: readonly SignaturePolicy[];
}

export type SignaturePolicy = SignedByRule | OutOfRule;

export type ImplicitMetaRule = 'ANY' | 'ALL' | 'MAJORITY';

export interface ImplicitMetaPolicy {
  readonly type: 'implicitMeta';
  readonly rule: ImplicitMetaRule;
  /** The policy name looked up in each organization, e.g. `Admins`. */
  readonly subPolicy: string;
}

export type Policy = SignaturePolicy | ImplicitMetaPolicy;

export function isSignaturePolicy(p: Policy): p is SignaturePolicy {
  return p.type !== 'implicitMeta';
}

export function formatPrincipal(p: Principal): string {
  return `${p.mspId}.${p.role}`;
}

/** Canonical text of a policy; parsing it gives back an equal tree. */
export function formatPolicy(p: Policy): string {
  switch (p.type) {
    case 'implicitMeta':
      return `${p.rule} ${p.subPolicy}`;
    case 'signedBy':
      return `'${formatPrincipal(p.principal)}'`;
    case 'outOf': {
      const inner = p.rules.map(formatPolicy).join(', ');
      return p.op === 'OutOf' ? `OutOf(${p.n}, ${inner})` : `${p.op}(${inner})`;
    }
  }
}

/** Every distinct principal a signature policy names, in order of first appearance. */
export function principalsOf(p: Policy): Principal[] {
  const seen = new Map<string, Principal>();
  const walk = (node: Policy): void => {
    if (node.type === 'signedBy') {
      const key = formatPrincipal(node.principal);
      if (!seen.has(key)) seen.set(key, node.principal);
    } else if (node.type === 'outOf') {
      for (const r of node.rules) walk(r);
    }
  };
  walk(p);
  return [...seen.values()];
}

/** The distinct MSP ids a signature policy names (empty for implicit meta policies). */
export function mspIdsOf(p: Policy): string[] {
  return [...new Set(principalsOf(p).map((x) => x.mspId))];
}
