/**
 * ECDSA P-256 signatures as Loom carries them: ASN.1 DER `SEQUENCE { r INTEGER, s INTEGER }`, always
 * low-S. A signature with s > n/2 is the malleable twin of a valid one (same message, same key, other
 * bytes) and is rejected, so every signed message has one signature per signing event and a txId or
 * block hash that includes signatures cannot be altered by a third party. Pure and browser-portable.
 */
import { LoomError } from '../errors.js';

export const SignatureErrorCode = {
  /** Wrong key, wrong message, or not a well-formed strict-DER ECDSA signature. */
  INVALID: 'SIGNATURE_INVALID',
  /** A valid signature in its high-S form: malleable, so refused. */
  HIGH_S: 'SIGNATURE_HIGH_S',
} as const;

/** Order of the P-256 base point. */
export const P256_N = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n;
export const P256_HALF_N = P256_N >> 1n;

export interface EcdsaSignatureValues {
  readonly r: bigint;
  readonly s: bigint;
}

export function signatureInvalid(reason: string): LoomError {
  return new LoomError(SignatureErrorCode.INVALID, `invalid signature: ${reason}`, {
    httpStatus: 401,
    details: { reason },
  });
}

export function signatureHighS(): LoomError {
  return new LoomError(
    SignatureErrorCode.HIGH_S,
    'signature is not in low-S form (malleable signatures are rejected)',
    {
      httpStatus: 401,
    },
  );
}

function readInteger(sig: Uint8Array, p: number, end: number): { value: bigint; next: number } {
  if (p + 2 > end || sig[p] !== 0x02) throw signatureInvalid('expected INTEGER');
  const len = sig[p + 1]!;
  // r and s are below n < 2^256: at most 33 bytes, so the length is always in short form.
  if (len === 0 || len > 33) throw signatureInvalid('bad INTEGER length');
  const start = p + 2;
  const stop = start + len;
  if (stop > end) throw signatureInvalid('truncated INTEGER');
  const first = sig[start]!;
  if (first & 0x80) throw signatureInvalid('negative INTEGER');
  if (first === 0 && (len === 1 || !(sig[start + 1]! & 0x80))) throw signatureInvalid('non-minimal INTEGER');
  let hex = '';
  for (let i = start; i < stop; i++) hex += (sig[i]! < 16 ? '0' : '') + sig[i]!.toString(16);
  const value = BigInt(`0x${hex}`);
  if (value === 0n || value >= P256_N) throw signatureInvalid('INTEGER out of range');
  return { value, next: stop };
}

/** Strict parse: SEQUENCE with short-form length, two minimal positive INTEGERs in [1, n), nothing after. */
export function parseDerSignature(sig: Uint8Array): EcdsaSignatureValues {
  if (!(sig instanceof Uint8Array)) throw signatureInvalid('expected bytes');
  if (sig.length < 8 || sig.length > 72) throw signatureInvalid('bad length');
  if (sig[0] !== 0x30) throw signatureInvalid('expected SEQUENCE');
  if (sig[1] !== sig.length - 2) throw signatureInvalid('SEQUENCE length does not match (trailing bytes or long form)');
  const r = readInteger(sig, 2, sig.length);
  const s = readInteger(sig, r.next, sig.length);
  if (s.next !== sig.length) throw signatureInvalid('trailing bytes inside SEQUENCE');
  return { r: r.value, s: s.value };
}

function integerBytes(v: bigint): Uint8Array {
  let hex = v.toString(16);
  if (hex.length % 2) hex = `0${hex}`;
  if (Number.parseInt(hex.slice(0, 2), 16) & 0x80) hex = `00${hex}`;
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = Number.parseInt(hex.slice(i * 2, i * 2 + 2), 16);
  return out;
}

export function encodeDerSignature(r: bigint, s: bigint): Uint8Array {
  const rb = integerBytes(r);
  const sb = integerBytes(s);
  const out = new Uint8Array(6 + rb.length + sb.length);
  out[0] = 0x30;
  out[1] = 4 + rb.length + sb.length;
  out[2] = 0x02;
  out[3] = rb.length;
  out.set(rb, 4);
  out[4 + rb.length] = 0x02;
  out[5 + rb.length] = sb.length;
  out.set(sb, 6 + rb.length);
  return out;
}

export function isHighS(s: bigint): boolean {
  return s > P256_HALF_N;
}

const P256_N_BYTES = Uint8Array.from(P256_N.toString(16).match(/../g)!, (h) => Number.parseInt(h, 16));
const P256_HALF_N_BYTES = Uint8Array.from(P256_HALF_N.toString(16).padStart(64, '0').match(/../g)!, (h) =>
  Number.parseInt(h, 16),
);

/** The INTEGER at `p` (same rules as readInteger) compared with `limit` (32 bytes): -1, 0, 1; undefined when malformed. */
function compareInteger(
  sig: Uint8Array,
  p: number,
  end: number,
  limit: Uint8Array,
): { cmp: number; next: number } | undefined {
  if (p + 2 > end || sig[p] !== 0x02) return undefined;
  const len = sig[p + 1]!;
  if (len === 0 || len > 33) return undefined;
  let start = p + 2;
  const stop = start + len;
  if (stop > end) return undefined;
  const first = sig[start]!;
  if (first & 0x80) return undefined;
  if (first === 0 && (len === 1 || !(sig[start + 1]! & 0x80))) return undefined;
  if (first === 0) start++;
  // Minimal and positive: the magnitude has no leading zero byte, so longer means larger.
  const n = stop - start;
  if (n !== 32) return { cmp: n < 32 ? -1 : 1, next: stop };
  for (let i = 0; i < 32; i++) {
    const a = sig[start + i]!;
    const b = limit[i]!;
    if (a !== b) return { cmp: a < b ? -1 : 1, next: stop };
  }
  return { cmp: 0, next: stop };
}

/**
 * `!isHighS(parseDerSignature(sig).s)` without throwing or allocating: true only for a strict-DER
 * signature with r in [1, n) and s in [1, n/2]. For hot paths that check many signatures.
 */
export function isStrictLowSDer(sig: Uint8Array): boolean {
  if (!(sig instanceof Uint8Array) || sig.length < 8 || sig.length > 72) return false;
  if (sig[0] !== 0x30 || sig[1] !== sig.length - 2) return false;
  const r = compareInteger(sig, 2, sig.length, P256_N_BYTES);
  if (r === undefined || r.cmp >= 0) return false;
  const s = compareInteger(sig, r.next, sig.length, P256_HALF_N_BYTES);
  return s !== undefined && s.cmp <= 0 && s.next === sig.length;
}

/** Returns the low-S form of a DER signature (the same bytes when already low-S). */
export function toLowSDer(sig: Uint8Array): Uint8Array {
  const { r, s } = parseDerSignature(sig);
  return isHighS(s) ? encodeDerSignature(r, P256_N - s) : sig;
}

/** Throws SIGNATURE_INVALID for malformed DER and SIGNATURE_HIGH_S for the malleable form. */
export function assertLowSDer(sig: Uint8Array): EcdsaSignatureValues {
  const v = parseDerSignature(sig);
  if (isHighS(v.s)) throw signatureHighS();
  return v;
}

/** 64-byte r‖s (IEEE P1363) form, as WebCrypto and noble's compact format use. */
export function derToCompact(sig: Uint8Array): Uint8Array {
  const { r, s } = parseDerSignature(sig);
  const out = new Uint8Array(64);
  out.set(fixed32(r), 0);
  out.set(fixed32(s), 32);
  return out;
}

export function compactToDer(sig: Uint8Array): Uint8Array {
  if (sig.length !== 64) throw signatureInvalid('compact signature must be 64 bytes');
  return encodeDerSignature(bigFrom(sig.subarray(0, 32)), bigFrom(sig.subarray(32)));
}

function fixed32(v: bigint): Uint8Array {
  const hex = v.toString(16).padStart(64, '0');
  const out = new Uint8Array(32);
  for (let i = 0; i < 32; i++) out[i] = Number.parseInt(hex.slice(i * 2, i * 2 + 2), 16);
  return out;
}

function bigFrom(b: Uint8Array): bigint {
  let hex = '';
  for (const x of b) hex += (x < 16 ? '0' : '') + x.toString(16);
  return BigInt(`0x${hex || '0'}`);
}
