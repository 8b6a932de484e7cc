import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sign } from '../crypto/signing.js';
import { createTestOrg, type TestOrg } from '../testing/test-ca.js';
import { loadMspFromDir, writeMspDir } from './msp-dir.js';
import { MspManager } from './msp-manager.js';

describe('MSP folders', () => {
  let dir: string;
  let org: TestOrg;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'loom-msp-'));
    org = await createTestOrg('DirMSP');
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('round-trips writeMspDir → loadMspFromDir with a signing identity', async () => {
    const ica = await org.ca.createIntermediate();
    const crl = await org.ca.crl(['7f01']);
    const config = org.mspConfig({
      revocationList: [crl],
      admins: [org.client.certPem],
      tlsRootCerts: [org.ca.certPem],
    });
    const mspDir = join(dir, 'peer0');
    await writeMspDir(mspDir, config, org.peer);

    expect((await readdir(mspDir)).sort()).toEqual(
      [
        'admincerts',
        'cacerts',
        'config.yaml',
        'crls',
        'intermediatecerts',
        'keystore',
        'signcerts',
        'tlscacerts',
      ].sort(),
    );
    const yaml = await readFile(join(mspDir, 'config.yaml'), 'utf8');
    expect(yaml).toContain('ClientOUIdentifier');
    expect(yaml).toContain('OrganizationalUnitIdentifier: peer');

    const loaded = await loadMspFromDir(mspDir, 'DirMSP');
    expect(loaded.config).toEqual({
      mspId: 'DirMSP',
      rootCerts: [org.ca.certPem],
      intermediateCerts: [ica.certPem],
      admins: [org.client.certPem],
      revocationList: [crl],
      nodeOUs: { enable: true, clientOU: 'client', peerOU: 'peer', ordererOU: 'orderer', adminOU: 'admin' },
      tlsRootCerts: [org.ca.certPem],
    });
    expect(loaded.signingIdentity?.certPem).toBe(org.peer.certPem);

    const m = new MspManager([loaded.config]);
    const msg = new TextEncoder().encode('hello');
    const identity = loaded.signingIdentity!;
    const serialized = { mspId: 'DirMSP', idBytes: new TextEncoder().encode(identity.certPem) };
    expect(m.verifySignature(serialized, msg, sign(identity.privateKey, msg)).role).toBe('peer');
  });

  it('accepts a test org directly and loads a folder without signcerts', async () => {
    const mspDir = join(dir, 'org-only');
    await writeMspDir(mspDir, org);
    const loaded = await loadMspFromDir(mspDir, 'DirMSP');
    expect(loaded.signingIdentity).toBeUndefined();
    expect(new MspManager([loaded.config]).deserialize(org.admin.serialized).isAdmin).toBe(true);
  });

  it('fails clearly on a folder without cacerts', async () => {
    await expect(loadMspFromDir(join(dir, 'missing'), 'DirMSP')).rejects.toMatchObject({ code: 'MSP_CONFIG_INVALID' });
  });
});
