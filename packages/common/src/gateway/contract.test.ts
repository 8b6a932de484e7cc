import { describe, expect, it } from 'vitest';
import { encodeValue } from '../encoding.js';
import { isLoomError } from '../errors.js';
import { createTestOrg } from '../testing/test-ca.js';
import { publicKeyFromCertificate } from './certificate-key.js';
import { encodeGatewayFrame, readGatewayFrames } from './frames.js';
import { chaincodeEventsRequestCodec, commitStatusRequestCodec, keyProofCodec, RequestDomain } from './messages.js';
import { gatewayErrorFromResponse, gatewayRoutes } from './routes.js';
import { toPublicPoint } from '../crypto/portable.js';
import { publicKeyToDer } from '../crypto/signing.js';

const creator = new Uint8Array([1, 2, 3]);

describe('gateway contract', () => {
  it('round-trips signed requests and binds each to its kind', () => {
    const req = { channel: 'ch', creator, timestamp: 1_700_000_000_000, txId: 'ab', timeoutMs: 5000 };
    const bytes = commitStatusRequestCodec.encode(req);
    expect(commitStatusRequestCodec.decode(bytes)).toEqual(req);
    // The same fields under another request's domain are refused.
    const other = encodeValue([RequestDomain.TX_PROOF, 'ch', creator, 1, 'ab', 5000]);
    expect(() => commitStatusRequestCodec.decode(other)).toThrow(/not a loom\/gateway\/commit-status\/v1 request/);
    const ev = { channel: 'ch', creator, timestamp: 1, chaincode: 'cc', startBlock: null };
    expect(chaincodeEventsRequestCodec.decode(chaincodeEventsRequestCodec.encode(ev))).toEqual(ev);
  });

  it('decodes a key proof strictly', () => {
    const tx = {
      channelId: 'ch',
      txId: 'ab',
      blockNum: 1,
      txNum: 0,
      validationCode: 0,
      envelope: new Uint8Array([9]),
      leafIndex: 0,
      treeSize: 1,
      auditPath: [],
    };
    const proof = {
      namespace: 'cc',
      key: 'k',
      version: { blockNum: 1, txNum: 0 },
      isDelete: false,
      valueHash: new Uint8Array(32),
      tx,
    };
    expect(keyProofCodec.decode(keyProofCodec.encode(proof))).toEqual(proof);
    expect(() => keyProofCodec.decode(encodeValue(['cc']))).toThrow(/KeyProof/);
  });

  it('routes declare distinct paths and a request body the server can read back', () => {
    const paths = Object.values(gatewayRoutes).map((r) => `${r.method} ${r.path}`);
    expect(new Set(paths).size).toBe(paths.length);
    expect(gatewayRoutes.digest.request.fromWire(gatewayRoutes.digest.request.toWire({ channel: 'c' }))).toEqual({
      channel: 'c',
    });
    expect(() => gatewayRoutes.endorse.request.fromWire({})).toThrow(/request body required/);
  });

  it('turns JSON error answers into LoomErrors with code and endorser details', () => {
    const body = new TextEncoder().encode(
      JSON.stringify({ code: 'ENDORSEMENT_MISMATCH', message: 'm', details: { endorsers: [{ mspId: 'A' }] } }),
    );
    const e = gatewayErrorFromResponse(502, body, 'endorse');
    expect(isLoomError(e, 'ENDORSEMENT_MISMATCH')).toBe(true);
    expect(e.httpStatus).toBe(502);
    expect(e.details).toEqual({ endorsers: [{ mspId: 'A' }] });
    expect(gatewayErrorFromResponse(503, new Uint8Array([0xff]), 'x').code).toBe('HTTP_503');
  });

  it('frames survive arbitrary chunking and a truncated stream is an error', async () => {
    const frames = [new Uint8Array([1, 2, 3]), new Uint8Array(0), new Uint8Array(300).fill(7)];
    const all = Uint8Array.from(frames.flatMap((f) => [...encodeGatewayFrame(f)]));
    async function* chunks(bytes: Uint8Array, size: number) {
      for (let i = 0; i < bytes.length; i += size) yield bytes.slice(i, i + size);
    }
    for (const size of [1, 2, 5, 1000]) {
      const got: Uint8Array[] = [];
      for await (const f of readGatewayFrames(chunks(all, size))) got.push(f);
      expect(got).toEqual(frames);
    }
    const cut = async () => {
      for await (const _ of readGatewayFrames(chunks(all.slice(0, all.length - 1), 7))) {
        // drain
      }
    };
    await expect(cut()).rejects.toMatchObject({ code: 'STREAM_TRUNCATED' });
  });

  it('reads the public key out of a certificate without an X.509 library', async () => {
    const org = await createTestOrg('Org1MSP');
    const fromCert = publicKeyFromCertificate(org.peer.certPem);
    expect(fromCert).toEqual(toPublicPoint(publicKeyToDer(org.peer.publicKey)));
    expect(() => publicKeyFromCertificate('not a pem')).toThrow(/certificate unreadable/);
  });
});
