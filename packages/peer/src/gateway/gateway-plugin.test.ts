/**
 * The gateway plugin's own rules over real HTTPS: bad input answers a JSON error with a code,
 * signed requests must be the creator's and fresh, and peers endorse for each other through
 * process-proposal. Peer internals are in-test stand-ins (`stubDependencies`).
 */
import {
  buildProposal,
  type Bytes,
  encodeEnvelope,
  encodePayload,
  encodeProposalResponse,
  encodeSignedProposal,
  encodeSerializedIdentity,
  sign,
  utf8,
} from '@loom/common';
import { commitStatusRequestCodec, GATEWAY_CONTENT_TYPE, gatewayRoutes, invokeRoute } from '@loom/common/gateway/index';
import { createTestOrg, type TestOrg } from '@loom/common/testing/index';
import { createHttpsClient, type HttpsClient } from '@loom/common/tls/index';
import { createTestTlsCa } from '@loom/common/tls/testing';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type GatewayDependencies, gatewayPlugin } from './gateway-plugin.js';
import { createRemoteEndorser } from './remote-endorser.js';
import { createSignatureVerifier } from '../validation/signature-verifier.js';

let app: FastifyInstance;
let client: HttpsClient;
let url: string;
let org: TestOrg;
const processed: Bytes[] = [];
const minHeights: (number | undefined)[] = [];

function stubDependencies(): GatewayDependencies {
  const fail = async (): Promise<never> => {
    throw new Error('not used in this test');
  };
  return {
    localMspId: 'Org1MSP',
    planEndorsers: () => [],
    endorse: fail,
    evaluate: fail,
    broadcast: fail,
    commitStatus: async () => undefined,
    processProposal: async (signedProposal, minHeight) => {
      processed.push(signedProposal);
      minHeights.push(minHeight);
      return encodeProposalResponse({
        version: 1,
        timestamp: 1,
        response: { status: 200, message: '', payload: utf8('ok') },
        payload: new Uint8Array(),
        endorsement: null,
      });
    },
  };
}

beforeAll(async () => {
  const [o, tlsCa] = await Promise.all([createTestOrg('Org1MSP'), createTestTlsCa('Org1MSP')]);
  org = o;
  const tls = await tlsCa.issue({ cn: 'peer0.org1.example.com' });
  app = Fastify({ https: { key: tls.keyPem, cert: tls.certPem }, logger: false }) as unknown as FastifyInstance;
  await app.register(gatewayPlugin, { dependencies: stubDependencies(), maxCommitWaitMs: 200 });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const address = app.server.address();
  url = `https://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
  client = createHttpsClient({ ca: tlsCa.certPem, timeoutMs: 10_000 });
});

afterAll(async () => {
  client?.close();
  await app?.close();
});

const post = (path: string, body: Uint8Array) =>
  client.request({ method: 'POST', url: `${url}${path}`, headers: { 'content-type': GATEWAY_CONTENT_TYPE }, body });

function commitStatusRequest(timestamp: number, signer = org.client) {
  const request = {
    channel: 'ch',
    creator: encodeSerializedIdentity(org.client.serialized),
    timestamp,
    txId: 'ab',
    timeoutMs: 50,
  };
  const bytes = commitStatusRequestCodec.encode(request);
  return { signed: { request: bytes, signature: sign(signer.privateKey, bytes) }, request };
}

/** A proposal by Org1's client for chaincode `cc` on channel `ch`, its nonce filled with `nonceByte`. */
const clientProposal = (nonceByte: number) =>
  buildProposal({
    channelId: 'ch',
    chaincodeName: 'cc',
    args: ['f'],
    creator: org.client.serialized,
    nonce: new Uint8Array(24).fill(nonceByte),
    timestamp: 1,
  });

describe('gateway plugin', () => {
  it('answers malformed bodies with a JSON error and a code, never a stack', async () => {
    const res = await post(gatewayRoutes.endorse.path, new Uint8Array([0xff, 0x00]));
    expect(res.status).toBe(400);
    const body = JSON.parse(res.body.toString()) as { code: string; message: string };
    expect(body.code).toBe('ENCODING_MALFORMED');
    expect(body.message).not.toMatch(/at .*\.ts:\d+/);
  });

  it('refuses an envelope whose signature is not its creator’s', async () => {
    const malformed = await post(gatewayRoutes.submit.path, new Uint8Array([0x80]));
    expect(malformed.status).toBe(400);
    const p = clientProposal(0);
    // Header says the client created it; the admin signed it.
    const payload = encodePayload({ header: p.headerBytes, data: new Uint8Array() });
    const forged = encodeEnvelope({ payload, signature: sign(org.admin.privateKey, payload) });
    const bad = await post(gatewayRoutes.submit.path, forged);
    expect(bad.status).toBe(401);
    expect(JSON.parse(bad.body.toString())).toMatchObject({ code: 'GATEWAY_BAD_SIGNATURE' });
  });

  it('checks signed requests: creator’s signature, fresh timestamp, bounded wait', async () => {
    const wrongSigner = commitStatusRequest(Date.now(), org.admin);
    await expect(invokeRoute(client, url, gatewayRoutes.commitStatus, wrongSigner)).rejects.toMatchObject({
      code: 'GATEWAY_BAD_SIGNATURE',
      httpStatus: 401,
    });
    const stale = commitStatusRequest(Date.now() - 60 * 60_000);
    await expect(invokeRoute(client, url, gatewayRoutes.commitStatus, stale)).rejects.toMatchObject({
      code: 'GATEWAY_REQUEST_EXPIRED',
    });
    const fresh = commitStatusRequest(Date.now());
    await expect(invokeRoute(client, url, gatewayRoutes.commitStatus, fresh)).rejects.toMatchObject({
      code: 'COMMIT_STATUS_TIMEOUT',
      httpStatus: 504,
    });
  });

  it('serves process-proposal to other peers through the same route declaration', async () => {
    const p = clientProposal(1);
    const signedProposal = encodeSignedProposal({
      proposalBytes: p.proposalBytes,
      signature: sign(org.client.privateKey, p.proposalBytes),
    });
    const endorse = createRemoteEndorser({ transport: client });
    const outcome = await endorse(signedProposal, { mspId: 'Org1MSP', endpoint: url });
    expect(outcome.ok).toBe(true);
    expect(processed.at(-1)).toEqual(signedProposal);
    expect(minHeights.at(-1)).toBeUndefined();
    // The forwarding gateway's committed height travels with the proposal.
    expect((await endorse(signedProposal, { mspId: 'Org1MSP', endpoint: url }, 42)).ok).toBe(true);
    expect(minHeights.at(-1)).toBe(42);
    const down = await endorse(signedProposal, { mspId: 'Org2MSP', endpoint: 'https://127.0.0.1:1' });
    expect(down).toMatchObject({ ok: false, mspId: 'Org2MSP' });
  });

  it('refuses a malformed minHeight with 400 and a code', async () => {
    for (const bad of ['-1', 'abc', '1e3', '9999999999999999999']) {
      const res = await post(`${gatewayRoutes.processProposal.path}?minHeight=${encodeURIComponent(bad)}`, utf8('x'));
      expect(res.status).toBe(400);
      expect(JSON.parse(res.body.toString())).toMatchObject({ code: 'GATEWAY_BAD_REQUEST' });
    }
  });

  it('says so when an optional capability is not wired', async () => {
    await expect(invokeRoute(client, url, gatewayRoutes.digest, { channel: 'ch' })).rejects.toMatchObject({
      code: 'GATEWAY_NOT_SUPPORTED',
      httpStatus: 501,
    });
  });
});

describe('gateway plugin with the peer’s signature pool', () => {
  it('checks a submitted envelope through the pool, so the commit finds the creator’s signature cached', async () => {
    const tlsCa = await createTestTlsCa('Org1MSP');
    const tls = await tlsCa.issue({ cn: 'peer0.org1.example.com' });
    const pool = createSignatureVerifier({ poolSize: 0 });
    const broadcasts: Bytes[] = [];
    const pooled = Fastify({
      https: { key: tls.keyPem, cert: tls.certPem },
      logger: false,
    }) as unknown as FastifyInstance;
    await pooled.register(gatewayPlugin, {
      dependencies: {
        ...stubDependencies(),
        broadcast: async (e: Bytes) => {
          broadcasts.push(e);
        },
        signatureVerifier: pool,
      },
    });
    await pooled.listen({ host: '127.0.0.1', port: 0 });
    const address = pooled.server.address();
    const base = `https://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
    const https = createHttpsClient({ ca: tlsCa.certPem, timeoutMs: 10_000 });
    try {
      const submit = (body: Uint8Array) =>
        https.request({
          method: 'POST',
          url: `${base}${gatewayRoutes.submit.path}`,
          headers: { 'content-type': GATEWAY_CONTENT_TYPE },
          body,
        });
      const p = clientProposal(7);
      const payload = encodePayload({ header: p.headerBytes, data: new Uint8Array() });
      const forged = await submit(encodeEnvelope({ payload, signature: sign(org.admin.privateKey, payload) }));
      expect(forged.status).toBe(401);
      expect(JSON.parse(forged.body.toString())).toMatchObject({ code: 'GATEWAY_BAD_SIGNATURE' });
      const signature = sign(org.client.privateKey, payload);
      const ok = await submit(encodeEnvelope({ payload, signature }));
      expect(ok.status).toBe(202); // accepted for ordering
      expect(broadcasts).toHaveLength(1);
      expect(pool.stats()).toMatchObject({ mainThreadVerified: 2, cacheHits: 0 });
      // What the committer asks when the block holding it arrives: answered from the cache.
      const certPem = new TextDecoder().decode(org.client.serialized.idBytes);
      expect(await pool.verifyMany([{ certPem, message: payload, signature }])).toEqual([true]);
      expect(pool.stats()).toMatchObject({ mainThreadVerified: 2, cacheHits: 1 });
    } finally {
      https.close();
      await pooled.close();
      await pool.close();
    }
  });
});
