import { describe, expect, it } from 'vitest';
import { isLoomError } from '../errors.js';
import type { ChannelConfig, OrgConfig } from '../protocol/channel-config.js';
import { applyGovernanceActions, parseGovernanceActions, proposedConfigUpdate } from './actions.js';
import { checkThreshold, effectiveStatus, meetsThreshold, parseDurationMs, tallyVotes } from './threshold.js';

const GT = { percentage: 50, comparator: 'GREATER_THAN' } as const;
const GE = { percentage: 50, comparator: 'GREATER_THAN_OR_EQUAL_TO' } as const;

const code = (fn: () => unknown): string | undefined => {
  try {
    fn();
  } catch (e) {
    return isLoomError(e) ? e.code : 'NOT_LOOM';
  }
  return undefined;
};

describe('threshold', () => {
  it('GREATER_THAN 50% of two orgs needs both; of three needs two', () => {
    expect(tallyVotes(['A', 'B'], { A: 'YES' }, GT).outcome).toBe('IN_PROGRESS');
    expect(tallyVotes(['A', 'B'], { A: 'YES', B: 'YES' }, GT).outcome).toBe('APPROVED');
    expect(tallyVotes(['A', 'B', 'C'], { A: 'YES', C: 'YES' }, GT).outcome).toBe('APPROVED');
    expect(tallyVotes(['A', 'B', 'C'], { A: 'YES' }, GT).yesNeeded).toBe(2);
  });

  it('GREATER_THAN_OR_EQUAL_TO 50% of two orgs approves with one yes', () => {
    expect(tallyVotes(['A', 'B'], { A: 'YES' }, GE).outcome).toBe('APPROVED');
    expect(meetsThreshold(1, 2, GT)).toBe(false);
    expect(meetsThreshold(1, 2, GE)).toBe(true);
  });

  it('rejects as soon as the threshold can no longer be met', () => {
    expect(tallyVotes(['A', 'B'], { B: 'NO' }, GT).outcome).toBe('REJECTED');
    expect(tallyVotes(['A', 'B', 'C'], { B: 'NO' }, GT).outcome).toBe('IN_PROGRESS');
    expect(tallyVotes(['A', 'B', 'C'], { B: 'NO', C: 'NO' }, GT).outcome).toBe('REJECTED');
  });

  it('counts one vote per member and ignores non-members', () => {
    const t = tallyVotes(['A', 'B', 'A'], { A: 'YES', Z: 'YES' }, GT);
    expect(t).toMatchObject({ members: 2, yes: 1, no: 0, outstanding: 1, outcome: 'IN_PROGRESS' });
  });

  it('100% GREATER_THAN can never pass, 0% GREATER_OR_EQUAL always passes', () => {
    expect(tallyVotes(['A'], { A: 'YES' }, { percentage: 100, comparator: 'GREATER_THAN' }).outcome).toBe('REJECTED');
    expect(tallyVotes(['A'], {}, { percentage: 0, comparator: 'GREATER_THAN_OR_EQUAL_TO' }).outcome).toBe('APPROVED');
  });

  it('expires undecided proposals at the deadline, not decided ones', () => {
    expect(effectiveStatus('IN_PROGRESS', 1000, 999)).toBe('IN_PROGRESS');
    expect(effectiveStatus('IN_PROGRESS', 1000, 1000)).toBe('EXPIRED');
    expect(effectiveStatus('APPROVED', 1000, 5000)).toBe('APPROVED');
  });

  it('validates thresholds and durations', () => {
    expect(checkThreshold(GT)).toEqual(GT);
    expect(code(() => checkThreshold({ percentage: 101, comparator: 'GREATER_THAN' }))).toBe(
      'GOVERNANCE_INVALID_ARGUMENT',
    );
    expect(code(() => checkThreshold({ percentage: 50, comparator: 'MORE' }))).toBe('GOVERNANCE_INVALID_ARGUMENT');
    expect(parseDurationMs('24h')).toBe(86_400_000);
    expect(parseDurationMs('1h30m')).toBe(5_400_000);
    expect(parseDurationMs('1500ms')).toBe(1500);
    expect(parseDurationMs('2500')).toBe(2500);
    for (const bad of ['', 'abc', '10x', '0s', '-5s', '5s x']) {
      expect(
        code(() => parseDurationMs(bad)),
        bad,
      ).toBe('GOVERNANCE_INVALID_ARGUMENT');
    }
  });
});

const pol = (rule: string) => ({ rule, version: 0, modPolicy: 'Admins' });
const org = (mspId: string): OrgConfig => ({
  mspId,
  msp: {
    rootCerts: ['-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----\n'],
    intermediateCerts: [],
    admins: [],
    crls: [],
    tlsRootCerts: [],
    tlsIntermediateCerts: [],
    nodeOUs: true,
  },
  anchorPeers: [{ host: '127.0.0.1', port: 7051 }],
  policies: { Admins: pol(`OR('${mspId}.admin')`) },
  version: 0,
  modPolicy: 'Admins',
});
const config: ChannelConfig = {
  channelId: 'mychannel',
  sequence: 3,
  orgs: { Org1MSP: org('Org1MSP'), Org2MSP: org('Org2MSP') },
  policies: { Admins: pol('MAJORITY Admins'), Endorsement: pol('MAJORITY Endorsement') },
  orderer: {
    consenters: [{ id: 'o0', mspId: 'OrdererMSP', host: 'h', port: 1, raftPort: 2, identityCert: 'c', tlsCert: 't' }],
    batch: { batchTimeoutMs: 250, maxMessageCount: 500, absoluteMaxBytes: 10_000_000, preferredMaxBytes: 2_000_000 },
    orgs: {},
    policies: {},
    version: 2,
    modPolicy: 'Admins',
  },
  capabilities: ['V2_0'],
  version: 1,
  modPolicy: 'Admins',
};

describe('governance actions', () => {
  it('invites an org, bumping the channel version and the sequence', () => {
    const u = proposedConfigUpdate(config, [{ type: 'INVITE_ORG', org: org('Org3MSP') }]);
    expect(u.baseSequence).toBe(3);
    expect(u.config.sequence).toBe(4);
    expect(Object.keys(u.config.orgs).sort()).toEqual(['Org1MSP', 'Org2MSP', 'Org3MSP']);
    expect(u.config.version).toBe(2);
    expect(config.orgs.Org3MSP).toBeUndefined(); // the input is not mutated
  });

  it('removes an org; refuses unknown, duplicate and last-org changes', () => {
    const next = applyGovernanceActions(config, [{ type: 'REMOVE_ORG', mspId: 'Org2MSP' }]);
    expect(Object.keys(next.orgs)).toEqual(['Org1MSP']);
    const c = (a: Parameters<typeof applyGovernanceActions>[1]) => code(() => applyGovernanceActions(config, a));
    expect(c([{ type: 'REMOVE_ORG', mspId: 'Org9MSP' }])).toBe('GOVERNANCE_INVALID_ACTION');
    expect(c([{ type: 'INVITE_ORG', org: org('Org1MSP') }])).toBe('GOVERNANCE_INVALID_ACTION');
    expect(
      c([
        { type: 'REMOVE_ORG', mspId: 'Org1MSP' },
        { type: 'REMOVE_ORG', mspId: 'Org2MSP' },
      ]),
    ).toBe('GOVERNANCE_INVALID_ACTION');
  });

  it('changes batch settings and policies with their versions', () => {
    const next = applyGovernanceActions(config, [
      { type: 'SET_BATCH', batch: { maxMessageCount: 10 } },
      { type: 'SET_POLICY', name: 'Endorsement', rule: 'ANY Endorsement' },
    ]);
    expect(next.orderer.batch.maxMessageCount).toBe(10);
    expect(next.orderer.version).toBe(3);
    expect(next.policies.Endorsement).toEqual({ rule: 'ANY Endorsement', version: 1, modPolicy: 'Admins' });
    expect(next.version).toBe(1);
    expect(
      code(() => applyGovernanceActions(config, [{ type: 'SET_BATCH', batch: { preferredMaxBytes: 20_000_000 } }])),
    ).toBe('GOVERNANCE_INVALID_ACTION');
  });

  it('parses actions from untrusted JSON with clear errors', () => {
    expect(parseGovernanceActions([{ type: 'SET_BATCH', batch: { maxMessageCount: 5 } }])).toEqual([
      { type: 'SET_BATCH', batch: { maxMessageCount: 5 } },
    ]);
    for (const bad of [
      [],
      'x',
      [{ type: 'NUKE' }],
      [{ type: 'SET_BATCH', batch: { maxMessageCount: -1 } }],
      [{ type: 'SET_BATCH', batch: { foo: 1 } }],
      [{ type: 'REMOVE_ORG' }],
      [{ type: 'INVITE_ORG', org: { mspId: 'X' } }],
      [{ type: 'SET_POLICY', name: 'bad name', rule: 'x' }],
    ]) {
      expect(
        code(() => parseGovernanceActions(bad)),
        JSON.stringify(bad),
      ).toBe('GOVERNANCE_INVALID_ACTION');
    }
  });
});
