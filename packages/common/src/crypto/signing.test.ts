import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { isLoomError } from '../errors.js';
import { sha256, sha256Hex } from './hash.js';
import * as portable from './portable.js';
import { encodeDerSignature, P256_HALF_N, P256_N, parseDerSignature, SignatureErrorCode } from './signature-der.js';
import {
  generateKeyPair,
  privateKeyFromPem,
  privateKeyToPem,
  publicKeyFromDer,
  publicKeyFromPem,
  publicKeyToDer,
  publicKeyToPem,
  sign,
  signerFromPem,
  verify,
  verifyOrThrow,
} from './signing.js';

const msg = new TextEncoder().encode('loom transaction bytes');
const other = new TextEncoder().encode('loom transaction bytez');

function codeOf(f: () => unknown): string | undefined {
  try {
    f();
  } catch (e) {
    return isLoomError(e) ? e.code : `non-loom: ${(e as Error).message}`;
  }
  return undefined;
}

function highSTwin(sig: Uint8Array): Uint8Array {
  const { r, s } = parseDerSignature(sig);
  return encodeDerSignature(r, P256_N - s);
}

describe('sha256', () => {
  it('matches the reference and the portable implementation', () => {
    const data = new TextEncoder().encode('abc');
    const ref = createHash('sha256').update(data).digest('hex');
    expect(sha256Hex(data)).toBe(ref);
    expect(Buffer.from(sha256(data)).toString('hex')).toBe(ref);
    expect(Buffer.from(portable.sha256(data)).toString('hex')).toBe(ref);
    expect(sha256(data)).toBeInstanceOf(Uint8Array);
  });
});

describe('node:crypto signatures', () => {
  const { privateKey, publicKey } = generateKeyPair();

  it('signs and verifies; rejects a signature over other bytes', () => {
    const sig = sign(privateKey, msg);
    expect(verify(publicKey, msg, sig)).toBe(true);
    expect(verify(publicKey, other, sig)).toBe(false);
    expect(codeOf(() => verifyOrThrow(publicKey, other, sig))).toBe(SignatureErrorCode.INVALID);
    expect(codeOf(() => verifyOrThrow(generateKeyPair().publicKey, msg, sig))).toBe(SignatureErrorCode.INVALID);
  });

  it('always produces low-S signatures', () => {
    for (let i = 0; i < 200; i++) {
      const { s } = parseDerSignature(sign(privateKey, msg));
      expect(s <= P256_HALF_N).toBe(true);
    }
  });

  it('rejects the high-S twin of a valid signature with SIGNATURE_HIGH_S', () => {
    const high = highSTwin(sign(privateKey, msg));
    expect(codeOf(() => verifyOrThrow(publicKey, msg, high))).toBe(SignatureErrorCode.HIGH_S);
    expect(verify(publicKey, msg, high)).toBe(false);
  });

  it('rejects non-strict DER', () => {
    const sig = sign(privateKey, msg);
    const trailing = new Uint8Array([...sig, 0]);
    expect(codeOf(() => verifyOrThrow(publicKey, msg, trailing))).toBe(SignatureErrorCode.INVALID);
    // Same SEQUENCE length byte bumped to cover a trailing byte inside it.
    const inner = new Uint8Array([...sig, 0]);
    inner[1] = inner[1]! + 1;
    expect(codeOf(() => verifyOrThrow(publicKey, msg, inner))).toBe(SignatureErrorCode.INVALID);
    // r with a redundant leading zero.
    const { r, s } = parseDerSignature(sig);
    const good = encodeDerSignature(r, s);
    const rLen = good[3]!;
    const padded = new Uint8Array([0x30, good[1]! + 1, 0x02, rLen + 1, 0x00, ...good.subarray(4)]);
    if (good[4]! < 0x80) expect(codeOf(() => verifyOrThrow(publicKey, msg, padded))).toBe(SignatureErrorCode.INVALID);
    // Long-form length.
    const longForm = new Uint8Array([0x30, 0x81, ...good.subarray(1)]);
    expect(codeOf(() => verifyOrThrow(publicKey, msg, longForm))).toBe(SignatureErrorCode.INVALID);
    expect(codeOf(() => verifyOrThrow(publicKey, msg, new Uint8Array([1, 2, 3])))).toBe(SignatureErrorCode.INVALID);
  });

  it('round-trips keys through PEM and DER and caches KeyObjects', () => {
    const pem = privateKeyToPem(privateKey);
    expect(pem).toContain('BEGIN PRIVATE KEY');
    const again = privateKeyFromPem(pem);
    expect(privateKeyFromPem(pem)).toBe(again);
    const pubPem = publicKeyToPem(publicKey);
    expect(publicKeyFromPem(pubPem)).toBe(publicKeyFromPem(pubPem));
    const sig = signerFromPem(pem).sign(msg) as Uint8Array;
    expect(verify(pubPem, msg, sig)).toBe(true);
    expect(verify(publicKeyFromDer(publicKeyToDer(publicKey)), msg, sig)).toBe(true);
  });
});

describe('portable (@noble) signatures', () => {
  it('always produces low-S signatures that verify', () => {
    const { secretKey, publicKey } = portable.generateKeyPair();
    for (let i = 0; i < 50; i++) {
      const m = new TextEncoder().encode(`message ${i}`);
      const sig = portable.sign(secretKey, m);
      expect(parseDerSignature(sig).s <= P256_HALF_N).toBe(true);
      expect(portable.verify(publicKey, m, sig)).toBe(true);
    }
  });

  it('rejects high-S and wrong-message signatures like node:crypto does', () => {
    const { secretKey, publicKey } = portable.generateKeyPair();
    const sig = portable.sign(secretKey, msg);
    expect(codeOf(() => portable.verifyOrThrow(publicKey, msg, highSTwin(sig)))).toBe(SignatureErrorCode.HIGH_S);
    expect(codeOf(() => portable.verifyOrThrow(publicKey, other, sig))).toBe(SignatureErrorCode.INVALID);
    expect(portable.verify(publicKey, other, sig)).toBe(false);
  });

  it('interoperates with node:crypto in both directions, through PEM keys', () => {
    // node key → portable signer; portable verify of node signatures.
    const node = generateKeyPair();
    const nodePubPem = publicKeyToPem(node.publicKey);
    const nodeSig = sign(node.privateKey, msg);
    expect(portable.verify(nodePubPem, msg, nodeSig)).toBe(true);
    expect(portable.verify(publicKeyToDer(node.publicKey), msg, nodeSig)).toBe(true);
    const fromNodePem = portable.signerFromPem(privateKeyToPem(node.privateKey)).sign(msg) as Uint8Array;
    expect(verify(node.publicKey, msg, fromNodePem)).toBe(true);

    // portable key → node verify; node signer from the portable PEM.
    const p = portable.generateKeyPair();
    const pPem = portable.secretKeyToPem(p.secretKey);
    const pPubPem = portable.publicKeyToPem(p.publicKey);
    const pSig = portable.sign(p.secretKey, msg);
    expect(verify(pPubPem, msg, pSig)).toBe(true);
    const nodeFromPortable = sign(privateKeyFromPem(pPem), msg);
    expect(portable.verify(p.publicKey, msg, nodeFromPortable)).toBe(true);
    expect(Buffer.from(portable.secretKeyFromPem(pPem)).equals(Buffer.from(p.secretKey))).toBe(true);
    expect(publicKeyToPem(publicKeyFromPem(pPubPem))).toBe(pPubPem);
  });
});

describe('portability', () => {
  it('crypto/portable.ts and everything it imports stay free of node: modules', async () => {
    const { readFile } = await import('node:fs/promises');
    const { dirname, join } = await import('node:path');
    const seen = new Set<string>();
    const visit = async (file: string): Promise<void> => {
      if (seen.has(file)) return;
      seen.add(file);
      const src = await readFile(file, 'utf8');
      for (const m of src.matchAll(/^\s*(?:import|export)\b[^'";]*?from\s+'([^']+)'|^\s*import\s+'([^']+)'/gm)) {
        const spec = (m[1] ?? m[2])!;
        expect(spec.startsWith('node:'), `${file} imports ${spec}`).toBe(false);
        expect(['fs', 'crypto', 'path', 'os'].includes(spec), `${file} imports ${spec}`).toBe(false);
        if (spec.startsWith('.')) await visit(join(dirname(file), spec.replace(/\.js$/, '.ts')));
      }
    };
    await visit(new URL('./portable.ts', import.meta.url).pathname);
    expect(seen.size).toBeGreaterThan(3);
  });
});
