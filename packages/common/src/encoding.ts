/**
 * Loom's one wire encoding: deterministic CBOR (RFC 8949 §4.2 core deterministic encoding) through
 * `cborg`. Structures are positional CBOR arrays with a fixed field order, so every value has
 * exactly one encoding; decoding is strict (minimal integers and lengths, no indefinite lengths,
 * no undefined, no floats where integers are expected) and every decoded structure is re-encoded
 * and compared with the input, so a non-canonical encoding is rejected rather than silently
 * accepted under a different hash. Signed structures travel as byte strings inside their parents
 * (`Envelope.payload`, `Proposal.header`, ...): signatures and hashes are always computed over the
 * bytes that were transmitted, never over a re-serialization.
 *
 * This module is pure and browser-portable (no node: imports).
 */
import { decode as cborDecode, encode as cborEncode, rfc8949EncodeOptions } from 'cborg';
import { encodeFast } from './cbor-encode-fast.js';
import { decodeCanonicalFast, NOT_DECODED } from './canonical-cbor.js';
import { EncodingErrorCode, LoomError } from './errors.js';

export type Bytes = Uint8Array;

const decodeOptions = {
  strict: true,
  allowIndefinite: false,
  allowUndefined: false,
  allowInfinity: false,
  allowNaN: false,
  allowBigInt: false,
  rejectDuplicateMapKeys: true,
  useMaps: false,
} as const;

/** Encodes plain data (arrays, maps with string keys, strings, safe integers, bytes, booleans, null). */
export function encodeValue(value: unknown): Bytes {
  // Arrays of bytes, integers and ASCII text (most of what is encoded) without cborg's token objects.
  return encodeFast(value) ?? cborEncode(value, rfc8949EncodeOptions);
}

/**
 * Decodes strictly and rejects any input that is not the canonical encoding of its value. Byte
 * strings in the result may be views into one private copy of the input (canonical-cbor.ts).
 */
export function decodeValue(bytes: Bytes, what: string): unknown {
  if (!(bytes instanceof Uint8Array)) {
    throw new LoomError(EncodingErrorCode.MALFORMED, `${what}: expected bytes`, { details: { what } });
  }
  // One pass that decodes and checks canonical form together, for the CBOR subset Loom's structures
  // use; anything else (or anything it is unsure of) is decided below as before.
  const fast = decodeCanonicalFast(bytes);
  if (fast !== NOT_DECODED) return fast;
  let value: unknown;
  try {
    value = cborDecode(bytes, decodeOptions);
  } catch (e) {
    throw new LoomError(EncodingErrorCode.MALFORMED, `${what}: malformed encoding: ${(e as Error).message}`, {
      details: { what },
      cause: e,
    });
  }
  const again = encodeValue(value);
  if (!bytesEqual(again, bytes)) {
    throw new LoomError(EncodingErrorCode.NON_CANONICAL, `${what}: not in canonical encoding`, { details: { what } });
  }
  return value;
}

export function bytesEqual(a: Bytes, b: Bytes): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

export function concatBytes(...parts: Bytes[]): Bytes {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** The reused buffer's size: inputs up to this are hashed without allocating. */
const SCRATCH_BYTES = 64 * 1024;
const scratch = new Uint8Array(SCRATCH_BYTES);

/**
 * `hash(a ‖ b ‖ …)` without allocating the concatenation: the parts are copied into one reused
 * buffer and `hash` (synchronous) reads it there. For hashes computed thousands of times per block
 * (Merkle leaves and nodes, txIds, proposal hashes), where a fresh array per call costs more than
 * the hashing. A larger input (a rare big envelope) gets an array of its own, so the process never
 * keeps a buffer the size of the largest transaction it ever saw.
 */
export function hashConcat(hash: (data: Bytes) => Bytes, ...parts: Bytes[]): Bytes {
  let n = 0;
  for (const p of parts) n += p.length;
  if (n > SCRATCH_BYTES) return hash(concatBytes(...parts));
  const buf = scratch;
  let o = 0;
  for (const p of parts) {
    buf.set(p, o);
    o += p.length;
  }
  const out = hash(buf.subarray(0, n));
  // A hash that handed back (part of) its input would alias the buffer reused by the next call.
  return out.buffer === buf.buffer ? out.slice() : out;
}

const hexChars = '0123456789abcdef';
export function toHex(b: Bytes): string {
  let s = '';
  for (let i = 0; i < b.length; i++) {
    const v = b[i]!;
    s += hexChars[v >> 4]! + hexChars[v & 15]!;
  }
  return s;
}

export function fromHex(s: string): Bytes {
  if (s.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(s)) {
    throw new LoomError(EncodingErrorCode.MALFORMED, 'invalid hex string');
  }
  const out = new Uint8Array(s.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = Number.parseInt(s.slice(i * 2, i * 2 + 2), 16);
  return out;
}

const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder('utf-8', { fatal: true });
export const utf8 = (s: string): Bytes => textEncoder.encode(s);
export const fromUtf8 = (b: Bytes): string => textDecoder.decode(b);

export function toBase64(b: Bytes): string {
  let s = '';
  for (let i = 0; i < b.length; i += 0x8000) s += String.fromCharCode(...b.subarray(i, i + 0x8000));
  return btoa(s);
}

export function fromBase64(s: string): Bytes {
  let bin: string;
  try {
    bin = atob(s);
  } catch {
    throw new LoomError(EncodingErrorCode.MALFORMED, 'invalid base64 string');
  }
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

// ---- shape readers: turn a decoded CBOR value into typed fields, or throw ENCODING_WRONG_SHAPE ----

function wrongShape(what: string, expected: string): LoomError {
  return new LoomError(EncodingErrorCode.WRONG_SHAPE, `${what}: expected ${expected}`, { details: { what } });
}

export function readTuple(v: unknown, length: number, what: string): unknown[] {
  if (!Array.isArray(v) || v.length !== length) throw wrongShape(what, `an array of ${length} fields`);
  return v;
}

export function readList<T>(v: unknown, what: string, item: (x: unknown, what: string) => T, max = 1_000_000): T[] {
  if (!Array.isArray(v) || v.length > max) throw wrongShape(what, 'a list');
  return v.map((x, i) => item(x, `${what}[${i}]`));
}

export function readBytes(v: unknown, what: string): Bytes {
  if (!(v instanceof Uint8Array)) throw wrongShape(what, 'bytes');
  return v;
}

export function readText(v: unknown, what: string): string {
  if (typeof v !== 'string') throw wrongShape(what, 'text');
  return v;
}

export function readUint(v: unknown, what: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw wrongShape(what, 'an unsigned integer');
  return v;
}

export function readBool(v: unknown, what: string): boolean {
  if (typeof v !== 'boolean') throw wrongShape(what, 'a boolean');
  return v;
}

export function readOptional<T>(v: unknown, what: string, item: (x: unknown, what: string) => T): T | null {
  return v === null ? null : item(v, what);
}

/**
 * A string-keyed map travels as a list of [key, value] pairs in strictly ascending key order
 * (UTF-16 code unit order, the same order `Array.prototype.sort` gives), so it has one encoding.
 */
export function encodeSortedMap<V>(m: ReadonlyMap<string, V> | Record<string, V>): [string, V][] {
  const entries = m instanceof Map ? [...m.entries()] : Object.entries(m as Record<string, V>);
  entries.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  return entries;
}

export function readSortedMap<V>(v: unknown, what: string, item: (x: unknown, what: string) => V): Map<string, V> {
  const pairs = readList(v, what, (p, w) => readTuple(p, 2, w));
  const out = new Map<string, V>();
  let prev: string | undefined;
  for (const [i, p] of pairs.entries()) {
    const k = readText(p[0], `${what}[${i}].key`);
    if (prev !== undefined && !(prev < k)) throw wrongShape(what, 'keys in strictly ascending order');
    prev = k;
    out.set(k, item(p[1], `${what}[${k}]`));
  }
  return out;
}
