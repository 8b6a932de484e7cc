import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isLoomError } from '@loom/common';
import { DerTag, derChildren, derContent, decodePemBlocks, readDerWhole } from '@loom/common/crypto/asn1';
import { isHighS, parseDerSignature } from '@loom/common/crypto/signature-der';
import { privateKeyFromPem } from '@loom/common/crypto/signing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCsr } from '../client/ca-client.js';
import { createToken, TOKEN_WINDOW_MS } from '../protocol.js';
import { affiliationCovers, type Caller, CertificateAuthority, listAllows } from './authority.js';
import { type CaSigner, loadOrCreateRootCa } from './pki.js';
import { CaStore, createMemoryKvStore, type KvStore } from './store.js';

let dir: string;
let rootCa: CaSigner;
let tlsCa: CaSigner;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'loom-ca-unit-'));
  rootCa = await loadOrCreateRootCa(dir, 'ca', { cn: 'ca.test' }, new Date());
  tlsCa = await loadOrCreateRootCa(dir, 'tlsca', { cn: 'tlsca.test' }, new Date());
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function setup(kv: KvStore = createMemoryKvStore(), clock = () => new Date()) {
  const store = new CaStore(kv);
  const ca = new CertificateAuthority({ name: 'ca.test', store, rootCa, tlsCa, clock, defaultMaxEnrollments: -1 });
  await ca.bootstrap({ id: 'admin', secret: 'adminpw' }, ['org1']);
  return { ca, store };
}

async function enrollBody(cn: string) {
  const { csrPem, keyPem } = await createCsr({ cn });
  return { body: { certificate_request: csrPem }, keyPem };
}

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    return isLoomError(e) ? e.code : `not a LoomError: ${String(e)}`;
  }
  return 'no error';
}

async function adminCaller(ca: CertificateAuthority): Promise<Caller & { keyPem: string; certPem: string }> {
  const { body, keyPem } = await enrollBody('admin');
  const r = await ca.enroll('admin', 'adminpw', body);
  const certPem = Buffer.from(r.Cert, 'base64').toString('utf8');
  const caller = await ca.authenticate(signed(certPem, keyPem, 'GET', '/api/v1/identities', String(Date.now())));
  return { ...caller, keyPem, certPem };
}

function signed(certPem: string, keyPem: string, method: string, url: string, timestamp: string, nonce?: string) {
  const n = nonce ?? randomBytes(16).toString('base64url');
  const body = new Uint8Array();
  const h = createToken({
    certPem,
    privateKey: privateKeyFromPem(keyPem),
    method,
    path: url,
    body,
    timestamp,
    nonce: n,
  });
  return { method, url, body, authorization: h.authorization, timestamp, nonce: n };
}

describe('registrar rules', () => {
  it('reads Fabric list syntax and affiliation scopes', () => {
    expect(listAllows('*', 'peer')).toBe(true);
    expect(listAllows('client, peer', 'peer')).toBe(true);
    expect(listAllows('client', 'peer')).toBe(false);
    expect(listAllows('app.*', 'app.role')).toBe(true);
    expect(listAllows(undefined, 'x')).toBe(false);
    expect(affiliationCovers('', 'org1.a')).toBe(true);
    expect(affiliationCovers('org1', 'org1.a')).toBe(true);
    expect(affiliationCovers('org1', 'org10')).toBe(false);
  });
});

describe('CertificateAuthority', () => {
  it('writes nothing when the batch of a call cannot be committed', async () => {
    const mem = createMemoryKvStore();
    let failBatches = false;
    const flaky: KvStore = {
      ...mem,
      batch: async (ops) => {
        if (failBatches) throw new Error('disk full');
        await mem.batch(ops);
      },
    };
    const { ca, store } = await setup(flaky);
    const admin = await adminCaller(ca);
    await ca.register(admin, { id: 'u1', type: 'client', secret: 'pw', max_enrollments: 1 });
    failBatches = true;
    const { body } = await enrollBody('u1');
    await expect(ca.enroll('u1', 'pw', body)).rejects.toThrow('disk full');
    failBatches = false;
    expect((await store.getIdentity('u1'))?.enrollments).toBe(0);
    expect(await store.certificatesOf('u1')).toEqual([]);
    // The one enrollment is still there to be used.
    await ca.enroll('u1', 'pw', (await enrollBody('u1')).body);
  });

  it('signs certificates and CRLs with low-S signatures', async () => {
    const { ca } = await setup();
    const admin = await adminCaller(ca);
    const signatureS = (pem: string) => {
      const der = decodePemBlocks(pem)[0]!.der;
      const [, , sigEl] = derChildren(der, readDerWhole(der, DerTag.SEQUENCE));
      return parseDerSignature(derContent(der, sigEl!).subarray(1)).s;
    };
    // WebCrypto alone gives high S about half the time; 12 in a row low is 1 in 4096 by chance.
    for (let i = 0; i < 12; i++) {
      const r = await ca.reenroll(admin, (await enrollBody('admin')).body);
      expect(isHighS(signatureS(Buffer.from(r.Cert, 'base64').toString('utf8')))).toBe(false);
    }
    const crl = Buffer.from((await ca.gencrl(admin)).CRL, 'base64').toString('utf8');
    expect(isHighS(signatureS(crl))).toBe(false);
  });

  it('lets a plain identity read itself but not raise its own limits or type', async () => {
    const { ca } = await setup();
    const admin = await adminCaller(ca);
    await ca.register(admin, { id: 'u3', type: 'client', secret: 'pw', max_enrollments: 2, affiliation: 'org1' });
    const { body, keyPem } = await enrollBody('u3');
    const certPem = Buffer.from((await ca.enroll('u3', 'pw', body)).Cert, 'base64').toString('utf8');
    const u3 = await ca.authenticate(signed(certPem, keyPem, 'GET', '/api/v1/identities/u3', String(Date.now())));
    expect((await ca.getIdentity(u3, 'u3')).max_enrollments).toBe(2);
    expect(await codeOf(ca.modifyIdentity(u3, 'u3', { max_enrollments: -1 }))).toBe('CA_NOT_AUTHORIZED');
    expect(await codeOf(ca.modifyIdentity(u3, 'u3', { type: 'admin' }))).toBe('CA_NOT_AUTHORIZED');
    expect(await codeOf(ca.getIdentity(u3, 'admin'))).toBe('CA_NOT_AUTHORIZED');
    expect(await codeOf(ca.register(u3, { id: 'u4', type: 'client', affiliation: 'org1' }))).toBe('CA_NOT_AUTHORIZED');
  });

  it('lets only one of two concurrent enrollments spend the last one left', async () => {
    const { ca } = await setup();
    const admin = await adminCaller(ca);
    await ca.register(admin, { id: 'u2', type: 'client', secret: 'pw', max_enrollments: 1 });
    const [a, b] = await Promise.allSettled([
      ca.enroll('u2', 'pw', (await enrollBody('u2')).body),
      ca.enroll('u2', 'pw', (await enrollBody('u2')).body),
    ]);
    const outcomes = [a.status, b.status].sort();
    expect(outcomes).toEqual(['fulfilled', 'rejected']);
    const rejected = [a, b].find((x) => x.status === 'rejected') as PromiseRejectedResult;
    expect(rejected.reason.code).toBe('CA_ENROLLMENTS_EXHAUSTED');
  });

  it('judges token freshness by its injected clock and refuses a replayed nonce', async () => {
    let now = Date.now();
    const { ca } = await setup(createMemoryKvStore(), () => new Date(now));
    const admin = await adminCaller(ca);
    const req = signed(admin.certPem, admin.keyPem, 'GET', '/api/v1/identities', String(now), 'fixed-nonce-000000001');
    expect((await ca.authenticate(req)).identity.id).toBe('admin');
    expect(await codeOf(ca.authenticate(req))).toBe('CA_TOKEN_REPLAYED');
    const old = signed(admin.certPem, admin.keyPem, 'GET', '/api/v1/identities', String(now - TOKEN_WINDOW_MS - 1));
    expect(await codeOf(ca.authenticate(old))).toBe('CA_TOKEN_STALE');
    const ahead = signed(
      admin.certPem,
      admin.keyPem,
      'GET',
      '/api/v1/identities',
      String(now + TOKEN_WINDOW_MS - 1000),
    );
    expect((await ca.authenticate(ahead)).identity.id).toBe('admin');
    // Once the window has passed, the same token is stale rather than replayed.
    now += TOKEN_WINDOW_MS + 1000;
    expect(await codeOf(ca.authenticate(req))).toBe('CA_TOKEN_STALE');
    // The signature covers method, path and body: the same headers on another path fail.
    const moved = {
      ...signed(admin.certPem, admin.keyPem, 'GET', '/api/v1/identities', String(now)),
      url: '/api/v1/certificates',
    };
    expect(await codeOf(ca.authenticate(moved))).toBe('CA_AUTH_FAILED');
  });
});
