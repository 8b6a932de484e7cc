import { ChannelPolicies, fromUtf8, utf8 } from '@loom/common';
import { describe, expect, it } from 'vitest';
import { createEndorsementPolicySource } from '../../validation/policies.js';
import { invokeLifecycle } from './invoke.js';
import {
  approvalOrgOfKey,
  approveForMyOrg,
  type ChaincodeDefinitionInput,
  checkCommitReadiness,
  commit,
  type LifecycleContext,
  type LifecycleState,
  queryAllCommitted,
  queryApproved,
  queryCommitted,
} from './lifecycle.js';
import {
  createChaincodeRegistry,
  lifecycleStateFromLedger,
  lifecycleStateFromSimulator,
  touchesLifecycle,
} from './registry.js';

/** An in-memory `_lifecycle` namespace. */
function memoryState(): LifecycleState & { keys(): string[] } {
  const m = new Map<string, Uint8Array>();
  return {
    getState: async (k) => m.get(k),
    putState: (k, v) => {
      m.set(k, v);
    },
    async *getStateByRange(start, end) {
      for (const k of [...m.keys()].sort())
        if (k >= start && (end === '' || k < end)) yield { key: k, value: m.get(k)! };
    },
    keys: () => [...m.keys()].sort(),
  };
}

const ORGS = ['Org1MSP', 'Org2MSP', 'Org3MSP'];
const orgPolicies = (m: string) => ({
  Readers: `OR('${m}.member')`,
  Writers: `OR('${m}.member')`,
  Admins: `OR('${m}.admin')`,
  Endorsement: `OR('${m}.peer')`,
});
const policies = new ChannelPolicies({
  orgs: Object.fromEntries(ORGS.map((m) => [m, orgPolicies(m)])),
  channel: {
    Readers: 'ANY Readers',
    Writers: 'ANY Writers',
    Admins: 'MAJORITY Admins',
    Endorsement: 'MAJORITY Endorsement',
    LifecycleEndorsement: 'MAJORITY Endorsement',
  },
});

const pkg = (label: string, c = 'a') => `${label}:${c.repeat(64)}`;
const def = (over: Partial<ChaincodeDefinitionInput> = {}): ChaincodeDefinitionInput => ({
  name: 'basic',
  version: '1.0',
  sequence: 1,
  ...over,
});
const peer = (mspId: string) => ({ mspId, role: 'peer' as const, isAdmin: false, id: `peer-${mspId}` });

function setup(): LifecycleContext & { state: ReturnType<typeof memoryState> } {
  return { state: memoryState(), policies };
}

describe('_lifecycle', () => {
  it('refuses to commit short of LifecycleEndorsement, naming the missing orgs; commits with a majority', async () => {
    const ctx = setup();
    await approveForMyOrg(ctx, { ...def(), packageId: pkg('basic_1.0') }, 'Org1MSP');
    expect(await checkCommitReadiness(ctx, def())).toEqual({
      approvals: { Org1MSP: true, Org2MSP: false, Org3MSP: false },
    });
    await expect(commit(ctx, def())).rejects.toMatchObject({
      code: 'LIFECYCLE_NOT_ENOUGH_APPROVALS',
      message: expect.stringContaining('Org2MSP, Org3MSP'),
      details: expect.objectContaining({ missing: ['Org2MSP', 'Org3MSP'] }),
    });
    // Org3 approves something else: it does not count.
    await approveForMyOrg(ctx, { ...def({ version: '9.9' }), packageId: pkg('basic_1.0', 'c') }, 'Org3MSP');
    await expect(commit(ctx, def())).rejects.toMatchObject({ code: 'LIFECYCLE_NOT_ENOUGH_APPROVALS' });

    await approveForMyOrg(ctx, { ...def(), packageId: pkg('basic_1.0', 'b') }, 'Org2MSP');
    expect((await checkCommitReadiness(ctx, def())).approvals).toEqual({
      Org1MSP: true,
      Org2MSP: true,
      Org3MSP: false,
    });
    // A peer of an org that did not approve does not endorse the commit.
    await expect(commit(ctx, def(), { myMspId: 'Org3MSP' })).rejects.toMatchObject({
      code: 'LIFECYCLE_NOT_AGREED_BY_ORG',
    });
    const committed = await commit(ctx, def(), { myMspId: 'Org1MSP' });
    expect(committed).toMatchObject({
      name: 'basic',
      version: '1.0',
      sequence: 1,
      endorsementPolicy: { channelConfigPolicy: 'Endorsement' },
      initRequired: false,
      packageIdsByOrg: { Org1MSP: pkg('basic_1.0'), Org2MSP: pkg('basic_1.0', 'b') },
    });
    expect(await queryCommitted(ctx.state, 'basic')).toEqual(committed);
    expect(await queryAllCommitted(ctx.state)).toEqual([committed]);
    expect(await queryCommitted(ctx.state, 'other')).toBeUndefined();
    expect(ctx.state.keys()).toEqual([
      'approvals/basic/1/Org1MSP',
      'approvals/basic/1/Org2MSP',
      'approvals/basic/1/Org3MSP',
      'definitions/basic',
    ]);
  });

  it('enforces sequences: next only, committed one only unchanged, no double commit', async () => {
    const ctx = setup();
    await expect(approveForMyOrg(ctx, def({ sequence: 2 }), 'Org1MSP')).rejects.toMatchObject({
      code: 'LIFECYCLE_SEQUENCE_INVALID',
      details: { name: 'basic', requested: 2, expected: 1 },
    });
    for (const m of ['Org1MSP', 'Org2MSP']) await approveForMyOrg(ctx, def(), m);
    await commit(ctx, def());
    await expect(commit(ctx, def())).rejects.toMatchObject({ code: 'LIFECYCLE_SEQUENCE_INVALID' });
    await expect(checkCommitReadiness(ctx, def())).rejects.toMatchObject({ code: 'LIFECYCLE_SEQUENCE_INVALID' });
    // Approving the committed sequence differently is refused; unchanged (with a package) is allowed.
    await expect(approveForMyOrg(ctx, def({ version: '2.0' }), 'Org3MSP')).rejects.toMatchObject({
      code: 'LIFECYCLE_DEFINITION_MISMATCH',
    });
    await approveForMyOrg(ctx, { ...def(), packageId: pkg('basic_1.0', 'd') }, 'Org3MSP');
    expect((await queryApproved(ctx.state, 'basic', 'Org3MSP'))?.packageId).toBe(pkg('basic_1.0', 'd'));
    await expect(approveForMyOrg(ctx, def({ sequence: 3 }), 'Org1MSP')).rejects.toMatchObject({
      code: 'LIFECYCLE_SEQUENCE_INVALID',
    });
  });

  it('upgrades by sequence + 1 with new code, policy and collections', async () => {
    const ctx = setup();
    for (const m of ORGS) await approveForMyOrg(ctx, { ...def(), packageId: pkg('basic_1.0') }, m);
    await commit(ctx, def());
    const collections = [{ name: 'priv', policy: "OR('Org1MSP.member','Org2MSP.member')", blockToLive: 10 }];
    const v2 = def({
      version: '2.0',
      sequence: 2,
      endorsementPolicy: "AND('Org1MSP.peer','Org2MSP.peer')",
      collections,
    });
    for (const m of ['Org1MSP', 'Org3MSP']) await approveForMyOrg(ctx, { ...v2, packageId: pkg('basic_2.0') }, m);
    await commit(ctx, v2);
    const now = await queryCommitted(ctx.state, 'basic');
    expect(now).toMatchObject({
      version: '2.0',
      sequence: 2,
      endorsementPolicy: { signaturePolicy: "AND('Org1MSP.peer', 'Org2MSP.peer')" },
      collections: [expect.objectContaining({ name: 'priv', memberOrgs: ['Org1MSP', 'Org2MSP'], blockToLive: 10 })],
      packageIdsByOrg: { Org1MSP: pkg('basic_2.0'), Org3MSP: pkg('basic_2.0') },
    });
    // A later upgrade may not drop the collection or change its blockToLive.
    const v3 = def({ version: '3.0', sequence: 3 });
    await expect(approveForMyOrg(ctx, v3, 'Org1MSP')).rejects.toMatchObject({
      code: 'COLLECTION_CONFIG_INVALID',
      message: expect.stringContaining('cannot be removed'),
    });
    await expect(
      approveForMyOrg(ctx, { ...v3, collections: [{ ...collections[0], blockToLive: 11 }] }, 'Org1MSP'),
    ).rejects.toThrow(/blockToLive cannot change/);
  });

  it('validates names, versions, policies and package ids', async () => {
    const ctx = setup();
    const bad = async (input: Parameters<typeof approveForMyOrg>[1], code = 'LIFECYCLE_INVALID_ARGUMENT') =>
      expect(approveForMyOrg(ctx, input, 'Org1MSP')).rejects.toMatchObject({ code });
    await bad(def({ name: '_lifecycle' }));
    await bad(def({ name: 'a/b' }));
    await bad(def({ version: 'v 1' }));
    await bad(def({ sequence: 0 }));
    await bad(def({ sequence: 1.5 }));
    await bad(def({ endorsementPolicy: "AND('Org1MSP.peer'" }));
    await bad(def({ endorsementPolicy: { channelConfigPolicy: 'Nope' } }));
    await bad({ ...def(), packageId: 'not-a-package-id' });
    await expect(approveForMyOrg(ctx, def(), 'Org9MSP')).rejects.toMatchObject({ code: 'LIFECYCLE_UNAUTHORIZED' });
  });

  it('runs as a system chaincode: admins only for writes, JSON in and out', async () => {
    const ctx = setup();
    const call = (fn: string, arg: unknown, mspId = 'Org1MSP', isAdmin = true) =>
      invokeLifecycle(ctx, [utf8(fn), utf8(JSON.stringify(arg))], { mspId, isAdmin }, { myMspId: mspId }).then((b) =>
        JSON.parse(fromUtf8(b)),
      );
    await expect(call('ApproveChaincodeDefinitionForMyOrg', def(), 'Org1MSP', false)).rejects.toMatchObject({
      code: 'LIFECYCLE_UNAUTHORIZED',
    });
    await call('ApproveChaincodeDefinitionForMyOrg', { ...def(), packageId: pkg('basic_1.0') }, 'Org1MSP');
    await call('ApproveChaincodeDefinitionForMyOrg', { ...def(), packageId: pkg('basic_1.0') }, 'Org2MSP');
    expect(await call('CheckCommitReadiness', def())).toEqual({
      approvals: { Org1MSP: true, Org2MSP: true, Org3MSP: false },
    });
    expect(await call('QueryApprovedChaincodeDefinition', { name: 'basic' })).toMatchObject({
      mspId: 'Org1MSP',
      packageId: pkg('basic_1.0'),
    });
    await call('CommitChaincodeDefinition', def(), 'Org2MSP');
    expect(await call('QueryChaincodeDefinition', { name: 'basic' })).toMatchObject({ version: '1.0', sequence: 1 });
    expect(await call('QueryChaincodeDefinitions', {})).toHaveLength(1);
    await expect(call('QueryChaincodeDefinition', { name: 'nope' })).rejects.toMatchObject({ httpStatus: 404 });
    await expect(call('Bogus', {})).rejects.toMatchObject({ code: 'LIFECYCLE_INVALID_ARGUMENT' });
  });

  it("endorses an approval only on the approving org's own peer", async () => {
    const ctx = setup();
    // Org1's admin asks a peer of Org2 to endorse Org1's approval: refused, nothing written.
    await expect(
      invokeLifecycle(
        ctx,
        [utf8('ApproveChaincodeDefinitionForMyOrg'), utf8(JSON.stringify(def()))],
        { mspId: 'Org1MSP', isAdmin: true },
        { myMspId: 'Org2MSP' },
      ),
    ).rejects.toMatchObject({
      code: 'LIFECYCLE_UNAUTHORIZED',
      httpStatus: 403,
      message: expect.stringContaining('must be endorsed by a peer of Org1MSP'),
    });
    expect(ctx.state.keys()).toEqual([]);
  });
});

describe('_lifecycle approval keys', () => {
  it('names the approving org of approval keys; malformed approval keys have none', () => {
    expect(approvalOrgOfKey('approvals/basic/1/Org1MSP')).toBe('Org1MSP');
    expect(approvalOrgOfKey('approvals/my-cc_2/12/Org2.MSP')).toBe('Org2.MSP');
    expect(approvalOrgOfKey('definitions/basic')).toBeUndefined();
    for (const bad of [
      'approvals/basic/1',
      'approvals/basic/0/Org1MSP',
      'approvals/basic/1/Org1MSP/x',
      "approvals/basic/1/O'rg",
    ]) {
      expect(approvalOrgOfKey(bad)).toBeNull();
    }
  });

  it('validation: an approval needs a peer of its org, whatever LifecycleEndorsement says; definitions need LifecycleEndorsement', async () => {
    const source = createEndorsementPolicySource(policies, { chaincode: () => 'MAJORITY Endorsement' });
    const rule = source.keyRule?.('_lifecycle', 'approvals/basic/1/Org1MSP');
    expect(rule?.requirement).toContain('Org1MSP');
    expect(rule?.policy.evaluate([peer('Org1MSP')])).toBe(true);
    // Another org's peers, even a majority of them, cannot write Org1's approval.
    expect(rule?.policy.evaluate([peer('Org2MSP'), peer('Org3MSP')])).toBe(false);
    // An admin or client of Org1 is not a peer.
    expect(rule?.policy.evaluate([{ ...peer('Org1MSP'), role: 'admin' as const, isAdmin: true }])).toBe(false);
    expect(source.keyRule?.('_lifecycle', 'approvals/basic/1')?.policy.evaluate([peer('Org1MSP')])).toBe(false);
    expect(source.keyRule?.('_lifecycle', 'definitions/basic')).toBeUndefined();
    expect(source.keyRule?.('basic', 'approvals/basic/1/Org1MSP')).toBeUndefined();
  });
});

describe('ChaincodeRegistry', () => {
  it('serves committed definitions, my package and the validator policies', async () => {
    const ctx = setup();
    const collections = [
      {
        name: 'priv',
        policy: "OR('Org1MSP.member','Org2MSP.member')",
        endorsementPolicy: { signaturePolicy: "OR('Org1MSP.peer')" },
      },
      { name: 'open', policy: "OR('Org1MSP.member')" },
    ];
    for (const m of ['Org1MSP', 'Org2MSP']) {
      await approveForMyOrg(ctx, { ...def({ collections, initRequired: true }), packageId: pkg(`basic_${m}`) }, m);
    }
    await commit(ctx, def({ collections, initRequired: true }));
    // Org3 names its package after the commit.
    await approveForMyOrg(
      ctx,
      { ...def({ collections, initRequired: true }), packageId: pkg('basic_org3') },
      'Org3MSP',
    );

    const regs = Object.fromEntries(ORGS.map((m) => [m, createChaincodeRegistry({ mspId: m })]));
    for (const r of Object.values(regs)) await r.load('ch1', ctx.state, policies);
    expect(regs.Org1MSP!.get('ch1', 'basic')).toMatchObject({
      name: 'basic',
      sequence: 1,
      packageId: pkg('basic_Org1MSP'),
      endorsementPolicy: 'MAJORITY Endorsement',
      initRequired: true,
    });
    expect(regs.Org3MSP!.get('ch1', 'basic')?.packageId).toBe(pkg('basic_org3'));
    expect(regs.Org1MSP!.get('ch2', 'basic')).toBeUndefined();
    const r = regs.Org1MSP!;
    expect(r.endorsementPolicyFor('ch1', '_lifecycle')).toBe('MAJORITY Endorsement');
    expect(r.endorsementPolicyFor('ch1', 'nope')).toBeUndefined();
    expect(r.collectionPolicyFor('ch1', 'basic', 'priv')).toBe("OR('Org1MSP.peer')");
    expect(r.collectionPolicyFor('ch1', 'basic', 'open')).toBeUndefined();
    expect(r.collectionPolicyFor('ch1', 'basic', '_implicit_org_Org2MSP')).toBe("OR('Org2MSP.peer')");
    expect(r.collection('ch1', 'basic', '_implicit_org_Org9MSP')).toBeUndefined();
    expect(r.collection('ch1', 'basic', 'priv')?.memberOrgs).toEqual(['Org1MSP', 'Org2MSP']);

    // Plugged into the validator's policy source.
    const source = createEndorsementPolicySource(policies, r.endorsementPolicyTexts('ch1'));
    const cc = await source.chaincodePolicy('basic');
    expect(cc?.evaluate([peer('Org1MSP')])).toBe(false);
    expect(cc?.evaluate([peer('Org1MSP'), peer('Org3MSP')])).toBe(true);
    const lc = await source.chaincodePolicy('_lifecycle');
    expect(lc?.evaluate([peer('Org1MSP'), peer('Org2MSP')])).toBe(true);
    expect(await source.chaincodePolicy('undefined-cc')).toBeUndefined();
    expect((await source.collectionPolicy('basic', 'priv'))?.evaluate([peer('Org1MSP')])).toBe(true);
  });

  it('reads the committed ledger namespace', async () => {
    const ctx = setup();
    for (const m of ['Org1MSP', 'Org2MSP']) await approveForMyOrg(ctx, def(), m);
    await commit(ctx, def());
    const ledger = {
      getState: async (ns: string, key: string) => {
        const v = ns === '_lifecycle' ? await ctx.state.getState(key) : undefined;
        return v && { value: v, version: { blockNum: 1, txNum: 0 }, metadata: new Map() };
      },
      async *rangeScan(ns: string, start: string, end: string) {
        if (ns !== '_lifecycle') return;
        for await (const e of ctx.state.getStateByRange(start, end))
          yield { ...e, version: { blockNum: 1, txNum: 0 }, metadata: new Map() };
      },
    };
    const reg = createChaincodeRegistry({ mspId: 'Org1MSP' });
    await reg.load('ch1', lifecycleStateFromLedger(ledger), policies);
    expect(reg.list('ch1').map((c) => c.name)).toEqual(['basic']);
    expect(reg.get('ch1', 'basic')?.packageId).toBeUndefined();
    expect(touchesLifecycle([{ namespace: 'basic' }, { namespace: '_lifecycle' }])).toBe(true);
    expect(touchesLifecycle([{ namespace: 'basic' }])).toBe(false);
  });

  it('runs over a transaction simulator, paging range reads', async () => {
    const writes: string[] = [];
    const backing = memoryState();
    let closed = 0;
    const sim = {
      getState: (ns: string, key: string) => (ns === '_lifecycle' ? backing.getState(key) : Promise.resolve(undefined)),
      setState: (ns: string, key: string, value: Uint8Array) => {
        writes.push(`${ns}/${key}`);
        backing.putState(key, value);
      },
      getStateRange: async (_ns: string, start: string, end: string) => {
        const all: { key: string; value: Uint8Array }[] = [];
        for await (const e of backing.getStateByRange(start, end)) all.push(e);
        return {
          iterator: {
            next: async (max: number) => ({ results: all.splice(0, Math.min(max, 1)), hasMore: all.length > 0 }),
            close: async () => {
              closed++;
            },
          },
        };
      },
    };
    const ctx = { state: lifecycleStateFromSimulator(sim), policies };
    for (const m of ['Org1MSP', 'Org2MSP']) await approveForMyOrg(ctx, def(), m);
    await commit(ctx, def());
    await approveForMyOrg(ctx, def({ name: 'other' }), 'Org1MSP');
    await approveForMyOrg(ctx, def({ name: 'other' }), 'Org3MSP');
    await commit(ctx, def({ name: 'other' }));
    expect((await queryAllCommitted(ctx.state)).map((d) => d.name)).toEqual(['basic', 'other']);
    expect(closed).toBe(1);
    expect(writes).toContain('_lifecycle/definitions/other');
  });
});
