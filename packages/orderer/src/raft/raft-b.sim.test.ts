import { describe, it } from 'vitest';
import { runSeeds, seedChunks } from './sim/seed-plan.js';

// Second half of the seeds; a failing seed is replayed through raft.sim.test.ts.
describe('raft simulation (shard 2 of 2)', () => {
  const chunks = seedChunks(1, 2);
  if (chunks.length === 0) it.skip('runs in raft.sim.test.ts when LOOM_SIM_SEED is set', () => {});
  for (const seeds of chunks) {
    it(`seeds ${seeds[0]}..${seeds[seeds.length - 1]}`, { timeout: 300_000 }, () => runSeeds(seeds));
  }
});
