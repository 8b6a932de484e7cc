import { encode as cborEncode, rfc8949EncodeOptions } from 'cborg';
import { describe, expect, it } from 'vitest';
import { encodeFast } from './cbor-encode-fast.js';
import { encodeValue } from './encoding.js';
import { seededRandom as rng } from './testing/random.js';

/** cborg's encoding as a plain Uint8Array (cborg may hand back a Buffer, which toEqual tells apart). */
const cborg = (v: unknown) => new Uint8Array(cborEncode(v, rfc8949EncodeOptions));

// Integers at every boundary of CBOR's argument sizes, both signs.
const EDGES = [0, 1, 23, 24, 255, 256, 65535, 65536, 0xffffffff, 0x100000000, Number.MAX_SAFE_INTEGER];
const INTS = [...EDGES, ...EDGES.map((n) => -n - 1), ...EDGES.filter((n) => n > 0).map((n) => n - 1)].filter((n) =>
  Number.isSafeInteger(n),
);

function randomValue(r: () => number, depth: number): unknown {
  const k = Math.floor(r() * (depth > 2 ? 5 : 6));
  switch (k) {
    case 0:
      return INTS[Math.floor(r() * INTS.length)]!;
    case 1:
      return Math.floor(r() * 2 ** 40) * (r() < 0.5 ? -1 : 1) || 0; // never -0, which is left to cborg
    case 2: {
      const n = [0, 1, 23, 24, 255, 256, 300, 70000][Math.floor(r() * 8)]!;
      return new Uint8Array(n).fill(Math.floor(r() * 256));
    }
    case 3:
      return 'abcdefghijklmnopqrstuvwxyz0123456789\u0000\u007f'
        .slice(0, Math.floor(r() * 38))
        .repeat(Math.floor(r() * 10));
    case 4:
      return [true, false, null][Math.floor(r() * 3)];
    default:
      return Array.from({ length: [0, 1, 3, 24, 30][Math.floor(r() * 5)]! }, () => randomValue(r, depth + 1));
  }
}

describe('encodeFast', () => {
  it('encodes byte for byte what cborg encodes, for 3,000 random values of the shapes it handles', () => {
    const r = rng(20261124);
    for (let i = 0; i < 3000; i++) {
      const v = randomValue(r, 0);
      const fast = encodeFast(v);
      const same = fast !== undefined && Buffer.from(fast).equals(cborg(v));
      expect(
        same,
        JSON.stringify(v, (_, x) => (x instanceof Uint8Array ? `bytes(${x.length})` : x)),
      ).toBe(true);
    }
  });

  it('encodes Buffers and views as the bytes they show', () => {
    const base = Uint8Array.from([9, 8, 7, 6, 5]);
    expect(encodeFast([base.subarray(1, 3), Buffer.from([1, 2])])).toEqual(
      cborg([Uint8Array.from([8, 7]), Uint8Array.from([1, 2])]),
    );
  });

  it('leaves everything else to cborg, and encodeValue still encodes it', () => {
    const others: unknown[] = [
      1.5,
      -0,
      Number.MAX_SAFE_INTEGER + 1,
      Number.NaN,
      'é',
      '\ud800',
      { a: 1 },
      [1, { b: [2] }],
      // biome-ignore lint/suspicious/noSparseArray: a hole is what is tested
      [1, , 2],
      undefined,
      [undefined],
      new Uint16Array(2),
      2n,
    ];
    for (const v of others) expect(encodeFast(v)).toBeUndefined();
    for (const v of [1.5, 'é', { a: 1 }, [1, { b: [2] }]]) expect(new Uint8Array(encodeValue(v))).toEqual(cborg(v));
  });
});
