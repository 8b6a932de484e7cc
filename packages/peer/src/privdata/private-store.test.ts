import { type Bytes, encodeKVRWSet, encodeTxPvtReadWriteSet, type KVRWSet, sha256, toHex, utf8 } from '@loom/common';
import { describe, expect, it } from 'vitest';
import type { KV } from '../ledger/kv.js';
import { createMemoryKV } from '../ledger/memory-kv.js';
import { openStateDB, privateNamespace, type StateDB } from '../ledger/state-db.js';
import type { StateUpdate } from '../validation/types.js';
import {
  keyHashHex,
  PrivateDataStore,
  pickCollection,
  type TxCollectionHashes,
  writesMatchHashes,
} from './private-store.js';
import { createTransientStoreOnKv } from './transient-store.js';

const NS = 'cc';
const COLL = 'secret';
const dec = new TextDecoder();

function rwsetOf(writes: Record<string, string | null>): Bytes {
  const set: KVRWSet = {
    reads: [],
    rangeQueriesInfo: [],
    writes: Object.entries(writes)
      .sort(([a], [b]) => (a < b ? -1 : 1))
      .map(([key, v]) => ({ key, isDelete: v === null, value: v === null ? new Uint8Array(0) : utf8(v) })),
    metadataWrites: [],
  };
  return encodeKVRWSet(set);
}

/** What the block carries for a transaction's collection, and the validator's hashed updates. */
function txOf(
  blockNum: number,
  txNum: number,
  writes: Record<string, string | null>,
  purge: string[] = [],
): { tx: TxCollectionHashes; updates: StateUpdate[]; pvt: Bytes } {
  const pvt = rwsetOf(writes);
  const hashedWrites = [
    ...Object.entries(writes).map(([k, v]) => ({
      keyHash: sha256(utf8(k)),
      isDelete: v === null,
      valueHash: v === null ? new Uint8Array(0) : sha256(utf8(v)),
      isPurge: false,
    })),
    ...purge.map((k) => ({ keyHash: sha256(utf8(k)), isDelete: true, valueHash: new Uint8Array(0), isPurge: true })),
  ];
  const updates: StateUpdate[] = hashedWrites.map((w) => ({
    namespace: NS,
    collection: COLL,
    key: toHex(w.keyHash),
    kind: w.isDelete ? 'delete' : 'put',
    value: w.isDelete ? undefined : w.valueHash,
    metadata: undefined,
    isPurge: w.isPurge,
    version: { blockNum, txNum },
  }));
  return {
    tx: {
      txNum,
      txId: `tx-${blockNum}-${txNum}`,
      namespace: NS,
      collection: COLL,
      pvtRwsetHash: Object.keys(writes).length > 0 ? sha256(pvt) : new Uint8Array(0),
      hashedWrites,
    },
    updates,
    pvt,
  };
}

async function setup(isMember = true, blockToLive = 0) {
  const kv: KV = createMemoryKV();
  const state: StateDB = await openStateDB(kv.sublevel('state'));
  const store = new PrivateDataStore(kv.sublevel('pvt'), state);
  /** Commits one block: the hashed updates and the private data prepared in ONE batch. */
  const commit = async (
    blockNum: number,
    txs: ReturnType<typeof txOf>[],
    opts: { available?: boolean; write?: boolean } = {},
  ) => {
    const batch = kv.batch();
    const updates = txs.flatMap((t) => t.updates);
    await state.applyUpdates(batch, updates, blockNum + 1);
    const r = await store.prepareCommit({
      batch,
      blockNum,
      txs: txs.map((t) => t.tx),
      updates,
      available: (txId, ns, coll, hash) => {
        if (opts.available === false) return undefined;
        const t = txs.find((x) => x.tx.txId === txId);
        return t && ns === NS && coll === COLL && toHex(sha256(t.pvt)) === toHex(hash) ? t.pvt : undefined;
      },
      collection: (ns, coll) => (ns === NS && coll === COLL ? { blockToLive, isMember } : undefined),
      now: 0,
    });
    if (opts.write !== false) await batch.write();
    return r;
  };
  const value = async (key: string) => {
    const e = await state.getState(privateNamespace(NS, COLL), key);
    return e === undefined ? undefined : dec.decode(e.value);
  };
  const hash = async (key: string) => (await state.getState(`${NS}$$h${COLL}`, keyHashHex(key)))?.value;
  const history = async (key: string) => (await store.history(NS, COLL, key)).map((h) => dec.decode(h.value));
  return { kv, state, store, commit, value, hash, history };
}

describe('PrivateDataStore', () => {
  it('stores member data with the block, in the same batch: nothing is visible until the batch is written', async () => {
    const s = await setup();
    const r = await s.commit(1, [txOf(1, 0, { k1: 'v1' })], { write: false });
    expect(r.stored).toBe(1);
    // The batch was never written (a crash before it): neither the hash nor the value exists.
    expect(await s.value('k1')).toBeUndefined();
    expect(await s.hash('k1')).toBeUndefined();
    expect(await s.store.missing()).toEqual([]);
    await s.commit(1, [txOf(1, 0, { k1: 'v1' })]);
    expect(await s.value('k1')).toBe('v1');
    expect(toHex((await s.hash('k1'))!)).toBe(toHex(sha256(utf8('v1'))));
    expect(await s.history('k1')).toEqual(['v1']);
  });

  it('keeps the history of values and purgePrivateData removes current and every historical value', async () => {
    const s = await setup();
    await s.commit(1, [txOf(1, 0, { k: 'purged-a', other: 'x' })]);
    await s.commit(2, [txOf(2, 0, { k: 'purged-b' })]);
    expect(await s.history('k')).toEqual(['purged-b', 'purged-a']);
    const r = await s.commit(3, [txOf(3, 0, {}, ['k'])]);
    expect(r.purgedKeys).toBe(2);
    expect(await s.value('k')).toBeUndefined();
    expect(await s.hash('k')).toBeUndefined();
    expect(await s.history('k')).toEqual([]);
    // Another key written by the same transaction keeps its value and history.
    expect(await s.value('other')).toBe('x');
    expect(await s.history('other')).toEqual(['x']);
    // Nothing of the purged values is left anywhere in the store (state DB and private store).
    for await (const [, v] of s.kv.iterate()) {
      expect(Buffer.from(v).includes(Buffer.from('purged-a'))).toBe(false);
      expect(Buffer.from(v).includes(Buffer.from('purged-b'))).toBe(false);
    }
  });

  it('a purge later in the same block also removes a value written earlier in that block', async () => {
    const s = await setup();
    await s.commit(1, [txOf(1, 0, { k: 'a' }), txOf(1, 1, {}, ['k'])]);
    expect(await s.value('k')).toBeUndefined();
    expect(await s.history('k')).toEqual([]);
  });

  it('blockToLive: data written at N is purged when block N+BTL+1 commits, hashes included, unless rewritten', async () => {
    const s = await setup(true, 2);
    await s.commit(5, [txOf(5, 0, { k: 'old', keep: 'first' })]);
    await s.commit(6, [txOf(6, 0, { keep: 'second' })]);
    await s.commit(7, []);
    expect(await s.value('k')).toBe('old');
    const r = await s.commit(8, []);
    expect(r.expired).toBe(2);
    expect(await s.value('k')).toBeUndefined();
    expect(await s.hash('k')).toBeUndefined();
    expect(await s.history('k')).toEqual([]);
    // `keep` was written again at 6: its current value stays until 9, its old version's history is gone.
    expect(await s.value('keep')).toBe('second');
    expect(await s.history('keep')).toEqual(['second']);
    await s.commit(9, []);
    expect(await s.value('keep')).toBeUndefined();
    expect(await s.history('keep')).toEqual([]);
  });

  it('non-members keep hashes only, and expire them too', async () => {
    const s = await setup(false, 1);
    const r = await s.commit(1, [txOf(1, 0, { k: 'v' })]);
    expect(r).toMatchObject({ stored: 0, missing: 0 });
    expect(await s.value('k')).toBeUndefined();
    expect(await s.hash('k')).toBeDefined();
    for await (const [, v] of s.kv.iterate()) expect(Buffer.from(v).includes(Buffer.from('v\u0000'))).toBe(false);
    await s.commit(2, []);
    await s.commit(3, []);
    expect(await s.hash('k')).toBeUndefined();
  });

  it('records missing data and fills it by reconciliation (checked against the block hashes)', async () => {
    const s = await setup();
    const t = txOf(1, 0, { k: 'v', j: 'w' });
    const r = await s.commit(1, [t], { available: false });
    expect(r.missing).toBe(1);
    const missing = await s.store.missing();
    expect(missing).toEqual([
      { blockNum: 1, txNum: 0, txId: 'tx-1-0', namespace: NS, collection: COLL, attempts: 0, notBefore: 0 },
    ]);
    await s.store.recordAttempt(missing[0]!, 1234);
    expect((await s.store.missing())[0]).toMatchObject({ attempts: 1, notBefore: 1234 });

    const { decodeKVRWSet } = await import('@loom/common');
    expect(writesMatchHashes(decodeKVRWSet(t.pvt), t.tx)).toBe(true);
    expect(writesMatchHashes(decodeKVRWSet(rwsetOf({ k: 'forged' })), t.tx)).toBe(false);
    expect(writesMatchHashes(decodeKVRWSet(rwsetOf({ unknown: 'v' })), t.tx)).toBe(false);

    const batch = s.kv.batch();
    await s.store.prepareReconciled(batch, missing[0]!, decodeKVRWSet(t.pvt), 2);
    await batch.write();
    expect(await s.value('k')).toBe('v');
    expect(await s.value('j')).toBe('w');
    expect(await s.history('k')).toEqual(['v']);
    expect(await s.store.missing()).toEqual([]);
    expect(await s.store.committedWrites(1, 0, NS, COLL)).toEqual(t.pvt);
  });

  it('a late reconciliation does not bring back a value purged meanwhile', async () => {
    const s = await setup();
    const t = txOf(1, 0, { k: 'late-secret' });
    await s.commit(1, [t], { available: false });
    await s.commit(2, [txOf(2, 0, {}, ['k'])]);
    const [m] = await s.store.missing();
    const { decodeKVRWSet } = await import('@loom/common');
    const batch = s.kv.batch();
    await s.store.prepareReconciled(batch, m!, decodeKVRWSet(t.pvt), 3);
    await batch.write();
    expect(await s.value('k')).toBeUndefined();
    expect(await s.history('k')).toEqual([]);
    expect(await s.store.missing()).toEqual([]);
  });

  it('pickCollection only hands out a rwset whose hash matches', () => {
    const pvt = rwsetOf({ k: 'v' });
    const set = { nsPvtRwsets: [{ namespace: NS, collectionPvtRwsets: [{ collectionName: COLL, rwset: pvt }] }] };
    expect(pickCollection(set, NS, COLL, sha256(pvt))).toEqual(pvt);
    expect(pickCollection(set, NS, COLL, sha256(utf8('other')))).toBeUndefined();
    expect(pickCollection(set, NS, 'x', sha256(pvt))).toBeUndefined();
  });
});

describe('TransientStore', () => {
  it('keeps rwsets by txId and purges them by txId and by age', async () => {
    const t = createTransientStoreOnKv(createMemoryKV()).channel('ch');
    const pvt = encodeTxPvtReadWriteSet({ nsPvtRwsets: [] });
    await t.persist('a', 5, pvt);
    await t.persist('a', 6, pvt);
    await t.persist('b', 7, pvt);
    await t.persist('c', 20, pvt);
    expect((await t.get('a')).map((e) => e.receivedAtHeight)).toEqual([5, 6]);
    await t.purgeByTxIds(['a']);
    expect(await t.get('a')).toEqual([]);
    expect(await t.purgeBelowHeight(10)).toBe(1);
    expect(await t.get('b')).toEqual([]);
    expect((await t.get('c')).length).toBe(1);
    expect(await t.purgeBelowHeight(10)).toBe(0);
  });
});
