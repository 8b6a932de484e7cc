/**
 * The accumulator's nodes on the ledger's key-value store, in the `acc` sublevel:
 *
 *   'g' u64(mmrPosition) → 32-byte hashes of the nodes at that position and the following ones
 *   'b' u64(blockNum)    → u64(leaf index of the block's first transaction)
 *   'n' u64(mmrPosition) → one 32-byte node hash (ledgers written before groups; still read)
 *
 * A block appends its nodes at consecutive MMR positions (post-order), so they are kept as one
 * group under the first position: one entry per block instead of two per transaction. A node is
 * read by seeking the group at or below its position. Writes go into the batch that commits the
 * block (`bind`), so nodes, block starts, the block, its state updates and the savepoint land
 * together or not at all; a block's group is complete when its closing block start is put.
 */
import { LoomError } from '@loom/common';
import type { AccumulatorStore } from '../ledger/accumulator.js';
import { readU64, tagged, u64 } from '../ledger/keys.js';
import type { KV, WriteBatch } from '../ledger/kv.js';

export interface BatchedAccumulatorStore extends AccumulatorStore {
  /** Routes the following puts into `batch` (until the next `bind`). */
  bind(batch: WriteBatch | undefined): void;
}

const NODE = 32;
/** Groups read recently (the newest hold the peaks and most proof paths). */
const CACHED_GROUPS = 16;

export function createKvAccumulatorStore(kv: KV): BatchedAccumulatorStore {
  // The batch scoped to the accumulator's sublevel, made once per bind.
  let scoped: WriteBatch | undefined;
  // Nodes put since the last block start: positions [pendingStart, pendingStart + pending.length).
  let pendingStart = 0;
  let pending: Uint8Array[] = [];
  const cache = new Map<number, Uint8Array>();
  const remember = (start: number, bytes: Uint8Array) => {
    cache.delete(start);
    if (cache.size >= CACHED_GROUPS) cache.delete(cache.keys().next().value!);
    cache.set(start, bytes);
  };
  const writer = () => {
    if (scoped === undefined) throw new LoomError('LEDGER_BAD_BATCH', 'accumulator write outside a commit batch');
    return scoped;
  };
  const flush = () => {
    if (pending.length === 0) return;
    const group = new Uint8Array(pending.length * NODE);
    for (let i = 0; i < pending.length; i++) group.set(pending[i]!, i * NODE);
    writer().put(tagged('g', u64(pendingStart)), group);
    // Remembered before the batch is written. Should the write fail, the accumulator reopens at the
    // committed size and never reads these positions (they lie beyond it); the block's retry puts the
    // same hashes at the same positions.
    remember(pendingStart, group);
    pending = [];
  };
  const inGroup = (start: number, bytes: Uint8Array, pos: number) =>
    pos >= start && (pos - start + 1) * NODE <= bytes.length
      ? bytes.subarray((pos - start) * NODE, (pos - start + 1) * NODE)
      : undefined;

  return {
    bind(b) {
      // Nodes not closed by a block start belong to a batch that was abandoned.
      pending = [];
      scoped = b?.scoped(kv);
    },
    async get(pos) {
      if (pending.length > 0 && pos >= pendingStart && pos < pendingStart + pending.length) {
        return pending[pos - pendingStart];
      }
      for (const [start, bytes] of cache) {
        const hit = inGroup(start, bytes, pos);
        if (hit) return hit;
      }
      for await (const [k, v] of kv.iterate({
        gte: tagged('g'),
        lte: tagged('g', u64(pos)),
        reverse: true,
        limit: 1,
      })) {
        const start = readU64(k, 1);
        const hit = inGroup(start, v, pos);
        if (hit) {
          remember(start, v);
          return hit;
        }
      }
      return kv.get(tagged('n', u64(pos)));
    },
    put(pos, hash) {
      writer();
      if (pending.length > 0 && pos !== pendingStart + pending.length) flush();
      if (pending.length === 0) pendingStart = pos;
      pending.push(hash);
    },
    async getBlockStart(blockNum) {
      const v = await kv.get(tagged('b', u64(blockNum)));
      return v === undefined ? undefined : readU64(v);
    },
    putBlockStart(blockNum, leafIndex) {
      flush();
      writer().put(tagged('b', u64(blockNum)), u64(leafIndex));
    },
  };
}
