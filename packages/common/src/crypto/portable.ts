/**
 * The same signatures and hashes as signing.ts/hash.ts in pure JavaScript (@noble/curves,
 * @noble/hashes), for browsers and other places without node:crypto. Keys are plain bytes:
 * a 32-byte secret scalar and a 65-byte uncompressed public point; PEM conversion is PKCS#8 / SPKI,
 * the same files node:crypto reads and writes. Signatures are DER, low-S, and interoperate with the
 * node:crypto ones in both directions. Nothing here (or imported from here) may touch `node:`.
 */
import { p256 } from '@noble/curves/nist.js';
import { sha256 as nobleSha256 } from '@noble/hashes/sha2.js';
import { LoomError } from '../errors.js';
import {
  DerError,
  DerTag,
  decodeOid,
  decodePemBlocks,
  derChildren,
  derContent,
  encodeDer,
  encodePem,
  expectTag,
  readDerWhole,
} from './asn1.js';
import type { Signer } from './signer.js';
import {
  compactToDer,
  encodeDerSignature,
  isHighS,
  P256_N,
  parseDerSignature,
  SignatureErrorCode,
  signatureHighS,
  signatureInvalid,
} from './signature-der.js';

export interface PortableKeyPair {
  /** 32-byte big-endian secret scalar. */
  readonly secretKey: Uint8Array;
  /** 65-byte uncompressed SEC1 point (0x04 ‖ x ‖ y). */
  readonly publicKey: Uint8Array;
}

/** Raw point (33 or 65 bytes), SPKI DER, or SPKI PEM. */
export type PortablePublicKeyInput = Uint8Array | string;

const OID_EC_PUBLIC_KEY = '1.2.840.10045.2.1';
const OID_P256 = '1.2.840.10045.3.1.7';
const KEY_MALFORMED = 'KEY_MALFORMED';

function keyMalformed(reason: string): LoomError {
  return new LoomError(KEY_MALFORMED, `malformed key: ${reason}`, { httpStatus: 400, details: { reason } });
}

export function sha256(data: Uint8Array): Uint8Array {
  return nobleSha256(data);
}

export function generateKeyPair(): PortableKeyPair {
  const secretKey = p256.utils.randomSecretKey();
  return { secretKey, publicKey: p256.getPublicKey(secretKey, false) };
}

export function publicKeyFromSecret(secretKey: Uint8Array): Uint8Array {
  return p256.getPublicKey(secretKey, false);
}

/** DER signature over SHA-256(message), always low-S. */
export function sign(secretKey: Uint8Array, message: Uint8Array): Uint8Array {
  const compact = p256.sign(message, secretKey, { prehash: true, lowS: true, format: 'compact' });
  const der = compactToDer(compact);
  // noble already normalizes; re-check so a library change can never leak a high-S signature.
  const { r, s } = parseDerSignature(der);
  return isHighS(s) ? encodeDerSignature(r, P256_N - s) : der;
}

export function verifyOrThrow(publicKey: PortablePublicKeyInput, message: Uint8Array, derSig: Uint8Array): void {
  const { r, s } = parseDerSignature(derSig);
  const point = toPublicPoint(publicKey);
  const compact = new Uint8Array(64);
  compact.set(toFixed32(r), 0);
  compact.set(toFixed32(s), 32);
  let ok: boolean;
  try {
    ok = p256.verify(compact, message, point, { prehash: true, lowS: false, format: 'compact' });
  } catch (e) {
    throw signatureInvalid((e as Error).message);
  }
  if (!ok) throw signatureInvalid('signature does not match message and key');
  if (isHighS(s)) throw signatureHighS();
}

export function verify(publicKey: PortablePublicKeyInput, message: Uint8Array, derSig: Uint8Array): boolean {
  try {
    verifyOrThrow(publicKey, message, derSig);
    return true;
  } catch (e) {
    if (e instanceof LoomError && (e.code === SignatureErrorCode.INVALID || e.code === SignatureErrorCode.HIGH_S)) {
      return false;
    }
    throw e;
  }
}

export function signerFromSecretKey(secretKey: Uint8Array): Signer {
  return { sign: (message: Uint8Array) => sign(secretKey, message) };
}

/** Portable counterpart of signing.ts `signerFromPem`: PKCS#8 or SEC1 PEM. */
export function signerFromPem(pem: string): Signer {
  return signerFromSecretKey(secretKeyFromPem(pem));
}

// ---- key encodings ----

function toFixed32(v: bigint): Uint8Array {
  const hex = v.toString(16).padStart(64, '0');
  const out = new Uint8Array(32);
  for (let i = 0; i < 32; i++) out[i] = Number.parseInt(hex.slice(i * 2, i * 2 + 2), 16);
  return out;
}

function checkCurve(algId: Uint8Array): void {
  const alg = readDerWhole(algId, DerTag.SEQUENCE);
  const parts = derChildren(algId, alg);
  const oid = decodeOid(derContent(algId, expectTag(parts[0], DerTag.OID, 'algorithm')));
  const curve = decodeOid(derContent(algId, expectTag(parts[1], DerTag.OID, 'curve')));
  if (oid !== OID_EC_PUBLIC_KEY || curve !== OID_P256) throw keyMalformed('not an ECDSA P-256 key');
}

function parseSec1(der: Uint8Array): Uint8Array {
  const seq = readDerWhole(der, DerTag.SEQUENCE);
  const parts = derChildren(der, seq);
  const version = derContent(der, expectTag(parts[0], DerTag.INTEGER, 'version'));
  if (version.length !== 1 || version[0] !== 1) throw keyMalformed('unsupported EC private key version');
  const d = derContent(der, expectTag(parts[1], DerTag.OCTET_STRING, 'privateKey'));
  if (d.length !== 32) throw keyMalformed('P-256 private key must be 32 bytes');
  for (const p of parts.slice(2)) {
    if (p.tag === 0xa0) {
      const inner = derContent(der, p);
      const oid = decodeOid(derContent(inner, expectTag(readDerWhole(inner), DerTag.OID, 'curve')));
      if (oid !== OID_P256) throw keyMalformed('not a P-256 key');
    }
  }
  return d.slice();
}

/** The 32-byte scalar from a PKCS#8 ("PRIVATE KEY") or SEC1 ("EC PRIVATE KEY") PEM. */
export function secretKeyFromPem(pem: string): Uint8Array {
  try {
    const block = decodePemBlocks(pem).find((b) => b.label === 'PRIVATE KEY' || b.label === 'EC PRIVATE KEY');
    if (!block) throw keyMalformed('no PRIVATE KEY or EC PRIVATE KEY block');
    const der = block.der;
    if (block.label === 'EC PRIVATE KEY') return parseSec1(der);
    const seq = readDerWhole(der, DerTag.SEQUENCE);
    const parts = derChildren(der, seq);
    const version = derContent(der, expectTag(parts[0], DerTag.INTEGER, 'version'));
    if (version.length !== 1 || version[0] !== 0) throw keyMalformed('unsupported PKCS#8 version');
    const alg = expectTag(parts[1], DerTag.SEQUENCE, 'algorithm');
    checkCurve(der.subarray(alg.headerStart, alg.end));
    return parseSec1(derContent(der, expectTag(parts[2], DerTag.OCTET_STRING, 'privateKey')));
  } catch (e) {
    if (e instanceof DerError) throw keyMalformed(e.message);
    throw e;
  }
}

const PKCS8_P256_PREFIX = Uint8Array.from([
  0x02, 0x01, 0x00, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86, 0x48,
  0xce, 0x3d, 0x03, 0x01, 0x07,
]);
const EC_ALG_ID = Uint8Array.from([
  0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03,
  0x01, 0x07,
]);

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** PKCS#8 PEM with the public key included, as node:crypto and OpenSSL write it. */
export function secretKeyToPem(secretKey: Uint8Array): string {
  if (secretKey.length !== 32) throw keyMalformed('P-256 private key must be 32 bytes');
  const pub = p256.getPublicKey(secretKey, false);
  const sec1 = encodeDer(
    DerTag.SEQUENCE,
    concat(
      Uint8Array.from([0x02, 0x01, 0x01]),
      encodeDer(DerTag.OCTET_STRING, secretKey),
      encodeDer(0xa1, encodeDer(DerTag.BIT_STRING, concat(Uint8Array.of(0), pub))),
    ),
  );
  return encodePem('PRIVATE KEY', encodeDer(DerTag.SEQUENCE, concat(PKCS8_P256_PREFIX, encodeDer(0x04, sec1))));
}

/** SubjectPublicKeyInfo DER for an uncompressed or compressed point. */
export function publicKeyToDer(point: Uint8Array): Uint8Array {
  const uncompressed = p256.Point.fromBytes(point).toBytes(false);
  return encodeDer(
    DerTag.SEQUENCE,
    concat(EC_ALG_ID, encodeDer(DerTag.BIT_STRING, concat(Uint8Array.of(0), uncompressed))),
  );
}

export function publicKeyToPem(point: Uint8Array): string {
  return encodePem('PUBLIC KEY', publicKeyToDer(point));
}

function pointFromSpki(der: Uint8Array): Uint8Array {
  const seq = readDerWhole(der, DerTag.SEQUENCE);
  const parts = derChildren(der, seq);
  const alg = expectTag(parts[0], DerTag.SEQUENCE, 'algorithm');
  checkCurve(der.subarray(alg.headerStart, alg.end));
  const bits = derContent(der, expectTag(parts[1], DerTag.BIT_STRING, 'subjectPublicKey'));
  if (bits[0] !== 0) throw keyMalformed('unused bits in public key');
  return bits.slice(1);
}

/** Raw point from a raw point, SPKI DER or SPKI PEM; checks it is on the curve. */
export function toPublicPoint(input: PortablePublicKeyInput): Uint8Array {
  try {
    let point: Uint8Array;
    if (typeof input === 'string') {
      const block = decodePemBlocks(input).find((b) => b.label === 'PUBLIC KEY');
      if (!block) throw keyMalformed('no PUBLIC KEY block');
      point = pointFromSpki(block.der);
    } else if (input[0] === DerTag.SEQUENCE) {
      point = pointFromSpki(input);
    } else {
      point = input;
    }
    p256.Point.fromBytes(point).assertValidity();
    return point;
  } catch (e) {
    if (e instanceof LoomError) throw e;
    throw keyMalformed((e as Error).message);
  }
}
