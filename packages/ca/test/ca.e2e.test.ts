/**
 * End to end: the real CA process (packages/ca/dist/main.js, built by `npm test`) on loopback,
 * driven through the client library, its certificates checked by common's MSP.
 * Set LOOM_CA_MAIN to run another build of the entry point.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isLoomError } from '@loom/common';
import { parseCrl } from '@loom/common/msp/certificate';
import { loadMspFromDir } from '@loom/common/msp/msp-dir';
import { MspManager } from '@loom/common/msp/msp-manager';
import type { MspConfig } from '@loom/common/msp/types';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CaClient, type CaIdentity, createCsr } from '../src/client/ca-client.js';
import { writeMspFolder } from '../src/client/msp-folder.js';

const MAIN = process.env.LOOM_CA_MAIN ?? fileURLToPath(new URL('../dist/main.js', import.meta.url));
const HAVE_MAIN = existsSync(MAIN);
if (!HAVE_MAIN) {
  console.warn(`[ca.e2e] SKIPPED: ${MAIN} does not exist. Run \`npm run build\` (npm test builds first).`);
}

const READY_TIMEOUT_MS = 30_000;
const EXIT_TIMEOUT_MS = 10_000;

interface RunningCa {
  proc: ChildProcess;
  url: string;
  output: string[];
}

function startCa(configFile: string): Promise<RunningCa> {
  const proc = spawn(process.execPath, [MAIN, '--config', configFile], { stdio: ['ignore', 'pipe', 'pipe'] });
  const output: string[] = [];
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`CA not listening within ${READY_TIMEOUT_MS} ms:\n${output.join('\n')}`));
    }, READY_TIMEOUT_MS);
    let buf = '';
    proc.stdout!.on('data', (chunk: Buffer) => {
      buf += chunk.toString('utf8');
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        output.push(line);
        try {
          const rec = JSON.parse(line) as { msg?: string; url?: string };
          if (rec.msg === 'CA listening' && rec.url) {
            clearTimeout(timer);
            resolve({ proc, url: rec.url, output });
          }
        } catch {
          // not a log line
        }
      }
    });
    proc.stderr!.on('data', (chunk: Buffer) => output.push(chunk.toString('utf8')));
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`CA exited with ${code} before listening:\n${output.join('\n')}`));
    });
  });
}

function stopCa(ca: RunningCa | undefined): Promise<void> {
  if (!ca || ca.proc.exitCode !== null || ca.proc.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      ca.proc.kill('SIGKILL');
      resolve();
    }, EXIT_TIMEOUT_MS);
    ca.proc.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    ca.proc.kill('SIGTERM');
  });
}

function httpsGet(url: string, ca: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(url, { ca, timeout: 10_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

/** Runs `fn` and returns the LoomError it must throw. */
async function failure(fn: () => Promise<unknown>): Promise<{ code: string; status: number }> {
  try {
    await fn();
  } catch (e) {
    if (isLoomError(e)) return { code: e.code, status: e.httpStatus };
    throw e;
  }
  throw new Error('expected the call to fail');
}

describe.skipIf(!HAVE_MAIN)(
  HAVE_MAIN ? 'CA process end to end' : `CA e2e SKIPPED: ${MAIN} missing (run npm run build)`,
  () => {
    let dir: string;
    let configFile: string;
    let ca: RunningCa | undefined;
    let client: CaClient;
    let tlsRootPem: string;
    let caCertPem: string;
    let admin: CaIdentity;
    const certs: Record<string, CaIdentity & { serial: string }> = {};
    const secrets: Record<string, string> = {};
    let mspConfig: MspConfig;

    beforeAll(async () => {
      dir = await mkdtemp(join(tmpdir(), 'loom-ca-e2e-'));
      configFile = join(dir, 'ca.yaml');
      await writeFile(
        configFile,
        [
          'name: ca.org1.example.com',
          'mspId: Org1MSP',
          'listen: { host: 127.0.0.1, port: 0 }',
          'dataDir: ./ca-data',
          'bootstrap: { id: admin, secret: adminpw }',
          'csr: { cn: ca.org1.example.com, names: [{ C: US, O: org1.example.com }] }',
          'tls: { enabled: true }',
          'maxEnrollments: -1',
          'affiliations: { org1: [department1] }',
          'logLevel: warn',
        ].join('\n'),
      );
      ca = await startCa(configFile);
      // The operator hands out the TLS CA root out of band; the CA wrote it to its data directory.
      tlsRootPem = await readFile(join(dir, 'ca-data', 'tlsca-cert.pem'), 'utf8');
      client = new CaClient({ url: ca.url, tlsRootPem });
    });

    afterAll(async () => {
      await stopCa(ca);
      if (dir) await rm(dir, { recursive: true, force: true });
    });

    it('serves cainfo, keeps keys private on disk, and answers /healthz and /metrics', async () => {
      const info = await client.cainfo();
      expect(info.caName).toBe('ca.org1.example.com');
      expect(info.tlsCaChainPem).toBe(tlsRootPem);
      expect(info.caChainPem).not.toBe(info.tlsCaChainPem);
      caCertPem = info.caChainPem;
      expect(new X509Certificate(caCertPem).ca).toBe(true);
      for (const key of ['ca-key.pem', 'tlsca-key.pem', 'tls-key.pem']) {
        expect((await stat(join(dir, 'ca-data', key))).mode & 0o777).toBe(0o600);
      }
      const health = await httpsGet(`${ca!.url}/healthz`, tlsRootPem);
      expect(health.status).toBe(200);
      expect(JSON.parse(health.text).status).toBe('OK');
      mspConfig = { mspId: 'Org1MSP', rootCerts: [caCertPem], nodeOUs: { enable: true } };
    });

    it('enrolls the bootstrap admin, registers a peer, an admin and a client, and each enrolls with its own CSR', async () => {
      const enrolled = await client.enroll({ id: 'admin', secret: 'adminpw' });
      admin = { certPem: enrolled.certPem, keyPem: enrolled.keyPem };
      certs.admin = { ...admin, serial: enrolled.serial };

      const peerSecret = await client.register(admin, {
        id: 'peer0',
        type: 'peer',
        affiliation: 'org1',
        secret: 'peer0pw',
      });
      expect(peerSecret).toBe('peer0pw');
      const orgAdminSecret = await client.register(admin, { id: 'org1admin', type: 'admin', affiliation: 'org1' });
      expect(orgAdminSecret.length).toBeGreaterThan(8);
      const userSecret = await client.register(admin, {
        id: 'user1',
        type: 'client',
        affiliation: 'org1.department1',
        attrs: [
          { name: 'app.role', value: 'auditor', ecert: true },
          { name: 'app.hidden', value: 'x', ecert: false },
        ],
      });
      const user2Secret = await client.register(admin, { id: 'user2', type: 'client', affiliation: 'org1' });
      secrets.user2 = user2Secret;

      for (const [id, secret] of [
        ['peer0', peerSecret],
        ['org1admin', orgAdminSecret],
        ['user1', userSecret],
        ['user2', user2Secret],
      ] as const) {
        const e = await client.enroll({ id, secret, csrOptions: { names: [{ O: 'org1.example.com' }] } });
        expect(e.caChainPem).toBe(caCertPem);
        certs[id] = { certPem: e.certPem, keyPem: e.keyPem, serial: e.serial };
      }
    });

    it('issues certificates that common MSP validates with the right role and readable attributes', async () => {
      const msps = new MspManager([mspConfig]);
      const check = (id: string) =>
        msps.deserialize({ mspId: 'Org1MSP', idBytes: new TextEncoder().encode(certs[id]!.certPem) });
      expect(check('admin').role).toBe('admin');
      expect(check('peer0').role).toBe('peer');
      expect(check('org1admin').role).toBe('admin');
      expect(check('org1admin').isAdmin).toBe(true);
      const user1 = check('user1');
      expect(user1.role).toBe('client');
      expect(user1.subject.commonName).toBe('user1');
      expect(user1.attributes['app.role']).toBe('auditor');
      expect(user1.attributes['app.hidden']).toBeUndefined();
      expect(user1.attributes['hf.EnrollmentID']).toBe('user1');
      expect(user1.attributes['hf.Type']).toBe('client');
      expect(user1.attributes['hf.Affiliation']).toBe('org1.department1');

      // attr_reqs: exactly the requested attributes, even one not marked ecert.
      const again = await client.identities.modify(admin, 'user1', { secret: 'user1-new' });
      expect(again.id).toBe('user1');
      const withHidden = await client.enroll({ id: 'user1', secret: 'user1-new', attrReqs: [{ name: 'app.hidden' }] });
      const attrs = msps.deserialize({
        mspId: 'Org1MSP',
        idBytes: new TextEncoder().encode(withHidden.certPem),
      }).attributes;
      expect(attrs['app.hidden']).toBe('x');
      expect(attrs['app.role']).toBeUndefined();
      const missing = await failure(() =>
        client.enroll({ id: 'user1', secret: 'user1-new', attrReqs: [{ name: 'app.nope' }] }),
      );
      expect(missing).toEqual({ code: 'CA_ATTR_NOT_FOUND', status: 400 });
    });

    it('writes an MSP folder that loadMspFromDir reads back', async () => {
      const mspDir = join(dir, 'user1-msp');
      await writeMspFolder(mspDir, {
        certPem: certs.user1!.certPem,
        keyPem: certs.user1!.keyPem,
        caCertPem,
        tlsCaCertPem: tlsRootPem,
        nodeOUs: true,
      });
      expect((await stat(join(mspDir, 'keystore', 'key.pem'))).mode & 0o777).toBe(0o600);
      const loaded = await loadMspFromDir(mspDir, 'Org1MSP');
      expect(loaded.config.nodeOUs?.enable).toBe(true);
      expect(loaded.signingIdentity?.certPem).toBe(certs.user1!.certPem);
      const identity = new MspManager([loaded.config]).deserialize({
        mspId: 'Org1MSP',
        idBytes: new TextEncoder().encode(loaded.signingIdentity!.certPem),
      });
      expect(identity.role).toBe('client');
    });

    it('issues TLS certificates from the separate TLS CA with the requested SANs', async () => {
      const tls = await client.enroll({
        id: 'peer0',
        secret: 'peer0pw',
        profile: 'tls',
        csrOptions: { hosts: ['peer0.org1.example.com', '127.0.0.1'] },
      });
      const cert = new X509Certificate(tls.certPem);
      expect(cert.checkIssued(new X509Certificate(tlsRootPem))).toBe(true);
      expect(cert.verify(new X509Certificate(tlsRootPem).publicKey)).toBe(true);
      expect(cert.checkIssued(new X509Certificate(caCertPem))).toBe(false);
      expect(cert.subjectAltName).toContain('DNS:peer0.org1.example.com');
      expect(cert.subjectAltName).toContain('IP Address:127.0.0.1');
      expect(tls.caChainPem).toBe(tlsRootPem);
    });

    it('reenrolls with the current certificate, without spending an enrollment', async () => {
      const e = await client.reenroll(certs.peer0!);
      expect(e.serial).not.toBe(certs.peer0!.serial);
      const id = new MspManager([mspConfig]).deserialize({
        mspId: 'Org1MSP',
        idBytes: new TextEncoder().encode(e.certPem),
      });
      expect(id.role).toBe('peer');
      expect(id.subject.commonName).toBe('peer0');
    });

    it('manages identities, affiliations and certificates', async () => {
      const ids = (await client.identities.list(admin)).map((i) => i.id).sort();
      expect(ids).toEqual(['admin', 'org1admin', 'peer0', 'user1', 'user2']);
      const peer = await client.identities.get(admin, 'peer0');
      expect(peer).toMatchObject({ id: 'peer0', type: 'peer', affiliation: 'org1' });

      await client.affiliations.add(admin, 'org2');
      await client.affiliations.add(admin, 'org3.sales', { force: true });
      const tree = await client.affiliations.list(admin);
      const names = JSON.stringify(tree);
      for (const n of ['org1', 'org1.department1', 'org2', 'org3', 'org3.sales']) expect(names).toContain(`"${n}"`);
      expect(await failure(() => client.affiliations.add(admin, 'org2'))).toEqual({
        code: 'CA_AFFILIATION_EXISTS',
        status: 409,
      });
      expect(await failure(() => client.affiliations.add(admin, 'org4.x'))).toEqual({
        code: 'CA_AFFILIATION_NOT_FOUND',
        status: 404,
      });

      await client.register(admin, { id: 'temp', type: 'client', affiliation: 'org2' });
      await client.identities.modify(admin, 'temp', { attrs: [{ name: 'app.level', value: '3' }] });
      expect((await client.identities.get(admin, 'temp')).attrs).toEqual([
        { name: 'app.level', value: '3', ecert: false },
      ]);
      await client.identities.remove(admin, 'temp');
      expect(await failure(() => client.identities.get(admin, 'temp'))).toEqual({
        code: 'CA_IDENTITY_NOT_FOUND',
        status: 404,
      });
      await client.affiliations.remove(admin, 'org2');

      const peerCerts = await client.certificates(admin, { id: 'peer0' });
      expect(peerCerts.length).toBe(3); // enroll, tls, reenroll
      const bySerial = await client.certificates(admin, { serial: certs.user1!.serial });
      expect(bySerial.map((c) => c.id)).toEqual(['user1']);
      expect(await client.certificates(admin, { revoked: true })).toEqual([]);
    });

    it('answers each bad input with its status and code, never a stack trace', async () => {
      expect(await failure(() => client.enroll({ id: 'admin', secret: 'wrong' }))).toEqual({
        code: 'CA_AUTH_FAILED',
        status: 401,
      });
      expect(await failure(() => client.enroll({ id: 'nobody', secret: 'x' }))).toEqual({
        code: 'CA_AUTH_FAILED',
        status: 401,
      });

      await client.register(admin, { id: 'once', type: 'client', secret: 'oncepw', maxEnrollments: 1 });
      await client.enroll({ id: 'once', secret: 'oncepw' });
      expect(await failure(() => client.enroll({ id: 'once', secret: 'oncepw' }))).toEqual({
        code: 'CA_ENROLLMENTS_EXHAUSTED',
        status: 403,
      });

      const lagging = new CaClient({ url: ca!.url, tlsRootPem, clock: () => new Date(Date.now() - 10 * 60_000) });
      expect(await failure(() => lagging.register(admin, { id: 'late', type: 'client' }))).toEqual({
        code: 'CA_TOKEN_STALE',
        status: 401,
      });

      const first = await client.raw({
        method: 'GET',
        path: '/identities',
        identity: admin,
        nonce: 'replay-nonce-0123456789',
      });
      expect(first.status).toBe(200);
      const replay = await client.raw({ method: 'GET', path: '/identities', headers: first.sentHeaders });
      expect(replay.status).toBe(401);
      expect(replay.body?.errors[0]?.code).toBe('CA_TOKEN_REPLAYED');

      // A token signed with a key that does not match the certificate.
      const stranger = await createCsr({ cn: 'x' });
      const forged = await client.raw({
        method: 'GET',
        path: '/identities',
        identity: { certPem: admin.certPem, keyPem: stranger.keyPem },
      });
      expect(forged.status).toBe(401);
      expect(forged.body?.errors[0]?.code).toBe('CA_AUTH_FAILED');
      const noToken = await client.raw({ method: 'POST', path: '/register', body: { id: 'x', type: 'client' } });
      expect(noToken.status).toBe(401);
      expect(noToken.body?.errors[0]?.code).toBe('CA_AUTH_FAILED');

      // A registrar limited to clients and app.* attributes.
      await client.register(admin, {
        id: 'registrar1',
        type: 'client',
        affiliation: 'org1',
        secret: 'r1pw',
        attrs: [
          { name: 'hf.Registrar.Roles', value: 'client' },
          { name: 'hf.Registrar.Attributes', value: 'app.*' },
        ],
      });
      const r1 = await client.enroll({ id: 'registrar1', secret: 'r1pw' });
      expect(await failure(() => client.register(r1, { id: 'p1', type: 'peer', affiliation: 'org1' }))).toEqual({
        code: 'CA_NOT_AUTHORIZED',
        status: 403,
      });
      expect(
        await failure(() =>
          client.register(r1, {
            id: 'c1',
            type: 'client',
            affiliation: 'org1',
            attrs: [{ name: 'other.x', value: '1' }],
          }),
        ),
      ).toEqual({ code: 'CA_NOT_AUTHORIZED', status: 403 });
      expect(
        await failure(() =>
          client.register(r1, {
            id: 'c2',
            type: 'client',
            affiliation: 'org1',
            attrs: [{ name: 'hf.Revoker', value: 'true' }],
          }),
        ),
      ).toEqual({ code: 'CA_NOT_AUTHORIZED', status: 403 });
      expect(await failure(() => client.register(r1, { id: 'c3', type: 'client', affiliation: '' }))).toEqual({
        code: 'CA_NOT_AUTHORIZED',
        status: 403,
      });
      await client.register(r1, {
        id: 'c4',
        type: 'client',
        affiliation: 'org1',
        attrs: [{ name: 'app.x', value: '1' }],
      });
      expect(await failure(() => client.register(certs.user1!, { id: 'c5', type: 'client' }))).toEqual({
        code: 'CA_NOT_AUTHORIZED',
        status: 403,
      });
      expect(await failure(() => client.revoke(r1, { id: 'c4' }))).toEqual({ code: 'CA_NOT_AUTHORIZED', status: 403 });
      expect(await failure(() => client.gencrl(r1))).toEqual({ code: 'CA_NOT_AUTHORIZED', status: 403 });

      const badJson = await client.raw({
        method: 'POST',
        path: '/register',
        identity: admin,
        rawBody: Buffer.from('{"id": '),
      });
      expect(badJson.status).toBe(400);
      expect(badJson.body?.errors[0]?.code).toBe('CA_MALFORMED_JSON');
      expect(await failure(() => client.register(admin, { id: 'typo', type: 'wizard' as 'client' }))).toEqual({
        code: 'CA_INVALID_TYPE',
        status: 400,
      });
      expect(await failure(() => client.register(admin, { id: 'peer0', type: 'peer', affiliation: 'org1' }))).toEqual({
        code: 'CA_IDENTITY_EXISTS',
        status: 409,
      });

      await client.register(admin, { id: 'csrtest', type: 'client', secret: 'csrpw' });
      const notCsr = await client.raw({
        method: 'POST',
        path: '/enroll',
        basic: { id: 'csrtest', secret: 'csrpw' },
        body: { certificate_request: 'hello' },
      });
      expect(notCsr.status).toBe(400);
      expect(notCsr.body?.errors[0]?.code).toBe('CA_CSR_INVALID');
      const { csrPem } = await createCsr({ cn: 'csrtest' });
      const der = Buffer.from(csrPem.replace(/-----[^-]+-----|\s/g, ''), 'base64');
      der[der.length - 5]! ^= 0xff; // inside the signature
      const tampered = `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString('base64')}\n-----END CERTIFICATE REQUEST-----\n`;
      const badSig = await client.raw({
        method: 'POST',
        path: '/enroll',
        basic: { id: 'csrtest', secret: 'csrpw' },
        body: { certificate_request: tampered },
      });
      expect(badSig.status).toBe(400);
      expect(badSig.body?.errors[0]?.code).toBe('CA_CSR_INVALID');
      // The failed enrollments wrote nothing: the identity still has no certificate.
      expect(await client.certificates(admin, { id: 'csrtest' })).toEqual([]);

      for (const r of [badJson, notCsr, badSig, replay, forged]) {
        const text = JSON.stringify(r.body);
        expect(r.body?.success).toBe(false);
        expect(text).not.toMatch(/\bat .*\.(js|ts):\d+/);
        expect(text).not.toContain('stack');
      }
      const unknown = await client.raw({ method: 'GET', path: '/nope' });
      expect(unknown.status).toBe(404);
      expect(unknown.body?.errors[0]?.code).toBe('CA_NOT_FOUND');
    });

    it('revokes: the serial is in the CRL, the updated MSP rejects it, and the revoked caller is refused', async () => {
      const user2 = certs.user2!;
      const result = await client.revoke(admin, { id: 'user2', reason: 'keyCompromise', gencrl: true });
      expect(result.revoked.map((r) => r.serial)).toContain(user2.serial);
      expect(result.crlPem).toContain('BEGIN X509 CRL');

      // Revoke a single certificate by serial and AKI.
      const [peerCert] = await client.certificates(admin, { id: 'org1admin' });
      const bySerial = await client.revoke(admin, { serial: peerCert!.serial, aki: peerCert!.aki });
      expect(bySerial.revoked).toEqual([{ serial: peerCert!.serial, aki: peerCert!.aki }]);

      const crlPem = await client.gencrl(admin);
      const crl = parseCrl(crlPem);
      expect(crl.revokedSerials.has(user2.serial)).toBe(true);
      expect(crl.revokedSerials.has(certs.org1admin!.serial)).toBe(true);
      expect(crl.revokedSerials.has(certs.user1!.serial)).toBe(false);

      const msps = new MspManager([mspConfig]);
      const idBytes = new TextEncoder().encode(user2.certPem);
      expect(msps.deserialize({ mspId: 'Org1MSP', idBytes }).role).toBe('client');
      msps.updateMsp({ ...mspConfig, revocationList: [crlPem] });
      let code: string | undefined;
      try {
        msps.deserialize({ mspId: 'Org1MSP', idBytes });
      } catch (e) {
        code = isLoomError(e) ? e.code : String(e);
      }
      expect(code).toBe('MSP_CERT_REVOKED');
      expect(msps.deserialize({ mspId: 'Org1MSP', idBytes: new TextEncoder().encode(certs.user1!.certPem) }).role).toBe(
        'client',
      );

      expect(await failure(() => client.identities.list(user2))).toEqual({ code: 'CA_IDENTITY_REVOKED', status: 401 });
      expect(await failure(() => client.enroll({ id: 'user2', secret: secrets.user2! }))).toEqual({
        code: 'CA_IDENTITY_REVOKED',
        status: 401,
      });
      expect(await failure(() => client.reenroll(certs.org1admin!))).toEqual({
        code: 'CA_IDENTITY_REVOKED',
        status: 401,
      });
      expect((await client.certificates(admin, { revoked: true })).map((c) => c.serial).sort()).toEqual(
        [user2.serial, certs.org1admin!.serial].sort(),
      );

      const metrics = await httpsGet(`${ca!.url}/metrics`, tlsRootPem);
      expect(metrics.status).toBe(200);
      expect(metrics.text).toMatch(/loom_ca_enrollments_total\{kind="enroll"\} \d+/);
      expect(metrics.text).toContain('loom_ca_auth_failures_total');
    });

    it('keeps every identity, certificate and revocation across a restart', async () => {
      await stopCa(ca);
      ca = await startCa(configFile);
      client = new CaClient({ url: ca.url, tlsRootPem });
      expect((await client.cainfo()).caChainPem).toBe(caCertPem);
      expect(await readFile(join(dir, 'ca-data', 'tlsca-cert.pem'), 'utf8')).toBe(tlsRootPem);

      // The admin's certificate from before the restart still authenticates.
      const ids = (await client.identities.list(admin)).map((i) => i.id).sort();
      expect(ids).toEqual(
        ['admin', 'c4', 'csrtest', 'once', 'org1admin', 'peer0', 'registrar1', 'user1', 'user2'].sort(),
      );
      expect((await client.identities.get(admin, 'user1')).attrs).toContainEqual({
        name: 'app.role',
        value: 'auditor',
        ecert: true,
      });
      expect(await failure(() => client.enroll({ id: 'once', secret: 'oncepw' }))).toEqual({
        code: 'CA_ENROLLMENTS_EXHAUSTED',
        status: 403,
      });
      expect(await failure(() => client.enroll({ id: 'user2', secret: 'anything' }))).toEqual({
        code: 'CA_AUTH_FAILED',
        status: 401,
      });
      expect(await failure(() => client.identities.list(certs.user2!))).toEqual({
        code: 'CA_IDENTITY_REVOKED',
        status: 401,
      });
      expect(parseCrl(await client.gencrl(admin)).revokedSerials.has(certs.user2!.serial)).toBe(true);
      const peer = await client.enroll({ id: 'peer0', secret: 'peer0pw' });
      expect(
        new MspManager([mspConfig]).deserialize({ mspId: 'Org1MSP', idBytes: new TextEncoder().encode(peer.certPem) })
          .role,
      ).toBe('peer');
    });
  },
);
