/**
 * Deterministic CBOR encoding (RFC 8949 §4.2.1) of the value shapes the ledger and protocol encode
 * thousands of times per block — arrays of byte strings, safe integers, ASCII text, booleans and
 * null — in two passes over the value (size, then bytes) with one allocation, byte for byte what
 * `cborg` with `rfc8949EncodeOptions` produces. Anything else (maps, floats, -0, non-ASCII text,
 * other typed arrays, holes) is left to cborg: `encodeFast` then returns undefined.
 *
 * Pure and browser-portable.
 */

/** Bytes of the head (major type + argument) for argument `n` ≥ 0 (a safe integer). */
function headSize(n: number): number {
  return n < 24 ? 1 : n < 0x100 ? 2 : n < 0x10000 ? 3 : n <= 0xffffffff ? 5 : 9;
}

/** Encoded size of `v`, or -1 when `v` is outside the shapes this encoder handles. */
function sizeOf(v: unknown, depth: number): number {
  if (v instanceof Uint8Array) return headSize(v.length) + v.length;
  switch (typeof v) {
    case 'number':
      if (!Number.isSafeInteger(v) || Object.is(v, -0)) return -1;
      return headSize(v < 0 ? -1 - v : v);
    case 'string': {
      for (let i = 0; i < v.length; i++) if (v.charCodeAt(i) > 0x7f) return -1;
      return headSize(v.length) + v.length;
    }
    case 'boolean':
      return 1;
    case 'object': {
      if (v === null) return 1;
      if (!Array.isArray(v) || depth > 64) return -1;
      let n = headSize(v.length);
      for (let i = 0; i < v.length; i++) {
        if (!(i in v)) return -1;
        const s = sizeOf(v[i], depth + 1);
        if (s < 0) return -1;
        n += s;
      }
      return n;
    }
    default:
      return -1;
  }
}

function writeHead(out: Uint8Array, o: number, major: number, n: number): number {
  const m = major << 5;
  if (n < 24) {
    out[o] = m | n;
    return o + 1;
  }
  if (n < 0x100) {
    out[o] = m | 24;
    out[o + 1] = n;
    return o + 2;
  }
  if (n < 0x10000) {
    out[o] = m | 25;
    out[o + 1] = n >>> 8;
    out[o + 2] = n & 0xff;
    return o + 3;
  }
  if (n <= 0xffffffff) {
    out[o] = m | 26;
    out[o + 1] = n >>> 24;
    out[o + 2] = (n >>> 16) & 0xff;
    out[o + 3] = (n >>> 8) & 0xff;
    out[o + 4] = n & 0xff;
    return o + 5;
  }
  out[o] = m | 27;
  const hi = Math.floor(n / 0x100000000);
  const lo = n >>> 0;
  out[o + 1] = 0;
  out[o + 2] = (hi >>> 16) & 0xff;
  out[o + 3] = (hi >>> 8) & 0xff;
  out[o + 4] = hi & 0xff;
  out[o + 5] = lo >>> 24;
  out[o + 6] = (lo >>> 16) & 0xff;
  out[o + 7] = (lo >>> 8) & 0xff;
  out[o + 8] = lo & 0xff;
  return o + 9;
}

/** Writes `v` (already sized by sizeOf) at `o`; returns the offset after it. */
function write(out: Uint8Array, o: number, v: unknown): number {
  if (v instanceof Uint8Array) {
    const p = writeHead(out, o, 2, v.length);
    out.set(v, p);
    return p + v.length;
  }
  switch (typeof v) {
    case 'number':
      return v < 0 ? writeHead(out, o, 1, -1 - v) : writeHead(out, o, 0, v);
    case 'string': {
      let p = writeHead(out, o, 3, v.length);
      for (let i = 0; i < v.length; i++) out[p++] = v.charCodeAt(i);
      return p;
    }
    case 'boolean':
      out[o] = v ? 0xf5 : 0xf4;
      return o + 1;
    default: {
      if (v === null) {
        out[o] = 0xf6;
        return o + 1;
      }
      const a = v as unknown[];
      let p = writeHead(out, o, 4, a.length);
      for (let i = 0; i < a.length; i++) p = write(out, p, a[i]);
      return p;
    }
  }
}

/** The deterministic CBOR encoding of `v`, or undefined when `v` is not of the shapes handled here. */
export function encodeFast(v: unknown): Uint8Array | undefined {
  const n = sizeOf(v, 0);
  if (n < 0) return undefined;
  const out = new Uint8Array(n);
  write(out, 0, v);
  return out;
}
