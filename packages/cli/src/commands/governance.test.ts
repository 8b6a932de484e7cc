import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isLoomError } from '@loom/common';
import { createTestOrg, writeMspDir } from '@loom/common/testing/index';
import { afterAll, describe, expect, it } from 'vitest';
import { orgToInvite, parsePolicySetting, parseSetting } from './governance.js';

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

const codeOf = async (p: Promise<unknown> | (() => unknown)) => {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (e) {
    return isLoomError(e) ? e.code : 'NOT_LOOM';
  }
  return undefined;
};

describe('loom governance propose arguments', () => {
  it('parses --set and --set-policy', async () => {
    expect(parseSetting('batch.maxMessageCount=10')).toEqual({ type: 'SET_BATCH', batch: { maxMessageCount: 10 } });
    expect(parseSetting('batch.batchTimeout=2s')).toEqual({ type: 'SET_BATCH', batch: { batchTimeoutMs: 2000 } });
    expect(parsePolicySetting('Endorsement=ANY Endorsement')).toEqual({
      type: 'SET_POLICY',
      name: 'Endorsement',
      rule: 'ANY Endorsement',
    });
    for (const bad of ['maxMessageCount=10', 'batch.foo=1', 'batch.maxMessageCount=-1', 'batch.maxMessageCount=x']) {
      expect(await codeOf(() => parseSetting(bad)), bad).toBe('INVALID_ARGUMENT');
    }
    expect(await codeOf(() => parsePolicySetting('NoRule='))).toBe('INVALID_ARGUMENT');
  });

  it('reads an org to invite from an MSP folder or a YAML file', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'loom-gov-cli-'));
    dirs.push(dir);
    const org3 = await createTestOrg('Org3MSP');
    await writeMspDir(join(dir, 'msp'), org3.ca, org3.admin);
    const fromDir = await orgToInvite(join(dir, 'msp'), 'Org3MSP', ['127.0.0.1:9251']);
    expect(fromDir).toMatchObject({ mspId: 'Org3MSP', anchorPeers: [{ host: '127.0.0.1', port: 9251 }], version: 0 });
    expect(fromDir.msp.rootCerts).toHaveLength(1);
    expect(fromDir.policies.Admins?.rule).toBe("OR('Org3MSP.admin')");

    await writeFile(join(dir, 'org3.yaml'), 'mspId: Org3MSP\nmspDir: msp\nanchorPeers: [{host: h, port: 1}]\n');
    const fromYaml = await orgToInvite(join(dir, 'org3.yaml'), undefined, []);
    expect(fromYaml).toMatchObject({ mspId: 'Org3MSP', anchorPeers: [{ host: 'h', port: 1 }] });

    expect(await codeOf(orgToInvite(join(dir, 'msp'), undefined, []))).toBe('INVALID_ARGUMENT');
    expect(await codeOf(orgToInvite(join(dir, 'nope'), 'X', []))).toBe('INVALID_ARGUMENT');
    expect(await codeOf(orgToInvite(join(dir, 'msp'), 'Org3MSP', ['nohost']))).toBe('INVALID_ARGUMENT');
  });
});
