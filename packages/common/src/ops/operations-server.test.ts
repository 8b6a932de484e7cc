import 'reflect-metadata';
import { webcrypto } from 'node:crypto';
import { request as httpsRequest } from 'node:https';
import { Writable } from 'node:stream';
import * as x509 from '@peculiar/x509';
import Fastify from 'fastify';
import { Counter, Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { LoomError } from '../errors.js';
import { childLogger, createLogger } from '../logging.js';
import { createOperationsServer, type HealthCheck, installLoomErrorHandling, type OperationsServer } from './index.js';

function quietLogger(level = 'info') {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk, _enc, cb) {
      lines.push(String(chunk));
      cb();
    },
  });
  return { logger: createLogger({ component: 'peer', level, destination: stream }), lines };
}

type SelfSignedParams = Parameters<typeof x509.X509CertificateGenerator.createSelfSigned>[0];

const servers: OperationsServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.stop()));
});

async function startOps(checks: HealthCheck[] = [], level = 'info') {
  const { logger, lines } = quietLogger(level);
  const registry = new Registry();
  const server = createOperationsServer({ host: '127.0.0.1', port: 0, logger, registry, healthChecks: checks });
  servers.push(server);
  const { url } = await server.start();
  return { url, server, registry, logger, lines };
}

describe('operations server', () => {
  it('answers /healthz with OK when every check passes', async () => {
    const { url } = await startOps([{ name: 'ledger', check: async () => {} }]);
    const res = await fetch(`${url}/healthz`);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ status: 'OK' });
  });

  it('answers /healthz with 503 listing failed and hung checks', async () => {
    const { logger } = quietLogger();
    const server = createOperationsServer({
      host: '127.0.0.1',
      port: 0,
      logger,
      registry: new Registry(),
      healthCheckTimeoutMs: 50,
      healthChecks: [
        { name: 'ledger', check: async () => {} },
        {
          name: 'raft',
          check: async () => {
            throw new Error('no leader');
          },
        },
        { name: 'disk', check: () => new Promise(() => {}) },
      ],
    });
    servers.push(server);
    const { url } = await server.start();
    const res = await fetch(`${url}/healthz`);
    expect(res.status).toBe(503);
    const body = (await res.json()) as Record<string, unknown>;
    expect(body).toMatchObject({
      status: 'Service Unavailable',
      failedChecks: [
        { component: 'raft', reason: 'no leader' },
        { component: 'disk', reason: 'timed out after 50 ms' },
      ],
    });
    server.addHealthCheck({ name: 'late', check: async () => Promise.reject(new Error('late failure')) });
    expect((await server.health()).failedChecks).toHaveLength(3);
  });

  it('serves Prometheus metrics with process metrics and the registry own', async () => {
    const { url, registry } = await startOps();
    const counter = new Counter({ name: 'loom_test_total', help: 'test counter', registers: [registry] });
    counter.inc(3);
    const res = await fetch(`${url}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/plain');
    const text = await res.text();
    expect(text).toContain('loom_test_total 3');
    expect(text).toContain('process_cpu_user_seconds_total');
    expect(text).toContain('nodejs_eventloop_lag_seconds');
  });

  it('registers process metrics once per registry', async () => {
    const registry = new Registry();
    const { logger } = quietLogger();
    for (let i = 0; i < 2; i++) servers.push(createOperationsServer({ host: '127.0.0.1', port: 0, logger, registry }));
    expect(registry.getSingleMetric('process_cpu_user_seconds_total')).toBeDefined();
  });

  it('reads and changes the log spec at run time', async () => {
    const { url, logger, lines } = await startOps([], 'warn');
    const raft = childLogger(logger, 'raft');
    expect(await (await fetch(`${url}/logspec`)).json()).toEqual({ spec: 'warn' });

    const put = await fetch(`${url}/logspec`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ spec: 'warn:peer.raft=debug' }),
    });
    expect(put.status).toBe(200);
    expect(await put.json()).toEqual({ spec: 'warn:peer.raft=debug' });
    expect(await (await fetch(`${url}/logspec`)).json()).toEqual({ spec: 'warn:peer.raft=debug' });
    raft.debug('now visible');
    expect(lines.some((l) => l.includes('now visible'))).toBe(true);
    expect(logger.level).toBe('warn');
  });

  it('rejects a bad log spec with 400 and its code, keeping the old one', async () => {
    const { url } = await startOps();
    const bad = await fetch(`${url}/logspec`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ spec: 'peer=shouty' }),
    });
    expect(bad.status).toBe(400);
    expect(await bad.json()).toMatchObject({ code: 'LOGSPEC_INVALID', message: expect.stringContaining('shouty') });

    const missing = await fetch(`${url}/logspec`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ level: 'debug' }),
    });
    expect(missing.status).toBe(400);
    expect(await missing.json()).toMatchObject({ code: 'BAD_REQUEST' });

    const notJson = await fetch(`${url}/logspec`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: '{"spec": ',
    });
    expect(notJson.status).toBe(400);
    expect(await notJson.json()).toMatchObject({ code: 'BAD_REQUEST' });
    expect(await (await fetch(`${url}/logspec`)).json()).toEqual({ spec: 'info' });
  });

  it('answers unknown routes with 404 NOT_FOUND', async () => {
    const { url } = await startOps();
    const res = await fetch(`${url}/nope?x=1`);
    expect(res.status).toBe(404);
    expect(await res.json()).toEqual({ code: 'NOT_FOUND', message: 'no route for GET /nope', details: {} });
  });

  it('reports a port in use as OPERATIONS_LISTEN_FAILED', async () => {
    const { server } = await startOps();
    const { port } = await server.start();
    const { logger } = quietLogger();
    const clash = createOperationsServer({ host: '127.0.0.1', port, logger, registry: new Registry() });
    await expect(clash.start()).rejects.toMatchObject({ code: 'OPERATIONS_LISTEN_FAILED' });
    await clash.stop();
  });

  it('serves over TLS', async () => {
    const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
    const keys = (await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
    const cert = await x509.X509CertificateGenerator.createSelfSigned(
      {
        serialNumber: '01',
        name: 'CN=localhost',
        notBefore: new Date(Date.now() - 60_000),
        notAfter: new Date(Date.now() + 3_600_000),
        keys: keys as SelfSignedParams['keys'],
        signingAlgorithm: alg,
        extensions: [new x509.SubjectAlternativeNameExtension([{ type: 'ip', value: '127.0.0.1' }])],
      },
      webcrypto as unknown as Parameters<typeof x509.X509CertificateGenerator.createSelfSigned>[1],
    );
    const pkcs8 = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey)).toString('base64');
    const keyPem = `-----BEGIN PRIVATE KEY-----\n${pkcs8.match(/.{1,64}/g)!.join('\n')}\n-----END PRIVATE KEY-----\n`;
    const certPem = cert.toString('pem');
    const { logger } = quietLogger();
    const server = createOperationsServer({
      host: '127.0.0.1',
      port: 0,
      logger,
      registry: new Registry(),
      tls: { cert: certPem, key: keyPem },
    });
    servers.push(server);
    const { url, port } = await server.start();
    expect(url).toBe(`https://127.0.0.1:${port}`);
    const body = await new Promise<string>((resolve, reject) => {
      const req = httpsRequest({ host: '127.0.0.1', port, path: '/healthz', ca: certPem }, (res) => {
        let data = '';
        res.on('data', (c) => (data += c));
        res.on('end', () => resolve(data));
      });
      req.on('error', reject);
      req.end();
    });
    expect(JSON.parse(body)).toMatchObject({ status: 'OK' });
  });
});

describe('loomErrorHandler', () => {
  async function app() {
    const { logger, lines } = quietLogger();
    const a = Fastify({ loggerInstance: logger });
    installLoomErrorHandling(a);
    a.get('/loom', async () => {
      throw new LoomError('MVCC_READ_CONFLICT', 'key k changed', { details: { key: 'k' }, httpStatus: 409 });
    });
    a.get('/bug', async () => {
      throw new TypeError('secret internals at /srv/x.js');
    });
    a.get('/thrown-string', async () => {
      throw 'oops';
    });
    a.post(
      '/typed',
      { schema: { body: { type: 'object', required: ['n'], properties: { n: { type: 'integer' } } } } },
      async () => ({
        ok: true,
      }),
    );
    await a.listen({ host: '127.0.0.1', port: 0 });
    const { port } = a.server.address() as { port: number };
    return { a, url: `http://127.0.0.1:${port}`, lines };
  }

  it('turns a LoomError into its status and {code, message, details}', async () => {
    const { a, url } = await app();
    try {
      const res = await fetch(`${url}/loom`);
      expect(res.status).toBe(409);
      expect(await res.json()).toEqual({ code: 'MVCC_READ_CONFLICT', message: 'key k changed', details: { key: 'k' } });
    } finally {
      await a.close();
    }
  });

  it('turns validation and JSON errors into 400 BAD_REQUEST', async () => {
    const { a, url } = await app();
    try {
      const invalid = await fetch(`${url}/typed`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ n: 'x' }),
      });
      expect(invalid.status).toBe(400);
      expect(await invalid.json()).toMatchObject({
        code: 'BAD_REQUEST',
        details: { in: 'body', validation: [{ path: '/n' }] },
      });
      const broken = await fetch(`${url}/typed`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: '{',
      });
      expect(broken.status).toBe(400);
      expect(await broken.json()).toMatchObject({ code: 'BAD_REQUEST' });
      const wrongType = await fetch(`${url}/typed`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-weird' },
        body: 'x',
      });
      expect(wrongType.status).toBe(415);
      expect(await wrongType.json()).toMatchObject({ code: 'UNSUPPORTED_MEDIA_TYPE' });
    } finally {
      await a.close();
    }
  });

  it('turns anything else into a bare 500 INTERNAL, logged but not sent', async () => {
    const { a, url, lines } = await app();
    try {
      for (const path of ['/bug', '/thrown-string']) {
        const res = await fetch(`${url}${path}`);
        expect(res.status).toBe(500);
        const text = await res.text();
        expect(JSON.parse(text)).toEqual({ code: 'INTERNAL', message: 'internal error', details: {} });
        expect(text).not.toContain('secret');
        expect(text).not.toContain('stack');
      }
      expect(lines.some((l) => l.includes('secret internals') && l.includes('"level":"error"'))).toBe(true);
    } finally {
      await a.close();
    }
  });
});
