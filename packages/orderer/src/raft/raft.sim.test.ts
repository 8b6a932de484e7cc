import { describe, expect, it } from 'vitest';
import { runSeeds, seedChunks } from './sim/seed-plan.js';
import { runSimulation, SimFailure, type StorageFault } from './sim/simulation.js';

// First half of the seeds (raft-b.sim.test.ts runs the second half in parallel).
describe('raft simulation (shard 1 of 2)', () => {
  for (const seeds of seedChunks(0, 2)) {
    const name = seeds.length === 1 ? `seed ${seeds[0]}` : `seeds ${seeds[0]}..${seeds[seeds.length - 1]}`;
    it(name, { timeout: 300_000 }, () => runSeeds(seeds));
  }
});

describe.skipIf(process.env.LOOM_SIM_SEED !== undefined)('raft simulation checks itself', () => {
  /** The first seed (of at most `limit`) on which the simulator reports the broken storage. */
  function firstCaught(fault: StorageFault, limit: number): SimFailure | undefined {
    for (let seed = 0; seed < limit; seed++) {
      try {
        runSimulation(seed, { storageFault: fault });
      } catch (err) {
        if (err instanceof SimFailure) return err;
        throw err;
      }
    }
    return undefined;
  }

  it('notices a storage that loses part of a write it acknowledged', () => {
    expect(firstCaught('loseLastEntry', 20)?.invariant).toMatch(/leader-completeness|log-matching|state-machine/);
  });

  it('notices a storage that forgets the vote (two leaders in one term)', { timeout: 120_000 }, () => {
    expect(firstCaught('forgetVote', 200)?.invariant).toBe('election-safety');
  });
});
