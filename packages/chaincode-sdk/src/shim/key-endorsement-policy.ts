/**
 * KeyEndorsementPolicy as in fabric-shim: builds the key-level endorsement policy stored with
 * `setStateValidationParameter`. The policy requires one signature from each listed org, in the
 * given role. Loom carries it as the UTF-8 text of a signature policy, e.g.
 * `AND('Org1MSP.peer', 'Org2MSP.member')`, the syntax the peer's validator parses.
 */
import { type PrincipalRole, type SignaturePolicy, formatPolicy } from '@loom/common/policy/ast';
import { parseSignaturePolicy } from '@loom/common/policy/parse';

export const ROLE_TYPE_MEMBER = 'MEMBER';
export const ROLE_TYPE_PEER = 'PEER';
export type KeyEndorsementRole = typeof ROLE_TYPE_MEMBER | typeof ROLE_TYPE_PEER;

export class KeyEndorsementPolicy {
  readonly #orgs = new Map<string, PrincipalRole>();

  /** `policy`: a previously stored validation parameter (empty or absent starts blank). */
  constructor(policy?: Uint8Array) {
    if (policy === undefined || policy.length === 0) return;
    const tree = parseSignaturePolicy(Buffer.from(policy).toString('utf8'));
    for (const rule of flatten(tree)) {
      if (rule.type !== 'signedBy') throw new Error('invalid policy: not a flat list of organization principals');
      this.#orgs.set(rule.principal.mspId, rule.principal.role);
    }
  }

  addOrgs(role: KeyEndorsementRole | string, ...newOrgs: string[]): void {
    const r = String(role).toUpperCase();
    if (r !== ROLE_TYPE_MEMBER && r !== ROLE_TYPE_PEER) throw new Error(`role type ${role} does not exist`);
    for (const org of newOrgs) this.#orgs.set(org, r === ROLE_TYPE_PEER ? 'peer' : 'member');
  }

  delOrgs(...delOrgs: string[]): void {
    for (const org of delOrgs) this.#orgs.delete(org);
  }

  listOrgs(): string[] {
    return [...this.#orgs.keys()];
  }

  /** The policy's bytes, for `setStateValidationParameter`; empty (no key-level policy) with no orgs. */
  getPolicy(): Uint8Array {
    if (this.#orgs.size === 0) return Buffer.alloc(0);
    const orgs = [...this.#orgs.entries()].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    const rules: SignaturePolicy[] = orgs.map(([mspId, role]) => ({ type: 'signedBy', principal: { mspId, role } }));
    const policy: SignaturePolicy = { type: 'outOf', op: 'AND', n: rules.length, rules };
    return Buffer.from(formatPolicy(policy), 'utf8');
  }
}

function flatten(p: SignaturePolicy): SignaturePolicy[] {
  if (p.type === 'signedBy') return [p];
  if (p.n !== p.rules.length) throw new Error('invalid policy: a key-level policy requires every listed org');
  return [...p.rules];
}
