import { randomBytes } from 'node:crypto';
import { sha256 } from '@loom/common/crypto/hash';
import { describe, expect, it } from 'vitest';
import {
  type AccumulatedTx,
  createMemoryAccumulatorStore,
  LedgerAccumulator,
  mmrPosition,
} from '../ledger/accumulator.js';
import { tagged, u64 } from '../ledger/keys.js';
import { createMemoryKV } from '../ledger/memory-kv.js';
import { createKvAccumulatorStore } from './accumulator-store.js';

const CHANNEL = 'ch1';
const opts = (height: number) => ({ channelId: CHANNEL, hash: sha256, height });
const blockTxs = (n: number): AccumulatedTx[] =>
  Array.from({ length: n }, () => ({ envelopeHash: randomBytes(32), validationCode: 0 }));

/** Appends each block through the grouped store, one commit batch per block, as the ledger does. */
async function appendAll(
  kv: ReturnType<typeof createMemoryKV>,
  acc: LedgerAccumulator,
  blocks: AccumulatedTx[][],
  from: number,
) {
  const store = createKvAccumulatorStore(kv.sublevel('acc'));
  const a = await LedgerAccumulator.open(store, opts(from));
  for (const [i, txs] of blocks.entries()) {
    const batch = kv.batch();
    store.bind(batch);
    await a.appendBlock(from + i, txs);
    await acc.appendBlock(from + i, txs);
    await batch.write();
    store.bind(undefined);
  }
  return a;
}

describe('accumulator store on the KV (one node group per block)', () => {
  it('writes one entry per block plus its block start, and answers every node, root and proof like the reference', async () => {
    const kv = createMemoryKV();
    const reference = await LedgerAccumulator.open(createMemoryAccumulatorStore(), opts(0));
    const blocks = [1, 0, 7, 500, 3, 64, 1, 129].map(blockTxs);
    const grouped = await appendAll(kv, reference, blocks, 0);
    expect(grouped.digest()).toEqual(reference.digest());

    const entries: string[] = [];
    for await (const [k] of kv.sublevel('acc').iterate()) entries.push(String.fromCharCode(k[0]!));
    // 7 blocks with transactions → 7 groups; 9 block starts (0..8).
    expect(entries.filter((t) => t === 'g')).toHaveLength(7);
    expect(entries.filter((t) => t === 'b')).toHaveLength(9);
    expect(entries.filter((t) => t === 'n')).toHaveLength(0);

    // Reopened from the store alone (no cache): same digest, roots at every size, audit paths.
    const reopened = await LedgerAccumulator.open(createKvAccumulatorStore(kv.sublevel('acc')), opts(blocks.length));
    expect(reopened.digest()).toEqual(reference.digest());
    const size = reference.txCount;
    for (const s of [1, 2, 3, 8, 9, 100, 511, 512, 513, size - 1, size]) {
      expect(await reopened.rootAt(s)).toEqual(await reference.rootAt(s));
    }
    for (const i of [0, 1, 7, 8, 300, 507, 508, size - 1]) {
      expect(await reopened.auditPath(i)).toEqual(await reference.auditPath(i));
      if (i < 600) expect(await reopened.auditPath(i, 600)).toEqual(await reference.auditPath(i, 600));
    }
    expect(await reopened.consistencyProof(8, size)).toEqual(await reference.consistencyProof(8, size));
  });

  it('still reads nodes a ledger stored one per key before groups, and appends groups after them', async () => {
    const kv = createMemoryKV();
    const reference = await LedgerAccumulator.open(createMemoryAccumulatorStore(), opts(0));
    // The old layout: 'n' u64(pos) per node, written here through a plain per-node store.
    const acc = kv.sublevel('acc');
    const old = await LedgerAccumulator.open(
      {
        get: (pos) => acc.get(tagged('n', u64(pos))),
        put: (pos, hash) =>
          acc
            .batch()
            .put(tagged('n', u64(pos)), hash)
            .write(),
        getBlockStart: async (b) => {
          const v = await acc.get(tagged('b', u64(b)));
          return v === undefined ? undefined : Number(new DataView(v.buffer, v.byteOffset).getBigUint64(0));
        },
        putBlockStart: (b, i) =>
          acc
            .batch()
            .put(tagged('b', u64(b)), u64(i))
            .write(),
      },
      opts(0),
    );
    const first = [5, 12].map(blockTxs);
    for (const [i, txs] of first.entries()) {
      await old.appendBlock(i, txs);
      await reference.appendBlock(i, txs);
    }
    const grouped = await appendAll(kv, reference, [9, 30].map(blockTxs), 2);
    expect(grouped.digest()).toEqual(reference.digest());
    const reopened = await LedgerAccumulator.open(createKvAccumulatorStore(acc), opts(4));
    for (const i of [0, 4, 16, 17, 55]) expect(await reopened.auditPath(i)).toEqual(await reference.auditPath(i));
    expect(await acc.get(tagged('n', u64(mmrPosition(0, 0))))).toBeDefined();
  });

  it('refuses a node put outside a commit batch', async () => {
    const store = createKvAccumulatorStore(createMemoryKV());
    expect(() => store.put(0, new Uint8Array(32))).toThrow(/outside a commit batch/);
  });
});
