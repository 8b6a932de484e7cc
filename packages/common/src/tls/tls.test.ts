import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server as HttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import Fastify from 'fastify';
import { Registry } from 'prom-client';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../logging.js';
import {
  createHttpsClient,
  createReloadableTls,
  type HttpsClient,
  registerCertificateExpiryMetrics,
  reloadTlsOnSignal,
  scanCertificates,
  TLS_HANDSHAKE_FAILURES_METRIC,
  TlsErrorCode,
  tlsServerOptions,
} from './index.js';
import { createOperationsServer } from '../ops/operations-server.js';
import { createEphemeralTlsCa } from './ephemeral-ca.js';
import { reportTlsHandshakeFailures } from './handshake-failures.js';
import { parseListenerTlsConfig } from './listener-config.js';
import { createTestTlsCa, type TestTlsCa, type TestTlsCertificate, writeTlsFiles } from './testing.js';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

function capturedLogger() {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk, _enc, cb) {
      lines.push(String(chunk));
      cb();
    },
  });
  return { logger: createLogger({ component: 'peer', level: 'debug', destination: stream }), lines };
}

async function until(what: string, ok: () => boolean | Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await ok())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function failures(registry: Registry, reason: string): Promise<number> {
  const m = registry.getSingleMetric(TLS_HANDSHAKE_FAILURES_METRIC);
  if (!m) return 0;
  const v = (await m.get()).values.find((x) => x.labels.reason === reason);
  return v?.value ?? 0;
}

let org1: TestTlsCa;
let org2: TestTlsCa;
let serverCert: TestTlsCertificate;
let clientCert: TestTlsCertificate;
let foreignClient: TestTlsCertificate;
let expiredClient: TestTlsCertificate;
let dir: string;

beforeAll(async () => {
  [org1, org2] = await Promise.all([createTestTlsCa('Org1MSP'), createTestTlsCa('Org2MSP')]);
  [serverCert, clientCert, foreignClient, expiredClient] = await Promise.all([
    org1.issue({ cn: 'peer0.org1.example.com', hosts: ['peer0.org1.example.com', 'localhost', '127.0.0.1'] }),
    org1.issue({ cn: 'User1@org1.example.com' }),
    org2.issue({ cn: 'User1@org2.example.com' }),
    org1.issue({
      cn: 'Old@org1.example.com',
      notBefore: new Date(Date.now() - 2 * DAY),
      notAfter: new Date(Date.now() - DAY),
    }),
  ]);
  dir = await mkdtemp(join(tmpdir(), 'loom-tls-'));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function listen(server: HttpsServer): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  return `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

function client(options: Parameters<typeof createHttpsClient>[0]): HttpsClient {
  const c = createHttpsClient(options);
  cleanups.push(() => c.close());
  return c;
}

describe('TLS listener', () => {
  it('answers over TLS and presents its certificate', async () => {
    const server = createServer(
      tlsServerOptions({ certPem: serverCert.certPem, keyPem: serverCert.keyPem, caPems: [org1.certPem] }),
      (_req, res) => res.end('hello'),
    );
    const url = await listen(server);
    const res = await client({ ca: org1.certPem }).request({ url: `${url}/x` });
    expect(res.status).toBe(200);
    expect(res.body.toString()).toBe('hello');
    expect(res.peer?.serial).toBe(serverCert.serial);
  });

  it('rejects protocols below TLS 1.2', async () => {
    const opts = tlsServerOptions({ certPem: serverCert.certPem, keyPem: serverCert.keyPem, caPems: [] });
    expect(opts.minVersion).toBe('TLSv1.2');
    expect(opts.requestCert).toBe(false);
    expect(() =>
      tlsServerOptions(
        { certPem: serverCert.certPem, keyPem: serverCert.keyPem, caPems: [] },
        { clientAuthRequired: true },
      ),
    ).toThrow(/at least one trusted TLS root/);
  });

  it('gives a clear client-side error for a wrong hostname and for an untrusted server', async () => {
    const server = createServer(
      tlsServerOptions({ certPem: serverCert.certPem, keyPem: serverCert.keyPem, caPems: [] }),
      (_req, res) => res.end('hello'),
    );
    const url = await listen(server);
    // The right name, verified while connecting to the loopback address.
    const byName = await client({ ca: org1.certPem, servername: 'peer0.org1.example.com' }).request({ url });
    expect(byName.status).toBe(200);

    const wrong = client({ ca: org1.certPem, servername: 'peer1.org1.example.com' }).request({ url });
    await expect(wrong).rejects.toMatchObject({
      code: TlsErrorCode.HOSTNAME_MISMATCH,
      message: expect.stringMatching(/not valid for host "peer1\.org1\.example\.com"/),
    });
    const untrusted = client({ ca: org2.certPem }).request({ url });
    await expect(untrusted).rejects.toMatchObject({ code: TlsErrorCode.SERVER_UNTRUSTED });
  });
});

describe('HTTPS client', () => {
  it('streams a response as it arrives, over mutual TLS, and sends request bodies', async () => {
    const server = createServer(
      tlsServerOptions(
        { certPem: serverCert.certPem, keyPem: serverCert.keyPem, caPems: [org1.certPem] },
        { clientAuthRequired: true },
      ),
      (req, res) => {
        if (req.method === 'POST') {
          const chunks: Buffer[] = [];
          req.on('data', (c: Buffer) => chunks.push(c));
          req.on('end', () => res.writeHead(201, { 'x-len': String(Buffer.concat(chunks).length) }).end('stored'));
          return;
        }
        res.writeHead(200, { 'content-type': 'application/x-ndjson' });
        let n = 0;
        const tick = setInterval(() => {
          res.write(`${JSON.stringify({ block: n })}\n`);
          if (++n === 3) {
            clearInterval(tick);
            res.end();
          }
        }, 20);
      },
    );
    const url = await listen(server);
    const c = client({ ca: org1.certPem, cert: clientCert.certPem, key: clientCert.keyPem });
    const posted = await c.request({ method: 'POST', url: `${url}/tx`, body: JSON.stringify({ a: 1 }) });
    expect(posted).toMatchObject({ status: 201, headers: { 'x-len': '7' } });
    expect(posted.body.toString()).toBe('stored');

    const res = await c.stream({ url: `${url}/deliver` });
    expect(res.status).toBe(200);
    expect(res.peer?.serial).toBe(serverCert.serial);
    let text = '';
    for await (const chunk of res.body) text += String(chunk);
    expect(
      text
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l).block),
    ).toEqual([0, 1, 2]);

    await expect(client({ ca: org1.certPem }).stream({ url: `${url}/deliver` })).rejects.toMatchObject({
      code: TlsErrorCode.HANDSHAKE_REFUSED,
    });
  });

  it('times out and refuses plain http URLs', async () => {
    const server = createServer(
      tlsServerOptions({ certPem: serverCert.certPem, keyPem: serverCert.keyPem, caPems: [] }),
      () => {},
    );
    const url = await listen(server);
    const c = client({ ca: org1.certPem });
    await expect(c.request({ url, timeoutMs: 100 })).rejects.toMatchObject({ code: TlsErrorCode.TIMEOUT });
    await expect(c.request({ url: url.replace('https:', 'http:') })).rejects.toMatchObject({ code: 'HTTPS_BAD_URL' });
  });
  it('retire() lets requests in flight finish, then closes every connection; close() fails them', async () => {
    const open = new Set<import('node:net').Socket>();
    const server = createServer(
      tlsServerOptions({ certPem: serverCert.certPem, keyPem: serverCert.keyPem, caPems: [] }),
      (req, res) => {
        const delay = Number(new URL(req.url ?? '/', 'https://x').searchParams.get('ms') ?? 0);
        setTimeout(() => res.end(`done ${delay}`), delay);
      },
    );
    server.on('secureConnection', (s) => {
      open.add(s);
      s.on('close', () => open.delete(s));
    });
    const url = await listen(server);
    const c = client({ ca: org1.certPem });
    // Two connections: one idle again once its quick answer is back, one busy with a slow request.
    const slow = c.request({ url: `${url}/?ms=400` });
    await c.request({ url: `${url}/?ms=0` });
    await new Promise((r) => setTimeout(r, 100));
    expect(open.size).toBe(2);
    c.retire();
    const res = await slow;
    expect(res.status).toBe(200);
    expect(res.body.toString()).toBe('done 400');
    const until = Date.now() + 3_000;
    while (open.size > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
    expect(open.size).toBe(0);

    const c2 = client({ ca: org1.certPem });
    const cut = c2.request({ url: `${url}/?ms=400` });
    await new Promise((r) => setTimeout(r, 100));
    c2.close();
    await expect(cut).rejects.toThrow();
  });
});

describe('mutual TLS listener', () => {
  async function mtlsServer() {
    const { logger, lines } = capturedLogger();
    const registry = new Registry();
    const server = createServer(
      tlsServerOptions(
        { certPem: serverCert.certPem, keyPem: serverCert.keyPem, caPems: [org1.certPem] },
        { clientAuthRequired: true },
      ),
      (req, res) => {
        const peer = (req.socket as import('node:tls').TLSSocket).getPeerX509Certificate();
        res.end(peer?.subject.split('\n').at(-1) ?? '');
      },
    );
    reportTlsHandshakeFailures(server, { logger, registry, listener: 'gateway' });
    const url = await listen(server);
    return { url, registry, lines };
  }

  it('refuses clients without a certificate, from a foreign TLS CA, or expired, and keeps serving the rest', async () => {
    const { url, registry, lines } = await mtlsServer();
    const good = client({ ca: org1.certPem, cert: clientCert.certPem, key: clientCert.keyPem });
    expect((await good.request({ url })).body.toString()).toBe('CN=User1@org1.example.com');

    const cases = [
      { name: 'no certificate', opts: {}, reason: 'no_client_certificate' },
      { name: 'foreign CA', opts: { cert: foreignClient.certPem, key: foreignClient.keyPem }, reason: 'unknown_ca' },
      {
        name: 'expired',
        opts: { cert: expiredClient.certPem, key: expiredClient.keyPem },
        reason: 'certificate_expired',
      },
    ];
    for (const c of cases) {
      const bad = client({ ca: org1.certPem, ...c.opts });
      await expect(bad.request({ url, timeoutMs: 5000 }), c.name).rejects.toMatchObject({
        code: TlsErrorCode.HANDSHAKE_REFUSED,
      });
      await until(`${c.reason} counted`, async () => (await failures(registry, c.reason)) === 1);
      await until(`${c.reason} logged\n${lines.join('')}`, () =>
        lines.some(
          (l) => l.includes(`TLS handshake refused: ${c.reason} from 127.0.0.1`) && l.includes('"level":"warn"'),
        ),
      );
      // The good client still gets through, on its kept-alive connection and on a new one.
      expect((await good.request({ url })).status).toBe(200);
      expect(
        (await client({ ca: org1.certPem, cert: clientCert.certPem, key: clientCert.keyPem }).request({ url })).status,
      ).toBe(200);
    }
    const line = lines.find((l) => l.includes('certificate_expired'));
    expect(JSON.parse(line!)).toMatchObject({
      listener: 'gateway',
      detail: 'CERT_HAS_EXPIRED',
      remote: expect.stringMatching(/^127\.0\.0\.1:/),
    });
    const metrics = await registry.metrics();
    expect(metrics).toContain('loom_tls_handshake_failures_total{reason="unknown_ca"} 1');
  });

  it('accepts a client of any org whose TLS root it trusts', async () => {
    const { logger } = capturedLogger();
    const server = createServer(
      tlsServerOptions(
        { certPem: serverCert.certPem, keyPem: serverCert.keyPem, caPems: [org1.certPem, org2.certPem] },
        { clientAuthRequired: true },
      ),
      (_req, res) => res.end('ok'),
    );
    reportTlsHandshakeFailures(server, { logger });
    const url = await listen(server);
    // The client trusts org1's TLS root for the server and presents org2's certificate.
    const res = await client({ ca: org1.certPem, cert: foreignClient.certPem, key: foreignClient.keyPem }).request({
      url,
    });
    expect(res.status).toBe(200);
  });
});

describe('reloadable TLS', () => {
  async function reloadableFastify(sub: string, watch: boolean) {
    const files = await writeTlsFiles(join(dir, sub), { ...serverCert, caPem: org1.certPem });
    const { logger, lines } = capturedLogger();
    const registry = new Registry();
    const tls = await createReloadableTls({
      certFile: files.certFile,
      keyFile: files.keyFile,
      caFiles: [files.caFile],
      clientAuthRequired: true,
      logger,
      registry,
      name: 'gateway',
      watch,
      debounceMs: 100,
    });
    const app = Fastify({ https: tls.serverOptions() });
    app.get('/n/:i', async (req) => ({ i: (req.params as { i: string }).i }));
    await app.listen({ host: '127.0.0.1', port: 0 });
    tls.attach(app.server);
    cleanups.push(() => app.close());
    cleanups.push(() => tls.close());
    const url = `https://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
    return { files, tls, url, lines, registry };
  }
  const mtlsClient = () => client({ ca: org1.certPem, cert: clientCert.certPem, key: clientCert.keyPem });

  it('renews the certificate under load without failing a request; new connections get the new serial', async () => {
    const { files, tls, url, lines, registry } = await reloadableFastify('hot', true);
    const renewed = await org1.issue({ cn: 'peer0.org1.example.com' });
    const keptAlive = mtlsClient();
    const seenKeptAlive: string[] = [];
    const seenFresh = new Set<string>();
    let failed = 0;
    for (let i = 0; i < 200; i++) {
      if (i === 50) await writeTlsFiles(files.certFile.replace(/\/server\.crt$/, ''), renewed);
      try {
        if (i % 10 === 0) {
          const fresh = createHttpsClient({ ca: org1.certPem, cert: clientCert.certPem, key: clientCert.keyPem });
          const res = await fresh.request({ url: `${url}/n/${i}`, timeoutMs: 5000 });
          fresh.close();
          if (res.status !== 200) failed++;
          seenFresh.add(res.peer!.serial);
        } else {
          const res = await keptAlive.request({ url: `${url}/n/${i}`, timeoutMs: 5000 });
          if (res.status !== 200 || JSON.parse(res.body.toString()).i !== String(i)) failed++;
          seenKeptAlive.push(res.peer!.serial);
        }
      } catch {
        failed++;
      }
      if (i === 150) await until('the watcher to reload', () => tls.current().serial === renewed.serial);
    }
    expect(failed).toBe(0);
    expect(tls.current().serial).toBe(renewed.serial);
    // The kept-alive connection was never dropped: it still speaks the context it was made with.
    expect(new Set(seenKeptAlive)).toEqual(new Set([serverCert.serial]));
    expect(seenFresh.has(renewed.serial)).toBe(true);
    const after = await mtlsClient().request({ url: `${url}/n/x` });
    expect(after.peer?.serial).toBe(renewed.serial);
    expect(lines.some((l) => l.includes('TLS certificate reloaded') && l.includes(renewed.serial))).toBe(true);
    expect(await registry.metrics()).toContain('loom_tls_reloads_total{result="reloaded"}');
  });

  it('keeps serving the old pair when the replacement is broken; reload() on demand', async () => {
    const { files, tls, url, lines } = await reloadableFastify('bad', false);
    const other = await org1.issue({ cn: 'peer1.org1.example.com' });

    // A certificate with someone else's key.
    await writeFile(files.certFile, other.certPem);
    expect(await tls.reload()).toMatchObject({ status: 'rejected', reason: 'key_mismatch', serial: serverCert.serial });
    // Garbage where the certificate should be.
    await writeFile(files.certFile, '-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n');
    expect(await tls.reload()).toMatchObject({ status: 'rejected', reason: 'certificate_unparsable' });
    // An expired replacement.
    const expired = await org1.issue({
      cn: 'peer0',
      notBefore: new Date(Date.now() - 2 * DAY),
      notAfter: new Date(Date.now() - DAY),
    });
    await writeTlsFiles(join(dir, 'bad'), expired);
    expect(await tls.reload()).toMatchObject({ status: 'rejected', reason: 'expired' });

    expect(
      lines.filter((l) => l.includes('TLS certificate reload rejected') && l.includes('"level":"error"')),
    ).toHaveLength(3);
    const res = await mtlsClient().request({ url: `${url}/n/1` });
    expect(res.status).toBe(200);
    expect(res.peer?.serial).toBe(serverCert.serial);

    // A good pair, picked up on SIGHUP.
    await writeTlsFiles(join(dir, 'bad'), other);
    const uninstall = reloadTlsOnSignal([tls]);
    try {
      process.emit('SIGHUP', 'SIGHUP');
      await until('SIGHUP reload', () => tls.current().serial === other.serial);
    } finally {
      uninstall();
    }
    expect(lines.some((l) => l.includes('TLS certificate reloaded') && l.includes(other.serial))).toBe(true);
    expect(await tls.reload()).toMatchObject({ status: 'unchanged', serial: other.serial });
    expect((await mtlsClient().request({ url: `${url}/n/2` })).peer?.serial).toBe(other.serial);
  });

  it('trusts a new org’s TLS root dropped into a watched tlscacerts/ folder', async () => {
    const base = join(dir, 'orgs');
    const files = await writeTlsFiles(join(base, 'tls'), serverCert);
    const rootsDir = join(base, 'tlscacerts');
    await mkdir(rootsDir, { recursive: true });
    await writeFile(join(rootsDir, 'tlsca.org1.pem'), org1.certPem);
    const { logger } = capturedLogger();
    const registry = new Registry();
    const tls = await createReloadableTls({
      ...files,
      caFiles: [rootsDir],
      clientAuthRequired: true,
      logger,
      registry,
      debounceMs: 50,
    });
    cleanups.push(() => tls.close());
    const server = createServer(tls.serverOptions(), (_req, res) => res.end('ok'));
    tls.attach(server);
    const url = await listen(server);
    const org2Client = () => client({ ca: org1.certPem, cert: foreignClient.certPem, key: foreignClient.keyPem });
    await expect(org2Client().request({ url })).rejects.toMatchObject({ code: TlsErrorCode.HANDSHAKE_REFUSED });
    await until('refusal counted', async () => (await failures(registry, 'unknown_ca')) === 1);

    await writeFile(join(rootsDir, 'tlsca.org2.pem'), org2.certPem);
    await until('org2 trusted', async () => {
      try {
        return (await org2Client().request({ url })).status === 200;
      } catch {
        return false;
      }
    });
  });

  it('refuses to start on an unusable pair', async () => {
    const { logger } = capturedLogger();
    const files = await writeTlsFiles(join(dir, 'mismatch'), {
      certPem: serverCert.certPem,
      keyPem: clientCert.keyPem,
    });
    await expect(createReloadableTls({ ...files, logger, watch: false })).rejects.toMatchObject({
      code: TlsErrorCode.MATERIAL_INVALID,
      details: { reason: 'key_mismatch' },
    });
    await expect(
      createReloadableTls({ certFile: join(dir, 'nope.crt'), keyFile: files.keyFile, logger, watch: false }),
    ).rejects.toMatchObject({ code: TlsErrorCode.MATERIAL_INVALID, details: { reason: 'certificate_unreadable' } });
  });
});

describe('certificate expiry', () => {
  it('exports seconds to notAfter, negative once expired', async () => {
    const registry = new Registry();
    const now = Date.now();
    const soon = await org1.issue({ cn: 'soon', notAfter: new Date(now + 10 * DAY) });
    registerCertificateExpiryMetrics(
      registry,
      () => [
        { name: 'tls-server', certPem: soon.certPem },
        { name: 'enrollment', certPem: expiredClient.certPem },
      ],
      { clock: () => now },
    );
    const unregister = registerCertificateExpiryMetrics(registry, () => [{ name: 'tls-ca', certPem: org1.certPem }]);
    const values = (await registry.getSingleMetric('loom_certificate_expiry_seconds')!.get()).values;
    const byName = (n: string) => values.find((v) => v.labels.name === n);
    // notAfter has one-second precision in a certificate.
    expect(Math.abs(byName('tls-server')!.value - 10 * 86_400)).toBeLessThan(2);
    expect(byName('tls-server')!.labels).toMatchObject({ subject: 'O=Org1MSP, CN=soon', serial: soon.serial });
    expect(byName('enrollment')!.value).toBeLessThan(-86_000);
    expect(byName('tls-ca')!.value).toBeGreaterThan(9 * 365 * 86_400);
    unregister();
    const after = (await registry.getSingleMetric('loom_certificate_expiry_seconds')!.get()).values;
    expect(after.map((v) => v.labels.name).sort()).toEqual(['enrollment', 'tls-server']);
  });

  it('scans a data directory for certificates, skipping keys, soonest first', async () => {
    const root = join(dir, 'scan');
    const shortLived = await org1.issue({ cn: 'short', notAfter: new Date(Date.now() + 5 * DAY + HOUR) });
    await writeTlsFiles(join(root, 'org1.example.com', 'peers', 'peer0', 'tls'), {
      ...serverCert,
      caPem: org1.certPem,
    });
    await writeTlsFiles(join(root, 'org1.example.com', 'users', 'short', 'tls'), shortLived);
    await writeFile(join(root, 'org1.example.com', 'key.pem'), serverCert.keyPem);
    await writeFile(join(root, 'chain.pem'), `${shortLived.certPem}\n${org2.certPem}`);
    await writeFile(join(root, 'broken.pem'), '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n');
    const skipped: string[] = [];
    const certs = await scanCertificates(root, { onSkip: (p) => skipped.push(p) });
    const rows = certs.map((c) => [c.subject.split(', ').at(-1), c.daysLeft, c.isCa]);
    expect(rows.slice(0, 3)).toEqual([
      ['CN=peer0.org1.example.com', 0, false],
      ['CN=short', 5, false],
      ['CN=short', 5, false],
    ]);
    // Both roots live ten years (created in the same second, so their order is the path's).
    expect(
      rows
        .slice(3)
        .map((r) => r[0])
        .sort(),
    ).toEqual(['CN=tlsca.org1', 'CN=tlsca.org2']);
    expect(rows.slice(3).every((r) => r[2] === true && (r[1] as number) > 3600)).toBe(true);
    expect(certs[1]).toMatchObject({ issuer: expect.stringContaining('CN=tlsca.org1'), serial: shortLived.serial });
    expect(certs.find((c) => c.subject.endsWith('tlsca.org2'))).toMatchObject({
      path: join(root, 'chain.pem'),
      index: 1,
    });
    expect(skipped).toEqual([join(root, 'broken.pem')]);
  });
});

describe('trust from channels, expiry warnings, operations', () => {
  it('trusts the roots trustedRoots() adds, picked up without a signal', async () => {
    const files = await writeTlsFiles(join(dir, 'dyn'), { ...serverCert, caPem: org1.certPem });
    const { logger } = capturedLogger();
    let channelRoots: string[] = [];
    const tls = await createReloadableTls({
      ...files,
      caFiles: [files.caFile],
      clientAuthRequired: true,
      trustedRoots: () => channelRoots,
      trustCheckIntervalMs: 50,
      logger,
      watch: false,
    });
    cleanups.push(() => tls.close());
    const server = createServer(tls.serverOptions(), (_req, res) => res.end('ok'));
    tls.attach(server);
    const url = await listen(server);
    const org2Client = () => client({ ca: org1.certPem, cert: foreignClient.certPem, key: foreignClient.keyPem });
    await expect(org2Client().request({ url })).rejects.toMatchObject({ code: TlsErrorCode.HANDSHAKE_REFUSED });
    // A channel joined with org2 in it: its TLS root is trusted at the next check.
    channelRoots = [org2.certPem];
    await until('org2 trusted', async () => {
      try {
        return (await org2Client().request({ url })).status === 200;
      } catch {
        return false;
      }
    });
    // currentPair() is what the node presents as a client.
    expect(String(tls.currentPair().cert)).toBe(serverCert.certPem);
  });

  it('warns in the log while the served certificate has fewer days left than configured', async () => {
    const soon = await org1.issue({ cn: 'soon', notAfter: new Date(Date.now() + 10 * DAY) });
    const files = await writeTlsFiles(join(dir, 'soon'), soon);
    const { logger, lines } = capturedLogger();
    const tls = await createReloadableTls({ ...files, logger, watch: false, expiryWarningDays: 30 });
    tls.close();
    expect(lines.join('')).toMatch(/TLS certificate expires in less than 30 days/);
    expect(lines.join('')).toMatch(/"daysLeft":9/);
    const quiet = capturedLogger();
    const t2 = await createReloadableTls({ ...files, logger: quiet.logger, watch: false, expiryWarningDays: 5 });
    t2.close();
    expect(quiet.lines.join('')).not.toMatch(/expires in less than/);
  });

  it('serves the operations endpoint over reloadable TLS, optionally mutual', async () => {
    const files = await writeTlsFiles(join(dir, 'ops'), { ...serverCert, caPem: org1.certPem });
    const { logger } = capturedLogger();
    const registry = new Registry();
    const tls = await createReloadableTls({
      ...files,
      caFiles: [files.caFile],
      clientAuthRequired: true,
      logger,
      registry,
      name: 'operations',
      watch: false,
    });
    cleanups.push(() => tls.close());
    const ops = createOperationsServer({
      host: '127.0.0.1',
      port: 0,
      logger,
      registry,
      reloadableTls: tls,
      processMetrics: false,
    });
    const { url } = await ops.start();
    cleanups.push(() => ops.stop());
    expect(url).toMatch(/^https:/);
    await expect(client({ ca: org1.certPem }).request({ url: `${url}/healthz` })).rejects.toMatchObject({
      code: TlsErrorCode.HANDSHAKE_REFUSED,
    });
    const r = await client({ ca: org1.certPem, cert: clientCert.certPem, key: clientCert.keyPem }).request({
      url: `${url}/metrics`,
    });
    expect(r.body.toString()).toMatch(/loom_certificate_expiry_seconds\{name="tls-operations"/);
  });

  it('parses a listener tls block, naming the bad field', () => {
    expect(parseListenerTlsConfig(undefined, 'x')).toBeUndefined();
    expect(parseListenerTlsConfig({ enabled: false, certFile: 'a' }, 'x')).toBeUndefined();
    expect(parseListenerTlsConfig({ certFile: 'c', keyFile: 'k' }, 'x', (p) => `/base/${p}`)).toEqual({
      certFile: '/base/c',
      keyFile: '/base/k',
      caFiles: [],
      clientAuthRequired: false,
    });
    expect(() => parseListenerTlsConfig({ certFile: 'c' }, 'orderer.yaml: tls')).toThrow(/orderer\.yaml: tls\.keyFile/);
    expect(() => parseListenerTlsConfig({ certFile: 'c', keyFile: 'k', clientAuthRequired: true }, 'x')).toThrow(
      /x\.caFiles: expected at least one TLS root/,
    );
    expect(() => parseListenerTlsConfig({ certFile: 'c', keyFile: 'k', clientAuth: true }, 'x')).toThrow(
      /x\.clientAuth: .*unknown field/,
    );
    expect(() => parseListenerTlsConfig('yes', 'x')).toThrow(/TLS|expected/);
  });

  it('an ephemeral CA issues a server and client pair that talk mutual TLS, and nothing else is trusted', async () => {
    const ca = await createEphemeralTlsCa('chaincode-tlsca.test');
    const [server, cc] = await Promise.all([
      ca.issueServer('cc-listener', ['127.0.0.1']),
      ca.issueClient('basic_1.0:abc'),
    ]);
    const httpsServer = createServer(
      { cert: server.certPem, key: server.keyPem, ca: [ca.certPem], requestCert: true, rejectUnauthorized: true },
      (req, res) => res.end((req.socket as import('node:tls').TLSSocket).getPeerCertificate().subject.CN),
    );
    const url = await listen(httpsServer);
    const ok = await client({ ca: ca.certPem, cert: cc.certPem, key: cc.keyPem }).request({ url });
    expect(ok.body.toString()).toBe('basic_1.0:abc');
    // The org's TLS client certificate is not one this CA issued.
    await expect(
      client({ ca: ca.certPem, cert: clientCert.certPem, key: clientCert.keyPem }).request({ url }),
    ).rejects.toMatchObject({ code: TlsErrorCode.HANDSHAKE_REFUSED });
  });
});
