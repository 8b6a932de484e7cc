import { describe, expect, it } from 'vitest';
import { catchUp } from './state-transfer.js';

const block = (n: number) => new Uint8Array([n & 0xff, n >> 8]);

/** A ledger that accepts only the next block, and sources serving a chain of `heights[peer]` blocks. */
function fakes(heights: Record<string, number>, opts: { corrupt?: string; start?: number } = {}) {
  const committed: number[] = [];
  for (let i = 0; i < (opts.start ?? 0); i++) committed.push(i);
  const ranges: { peer: string; from: number; count: number }[] = [];
  return {
    committed,
    ranges,
    deps: {
      height: () => committed.length,
      sources: () => Object.entries(heights).map(([peer, height]) => ({ peer, height })),
      fetchRange: async (peer: string, from: number, count: number) => {
        ranges.push({ peer, from, count });
        const h = heights[peer]!;
        const blocks = [];
        for (let n = from; n < Math.min(h, from + count); n++) blocks.push(block(n));
        return { height: h, blocks };
      },
      commit: async (b: Uint8Array, n: number, peer: string) => {
        if (peer === opts.corrupt) throw new Error('bad orderer signature');
        if (n !== committed.length || b[0] !== (n & 0xff)) throw new Error('out of order');
        committed.push(n);
      },
      batchSize: 50,
    },
  };
}

describe('state transfer', () => {
  it('pulls every missing block in bounded ranges from the highest source', async () => {
    const f = fakes({ a: 1001, b: 400 }, { start: 1 });
    const r = await catchUp(f.deps);
    expect(r.committed).toBe(1000);
    expect(f.committed.length).toBe(1001);
    expect(f.ranges.every((x) => x.count <= 50 && x.peer === 'a')).toBe(true);
    expect(r.rounds).toBe(20);
  });

  it('moves on to another source when one serves blocks that do not commit', async () => {
    const f = fakes({ evil: 900, good: 300 }, { corrupt: 'evil', start: 1 });
    const r = await catchUp(f.deps);
    expect(f.committed.length).toBe(300);
    expect(r.failed.map((x) => x.peer)).toEqual(['evil']);
  });

  it('does nothing when no source is ahead, and stops at maxRounds', async () => {
    const idle = fakes({ a: 5 }, { start: 5 });
    expect((await catchUp(idle.deps)).rounds).toBe(0);
    const bounded = fakes({ a: 1000 }, { start: 1 });
    const r = await catchUp({ ...bounded.deps, maxRounds: 3 });
    expect(r.rounds).toBe(3);
    expect(bounded.committed.length).toBe(151);
  });
});
