import { describe, expect, it } from 'vitest';
import {
  encodeDerSignature,
  isHighS,
  isStrictLowSDer,
  P256_HALF_N,
  P256_N,
  parseDerSignature,
} from './signature-der.js';

/** The rule isStrictLowSDer must equal. */
function reference(sig: Uint8Array): boolean {
  try {
    return !isHighS(parseDerSignature(sig).s);
  } catch {
    return false;
  }
}

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

function randomScalar(r: () => number, bytes: number): bigint {
  let v = 0n;
  for (let i = 0; i < bytes; i++) v = (v << 8n) | BigInt(Math.floor(r() * 256));
  return v;
}

describe('isStrictLowSDer', () => {
  it('agrees with parseDerSignature + isHighS on boundaries, random and mutated signatures', () => {
    const r = rng(7);
    const edges = [1n, 2n, 0x7fn, 0x80n, 0xffn, P256_HALF_N - 1n, P256_HALF_N, P256_HALF_N + 1n, P256_N - 1n];
    const sigs: Uint8Array[] = [];
    for (const a of edges) for (const b of edges) sigs.push(encodeDerSignature(a, b));
    for (let i = 0; i < 3000; i++) {
      const a = randomScalar(r, 1 + Math.floor(r() * 32)) % P256_N || 1n;
      const b = randomScalar(r, 1 + Math.floor(r() * 32)) % P256_N || 1n;
      const sig = encodeDerSignature(a, b);
      sigs.push(sig);
      const m = new Uint8Array(sig);
      m[Math.floor(r() * m.length)] = Math.floor(r() * 256);
      sigs.push(m);
      sigs.push(sig.subarray(0, Math.floor(r() * sig.length)));
      sigs.push(Uint8Array.from([...sig, 0]));
    }
    // Out of range and malformed by construction.
    sigs.push(encodeDerSignature(P256_N, 1n), encodeDerSignature(1n, P256_N), encodeDerSignature(2n ** 256n - 1n, 1n));
    sigs.push(Uint8Array.from([0x30, 0x06, 0x02, 0x01, 0x00, 0x02, 0x01, 0x01]));
    sigs.push(Uint8Array.from([0x30, 0x07, 0x02, 0x02, 0x00, 0x01, 0x02, 0x01, 0x01]));
    let lowS = 0;
    for (const s of sigs) {
      const want = reference(s);
      if (want) lowS++;
      expect(isStrictLowSDer(s), Buffer.from(s).toString('hex')).toBe(want);
    }
    expect(lowS).toBeGreaterThan(1000);
  });
});
