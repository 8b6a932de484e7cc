/**
 * The fast path of `decodeValue` (encoding.ts): one pass over the bytes that decodes the subset of
 * CBOR Loom's structures use — unsigned and negative integers in the safe range, byte strings, UTF-8
 * text, definite-length arrays, false/true/null — and checks, on the way, that every head is in its
 * shortest form, so the input is the canonical encoding of what it decodes to. No re-encoding.
 *
 * It answers only when it is certain: anything outside that subset or not canonical (maps, floats,
 * tags, indefinite lengths, other simple values, integers beyond 2^53, a non-shortest head, text that
 * is not strict UTF-8 or starts with a byte-order mark, truncated or trailing bytes, nesting deeper
 * than 64) returns `NOT_DECODED` and the caller takes the general path (cborg, then re-encode and
 * compare), which accepts or rejects exactly as before. Where this path answers, that general path
 * would have returned the same value, so the two are interchangeable.
 *
 * Byte strings come back as views into ONE private copy of the input (made only when the input has a
 * byte string): the caller's buffer is not aliased, and a decode costs one allocation instead of one
 * per byte string (each a separate ArrayBuffer, which is what made decoding expensive for the GC).
 * Nested structures travel as byte strings inside their parents (an envelope's payload, ...); when
 * the input is itself a byte string this decoder returned, it is not copied again: the nested
 * decode's byte strings are views into the same private copy. A decoded byte string's `.buffer` is
 * therefore that copy, not an exactly-sized buffer: use `byteOffset`/`byteLength` with it, as with
 * any Uint8Array view, and treat decoded bytes as read-only (writing into one would show through
 * the values decoded from it).
 *
 * Pure and browser-portable.
 */

/** Returned when the fast path does not decide; the caller decodes the general way. */
export const NOT_DECODED: unique symbol = Symbol('NOT_DECODED');

const MAX_DEPTH = 64;
const TWO_POW_32 = 0x1_0000_0000;
/** Largest high word of a 64-bit head whose value stays within Number.MAX_SAFE_INTEGER. */
const MAX_SAFE_HI = 0x1f_ffff;

const utf8Strict = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** The private copies byte strings are views into (see the module comment). */
const owned = new WeakSet<ArrayBufferLike>();

class Bail {}
const BAIL = new Bail();

class Reader {
  pos = 0;
  #copy: Uint8Array | undefined;
  constructor(readonly bytes: Uint8Array) {}

  /** The argument of the head at `pos` (major type already read from `initial`); shortest form enforced. */
  arg(initial: number): number {
    const ai = initial & 31;
    const b = this.bytes;
    if (ai < 24) return ai;
    let v: number;
    if (ai === 24) {
      if (this.pos + 1 > b.length) throw BAIL;
      v = b[this.pos]!;
      this.pos += 1;
      if (v < 24) throw BAIL;
    } else if (ai === 25) {
      if (this.pos + 2 > b.length) throw BAIL;
      v = (b[this.pos]! << 8) | b[this.pos + 1]!;
      this.pos += 2;
      if (v < 0x100) throw BAIL;
    } else if (ai === 26) {
      if (this.pos + 4 > b.length) throw BAIL;
      v = b[this.pos]! * 0x100_0000 + ((b[this.pos + 1]! << 16) | (b[this.pos + 2]! << 8) | b[this.pos + 3]!);
      this.pos += 4;
      if (v < 0x1_0000) throw BAIL;
    } else if (ai === 27) {
      if (this.pos + 8 > b.length) throw BAIL;
      const p = this.pos;
      const hi = b[p]! * 0x100_0000 + ((b[p + 1]! << 16) | (b[p + 2]! << 8) | b[p + 3]!);
      const lo = b[p + 4]! * 0x100_0000 + ((b[p + 5]! << 16) | (b[p + 6]! << 8) | b[p + 7]!);
      this.pos += 8;
      if (hi === 0 || hi > MAX_SAFE_HI) throw BAIL;
      v = hi * TWO_POW_32 + lo;
    } else {
      throw BAIL; // 28..30 reserved, 31 indefinite
    }
    return v;
  }

  view(start: number, end: number): Uint8Array {
    if (this.#copy === undefined) {
      if (owned.has(this.bytes.buffer)) {
        this.#copy = this.bytes;
      } else {
        this.#copy = new Uint8Array(this.bytes);
        owned.add(this.#copy.buffer);
      }
    }
    return this.#copy.subarray(start, end);
  }

  item(depth: number): unknown {
    const b = this.bytes;
    if (this.pos >= b.length) throw BAIL;
    const initial = b[this.pos++]!;
    const major = initial >> 5;
    switch (major) {
      case 0:
        return this.arg(initial);
      case 1: {
        const n = this.arg(initial);
        // -1 - n must stay a safe integer.
        if (n >= Number.MAX_SAFE_INTEGER) throw BAIL;
        return -1 - n;
      }
      case 2: {
        const len = this.arg(initial);
        const start = this.pos;
        if (len > b.length - start) throw BAIL;
        this.pos = start + len;
        return this.view(start, start + len);
      }
      case 3: {
        const len = this.arg(initial);
        const start = this.pos;
        if (len > b.length - start) throw BAIL;
        this.pos = start + len;
        return text(b, start, start + len);
      }
      case 4: {
        const len = this.arg(initial);
        // Every item takes at least one byte.
        if (len > b.length - this.pos || depth >= MAX_DEPTH) throw BAIL;
        const out = new Array<unknown>(len);
        for (let i = 0; i < len; i++) out[i] = this.item(depth + 1);
        return out;
      }
      case 7:
        if (initial === 0xf4) return false;
        if (initial === 0xf5) return true;
        if (initial === 0xf6) return null;
        throw BAIL;
      default:
        throw BAIL; // maps (5) and tags (6)
    }
  }
}

/** Strict UTF-8 text; bails on invalid UTF-8 and on a leading byte-order mark. */
function text(b: Uint8Array, start: number, end: number): string {
  let ascii = true;
  for (let i = start; i < end; i++) {
    if (b[i]! >= 0x80) {
      ascii = false;
      break;
    }
  }
  if (ascii) {
    if (end - start <= 128) return String.fromCharCode.apply(null, b.subarray(start, end) as unknown as number[]);
    return utf8Strict.decode(b.subarray(start, end));
  }
  if (end - start >= 3 && b[start] === 0xef && b[start + 1] === 0xbb && b[start + 2] === 0xbf) throw BAIL;
  try {
    return utf8Strict.decode(b.subarray(start, end));
  } catch {
    throw BAIL;
  }
}

/** The value `bytes` canonically encodes, or NOT_DECODED when the general path must decide. */
export function decodeCanonicalFast(bytes: Uint8Array): unknown {
  const r = new Reader(bytes);
  try {
    const v = r.item(0);
    return r.pos === bytes.length ? v : NOT_DECODED;
  } catch (e) {
    if (e === BAIL) return NOT_DECODED;
    throw e;
  }
}
