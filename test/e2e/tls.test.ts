/**
 * Mutual TLS on a launched network (real CA, orderer and peer processes; `tls.clientAuthRequired:
 * true`), on the default ports + 15500:
 * - a client without a certificate is refused at the gateway, the orderer and the orderer's admin
 *   listener with a TLS error (not a hang), and so is one whose certificate comes from an unknown
 *   TLS CA; each refusal is counted on the node's /metrics and the node keeps serving;
 * - transactions succeed with the certificates the launcher enrolled;
 * - `loom certs renew` of a peer's and an orderer's TLS pair while 10 closed-loop clients submit
 *   for 20 s: zero failed transactions, and the new certificates are served (serial read with
 *   tls.connect) and exposed by the expiry gauge on /metrics;
 * - `loom certs check --within 30` exits 1 naming a short-lived certificate made here, and only it;
 * - every listener of the network (each CA, the orderer's public, admin and operations ports, each
 *   peer's API, operations and chaincode ports) answers only over TLS: plain HTTP gets no answer,
 *   HTTPS trusting the network's TLS roots (with a client pair where mutual TLS is required) does,
 *   and the operations ports refuse a client trusting another CA.
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request as plainRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { connect, type Gateway, signers } from '@loom/client';
import { createHttpsClient } from '@loom/common/tls/index';
import { createTestTlsCa } from '@loom/common/tls/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml, stringify as toYaml } from 'yaml';
import { checkCertificates } from '../../packages/cli/src/commands/certs.js';
import { LaunchedNetwork, LOOM, networkConfigText, runLoom as run, sleep } from './helpers.js';

const work = mkdtempSync(join(tmpdir(), 'loom-tls-'));
const data = join(work, 'data');
const OFFSET = 15500;
const port = (p: number) => p + OFFSET;

const PEER1 = {
  fqdn: 'peer0.org1.example.com',
  port: port(7051),
  ops: port(9441),
  chaincode: port(7052),
  domain: 'org1.example.com',
};
const PEER2 = {
  fqdn: 'peer0.org2.example.com',
  port: port(8051),
  ops: port(9451),
  chaincode: port(8052),
  domain: 'org2.example.com',
};
const ORDERER0 = { fqdn: 'orderer0.example.com', port: port(7050), admin: port(7053), ops: port(9443) };
const CA1 = { port: port(7054) };
const CAS = [CA1.port, port(8054), port(9054)];

/**
 * The default network-config, shifted to this suite's ports, with mutual TLS required and one
 * orderer instead of three (the suite is about TLS, and a loaded machine starts it faster).
 */
function config(): string {
  const text = networkConfigText({
    offset: OFFSET,
    dataDir: data,
    finish: (t) => t.replace(/clientAuthRequired: false/, 'clientAuthRequired: true'),
  });
  const doc = parseYaml(text) as {
    ordererOrganization: { orderers: unknown[] };
    channels: { consenters: string[] }[];
  };
  doc.ordererOrganization.orderers = doc.ordererOrganization.orderers.slice(0, 1);
  for (const c of doc.channels) c.consenters = ['orderer0'];
  const file = join(work, 'net.yaml');
  writeFileSync(file, toYaml(doc));
  return file;
}
const configFile = config();
const launched = new LaunchedNetwork(configFile, data);

const read = (...p: string[]) => readFileSync(join(data, ...p), 'utf8');

/**
 * The node's log once it contains `pattern` (bounded): a node writes its log asynchronously, so a
 * line may reach the file a moment after the request that caused it was answered.
 */
async function logOnceIt(fqdn: string, pattern: RegExp | string, timeoutMs = 15_000): Promise<string> {
  const end = Date.now() + timeoutMs;
  let text = read('logs', `${fqdn}.log`);
  const has = (t: string) => (typeof pattern === 'string' ? t.includes(pattern) : pattern.test(t));
  while (!has(text) && Date.now() < end) {
    await sleep(200);
    text = read('logs', `${fqdn}.log`);
  }
  return text;
}

/**
 * The serial `p` serves, once it is `serial` (bounded): a node reloads a renewed pair when its file
 * watcher fires, a moment after `loom certs renew` has written it.
 */
async function servedSerialOnceIt(p: number, serial: string, timeoutMs = 30_000): Promise<string> {
  const end = Date.now() + timeoutMs;
  let served = await servedSerial(p);
  while (served !== serial && Date.now() < end) {
    await sleep(250);
    served = await servedSerial(p);
  }
  return served;
}
const tlsRoots = () =>
  ['org1.example.com', 'org2.example.com', 'example.com'].map((d) => read(d, 'ca', 'data', 'tlsca-cert.pem'));
const userTls = (user: string) => ({
  cert: read(PEER1.domain, 'users', `${user}@${PEER1.domain}`, 'tls', 'client.crt'),
  key: read(PEER1.domain, 'users', `${user}@${PEER1.domain}`, 'tls', 'client.key'),
});

async function gateway(): Promise<Gateway> {
  const msp = join(data, PEER1.domain, 'users', `User1@${PEER1.domain}`, 'msp');
  const keyDir = join(msp, 'keystore');
  const keyFile = readdirSync(keyDir).sort()[0]!;
  const tls = userTls('User1');
  return connect({
    endpoint: `https://127.0.0.1:${PEER1.port}`,
    identity: {
      mspId: 'Org1MSP',
      credentials: new TextEncoder().encode(readFileSync(join(msp, 'signcerts', 'cert.pem'), 'utf8')),
    },
    signer: signers.newPrivateKeySigner(readFileSync(join(keyDir, keyFile), 'utf8')),
    tls: { rootCerts: tlsRoots(), clientCert: tls.cert, clientKey: tls.key },
    endorseOptions: { timeoutMs: 60_000 },
    submitOptions: { timeoutMs: 60_000 },
    commitStatusOptions: { timeoutMs: 60_000 },
    evaluateOptions: { timeoutMs: 60_000 },
  });
}

/** The serial (lowercase hex, no leading zeros) of the certificate `port` serves to a proper client. */
function servedSerial(p: number): Promise<string> {
  const tls = userTls('User1');
  return new Promise((resolve, reject) => {
    const s = tlsConnect({
      host: '127.0.0.1',
      port: p,
      ca: tlsRoots(),
      cert: tls.cert,
      key: tls.key,
      servername: 'localhost',
    });
    const t = setTimeout(() => s.destroy(new Error('tls.connect timed out')), 15_000);
    s.once('secureConnect', () => {
      clearTimeout(t);
      const serial = s.getPeerCertificate().serialNumber.toLowerCase().replace(/^0+/, '');
      s.end();
      resolve(serial);
    });
    s.once('error', (e) => {
      clearTimeout(t);
      reject(e);
    });
  });
}

/** How a TLS connection to `p` without the right client certificate ends: an error code, or `closed`. */
function chaincodePortAnswer(p: number, client: { cert?: string; key?: string }): Promise<string> {
  return new Promise((resolve) => {
    const s = tlsConnect({ host: '127.0.0.1', port: p, rejectUnauthorized: false, ...client });
    const t = setTimeout(() => {
      s.destroy();
      resolve('hang');
    }, 15_000);
    const done = (what: string) => {
      clearTimeout(t);
      s.destroy();
      resolve(what);
    };
    s.once('secureConnect', () => s.write(Buffer.from([0, 0, 0, 4, 1, 2, 3, 4])));
    s.once('data', () => done('answered'));
    s.once('error', (e: NodeJS.ErrnoException) => done(e.code ?? e.message));
    s.once('close', () => done('closed'));
  });
}

/** An HTTPS request trusting the network's TLS roots: its status, or how it failed (error code). */
async function httpsAnswer(
  url: string,
  options: { client?: { cert: string; key: string }; ca?: string[]; method?: string; body?: Uint8Array } = {},
): Promise<string> {
  const c = createHttpsClient({ ca: options.ca ?? tlsRoots(), ...(options.client ?? {}), timeoutMs: 20_000 });
  try {
    const r = await c.request({
      url,
      method: options.method ?? 'GET',
      ...(options.body ? { body: options.body } : {}),
    });
    return `HTTP ${r.status}`;
  } catch (e) {
    return (e as { code?: string }).code ?? String(e);
  } finally {
    c.close();
  }
}

/** Operations endpoints of launched nodes are HTTPS (network-config `tls.operations`), without mutual TLS. */
async function metrics(opsPort: number): Promise<string> {
  const c = createHttpsClient({ ca: tlsRoots(), timeoutMs: 15_000 });
  try {
    const r = await c.request({ url: `https://127.0.0.1:${opsPort}/metrics` });
    expect(r.status).toBe(200);
    return r.body.toString();
  } finally {
    c.close();
  }
}

/** What a plain-HTTP request to `p` gets: `answered HTTP <status>`, or how it failed (code, `timeout`). */
function plainHttpAnswer(p: number): Promise<string> {
  return new Promise((resolve) => {
    const req = plainRequest({ host: '127.0.0.1', port: p, path: '/healthz', agent: false, timeout: 15_000 }, (res) => {
      res.resume();
      resolve(`answered HTTP ${res.statusCode}`);
    });
    req.on('timeout', () => {
      req.destroy();
      resolve('timeout');
    });
    req.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
    req.end();
  });
}

/** A TLS handshake with the chaincode port, as a chaincode process of `peer` makes it (its files). */
function chaincodeTlsHandshake(peer: { domain: string; fqdn: string; chaincode: number }): Promise<string> {
  const base = join(data, peer.domain, 'peers', peer.fqdn, 'data', 'chaincode-tls');
  const pkg = readdirSync(base).sort()[0]!;
  const file = (f: string) => readFileSync(join(base, pkg, f), 'utf8');
  return new Promise((resolve) => {
    const s = tlsConnect({
      host: '127.0.0.1',
      port: peer.chaincode,
      ca: [file('root.crt')],
      cert: file('client.crt'),
      key: file('client.key'),
    });
    const t = setTimeout(() => {
      s.destroy();
      resolve('timeout');
    }, 15_000);
    s.once('secureConnect', () => {
      clearTimeout(t);
      const ok = s.authorized;
      s.end();
      resolve(ok ? 'secure' : `unauthorized: ${String(s.authorizationError)}`);
    });
    s.once('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(t);
      resolve(e.code ?? e.message);
    });
  });
}

/** A refused request: how it failed and how long it took. */
async function refusal(url: string, client: { cert?: string; key?: string }): Promise<{ code: string; ms: number }> {
  const c = createHttpsClient({ ca: tlsRoots(), ...client, timeoutMs: 20_000 });
  const started = Date.now();
  try {
    const r = await c.request({ url, method: 'POST', body: new Uint8Array([1]) });
    return { code: `answered HTTP ${r.status}`, ms: Date.now() - started };
  } catch (e) {
    return { code: (e as { code?: string }).code ?? String(e), ms: Date.now() - started };
  } finally {
    c.close();
  }
}

let upOk = false;

beforeAll(async () => {
  await launched.up(360_000, ['basic']);
  upOk = true;
}, 380_000);

afterAll(async () => {
  await launched.down(60_000);
  rmSync(work, { recursive: true, force: true });
}, 90_000);

describe.skipIf(!existsSync(LOOM))('mutual TLS on a launched network', () => {
  it('refuses a client without a certificate at the gateway and the orderer with a TLS error', async () => {
    expect(upOk).toBe(true);
    const urls = [
      `https://127.0.0.1:${PEER1.port}/v1/gateway/evaluate`,
      `https://127.0.0.1:${ORDERER0.port}/v1/channels/mychannel/broadcast`,
      `https://127.0.0.1:${ORDERER0.admin}/participation/v1/channels`,
    ];
    for (const url of urls) {
      const r = await refusal(url, {});
      expect(r.code, url).toBe('TLS_HANDSHAKE_REFUSED');
      expect(r.ms, url).toBeLessThan(20_000);
    }
    expect(await metrics(PEER1.ops)).toMatch(
      /loom_tls_handshake_failures_total\{reason="no_client_certificate"\} [1-9]/,
    );
    expect(await metrics(ORDERER0.ops)).toMatch(
      /loom_tls_handshake_failures_total\{reason="no_client_certificate"\} [1-9]/,
    );
    expect(await logOnceIt(PEER1.fqdn, /TLS handshake refused: no_client_certificate/)).toMatch(
      /TLS handshake refused: no_client_certificate/,
    );
  }, 120_000);

  it('refuses a client certificate from an unknown TLS CA', async () => {
    const foreign = await createTestTlsCa('IntruderMSP');
    const pair = await foreign.issue({ cn: 'intruder' });
    for (const url of [
      `https://127.0.0.1:${PEER1.port}/v1/gateway/evaluate`,
      `https://127.0.0.1:${ORDERER0.port}/v1/channels/mychannel/broadcast`,
    ]) {
      const r = await refusal(url, { cert: pair.certPem, key: pair.keyPem });
      expect(r.code, url).toBe('TLS_HANDSHAKE_REFUSED');
    }
    expect(await metrics(PEER1.ops)).toMatch(/loom_tls_handshake_failures_total\{reason="unknown_ca"\} [1-9]/);
    expect(await metrics(ORDERER0.ops)).toMatch(/loom_tls_handshake_failures_total\{reason="unknown_ca"\} [1-9]/);
  }, 120_000);

  it("the chaincode port refuses a client without a certificate from the peer's chaincode CA", async () => {
    expect(await chaincodePortAnswer(PEER1.chaincode, {})).toMatch(/^(ERR_SSL_|ECONNRESET|closed)/);
    // A certificate from the org's TLS CA is not one the peer issued for a chaincode.
    const org = userTls('User1');
    expect(await chaincodePortAnswer(PEER1.chaincode, { cert: org.cert, key: org.key })).toMatch(
      /^(ERR_SSL_|ECONNRESET|closed)/,
    );
  }, 60_000);

  it('serves transactions to clients with proper certificates', async () => {
    const g = await gateway();
    try {
      const contract = g.getNetwork('mychannel').getContract('basic');
      await contract.submitTransaction('CreateAsset', 'tls-a1', 'blue', '5', 'Tomoko', '300');
      const asset = JSON.parse(new TextDecoder().decode(await contract.evaluateTransaction('ReadAsset', 'tls-a1')));
      expect(asset).toMatchObject({ ID: 'tls-a1', Owner: 'Tomoko' });
    } finally {
      g.close();
    }
    // basic ran as a process that connected to the peer's chaincode port over mutual TLS, with a
    // client pair the peer issued for it.
    const ccTls = join(data, PEER1.domain, 'peers', PEER1.fqdn, 'data', 'chaincode-tls');
    expect(existsSync(ccTls)).toBe(true);
    expect(await logOnceIt(PEER1.fqdn, /chaincode registered/)).toMatch(/chaincode registered/);
    // A CLI command calling a peer's admin route directly presents the admin's TLS client pair.
    const installed = await run(['--json', 'chaincode', 'queryinstalled', '--config', configFile], 90_000);
    expect(installed.code, installed.out).toBe(0);
    expect(installed.out).toMatch(/basic_1\.0/);
    // Org2's peer (endorsing over mutual TLS for the gateway) serves its own clients too.
    const r = await refusal(`https://127.0.0.1:${PEER2.port}/v1/gateway/evaluate`, userTls('User1'));
    expect(r.code).toMatch(/^answered HTTP [45]\d\d$/);
  }, 180_000);

  it('every listener answers only over TLS: plain HTTP fails, HTTPS with the network TLS roots succeeds', async () => {
    const ordererAdminTls = {
      cert: read('example.com', 'users', 'Admin@example.com', 'tls', 'client.crt'),
      key: read('example.com', 'users', 'Admin@example.com', 'tls', 'client.key'),
    };
    const listeners: { name: string; port: number; https: () => Promise<string>; expected: RegExp }[] = [
      ...CAS.map((p) => ({
        name: `CA :${p}`,
        port: p,
        https: () => httpsAnswer(`https://127.0.0.1:${p}/healthz`),
        expected: /^HTTP 200$/,
      })),
      {
        name: 'orderer public',
        port: ORDERER0.port,
        // A malformed envelope: refused by the orderer itself, after TLS and HTTP went through.
        https: () =>
          httpsAnswer(`https://127.0.0.1:${ORDERER0.port}/v1/channels/mychannel/broadcast`, {
            client: userTls('User1'),
            method: 'POST',
            body: new Uint8Array([1]),
          }),
        expected: /^HTTP 4\d\d$/,
      },
      {
        name: 'orderer admin',
        port: ORDERER0.admin,
        https: () =>
          httpsAnswer(`https://127.0.0.1:${ORDERER0.admin}/participation/v1/channels`, { client: ordererAdminTls }),
        expected: /^HTTP 200$/,
      },
      ...[PEER1, PEER2].map((p) => ({
        name: `${p.fqdn} API`,
        port: p.port,
        https: () =>
          httpsAnswer(`https://127.0.0.1:${p.port}/v1/channels/mychannel/height`, { client: userTls('User1') }),
        expected: /^HTTP 200$/,
      })),
      ...[ORDERER0.ops, PEER1.ops, PEER2.ops].map((p) => ({
        name: `operations :${p}`,
        port: p,
        // No client certificate: the operations listeners are TLS without client authentication.
        https: () => httpsAnswer(`https://127.0.0.1:${p}/healthz`),
        expected: /^HTTP 200$/,
      })),
      ...[PEER1, PEER2].map((p) => ({
        name: `${p.fqdn} chaincode`,
        port: p.chaincode,
        https: () => chaincodeTlsHandshake(p),
        expected: /^secure$/,
      })),
    ];
    const seen: string[] = [];
    for (const l of listeners) {
      const plain = await plainHttpAnswer(l.port);
      const secure = await l.https();
      seen.push(`${l.name}: plain ${plain}, TLS ${secure}`);
      // No HTTP answer to plain HTTP, and not because nothing listens (ECONNREFUSED) or it hung.
      expect(plain, l.name).toMatch(/^(ECONNRESET|EPIPE|HPE_[A-Z_]+)$/);
      expect(secure, l.name).toMatch(l.expected);
    }
    console.log(seen.join('\n'));
    // The operations ports serve the node's certificate from the org's TLS CA: a client trusting
    // another CA refuses them.
    const foreign = await createTestTlsCa('ForeignMSP');
    for (const p of [ORDERER0.ops, PEER1.ops, PEER2.ops]) {
      expect(await httpsAnswer(`https://127.0.0.1:${p}/healthz`, { ca: [foreign.certPem] }), `:${p}`).toBe(
        'TLS_SERVER_UNTRUSTED',
      );
    }
    // Plain HTTP sent to a TLS port is a refused handshake the node counts.
    expect(await metrics(PEER1.ops)).toMatch(/loom_tls_handshake_failures_total\{reason="protocol"\} [1-9]/);
  }, 180_000);

  it('renews a peer and an orderer TLS certificate under load with zero failed transactions', async () => {
    const before = { peer: await servedSerial(PEER1.port), orderer: await servedSerial(ORDERER0.port) };
    const DURATION_MS = 20_000;
    const CLIENTS = 10;
    const stopAt = Date.now() + DURATION_MS;
    const failures: string[] = [];
    let committed = 0;
    let seq = 0;
    // Half the clients keep their connections; half connect anew for every transaction, so TLS
    // handshakes keep happening while the certificates change.
    const worker = async (w: number) => {
      const fresh = w % 2 === 1;
      let g = fresh ? undefined : await gateway();
      try {
        for (let i = 0; i < 10_000 && Date.now() < stopAt; i++) {
          const gw = g ?? (await gateway());
          const id = `load-${w}-${seq++}`;
          try {
            await gw
              .getNetwork('mychannel')
              .getContract('basic')
              .submitTransaction('CreateAsset', id, 'red', '1', 'L', '1');
            committed++;
          } catch (e) {
            failures.push(`${id}: ${(e as Error).message}`);
          } finally {
            if (fresh) gw.close();
          }
        }
      } finally {
        g?.close();
        g = undefined;
      }
    };
    const renewals = (async () => {
      await new Promise((r) => setTimeout(r, 5_000));
      const peer = await run(
        ['--json', 'certs', 'renew', '--config', configFile, '--node', PEER1.fqdn, '--tls'],
        60_000,
      );
      await new Promise((r) => setTimeout(r, 3_000));
      const orderer = await run(
        ['--json', 'certs', 'renew', '--config', configFile, '--node', ORDERER0.fqdn, '--tls'],
        60_000,
      );
      return { peer, orderer };
    })();
    const [, renewed] = await Promise.all([
      Promise.all(Array.from({ length: CLIENTS }, (_, w) => worker(w))),
      renewals,
    ]);
    expect(renewed.peer.code, renewed.peer.out).toBe(0);
    expect(renewed.orderer.code, renewed.orderer.out).toBe(0);
    const peerSerial = (JSON.parse(renewed.peer.out) as { serial: string; previousSerial: string }).serial;
    const ordererSerial = (JSON.parse(renewed.orderer.out) as { serial: string }).serial;
    console.log(`renew under load: ${committed} committed, ${failures.length} failed`);
    expect(failures).toEqual([]);
    expect(committed).toBeGreaterThan(0);
    expect(peerSerial).not.toBe(before.peer);
    expect(ordererSerial).not.toBe(before.orderer);

    // The new pairs are served without a restart (once the file watcher has reloaded them).
    expect(await servedSerialOnceIt(PEER1.port, peerSerial)).toBe(peerSerial);
    expect(await servedSerialOnceIt(ORDERER0.port, ordererSerial)).toBe(ordererSerial);
    expect(await servedSerialOnceIt(ORDERER0.admin, ordererSerial)).toBe(ordererSerial);
    // The operations listeners serve the same (renewed) pair.
    expect(await servedSerialOnceIt(PEER1.ops, peerSerial)).toBe(peerSerial);
    expect(await servedSerialOnceIt(ORDERER0.ops, ordererSerial)).toBe(ordererSerial);

    // The expiry gauge follows the served certificate.
    const gauge = (text: string, name: string, serial: string) =>
      new RegExp(`loom_certificate_expiry_seconds\\{name="${name}",[^}]*serial="${serial}"\\} (\\d+)`).exec(text);
    const peerGauge = gauge(await metrics(PEER1.ops), 'tls-peer', peerSerial);
    expect(peerGauge).not.toBeNull();
    expect(Number(peerGauge![1])).toBeGreaterThan(300 * 86_400);
    expect(gauge(await metrics(ORDERER0.ops), 'tls-orderer', ordererSerial)).not.toBeNull();
    expect(await logOnceIt(PEER1.fqdn, `"serial":"${peerSerial}"`)).toContain(`"serial":"${peerSerial}"`);
  }, 240_000);

  it('exposes the expiry gauge on every node, and the CA on its own listener', async () => {
    for (const ops of [PEER1.ops, PEER2.ops, ORDERER0.ops]) {
      const text = await metrics(ops);
      expect(text).toMatch(/loom_certificate_expiry_seconds\{name="tls-(peer|orderer)",/);
      expect(text).toMatch(/loom_certificate_expiry_seconds\{name="enrollment",/);
    }
    const c = createHttpsClient({ ca: tlsRoots(), timeoutMs: 20_000 });
    try {
      const r = await c.request({ url: `https://127.0.0.1:${CA1.port}/metrics` });
      expect(r.body.toString()).toMatch(/loom_certificate_expiry_seconds\{name="tls-ca",/);
    } finally {
      c.close();
    }
  }, 60_000);

  it('loom certs check --within 30 exits 1 listing only a certificate that expires soon', async () => {
    const ca = await createTestTlsCa('Org1MSP');
    const short = await ca.issue({
      cn: 'short-lived.org1.example.com',
      notAfter: new Date(Date.now() + 3 * 86_400_000),
    });
    mkdirSync(join(data, 'short-lived'), { recursive: true });
    writeFileSync(join(data, 'short-lived', 'server.crt'), short.certPem);
    const soon = await run(['certs', 'check', '--data', data, '--within', '30'], 60_000);
    expect(soon.code, soon.out).toBe(1);
    expect(soon.out).toMatch(/WARN .*short-lived.*CN=short-lived\.org1\.example\.com/);
    expect(soon.out).toMatch(/1 certificate, 1 expiring within 30 days/);
    const quiet = await checkCertificates({ data, warnDays: 30, withinDays: 1 });
    expect(quiet.exitCode, quiet.output).toBe(0);
  }, 120_000);
});
