import { decode as cborDecode, encode as cborEncode, rfc8949EncodeOptions } from 'cborg';
import { describe, expect, it } from 'vitest';
import { decodeCanonicalFast, NOT_DECODED } from './canonical-cbor.js';
import { decodeValue, encodeValue } from './encoding.js';

// The general path of decodeValue, as it was before the fast path: strict cborg, then re-encode and compare.
function generalPath(bytes: Uint8Array): { ok: true; value: unknown } | { ok: false } {
  let value: unknown;
  try {
    value = cborDecode(bytes, {
      strict: true,
      allowIndefinite: false,
      allowUndefined: false,
      allowInfinity: false,
      allowNaN: false,
      allowBigInt: false,
      rejectDuplicateMapKeys: true,
      useMaps: false,
    });
  } catch {
    return { ok: false };
  }
  const again = cborEncode(value, rfc8949EncodeOptions);
  if (again.length !== bytes.length || again.some((b, i) => b !== bytes[i])) return { ok: false };
  return { ok: true, value };
}

/** Plain data with byte strings compared by content (a view and a copy are equal). */
function normalize(v: unknown): unknown {
  if (v instanceof Uint8Array) return { bytes: [...v] };
  if (Array.isArray(v)) return v.map(normalize);
  if (v !== null && typeof v === 'object') {
    return Object.fromEntries(Object.entries(v as Record<string, unknown>).map(([k, x]) => [k, normalize(x)]));
  }
  return v;
}

// Deterministic pseudo-random numbers (no flaky seeds).
function rng(seed: number) {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const INTS = [
  0,
  1,
  23,
  24,
  255,
  256,
  65535,
  65536,
  2 ** 32 - 1,
  2 ** 32,
  1_700_000_000_000,
  Number.MAX_SAFE_INTEGER - 1,
  Number.MAX_SAFE_INTEGER,
  -1,
  -24,
  -25,
  -256,
  -257,
  -65536,
  -65537,
  -(2 ** 32),
  -(2 ** 32) - 1,
  Number.MIN_SAFE_INTEGER + 1,
  Number.MIN_SAFE_INTEGER,
];
const STRINGS = [
  '',
  'a',
  'mychannel',
  'x'.repeat(23),
  'y'.repeat(24),
  'z'.repeat(300),
  'é',
  '日本',
  '\u{1F600}',
  '\uFEFFbom',
  'a\u0000b',
];

const PLAIN_STRINGS = STRINGS.filter((x) => !x.startsWith('\uFEFF'));

function randomValue(r: () => number, depth: number, withOthers: boolean): unknown {
  const k = Math.floor(r() * (withOthers ? 9 : 7));
  switch (depth > 4 ? k % 5 : k) {
    case 0:
      return INTS[Math.floor(r() * INTS.length)];
    case 1:
      return Math.floor(r() * 1000) - 500;
    case 2:
      return Uint8Array.from({ length: Math.floor(r() * 40) }, () => Math.floor(r() * 256));
    case 3: {
      // Text led by a byte-order mark is left to the general path: only `withOthers` produces it.
      const list = withOthers ? STRINGS : PLAIN_STRINGS;
      return list[Math.floor(r() * list.length)];
    }
    case 4:
      return [true, false, null][Math.floor(r() * 3)];
    case 5:
    case 6:
      return Array.from({ length: Math.floor(r() * 5) }, () => randomValue(r, depth + 1, withOthers));
    case 7:
      return { b: randomValue(r, depth + 1, withOthers), a: 1 };
    default:
      return r() < 0.5 ? 1.5 : -0.25;
  }
}

describe('decodeCanonicalFast (decodeValue fast path)', () => {
  it('decodes canonical encodings of the subset to the general path value, with byte strings as content-equal views', () => {
    const r = rng(1);
    for (let i = 0; i < 2000; i++) {
      const v = randomValue(r, 0, false);
      const bytes = encodeValue(v);
      const fast = decodeCanonicalFast(bytes);
      expect(fast).not.toBe(NOT_DECODED);
      expect(normalize(fast)).toEqual(normalize(v));
    }
  });

  it('never accepts what the general path rejects, nor decodes to another value (mutated, truncated, extended inputs)', () => {
    const r = rng(2);
    let decidedFast = 0;
    for (let i = 0; i < 4000; i++) {
      const base = encodeValue(randomValue(r, 0, true));
      const bytes = new Uint8Array(base);
      const what = Math.floor(r() * 4);
      let input: Uint8Array = bytes;
      if (what === 0 && bytes.length > 0) bytes[Math.floor(r() * bytes.length)] = Math.floor(r() * 256);
      else if (what === 1) input = bytes.subarray(0, Math.floor(r() * bytes.length));
      else if (what === 2) input = Uint8Array.from([...bytes, Math.floor(r() * 256)]);
      const fast = decodeCanonicalFast(input);
      const general = generalPath(input);
      if (fast === NOT_DECODED) continue;
      decidedFast++;
      expect(general.ok).toBe(true);
      if (general.ok) expect(normalize(fast)).toEqual(normalize(general.value));
    }
    expect(decidedFast).toBeGreaterThan(500);
  });

  it('leaves non-shortest heads, floats, maps, tags, BOM-led and invalid UTF-8 text, and unsafe integers to the general path', () => {
    const cases: number[][] = [
      [0x18, 0x05], // 5 in two bytes
      [0x19, 0x00, 0xff], // 255 in three bytes
      [0x1a, 0x00, 0x00, 0xff, 0xff],
      [0x1b, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff], // < 2^32 in nine bytes
      [0x1b, 0x00, 0x20, 0, 0, 0, 0, 0, 0], // 2^53
      [0x3b, 0x00, 0x1f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff], // -2^53
      [0x58, 0x01, 0x00], // 1-byte string with a long length
      [0x9f, 0xff], // indefinite array
      [0xf9, 0x3c, 0x00], // float16 1.0
      [0xf7], // undefined
      [0xf0], // simple value 16
      [0xa1, 0x61, 0x61, 0x01], // map
      [0xc1, 0x00], // tag
      [0x63, 0xef, 0xbb, 0xbf], // text: BOM only
      [0x62, 0xc3, 0x28], // invalid UTF-8
      [0x62, 0xc0, 0x80], // overlong NUL
      [0x83, 0x01, 0x02], // truncated array
      [0x01, 0x02], // trailing byte
      [],
    ];
    for (const c of cases) expect(decodeCanonicalFast(Uint8Array.from(c))).toBe(NOT_DECODED);
    // …and decodeValue still rejects the non-canonical ones as before.
    expect(() => decodeValue(Uint8Array.from([0x18, 0x05]), 'x')).toThrow();
    expect(() => decodeValue(Uint8Array.from([0xf9, 0x3c, 0x00]), 'x')).toThrow(/canonical/);
    expect(() => decodeValue(Uint8Array.from([0x62, 0xc3, 0x28]), 'x')).toThrow();
    expect(() => decodeValue(Uint8Array.from([0x01, 0x02]), 'x')).toThrow();
    expect(decodeValue(Uint8Array.from([0x3b, 0x00, 0x1f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe]), 'x')).toBe(
      Number.MIN_SAFE_INTEGER,
    );
  });

  it('does not alias the input: byte strings survive changes to the decoded buffer', () => {
    const bytes = encodeValue([Uint8Array.from([1, 2, 3]), 'a']);
    const v = decodeValue(bytes, 'x') as [Uint8Array, string];
    bytes.fill(0);
    expect([...v[0]]).toEqual([1, 2, 3]);
  });
});

describe('decodeValue on nested byte strings', () => {
  it('decodes a byte string it returned without copying it again, to the same values', () => {
    const inner = encodeValue([Uint8Array.from([9, 8]), 'in']);
    const outer = encodeValue([inner, 7]);
    const [innerBytes] = decodeValue(outer, 'outer') as [Uint8Array, number];
    const [leaf, s] = decodeValue(innerBytes, 'inner') as [Uint8Array, string];
    expect([...leaf]).toEqual([9, 8]);
    expect(s).toBe('in');
    expect(leaf.buffer).toBe(innerBytes.buffer);
    // The caller's own bytes are still copied.
    const [again] = decodeValue(inner, 'inner') as [Uint8Array];
    expect(again.buffer).not.toBe(inner.buffer);
  });
});
