import { X509Certificate } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CaClient, type CaServer, startCaServer, writeMspFolder } from '@loom/ca';
import { createLogger } from '@loom/common';
import { loadMspFromDir } from '@loom/common/msp/msp-dir';
import { createHttpsClient, createReloadableTls } from '@loom/common/tls/index';
import { createTestTlsCa, writeTlsFiles } from '@loom/common/tls/testing';
import { Command } from 'commander';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { checkCertificates, registerCertsCommands, renewCertificate } from './certs.js';

const DAY = 86_400_000;
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'loom-certs-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('loom certs check', () => {
  let data: string;
  beforeAll(async () => {
    data = join(dir, 'data');
    const ca = await createTestTlsCa('Org1MSP');
    const now = Date.now();
    const [longLived, shortLived] = await Promise.all([
      ca.issue({ cn: 'peer0.org1.example.com', notAfter: new Date(now + 200 * DAY) }),
      ca.issue({ cn: 'peer1.org1.example.com', notAfter: new Date(now + 10 * DAY + 3_600_000) }),
    ]);
    await writeTlsFiles(join(data, 'org1.example.com', 'peers', 'peer0.org1.example.com', 'tls'), {
      ...longLived,
      caPem: ca.certPem,
    });
    await writeTlsFiles(join(data, 'org1.example.com', 'peers', 'peer1.org1.example.com', 'tls'), shortLived);
    await mkdir(join(data, 'org1.example.com', 'keys'), { recursive: true });
    await writeFile(join(data, 'org1.example.com', 'keys', 'priv.pem'), longLived.keyPem);
  });

  it('lists certificates soonest first and warns about the short-lived one', async () => {
    const report = await checkCertificates({ data, warnDays: 30 });
    expect(report.certificates.map((c) => c.subject.split(', ').at(-1))).toEqual([
      'CN=peer1.org1.example.com',
      'CN=peer0.org1.example.com',
      'CN=tlsca.org1',
    ]);
    expect(report.warnings).toHaveLength(1);
    expect(report.exitCode).toBe(0);
    const lines = report.output.split('\n');
    expect(lines[0]).toMatch(/^DAYS\s+NOT AFTER\s+CA\s+SUBJECT\s+PATH$/);
    expect(lines[1]).toMatch(/^10\s/);
    expect(lines.filter((l) => l.startsWith('WARN '))).toEqual([
      expect.stringMatching(
        /peer1\.org1\.example\.com\/tls\/server\.crt: .*CN=peer1\.org1\.example\.com .*expires in 10 days/,
      ),
    ]);
    expect((await checkCertificates({ data, warnDays: 30, failOnWarn: true })).exitCode).toBe(1);
    expect((await checkCertificates({ data, warnDays: 5, failOnWarn: true })).exitCode).toBe(0);
  });

  it('--within lists only what expires inside the window and exits 1 when anything does', async () => {
    const soon = await checkCertificates({ data, warnDays: 30, withinDays: 30 });
    expect(soon.certificates.map((c) => c.subject.split(', ').at(-1))).toEqual(['CN=peer1.org1.example.com']);
    expect(soon.exitCode).toBe(1);
    expect(soon.output).toMatch(/1 certificate, 1 expiring within 30 days or expired/);
    const none = await checkCertificates({ data, warnDays: 30, withinDays: 5 });
    expect(none.certificates).toEqual([]);
    expect(none.exitCode).toBe(0);
    expect(none.output).toMatch(/no certificate under .* expires within 5 days/);
    await expect(checkCertificates({ data, warnDays: 30, withinDays: -1 })).rejects.toThrow(/--within/);
  });

  it('runs as a command, with --json and --fail-on-warn', async () => {
    const out: string[] = [];
    const spy = vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => {
      out.push(String(chunk));
      return true;
    });
    const previousExitCode = process.exitCode;
    try {
      const program = new Command('loom').exitOverride();
      registerCertsCommands(program);
      await program.parseAsync(['certs', 'check', '--data', data, '--json', '--warn-days', '15'], { from: 'user' });
      const json = JSON.parse(out.join('')) as { certificates: Array<{ daysLeft: number; warn: boolean }> };
      expect(json.certificates.map((c) => c.warn)).toEqual([true, false, false]);
      expect(process.exitCode ?? 0).toBe(0);

      out.length = 0;
      await program.parseAsync(['certs', 'check', '--data', data, '--fail-on-warn'], { from: 'user' });
      expect(out.join('')).toContain('WARN ');
      expect(process.exitCode).toBe(1);
    } finally {
      spy.mockRestore();
      process.exitCode = previousExitCode;
    }
  });

  it('says so when the data directory is missing', async () => {
    await expect(checkCertificates({ data: join(dir, 'nope'), warnDays: 30 })).rejects.toMatchObject({
      code: 'CLI_USAGE',
    });
  });
});

describe('loom certs renew', () => {
  let ca: CaServer;
  const quiet = createLogger({ component: 'test', level: 'silent' });

  beforeAll(async () => {
    ca = await startCaServer(
      {
        name: 'ca.org1.example.com',
        mspId: 'Org1MSP',
        listen: { host: '127.0.0.1', port: 0 },
        dataDir: join(dir, 'ca'),
        bootstrap: { id: 'admin', secret: 'adminpw' },
        csr: { cn: 'ca.org1.example.com' },
        tls: { enabled: true },
        maxEnrollments: -1,
        affiliations: ['org1'],
      },
      { logger: quiet },
    );
  });
  afterAll(async () => {
    await ca?.stop();
  });

  async function enrollNode(name: string) {
    const client = new CaClient({ url: ca.url, tlsRootPem: ca.tlsCaCertPem });
    const admin = await client.enroll({ id: 'admin', secret: 'adminpw' });
    await client.register(admin, { id: name, type: 'peer', secret: `${name}pw`, affiliation: 'org1' });
    const ecert = await client.enroll({ id: name, secret: `${name}pw` });
    const tls = await client.enroll({
      id: name,
      secret: `${name}pw`,
      profile: 'tls',
      csrOptions: { hosts: ['localhost', '127.0.0.1'] },
    });
    const nodeDir = join(dir, name);
    await writeMspFolder(join(nodeDir, 'msp'), {
      certPem: ecert.certPem,
      keyPem: ecert.keyPem,
      caCertPem: ca.caCertPem,
      tlsCaCertPem: ca.tlsCaCertPem,
    });
    const tlsFiles = await writeTlsFiles(join(nodeDir, 'tls'), { ...tls, caPem: ca.tlsCaCertPem });
    return { mspDir: join(nodeDir, 'msp'), tlsDir: join(nodeDir, 'tls'), tlsFiles, ecert, tls };
  }

  it('renews a running node’s TLS pair in place, and the node serves it without a restart', async () => {
    const node = await enrollNode('peer0');
    const reloadable = await createReloadableTls({
      certFile: node.tlsFiles.certFile,
      keyFile: node.tlsFiles.keyFile,
      caFiles: [node.tlsFiles.caFile],
      logger: quiet,
      debounceMs: 50,
    });
    const server = createServer(reloadable.serverOptions(), (_req, res) => res.end('ok'));
    reloadable.attach(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      const before = createHttpsClient({ ca: ca.tlsCaCertPem });
      expect((await before.request({ url })).peer?.serial).toBe(node.tls.serial);
      before.close();

      const renewed = await renewCertificate({
        caUrl: ca.url,
        tlsCa: ca.tlsCaCertPem,
        mspDir: node.mspDir,
        tlsDir: node.tlsDir,
      });
      expect(renewed).toMatchObject({ kind: 'tls', previousSerial: node.tls.serial });
      expect(renewed.serial).not.toBe(node.tls.serial);
      const cert = new X509Certificate(await readFile(node.tlsFiles.certFile));
      expect(cert.subjectAltName).toContain('IP Address:127.0.0.1');
      expect(
        cert.checkPrivateKey((await import('node:crypto')).createPrivateKey(await readFile(node.tlsFiles.keyFile))),
      ).toBe(true);

      const deadline = Date.now() + 20_000;
      while (reloadable.current().serial !== renewed.serial && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 20));
      }
      const after = createHttpsClient({ ca: ca.tlsCaCertPem });
      expect((await after.request({ url })).peer?.serial).toBe(renewed.serial);
      after.close();
    } finally {
      reloadable.close();
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  });

  it('renews the enrollment certificate with a new key, leaving a loadable MSP folder', async () => {
    const node = await enrollNode('peer1');
    const renewed = await renewCertificate({ caUrl: ca.url, tlsCa: ca.tlsCaCertPem, mspDir: node.mspDir });
    expect(renewed).toMatchObject({ kind: 'enrollment', previousSerial: node.ecert.serial });
    const loaded = await loadMspFromDir(node.mspDir, 'Org1MSP');
    expect(new X509Certificate(loaded.signingIdentity!.certPem).serialNumber.toLowerCase().replace(/^0+/, '')).toBe(
      renewed.serial,
    );
    expect(loaded.signingIdentity!.keyPem).not.toBe(node.ecert.keyPem);
  });
});
