import { describe, expect, it } from 'vitest';
import { isLoomError, type LoomError } from '../errors.js';
import type { NodeRole, SignerIdentity } from '../identity-types.js';
import {
  ChannelPolicies,
  evaluateSignaturePolicy,
  formatPolicy,
  mspIdsOf,
  parseImplicitMetaPolicy,
  parsePolicy,
  parseSignaturePolicy,
  principalsOf,
} from './index.js';

let counter = 0;
function signer(
  mspId: string,
  role: NodeRole | undefined,
  opts: { admin?: boolean; id?: string } = {},
): SignerIdentity {
  return { mspId, role, isAdmin: opts.admin ?? role === 'admin', id: opts.id ?? `id-${++counter}` };
}

function satisfied(text: string, signers: SignerIdentity[]): boolean {
  return evaluateSignaturePolicy(parseSignaturePolicy(text), signers).satisfied;
}

function syntaxErrorOf(text: string): LoomError {
  try {
    parsePolicy(text);
  } catch (e) {
    if (isLoomError(e, 'POLICY_SYNTAX')) return e;
    throw e;
  }
  throw new Error(`expected ${text} to fail`);
}

describe('parseSignaturePolicy', () => {
  it('parses nested AND/OR/OutOf with both quote styles', () => {
    const p = parseSignaturePolicy(
      `OutOf(2, 'Org1MSP.peer', "Org2MSP.member", AND('Org3MSP.admin', OR('Org4MSP.client', 'Org4MSP.orderer')))`,
    );
    expect(p).toMatchObject({ type: 'outOf', op: 'OutOf', n: 2 });
    expect(formatPolicy(p)).toBe(
      `OutOf(2, 'Org1MSP.peer', 'Org2MSP.member', AND('Org3MSP.admin', OR('Org4MSP.client', 'Org4MSP.orderer')))`,
    );
    expect(parseSignaturePolicy(formatPolicy(p))).toEqual(p);
  });

  it('accepts keywords in any case, like Fabric', () => {
    for (const t of [`and('A.member')`, `Or('A.member')`, `OUTOF(1, 'A.member')`, `outof(1, 'A.member')`]) {
      expect(() => parseSignaturePolicy(t)).not.toThrow();
    }
  });

  it('splits the role at the last dot so MSP ids may contain dots', () => {
    expect(principalsOf(parseSignaturePolicy(`'org1.example.com.peer'`))).toEqual([
      { mspId: 'org1.example.com', role: 'peer' },
    ]);
  });

  it('lists the principals and MSP ids a policy names', () => {
    const p = parseSignaturePolicy(`AND('A.peer', OR('B.member', 'A.peer', 'A.admin'))`);
    expect(principalsOf(p)).toEqual([
      { mspId: 'A', role: 'peer' },
      { mspId: 'B', role: 'member' },
      { mspId: 'A', role: 'admin' },
    ]);
    expect(mspIdsOf(p)).toEqual(['A', 'B']);
    expect(mspIdsOf(parsePolicy('MAJORITY Admins'))).toEqual([]);
  });

  it.each([
    [`AND('A.member'`, 14, 'expected'],
    [`AND('A.member',)`, 15, 'expected AND, OR, OutOf'],
    [`AND()`, 4, 'expected AND, OR, OutOf'],
    [`XOR('A.member')`, 0, "unknown operator 'XOR'"],
    [`AND('A.boss')`, 7, "unknown role 'boss'"],
    [`AND('Amember')`, 4, 'not of the form'],
    [`OutOf(3, 'A.member', 'B.member')`, 6, 'must be between 1 and'],
    [`OutOf(0, 'A.member')`, 6, 'must be between 1 and'],
    [`OutOf('A.member')`, 6, 'count'],
    [`AND('A.member') 'B.member'`, 16, 'after the policy'],
    [`AND('A.member)`, 4, 'unterminated'],
    [`AND('A.member') & x`, 16, 'unexpected character'],
    ['', 0, 'empty'],
    ['ANY', 3, 'policy name'],
    ['MAJORITY Admins Writers', 16, 'single policy name'],
    ['ANY 9lives', 4, 'policy name'],
  ])('rejects %j at position %i', (text, position, fragment) => {
    const e = syntaxErrorOf(text);
    expect(e.code).toBe('POLICY_SYNTAX');
    expect(e.details).toMatchObject({ text, position });
    expect(e.message).toContain(fragment);
    expect(e.message).toContain(`position ${position + 1}`);
  });
});

describe('parseImplicitMetaPolicy', () => {
  it('parses the three rules case-insensitively', () => {
    expect(parseImplicitMetaPolicy('ANY Readers')).toEqual({ type: 'implicitMeta', rule: 'ANY', subPolicy: 'Readers' });
    expect(parsePolicy('all Admins')).toEqual({ type: 'implicitMeta', rule: 'ALL', subPolicy: 'Admins' });
    expect(parsePolicy('  MAJORITY   Endorsement ')).toEqual({
      type: 'implicitMeta',
      rule: 'MAJORITY',
      subPolicy: 'Endorsement',
    });
  });
});

describe('evaluateSignaturePolicy', () => {
  const o1peer = signer('Org1MSP', 'peer');
  const o2peer = signer('Org2MSP', 'peer');
  const o3peer = signer('Org3MSP', 'peer');

  it('AND needs every rule', () => {
    expect(satisfied(`AND('Org1MSP.peer', 'Org2MSP.peer')`, [o1peer, o2peer])).toBe(true);
    const r = evaluateSignaturePolicy(parseSignaturePolicy(`AND('Org1MSP.peer', 'Org2MSP.peer')`), [o1peer]);
    expect(r.satisfied).toBe(false);
    expect(r.missingOrgs).toEqual(['Org2MSP']);
    expect(r.unmatchedPrincipals).toEqual([{ mspId: 'Org2MSP', role: 'peer' }]);
    expect(r.reason).toContain('Org2MSP');
  });

  it('OR needs one rule', () => {
    expect(satisfied(`OR('Org1MSP.peer', 'Org2MSP.peer')`, [o2peer])).toBe(true);
    expect(satisfied(`OR('Org1MSP.peer', 'Org2MSP.peer')`, [o3peer])).toBe(false);
    expect(satisfied(`OR('Org1MSP.peer', 'Org2MSP.peer')`, [])).toBe(false);
  });

  it('nested OutOf counts sub-rules', () => {
    const text = `OutOf(2, 'Org1MSP.peer', AND('Org2MSP.peer', 'Org3MSP.peer'), OutOf(1, 'Org4MSP.member'))`;
    expect(satisfied(text, [o1peer, o2peer, o3peer])).toBe(true);
    expect(satisfied(text, [o1peer, signer('Org4MSP', 'client')])).toBe(true);
    expect(satisfied(text, [o2peer, o3peer, signer('Org4MSP', undefined)])).toBe(true);
    expect(satisfied(text, [o1peer, o2peer])).toBe(false);
  });

  it('matches roles: member is anyone of the MSP, admin needs isAdmin, others need the NodeOU role', () => {
    const admin = signer('Org1MSP', 'admin');
    const listedAdmin = signer('Org1MSP', 'client', { admin: true });
    const client = signer('Org1MSP', 'client');
    const orderer = signer('Org1MSP', 'orderer');
    expect(satisfied(`'Org1MSP.member'`, [admin])).toBe(true);
    expect(satisfied(`'Org1MSP.member'`, [signer('Org1MSP', undefined)])).toBe(true);
    expect(satisfied(`'Org1MSP.admin'`, [admin])).toBe(true);
    expect(satisfied(`'Org1MSP.admin'`, [listedAdmin])).toBe(true);
    expect(satisfied(`'Org1MSP.admin'`, [client, o1peer, orderer])).toBe(false);
    expect(satisfied(`'Org1MSP.client'`, [client])).toBe(true);
    expect(satisfied(`'Org1MSP.client'`, [o1peer, admin])).toBe(false);
    expect(satisfied(`'Org1MSP.orderer'`, [orderer])).toBe(true);
    expect(satisfied(`'Org1MSP.peer'`, [orderer])).toBe(false);
    expect(satisfied(`'Org2MSP.admin'`, [admin])).toBe(false);
  });

  it('lets one signer stand for at most one principal', () => {
    const p = `AND('Org1MSP.member', 'Org1MSP.member')`;
    expect(satisfied(p, [o1peer])).toBe(false);
    expect(satisfied(p, [o1peer, signer('Org1MSP', 'client')])).toBe(true);
    expect(satisfied(`OutOf(2, 'Org1MSP.peer', 'Org1MSP.member')`, [o1peer])).toBe(false);
  });

  it('counts a signer that appears twice once', () => {
    const dup = signer('Org1MSP', 'peer', { id: 'same' });
    const again = signer('Org1MSP', 'peer', { id: 'same' });
    const r = evaluateSignaturePolicy(parseSignaturePolicy(`AND('Org1MSP.member', 'Org1MSP.member')`), [dup, again]);
    expect(r.satisfied).toBe(false);
    expect(r.reason).toContain('1 distinct signer');
  });

  it('finds an assignment where greedy first-fit would fail', () => {
    // Greedy gives the admin (first signer) to the first principal, `member`, and then has nobody
    // left for `admin`; the right assignment is admin→admin, peer→member.
    const admin = signer('Org1MSP', 'admin', { id: 'admin' });
    const peer = signer('Org1MSP', 'peer', { id: 'peer' });
    const r = evaluateSignaturePolicy(parseSignaturePolicy(`AND('Org1MSP.member', 'Org1MSP.admin')`), [admin, peer]);
    expect(r.satisfied).toBe(true);
    expect(r.assignment).toEqual([
      { principal: { mspId: 'Org1MSP', role: 'member' }, signerId: 'peer' },
      { principal: { mspId: 'Org1MSP', role: 'admin' }, signerId: 'admin' },
    ]);
  });

  it('backtracks through nested gates', () => {
    // OR picks its first satisfiable branch greedily; only the second branch leaves the admin for AND's second rule.
    const admin = signer('Org1MSP', 'admin', { id: 'a' });
    const client = signer('Org1MSP', 'client', { id: 'c' });
    const text = `AND(OR('Org1MSP.admin', 'Org1MSP.client'), 'Org1MSP.admin')`;
    const r = evaluateSignaturePolicy(parseSignaturePolicy(text), [admin, client]);
    expect(r.satisfied).toBe(true);
    expect(r.assignment.map((a) => a.signerId).sort()).toEqual(['a', 'c']);
  });

  it('handles many interchangeable signers and wide policies quickly', () => {
    const orgs = Array.from({ length: 20 }, (_, i) => `Org${i}MSP`);
    const text = `OutOf(15, ${orgs.map((o) => `'${o}.peer'`).join(', ')})`;
    const signers = orgs.slice(0, 14).flatMap((o) => Array.from({ length: 50 }, () => signer(o, 'peer')));
    expect(satisfied(text, signers)).toBe(false);
    expect(satisfied(text, [...signers, signer('Org19MSP', 'peer')])).toBe(true);
  });

  it('gives up with POLICY_TOO_COMPLEX past its step limit', () => {
    const p = parseSignaturePolicy(`AND('A.member', 'A.member', 'A.member')`);
    const signers = [signer('A', 'peer'), signer('A', 'client')];
    expect(() => evaluateSignaturePolicy(p, signers, { stepLimit: 3 })).toThrow(
      expect.objectContaining({ code: 'POLICY_TOO_COMPLEX' }),
    );
  });
});

describe('ChannelPolicies', () => {
  const orgSig = (mspId: string) => ({
    Readers: `OR('${mspId}.member')`,
    Writers: `OR('${mspId}.admin', '${mspId}.client')`,
    Admins: `OR('${mspId}.admin')`,
    Endorsement: `OR('${mspId}.peer')`,
  });
  const policies = new ChannelPolicies({
    orgs: { Org1MSP: orgSig('Org1MSP'), Org2MSP: orgSig('Org2MSP'), Org3MSP: orgSig('Org3MSP') },
    channel: {
      Readers: 'ANY Readers',
      Writers: 'ANY Writers',
      Admins: 'MAJORITY Admins',
      AllAdmins: 'ALL Admins',
      Endorsement: 'MAJORITY Endorsement',
      LifecycleEndorsement: 'MAJORITY Endorsement',
      Missing: 'ANY Nonexistent',
    },
  });
  const admin = (o: string) => signer(o, 'admin');

  it('ANY needs one organization', () => {
    expect(policies.evaluate('Readers', [signer('Org2MSP', 'peer')]).satisfied).toBe(true);
    expect(policies.evaluate('Writers', [signer('Org2MSP', 'peer')]).satisfied).toBe(false);
    expect(policies.evaluate('Writers', [signer('Org3MSP', 'client')]).satisfied).toBe(true);
    expect(policies.evaluate('Readers', [signer('Org9MSP', 'client')]).satisfied).toBe(false);
  });

  it('MAJORITY needs more than half', () => {
    expect(policies.evaluate('Admins', [admin('Org1MSP')]).satisfied).toBe(false);
    expect(policies.evaluate('Admins', [admin('Org1MSP'), admin('Org3MSP')]).satisfied).toBe(true);
    const r = policies.evaluate('Endorsement', [signer('Org1MSP', 'peer'), admin('Org2MSP')]);
    expect(r).toMatchObject({
      kind: 'implicitMeta',
      satisfied: false,
      required: 2,
      satisfiedOrgs: ['Org1MSP'],
      unsatisfiedOrgs: ['Org2MSP', 'Org3MSP'],
    });
    expect(r.reason).toContain('needs 2 of 3');
    expect(
      policies.evaluate('LifecycleEndorsement', [signer('Org1MSP', 'peer'), signer('Org2MSP', 'peer')]).satisfied,
    ).toBe(true);
  });

  it('MAJORITY of an even number needs more than half', () => {
    const two = new ChannelPolicies({
      orgs: { A: { Admins: `'A.admin'` }, B: { Admins: `'B.admin'` } },
      channel: { Admins: 'MAJORITY Admins' },
    });
    expect(two.evaluate('Admins', [admin('A')]).satisfied).toBe(false);
    expect(two.evaluate('Admins', [admin('A'), admin('B')]).satisfied).toBe(true);
  });

  it('ALL needs every organization', () => {
    expect(policies.evaluate('AllAdmins', [admin('Org1MSP'), admin('Org2MSP')]).satisfied).toBe(false);
    expect(policies.evaluate('AllAdmins', [admin('Org1MSP'), admin('Org2MSP'), admin('Org3MSP')]).satisfied).toBe(true);
  });

  it('an organization without the sub-policy does not count, and an empty channel fails closed', () => {
    const r = policies.evaluate('Missing', [signer('Org1MSP', 'peer')]);
    expect(r.satisfied).toBe(false);
    if (r.kind !== 'implicitMeta') throw new Error('expected implicit meta');
    expect(r.orgReasons['Org1MSP']).toContain("no policy named 'Nonexistent'");
    const empty = new ChannelPolicies({ orgs: {}, channel: { Admins: 'ALL Admins' } });
    expect(empty.evaluate('Admins', [admin('Org1MSP')]).satisfied).toBe(false);
  });

  it('evaluates arbitrary policy texts, parsing each once', () => {
    const t = `AND('Org1MSP.peer', 'Org2MSP.peer')`;
    expect(policies.parse(t)).toBe(policies.parse(t));
    expect(policies.evaluateText(t, [signer('Org1MSP', 'peer'), signer('Org2MSP', 'peer')]).satisfied).toBe(true);
    expect(policies.evaluateText('ANY Endorsement', [signer('Org2MSP', 'peer')]).satisfied).toBe(true);
  });

  it('require throws a 403 LoomError naming the policy', () => {
    expect(() => policies.require('Admins', [admin('Org1MSP')], 'ENDORSEMENT_POLICY_FAILURE')).toThrow(
      expect.objectContaining({ code: 'ENDORSEMENT_POLICY_FAILURE', httpStatus: 403 }),
    );
    expect(policies.require('Readers', [admin('Org1MSP')]).satisfied).toBe(true);
  });

  it('rejects unknown policy names and bad definitions', () => {
    expect(() => policies.evaluate('Nope', [])).toThrow(expect.objectContaining({ code: 'POLICY_NOT_FOUND' }));
    expect(() => new ChannelPolicies({ orgs: { A: { Admins: 'ANY Admins' } }, channel: {} })).toThrow(
      expect.objectContaining({ code: 'POLICY_INVALID' }),
    );
    expect(() => new ChannelPolicies({ orgs: { A: { Admins: `AND('A.admin'` } }, channel: {} })).toThrow(
      /policy A\/Admins: policy syntax error/,
    );
  });
});
