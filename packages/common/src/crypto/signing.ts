/**
 * ECDSA P-256 / SHA-256 through node:crypto (OpenSSL): the hot path for every signature a node makes
 * or checks. Signatures are DER and always low-S (see signature-der.ts); verification refuses high-S.
 */
import {
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
  sign as nodeSign,
  verify as nodeVerify,
} from 'node:crypto';
import { isLoomError, LoomError } from '../errors.js';
import type { Signer } from './signer.js';
import {
  encodeDerSignature,
  isHighS,
  P256_N,
  parseDerSignature,
  SignatureErrorCode,
  signatureHighS,
  signatureInvalid,
} from './signature-der.js';

export type { KeyObject };

export interface KeyPair {
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
}

/** A public key as callers hold it: a KeyObject, a PEM (SPKI or certificate), or SPKI DER bytes. */
export type PublicKeyInput = KeyObject | string | Uint8Array;

export const KeyErrorCode = {
  MALFORMED: 'KEY_MALFORMED',
  WRONG_TYPE: 'KEY_WRONG_TYPE',
} as const;

const CACHE_LIMIT = 4096;

/** Insertion-ordered map that forgets its oldest entry past a size limit. */
class BoundedCache<V> {
  readonly #map = new Map<string, V>();
  constructor(readonly limit: number) {}
  get(k: string): V | undefined {
    return this.#map.get(k);
  }
  set(k: string, v: V): void {
    if (this.#map.size >= this.limit) {
      const oldest = this.#map.keys().next();
      if (!oldest.done) this.#map.delete(oldest.value);
    }
    this.#map.set(k, v);
  }
}

const privateKeyCache = new BoundedCache<KeyObject>(CACHE_LIMIT);
const publicKeyCache = new BoundedCache<KeyObject>(CACHE_LIMIT);

function assertP256(key: KeyObject, kind: 'private' | 'public'): KeyObject {
  if (key.type !== kind || key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
    throw new LoomError(KeyErrorCode.WRONG_TYPE, `expected an ECDSA P-256 ${kind} key`, { httpStatus: 400 });
  }
  return key;
}

function keyMalformed(what: string, cause: unknown): LoomError {
  return new LoomError(KeyErrorCode.MALFORMED, `malformed ${what}: ${(cause as Error)?.message ?? cause}`, {
    httpStatus: 400,
    cause,
  });
}

export function generateKeyPair(): KeyPair {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return { privateKey, publicKey };
}

/** PKCS#8 PEM ("BEGIN PRIVATE KEY"), the form Fabric keystores hold. */
export function privateKeyToPem(key: KeyObject): string {
  return key.export({ type: 'pkcs8', format: 'pem' }) as string;
}

/** Accepts PKCS#8 or SEC1 ("BEGIN EC PRIVATE KEY") PEM. Cached by PEM text. */
export function privateKeyFromPem(pem: string): KeyObject {
  const hit = privateKeyCache.get(pem);
  if (hit) return hit;
  let key: KeyObject;
  try {
    key = createPrivateKey(pem);
  } catch (e) {
    throw keyMalformed('private key PEM', e);
  }
  assertP256(key, 'private');
  privateKeyCache.set(pem, key);
  return key;
}

export function publicKeyOf(privateKey: KeyObject): KeyObject {
  return createPublicKey(privateKey);
}

export function publicKeyToPem(key: KeyObject): string {
  return key.export({ type: 'spki', format: 'pem' }) as string;
}

/** SubjectPublicKeyInfo DER. */
export function publicKeyToDer(key: KeyObject): Uint8Array {
  const b = key.export({ type: 'spki', format: 'der' });
  return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
}

/** SPKI PEM or a certificate PEM (its subject key). Cached by PEM text. */
export function publicKeyFromPem(pem: string): KeyObject {
  const hit = publicKeyCache.get(pem);
  if (hit) return hit;
  let key: KeyObject;
  try {
    key = createPublicKey(pem);
  } catch (e) {
    throw keyMalformed('public key PEM', e);
  }
  assertP256(key, 'public');
  publicKeyCache.set(pem, key);
  return key;
}

/** SPKI DER. Cached by content. */
export function publicKeyFromDer(der: Uint8Array): KeyObject {
  const buf = Buffer.from(der.buffer, der.byteOffset, der.byteLength);
  const cacheKey = `der:${buf.toString('base64')}`;
  const hit = publicKeyCache.get(cacheKey);
  if (hit) return hit;
  let key: KeyObject;
  try {
    key = createPublicKey({ key: buf, format: 'der', type: 'spki' });
  } catch (e) {
    throw keyMalformed('public key DER', e);
  }
  assertP256(key, 'public');
  publicKeyCache.set(cacheKey, key);
  return key;
}

export function toPublicKey(input: PublicKeyInput): KeyObject {
  if (typeof input === 'string') return publicKeyFromPem(input);
  if (input instanceof Uint8Array) return publicKeyFromDer(input);
  return input.type === 'private' ? createPublicKey(input) : input;
}

/** DER signature over SHA-256(message), normalized to low-S. */
export function sign(privateKey: KeyObject, message: Uint8Array): Uint8Array {
  const b = nodeSign('sha256', message, privateKey);
  const der = new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
  const { r, s } = parseDerSignature(der);
  return isHighS(s) ? encodeDerSignature(r, P256_N - s) : der;
}

/**
 * Throws SIGNATURE_INVALID (malformed DER, wrong key or message) or SIGNATURE_HIGH_S. The strict
 * parse runs first so OpenSSL never sees a non-canonical encoding.
 */
export function verifyOrThrow(publicKey: PublicKeyInput, message: Uint8Array, derSig: Uint8Array): void {
  const { s } = parseDerSignature(derSig);
  const key = toPublicKey(publicKey);
  let ok: boolean;
  try {
    ok = nodeVerify('sha256', message, key, derSig);
  } catch (e) {
    throw signatureInvalid((e as Error).message);
  }
  if (!ok) throw signatureInvalid('signature does not match message and key');
  // Checked after the math so the error says which rule a genuine signature broke.
  if (isHighS(s)) throw signatureHighS();
}

/** True only for a strict-DER, low-S signature that verifies. */
export function verify(publicKey: PublicKeyInput, message: Uint8Array, derSig: Uint8Array): boolean {
  try {
    verifyOrThrow(publicKey, message, derSig);
    return true;
  } catch (e) {
    if (isLoomError(e, SignatureErrorCode.INVALID) || isLoomError(e, SignatureErrorCode.HIGH_S)) return false;
    throw e;
  }
}

export function signerFromKey(privateKey: KeyObject): Signer {
  assertP256(privateKey, 'private');
  return { sign: (message: Uint8Array) => sign(privateKey, message) };
}

export function signerFromPem(pem: string): Signer {
  return signerFromKey(privateKeyFromPem(pem));
}
