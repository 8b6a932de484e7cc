/**
 * The accumulator's nodes on the ledger's key-value store, in the `acc` sublevel:
 *
 *   'n' u64(mmrPosition) → 32-byte node hash
 *   'b' u64(blockNum)    → u64(leaf index of the block's first transaction)
 *
 * Writes go into the batch that commits the block (`bind`), so nodes, block starts, the block, its
 * state updates and the savepoint land together or not at all.
 */
import { LoomError } from '@loom/common';
import { readU64, tagged, u64 } from '../ledger/keys.js';
import type { KV, WriteBatch } from '../ledger/kv.js';
import type { AccumulatorStore } from '../ledger/accumulator.js';

export interface BatchedAccumulatorStore extends AccumulatorStore {
  /** Routes the following puts into `batch` (until the next `bind`). */
  bind(batch: WriteBatch | undefined): void;
}

export function createKvAccumulatorStore(kv: KV): BatchedAccumulatorStore {
  // The batch scoped to the accumulator's sublevel, made once per bind (a block puts ~2 nodes per transaction).
  let scoped: WriteBatch | undefined;
  const writer = () => {
    if (scoped === undefined) throw new LoomError('LEDGER_BAD_BATCH', 'accumulator write outside a commit batch');
    return scoped;
  };
  return {
    bind(b) {
      scoped = b?.scoped(kv);
    },
    get: (pos) => kv.get(tagged('n', u64(pos))),
    put(pos, hash) {
      writer().put(tagged('n', u64(pos)), hash);
    },
    async getBlockStart(blockNum) {
      const v = await kv.get(tagged('b', u64(blockNum)));
      return v === undefined ? undefined : readU64(v);
    },
    putBlockStart(blockNum, leafIndex) {
      writer().put(tagged('b', u64(blockNum)), u64(leafIndex));
    },
  };
}
