import { runSimulation, SimFailure } from './simulation.js';

export const REPLAY_FILE = 'packages/orderer/src/raft/raft.sim.test.ts';

/**
 * Which seeds a simulator test file runs. `LOOM_SIM_SEEDS` (default 1000) seeds are split between
 * `shards` files so they run in parallel; `LOOM_SIM_SEED=<n>` runs only seed n, in shard 0 (the
 * file the replay command names).
 */
export function seedChunks(shard: number, shards: number, chunkSize = 100): number[][] {
  const only = process.env.LOOM_SIM_SEED;
  if (only !== undefined && only !== '') return shard === 0 ? [[Number(only)]] : [];
  const total = Number(process.env.LOOM_SIM_SEEDS ?? 1000);
  const per = Math.ceil(total / shards);
  const from = shard * per;
  const to = Math.min(total, from + per);
  const chunks: number[][] = [];
  for (let lo = from; lo < to; lo += chunkSize) {
    chunks.push(Array.from({ length: Math.min(chunkSize, to - lo) }, (_, i) => lo + i));
  }
  return chunks;
}

/**
 * Runs the seeds; the first failure becomes an error naming the seed, invariant, trace and replay.
 * Yields to the event loop between seeds so the test worker keeps answering the vitest runner.
 */
export async function runSeeds(seeds: readonly number[]): Promise<void> {
  for (const seed of seeds) {
    await new Promise((resolve) => setTimeout(resolve, 0));
    try {
      runSimulation(seed);
    } catch (err) {
      if (!(err instanceof SimFailure)) throw err;
      const trace = err.trace.map((l) => `  ${l}`).join('\n');
      throw new Error(
        `Raft simulation failed — ${err.message}\n` +
          `last events:\n${trace}\n` +
          `replay: LOOM_SIM_SEED=${seed} npx vitest run ${REPLAY_FILE}`,
      );
    }
  }
}
