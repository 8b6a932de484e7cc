import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { loadNetworkConfig } from '../config/network-config.js';
import { sign } from '../crypto/signing.js';
import { isLoomError, type LoomError } from '../errors.js';
import { MspManager } from '../msp/msp-manager.js';
import { type ChannelConfig, type ConfigSignature, encodeConfigUpdate } from '../protocol/channel-config.js';
import { encodeSerializedIdentity, encodeSignatureHeader } from '../protocol/messages.js';
import { configSignatureSignedBytes } from '../protocol/transactions.js';
import { createTestOrg, type TestIdentity } from '../testing/index.js';
import { mspConfigsOf } from './channel-config-views.js';
import {
  ConfigUpdateErrorCode,
  computeConfigChanges,
  computeConfigUpdate,
  validateConfigUpdate,
  validateConfigUpdateEnvelope,
} from './config-update.js';
import { channelConfigFromNetwork } from './genesis.js';

const defaultConfig = fileURLToPath(new URL('../../../../network-config/default.yaml', import.meta.url));

function caught(f: () => unknown): LoomError {
  try {
    f();
  } catch (e) {
    if (isLoomError(e)) return e;
    throw e;
  }
  throw new Error('expected a LoomError');
}

describe('channel config updates', async () => {
  const net = await loadNetworkConfig(defaultConfig);
  const [org1, org2, org3, ord] = await Promise.all([
    createTestOrg('Org1MSP'),
    createTestOrg('Org2MSP'),
    createTestOrg('Org3MSP'),
    createTestOrg('OrdererMSP'),
  ]);
  const material = (o: typeof org1) => ({ rootCerts: [o.ca.certPem], tlsRootCerts: [o.ca.certPem] });
  const consenters = Object.fromEntries(
    net.ordererOrganization.orderers.map((o) => [
      o.name,
      { identityCert: ord.orderer.certPem, tlsCert: ord.orderer.certPem },
    ]),
  );
  const current = channelConfigFromNetwork(
    net,
    'mychannel',
    { Org1MSP: material(org1), Org2MSP: material(org2), OrdererMSP: material(ord) },
    consenters,
  );
  const msps = new MspManager(mspConfigsOf(current));
  const signer = (id: TestIdentity) => msps.deserialize(id.serialized);
  const edit = (f: (c: ChannelConfig) => void): ChannelConfig => {
    const c = structuredClone(current);
    f(c);
    return c;
  };
  const batchEdit = edit((c) => {
    c.orderer.batch.maxMessageCount = 10;
  });
  const configSignature = (id: TestIdentity, updateBytes: Uint8Array): ConfigSignature => {
    const signatureHeader = encodeSignatureHeader({
      creator: encodeSerializedIdentity(id.serialized),
      nonce: randomBytes(24),
    });
    return {
      signatureHeader,
      signature: sign(id.privateKey, configSignatureSignedBytes(signatureHeader, updateBytes)),
    };
  };

  it('computes the update: changed elements get version + 1, the rest keep theirs', () => {
    const u = computeConfigUpdate(current, batchEdit);
    expect(u.baseSequence).toBe(0);
    expect(u.config.sequence).toBe(1);
    expect(u.config.orderer.version).toBe(1);
    expect(u.config.version).toBe(0);
    expect(u.config.orgs.Org1MSP!.version).toBe(0);
    const changes = computeConfigChanges(current, u.config);
    expect(changes).toEqual([
      {
        path: 'orderer',
        kind: 'modified',
        fromVersion: 0,
        toVersion: 1,
        modPolicy: '/Channel/Orderer/Admins',
        fields: ['batch.maxMessageCount: 500 → 10'],
      },
    ]);
  });

  it('names each kind of element: an org removed, an anchor peer, a policy, consenters, capabilities', () => {
    const edited = edit((c) => {
      delete c.orgs.Org2MSP;
      c.orgs.Org1MSP!.anchorPeers.push({ host: '127.0.0.1', port: 7061 });
      c.orgs.Org1MSP!.policies.Writers!.rule = "OR('Org1MSP.admin')";
      c.orderer.consenters = c.orderer.consenters.slice(0, 2);
      c.capabilities = ['V2_0', 'V2_5'];
    });
    const u = computeConfigUpdate(current, edited);
    const byPath = Object.fromEntries(computeConfigChanges(current, u.config).map((c) => [c.path, c]));
    expect(Object.keys(byPath).sort()).toEqual([
      'channel',
      'orderer',
      'orgs.Org1MSP',
      'orgs.Org1MSP.policies.Writers',
      'orgs.Org2MSP',
      'orgs.Org2MSP.policies.Admins',
      'orgs.Org2MSP.policies.Endorsement',
      'orgs.Org2MSP.policies.Readers',
      'orgs.Org2MSP.policies.Writers',
    ]);
    expect(byPath.channel!.fields).toEqual(['capabilities: + "V2_5"', 'orgs: - "Org2MSP"']);
    expect(byPath.channel!.modPolicy).toBe('/Channel/Admins');
    expect(byPath['orgs.Org1MSP']!.fields).toEqual(['anchorPeers: + 127.0.0.1:7061']);
    expect(byPath['orgs.Org1MSP']!.modPolicy).toBe('/Channel/Application/Org1MSP/Admins');
    expect(byPath['orgs.Org2MSP']!.kind).toBe('removed');
    expect(byPath.orderer!.fields).toEqual(['consenters: - orderer2']);
  });

  it('accepts a batch change signed by the orderer admins, refuses it from application admins with the policy named', () => {
    const u = computeConfigUpdate(current, batchEdit);
    const ok = validateConfigUpdate(current, u, [signer(ord.admin)]);
    expect(ok.config.orderer.batch.maxMessageCount).toBe(10);
    expect(ok.config.sequence).toBe(1);
    const e = caught(() => validateConfigUpdate(current, u, [signer(org1.admin), signer(org2.admin)]));
    expect(e.code).toBe(ConfigUpdateErrorCode.POLICY_UNSATISFIED);
    expect(e.httpStatus).toBe(403);
    expect(e.message).toContain('/Channel/Orderer/Admins');
    expect(e.details).toMatchObject({ policy: '/Channel/Orderer/Admins', elements: ['orderer'], obtained: [] });
  });

  it('removing an org needs MAJORITY Admins of the channel: one admin of two is short', () => {
    const u = computeConfigUpdate(
      current,
      edit((c) => {
        delete c.orgs.Org2MSP;
      }),
    );
    const e = caught(() => validateConfigUpdate(current, u, [signer(org1.admin)]));
    expect(e.code).toBe(ConfigUpdateErrorCode.POLICY_UNSATISFIED);
    expect(e.details).toMatchObject({ policy: '/Channel/Admins', obtained: ['Org1MSP'] });
    expect(String(e.details.required)).toContain('2 of 2');
    // A client of both orgs is no admin.
    expect(() => validateConfigUpdate(current, u, [signer(org1.admin), signer(org2.client)])).toThrow(
      /\/Channel\/Admins/,
    );
    const ok = validateConfigUpdate(current, u, [signer(org1.admin), signer(org2.admin)]);
    expect(Object.keys(ok.config.orgs)).toEqual(['Org1MSP']);
  });

  it("an org's own elements are governed by its own Admins", () => {
    const u = computeConfigUpdate(
      current,
      edit((c) => {
        c.orgs.Org2MSP!.anchorPeers = [];
      }),
    );
    expect(validateConfigUpdate(current, u, [signer(org2.admin)]).changes.map((c) => c.path)).toEqual(['orgs.Org2MSP']);
    const e = caught(() => validateConfigUpdate(current, u, [signer(org1.admin)]));
    expect(e.details.policy).toBe('/Channel/Application/Org2MSP/Admins');
  });

  it('adding an org: the new org at version 0 and the channel at +1, under the channel Admins', () => {
    const org3Config = structuredClone(current.orgs.Org2MSP!);
    const edited = edit((c) => {
      c.orgs.Org3MSP = {
        ...org3Config,
        mspId: 'Org3MSP',
        msp: { ...org3Config.msp, rootCerts: [org3.ca.certPem], tlsRootCerts: [org3.ca.certPem] },
        policies: { Admins: { rule: "OR('Org3MSP.admin')", version: 0, modPolicy: 'Admins' } },
      };
    });
    const u = computeConfigUpdate(current, edited);
    expect(u.config.version).toBe(1);
    expect(u.config.orgs.Org3MSP!.version).toBe(0);
    const ok = validateConfigUpdate(current, u, [signer(org1.admin), signer(org2.admin)]);
    expect(ok.policies).toEqual([{ policy: '/Channel/Admins', elements: ['channel'] }]);
  });

  it('refuses a wrong base sequence (409), another channel, and an empty update', () => {
    const u = computeConfigUpdate(current, batchEdit);
    const stale = caught(() => validateConfigUpdate({ ...current, sequence: 3 }, u, [signer(ord.admin)]));
    expect(stale.code).toBe(ConfigUpdateErrorCode.BASE_SEQUENCE);
    expect(stale.httpStatus).toBe(409);
    expect(caught(() => validateConfigUpdate(current, { ...u, channelId: 'other' }, [signer(ord.admin)])).code).toBe(
      ConfigUpdateErrorCode.WRONG_CHANNEL,
    );
    expect(caught(() => computeConfigUpdate(current, structuredClone(current))).code).toBe(ConfigUpdateErrorCode.EMPTY);
    expect(
      caught(() => validateConfigUpdate(current, { channelId: 'mychannel', baseSequence: 0, config: current }, []))
        .code,
    ).toBe(ConfigUpdateErrorCode.EMPTY);
  });

  it('refuses a changed element whose version is not bumped, or bumped by two', () => {
    const notBumped = { channelId: 'mychannel', baseSequence: 0, config: batchEdit };
    const e = caught(() => validateConfigUpdate(current, notBumped, [signer(ord.admin)]));
    expect(e.code).toBe(ConfigUpdateErrorCode.VERSION);
    expect(e.details).toMatchObject({ element: 'orderer', expected: 1, got: 0 });
    const twice = computeConfigUpdate(current, batchEdit);
    twice.config.orderer.version = 2;
    expect(caught(() => validateConfigUpdate(current, twice, [signer(ord.admin)])).code).toBe(
      ConfigUpdateErrorCode.VERSION,
    );
    // A version bump without a change is a change too, and must still be exactly one.
    const bumpOnly = edit((c) => {
      c.orgs.Org1MSP!.policies.Readers!.version = 5;
    });
    expect(
      caught(() => validateConfigUpdate(current, { channelId: 'mychannel', baseSequence: 0, config: bumpOnly }, []))
        .code,
    ).toBe(ConfigUpdateErrorCode.VERSION);
  });

  it('refuses a config naming an unknown org (consenter of a non-orderer org, mismatched key) and bad MSPs', () => {
    const unknownOrg = edit((c) => {
      c.orderer.consenters[0]!.mspId = 'Org9MSP';
    });
    const u = computeConfigUpdate(current, unknownOrg);
    const bad = caught(() => validateConfigUpdate(current, u, [signer(ord.admin)]));
    expect(bad.code).toBe(ConfigUpdateErrorCode.INVALID);
    expect(bad.message).toContain('Org9MSP');
    const wrongKey = computeConfigUpdate(
      current,
      edit((c) => {
        c.orgs.Org9MSP = { ...structuredClone(c.orgs.Org2MSP!) };
      }),
    );
    expect(caught(() => validateConfigUpdate(current, wrongKey, [])).message).toMatch(/key must be the MSP id/);
    const badCert = computeConfigUpdate(
      current,
      edit((c) => {
        c.orgs.Org2MSP!.msp.rootCerts = ['not a certificate'];
      }),
    );
    expect(caught(() => validateConfigUpdate(current, badCert, [signer(org2.admin)])).code).toBe(
      ConfigUpdateErrorCode.INVALID,
    );
    const unknownModPolicy = computeConfigUpdate(
      current,
      edit((c) => {
        c.orgs.Org1MSP!.policies.Writers!.rule = "OR('Org1MSP.admin')";
      }),
    );
    const cur2 = structuredClone(current);
    cur2.orgs.Org1MSP!.policies.Writers!.modPolicy = '/Channel/Application/Org9MSP/Admins';
    expect(caught(() => validateConfigUpdate(cur2, unknownModPolicy, [signer(org1.admin)])).code).toBe(
      ConfigUpdateErrorCode.MOD_POLICY_UNKNOWN,
    );
  });

  it('verifies signatures over the update bytes; one identity signing twice counts once; strangers are ignored', () => {
    const u = computeConfigUpdate(
      current,
      edit((c) => {
        delete c.orgs.Org2MSP;
      }),
    );
    const bytes = encodeConfigUpdate(u);
    const twice = validateConfigUpdateEnvelope.bind(null, current, {
      configUpdate: bytes,
      signatures: [configSignature(org1.admin, bytes), configSignature(org1.admin, bytes)],
    });
    const e = caught(() => twice(msps));
    expect(e.code).toBe(ConfigUpdateErrorCode.POLICY_UNSATISFIED);
    expect(e.details.signers).toHaveLength(1);
    expect(e.details.ignoredSignatures).toEqual([
      { index: 1, mspId: 'Org1MSP', reason: 'duplicate: this identity already signed' },
    ]);
    // A signature over other bytes, and one by an org the channel does not know, count for nothing.
    const other = encodeConfigUpdate(computeConfigUpdate(current, batchEdit));
    const e2 = caught(() =>
      validateConfigUpdateEnvelope(
        current,
        {
          configUpdate: bytes,
          signatures: [
            configSignature(org1.admin, bytes),
            configSignature(org2.admin, other),
            configSignature(org3.admin, bytes),
          ],
        },
        msps,
      ),
    );
    expect(e2.code).toBe(ConfigUpdateErrorCode.POLICY_UNSATISFIED);
    const ignored = e2.details.ignoredSignatures as { index: number; mspId: string; reason: string }[];
    expect(ignored.map((i) => [i.index, i.mspId])).toEqual([
      [1, 'Org2MSP'],
      [2, 'Org3MSP'],
    ]);
    expect(ignored[1]!.reason).toMatch(/MSP_UNKNOWN|unknown MSP/);
    const ok = validateConfigUpdateEnvelope(
      current,
      { configUpdate: bytes, signatures: [configSignature(org1.admin, bytes), configSignature(org2.admin, bytes)] },
      msps,
    );
    expect(ok.signers.map((s) => s.mspId)).toEqual(['Org1MSP', 'Org2MSP']);
    expect(
      caught(() =>
        validateConfigUpdateEnvelope(current, { configUpdate: new Uint8Array([1, 2, 3]), signatures: [] }, msps),
      ).code,
    ).toBe(ConfigUpdateErrorCode.MALFORMED);
  });
});
