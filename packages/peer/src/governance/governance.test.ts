import { randomBytes } from 'node:crypto';
import {
  buildConfigUpdateEnvelope,
  type ChannelConfig,
  fromBase64,
  fromUtf8,
  isLoomError,
  MspManager,
  type OrgConfig,
  signConfigUpdate,
  toBase64,
  utf8,
} from '@loom/common';
import { createTestOrg, type TestIdentity, type TestOrg } from '@loom/common/testing/index';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  approvalSignatures,
  type GovernanceContext,
  type GovernanceState,
  invokeGovernance,
  type ProposalView,
} from './governance.js';

function memoryState(): GovernanceState {
  const m = new Map<string, Uint8Array>();
  return {
    getState: async (k) => m.get(k),
    putState: (k, v) => {
      m.set(k, v);
    },
    async *getStateByRange(start, end) {
      for (const k of [...m.keys()].sort()) if (k >= start && k < end) yield { key: k, value: m.get(k)! };
    },
  };
}

const pol = (rule: string) => ({ rule, version: 0, modPolicy: 'Admins' });
const orgConfig = (o: TestOrg): OrgConfig => {
  const msp = o.mspConfig();
  return {
    mspId: o.mspId,
    msp: {
      rootCerts: [...msp.rootCerts],
      intermediateCerts: [],
      admins: [],
      crls: [],
      tlsRootCerts: [...msp.rootCerts],
      tlsIntermediateCerts: [],
      nodeOUs: true,
    },
    anchorPeers: [],
    policies: { Admins: pol(`OR('${o.mspId}.admin')`) },
    version: 0,
    modPolicy: 'Admins',
  };
};

let org1: TestOrg;
let org2: TestOrg;
let org3: TestOrg;
let config: ChannelConfig;
let msp: MspManager;
const T0 = 1_800_000_000_000;

beforeAll(async () => {
  [org1, org2, org3] = await Promise.all([
    createTestOrg('Org1MSP'),
    createTestOrg('Org2MSP'),
    createTestOrg('Org3MSP'),
  ]);
  config = {
    channelId: 'mychannel',
    sequence: 0,
    orgs: { Org1MSP: orgConfig(org1), Org2MSP: orgConfig(org2) },
    policies: { Admins: pol('MAJORITY Admins') },
    orderer: {
      consenters: [{ id: 'o0', mspId: 'OrdererMSP', host: 'h', port: 1, raftPort: 2, identityCert: 'c', tlsCert: 't' }],
      batch: { batchTimeoutMs: 250, maxMessageCount: 500, absoluteMaxBytes: 10_000_000, preferredMaxBytes: 2_000_000 },
      orgs: {},
      policies: {},
      version: 0,
      modPolicy: 'Admins',
    },
    capabilities: ['V2_0'],
    version: 0,
    modPolicy: 'Admins',
  };
  msp = new MspManager([org1.mspConfig(), org2.mspConfig(), org3.mspConfig()]);
});

const ctxAt = (state: GovernanceState, t: number, extra: Partial<GovernanceContext> = {}): GovernanceContext => ({
  state,
  config,
  msp,
  txId: randomBytes(32).toString('hex'),
  txTimeMs: t,
  nowMs: t,
  ...extra,
});
const callerOf = (id: TestIdentity) => ({
  serialized: id.serialized,
  mspId: id.mspId,
  isAdmin: id.role === 'admin',
});

async function call(ctx: GovernanceContext, id: TestIdentity, fn: string, arg: unknown): Promise<ProposalView> {
  return JSON.parse(fromUtf8(await invokeGovernance(ctx, [utf8(fn), utf8(JSON.stringify(arg))], callerOf(id))));
}
async function code(p: Promise<unknown>): Promise<string | undefined> {
  try {
    await p;
  } catch (e) {
    return isLoomError(e) ? e.code : `not a LoomError: ${(e as Error).message}`;
  }
  return undefined;
}

const inviteOrg3 = () => ({ actions: [{ type: 'INVITE_ORG', org: orgConfig(org3) }], durationMs: 60_000 });

async function yesVote(p: ProposalView, voter: TestIdentity, withEnvelope: boolean) {
  const update = fromBase64(p.configUpdate);
  const sig = await signConfigUpdate(update, voter.serialized, (m) => voter.signer.sign(m), randomBytes(24));
  const configSignature = { signatureHeader: toBase64(sig.signatureHeader), signature: toBase64(sig.signature) };
  const arg: Record<string, unknown> = { proposalId: p.id, vote: 'yes', configSignature };
  if (withEnvelope) {
    const votes = { ...p.votes, [voter.mspId]: { vote: 'YES' as const, txId: '', atMs: 0, configSignature } };
    arg.applyEnvelope = toBase64(
      await buildConfigUpdateEnvelope({
        channelId: p.channelId,
        configUpdate: update,
        signatures: approvalSignatures(votes),
        signer: voter.serialized,
        sign: (m) => voter.signer.sign(m),
        nonce: randomBytes(24),
        timestampMs: T0,
      }),
    );
  }
  return arg;
}

describe('_governance', () => {
  it('invites an org by vote: proposal, yes votes with signatures, approval with the envelope', async () => {
    const state = memoryState();
    const p = await call(ctxAt(state, T0), org1.admin, 'Propose', inviteOrg3());
    expect(p).toMatchObject({ status: 'IN_PROGRESS', proposer: 'Org1MSP', members: ['Org1MSP', 'Org2MSP'] });
    expect(p.summary).toEqual(['invite Org3MSP']);
    expect(p.deadlineMs).toBe(T0 + 60_000);

    const v1 = await call(ctxAt(state, T0 + 1000), org1.admin, 'Vote', await yesVote(p, org1.admin, false));
    expect(v1.status).toBe('IN_PROGRESS');
    // a second vote by the same org is refused
    expect(await code(call(ctxAt(state, T0 + 2000), org1.admin, 'Vote', { proposalId: p.id, vote: 'no' }))).toBe(
      'GOVERNANCE_ALREADY_VOTED',
    );
    // the approving vote without the envelope is refused, with it the proposal is approved
    expect(await code(call(ctxAt(state, T0 + 2000), org2.admin, 'Vote', await yesVote(v1, org2.admin, false)))).toBe(
      'GOVERNANCE_APPLY_ENVELOPE_MISMATCH',
    );
    // an envelope built from a stale read (without Org1's signature) is refused too
    expect(await code(call(ctxAt(state, T0 + 2000), org2.admin, 'Vote', await yesVote(p, org2.admin, true)))).toBe(
      'GOVERNANCE_APPLY_ENVELOPE_MISMATCH',
    );
    const v2 = await call(ctxAt(state, T0 + 2000), org2.admin, 'Vote', await yesVote(v1, org2.admin, true));
    expect(v2.status).toBe('APPROVED');
    expect(v2.applyEnvelope).toBeTruthy();
    expect(v2.tally).toMatchObject({ yes: 2, no: 0, outcome: 'APPROVED' });

    // not applied yet: Apply is refused; once the ledger says so, it is recorded once
    expect(await code(call(ctxAt(state, T0 + 3000), org1.admin, 'Apply', { proposalId: p.id }))).toBe(
      'GOVERNANCE_NOT_APPLIED',
    );
    const applied = { appliedAt: async () => 7 };
    const shown = await call(ctxAt(state, T0 + 3000, applied), org3.admin, 'GetProposal', { proposalId: p.id });
    expect(shown).toMatchObject({ status: 'APPLIED', recordedStatus: 'APPROVED', appliedBlock: 7 });
    const a = await call(ctxAt(state, T0 + 3000, applied), org1.admin, 'Apply', { proposalId: p.id });
    expect(a).toMatchObject({ status: 'APPLIED', appliedBlock: 7 });
    expect(await code(call(ctxAt(state, T0 + 4000, applied), org2.admin, 'Apply', { proposalId: p.id }))).toBe(
      'GOVERNANCE_ALREADY_APPLIED',
    );
    expect(await code(call(ctxAt(state, T0 + 4000), org2.admin, 'Vote', { proposalId: p.id, vote: 'no' }))).toBe(
      'GOVERNANCE_PROPOSAL_CLOSED',
    );
  });

  it('refuses votes after the deadline, records expiry, and records rejections', async () => {
    const state = memoryState();
    const p = await call(ctxAt(state, T0), org1.admin, 'Propose', inviteOrg3());
    expect(await code(call(ctxAt(state, T0 + 60_000), org2.admin, 'Vote', { proposalId: p.id, vote: 'no' }))).toBe(
      'GOVERNANCE_VOTE_AFTER_DEADLINE',
    );
    expect(await code(call(ctxAt(state, T0 + 59_000), org1.admin, 'Expire', { proposalId: p.id }))).toBe(
      'GOVERNANCE_NOT_EXPIRED',
    );
    const listed = await call(ctxAt(state, T0 + 61_000), org1.client, 'ListProposals', {});
    expect((listed as unknown as ProposalView[])[0]).toMatchObject({
      status: 'EXPIRED',
      recordedStatus: 'IN_PROGRESS',
    });
    expect((await call(ctxAt(state, T0 + 61_000), org1.admin, 'Expire', { proposalId: p.id })).recordedStatus).toBe(
      'EXPIRED',
    );

    const q = await call(ctxAt(state, T0), org2.admin, 'Propose', {
      actions: [{ type: 'SET_BATCH', batch: { maxMessageCount: 10 } }],
    });
    const r = await call(ctxAt(state, T0 + 10), org2.admin, 'Vote', { proposalId: q.id, vote: 'NO' });
    expect(r).toMatchObject({ status: 'REJECTED', tally: { no: 1, outcome: 'REJECTED' } });
  });

  it('refuses non-admins, non-members, bad signatures, skewed clocks and stale configs', async () => {
    const state = memoryState();
    expect(await code(call(ctxAt(state, T0), org1.client, 'Propose', inviteOrg3()))).toBe('GOVERNANCE_UNAUTHORIZED');
    expect(await code(call(ctxAt(state, T0), org3.admin, 'Propose', inviteOrg3()))).toBe('GOVERNANCE_NOT_A_MEMBER');
    expect(await code(call(ctxAt(state, T0, { nowMs: T0 + 3_600_000 }), org1.admin, 'Propose', inviteOrg3()))).toBe(
      'GOVERNANCE_TIMESTAMP_SKEW',
    );
    expect(await code(call(ctxAt(state, T0), org1.admin, 'Propose', { actions: [{ type: 'NUKE' }] }))).toBe(
      'GOVERNANCE_INVALID_ACTION',
    );
    expect(
      await code(call(ctxAt(state, T0), org1.admin, 'Propose', { ...inviteOrg3(), threshold: { percentage: 120 } })),
    ).toBe('GOVERNANCE_INVALID_ARGUMENT');
    const p = await call(ctxAt(state, T0), org1.admin, 'Propose', inviteOrg3());
    // Org2's admin presenting Org1's signature
    const forged = await yesVote(p, org1.admin, false);
    expect(await code(call(ctxAt(state, T0 + 1), org2.admin, 'Vote', forged))).toBe('GOVERNANCE_BAD_CONFIG_SIGNATURE');
    expect(await code(call(ctxAt(state, T0 + 1), org2.admin, 'Vote', { proposalId: p.id, vote: 'yes' }))).toBe(
      'GOVERNANCE_BAD_CONFIG_SIGNATURE',
    );
    expect(await code(call(ctxAt(state, T0 + 1), org2.admin, 'Vote', { proposalId: p.id, vote: 'maybe' }))).toBe(
      'GOVERNANCE_INVALID_ARGUMENT',
    );
    expect(await code(call(ctxAt(state, T0 + 1), org2.admin, 'Vote', { proposalId: 'p-nope', vote: 'no' }))).toBe(
      'GOVERNANCE_PROPOSAL_NOT_FOUND',
    );
    const moved = { config: { ...config, sequence: 1 } };
    expect(await code(call(ctxAt(state, T0 + 1, moved), org2.admin, 'Vote', { proposalId: p.id, vote: 'no' }))).toBe(
      'GOVERNANCE_STALE_CONFIG',
    );
    expect(await code(invokeGovernance(ctxAt(state, T0), [utf8('Nope')], callerOf(org1.admin)))).toBe(
      'GOVERNANCE_INVALID_ARGUMENT',
    );
    expect(await code(invokeGovernance(ctxAt(state, T0), [utf8('Vote'), utf8('{')], callerOf(org1.admin)))).toBe(
      'GOVERNANCE_INVALID_ARGUMENT',
    );
  });
});
