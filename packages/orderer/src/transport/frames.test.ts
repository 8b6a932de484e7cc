import { describe, expect, it } from 'vitest';
import { FrameReader, frame } from './frames.js';

function seeded(seed: number) {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

describe('FrameReader', () => {
  it('yields every frame whole, in order, however the stream is cut into chunks', () => {
    const rnd = seeded(7);
    const payloads = Array.from({ length: 200 }, (_, i) => {
      const n = i % 17 === 0 ? 0 : Math.floor(rnd() * (i % 50 === 0 ? 70_000 : 300));
      return Uint8Array.from({ length: n }, () => Math.floor(rnd() * 256));
    });
    const stream = new Uint8Array(payloads.reduce((n, p) => n + 4 + p.length, 0));
    let o = 0;
    for (const p of payloads) {
      stream.set(frame(p), o);
      o += 4 + p.length;
    }
    for (const maxChunk of [1, 3, 64, 4096, 65_536, stream.length]) {
      const reader = new FrameReader();
      const out: Uint8Array[] = [];
      for (let at = 0; at < stream.length; ) {
        const n = Math.max(1, Math.floor(rnd() * maxChunk));
        out.push(...reader.push(stream.subarray(at, at + n)));
        at += n;
      }
      expect(out.length).toBe(payloads.length);
      for (const [i, p] of payloads.entries()) expect(Buffer.compare(out[i]!, p)).toBe(0);
      expect(reader.buffered).toBe(0);
    }
  });

  it('holds a partial frame until the rest arrives, and copies frames out of the caller chunks', () => {
    const reader = new FrameReader();
    const f = frame(Uint8Array.of(1, 2, 3, 4, 5));
    const chunk = f.slice(0, 6);
    expect(reader.push(chunk)).toEqual([]);
    expect(reader.buffered).toBe(6);
    const [got] = reader.push(f.slice(6));
    chunk.fill(0);
    expect([...got!]).toEqual([1, 2, 3, 4, 5]);
  });

  it('refuses a frame longer than its limit as soon as the prefix says so', () => {
    const reader = new FrameReader(100);
    expect(() => reader.push(Uint8Array.of(0, 0, 0, 101))).toThrow(/exceeds 100/);
  });
});
