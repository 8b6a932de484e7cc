/**
 * The private data store of one channel, inside the channel ledger's level database so that its
 * changes join the block's ONE atomic batch. Current private values live in the state DB under
 * `privateNamespace(cc, coll)` (the simulator reads them there); this store (sublevel `pvt`) keeps
 * what Fabric's pvtdata store keeps:
 *
 *   d  u64(block) u64(tx) lp(ns) lp(coll)          → KVRWSet bytes: the private writes committed by
 *                                                     that transaction (the history of values)
 *   x  lp(ns) lp(coll) lp(keyHash) u64(block) u64(tx) → ''   which `d` entries wrote a key
 *   e  u64(expiry) u64(block) u64(tx) lp(ns) lp(coll) → CBOR [keyHashHex...]   blockToLive index
 *   m  u64(block) u64(tx) lp(ns) lp(coll)          → CBOR [txId, attempts, notBeforeMs]   missing data
 *
 * `lp` is a u32 length prefix and the UTF-8 bytes. Data committed at block N with `blockToLive` B
 * is purged when block N+B+1 commits (Fabric: it lives for B blocks after its own), on members
 * (values, history) and on every peer (the hashes). `purgePrivateData` removes the current value
 * and every historical value of the key.
 */
import {
  type Bytes,
  bytesEqual,
  concatBytes,
  decodeKVRWSet,
  decodeValue,
  encodeKVRWSet,
  encodeValue,
  type KVRWSet,
  type KVWrite,
  readList,
  readText,
  readTuple,
  readUint,
  sha256,
  toHex,
  utf8,
  type Version,
} from '@loom/common';
import { prefixUpperBound, readU64, u64 } from '../ledger/keys.js';
import type { KV, WriteBatch } from '../ledger/kv.js';
import { hashedNamespace, privateNamespace, type StateDB, type StateWrite } from '../ledger/state-db.js';
import type { StateUpdate } from '../validation/types.js';

const dec = new TextDecoder();

function lp(s: string): Bytes {
  const b = utf8(s);
  const len = new Uint8Array(4);
  new DataView(len.buffer).setUint32(0, b.length);
  return concatBytes(len, b);
}

function readLp(b: Bytes, offset: number): [string, number] {
  const n = new DataView(b.buffer, b.byteOffset + offset, 4).getUint32(0);
  return [dec.decode(b.subarray(offset + 4, offset + 4 + n)), offset + 4 + n];
}

const T = (c: string) => utf8(c);
const dKey = (b: number, t: number, ns: string, coll: string) => concatBytes(T('d'), u64(b), u64(t), lp(ns), lp(coll));
const xPrefix = (ns: string, coll: string, kh: string) => concatBytes(T('x'), lp(ns), lp(coll), lp(kh));
const xKey = (ns: string, coll: string, kh: string, b: number, t: number) =>
  concatBytes(xPrefix(ns, coll, kh), u64(b), u64(t));
const ePrefix = (expiry: number) => concatBytes(T('e'), u64(expiry));
const eKey = (expiry: number, b: number, t: number, ns: string, coll: string) =>
  concatBytes(ePrefix(expiry), u64(b), u64(t), lp(ns), lp(coll));
const mKey = (b: number, t: number, ns: string, coll: string) => concatBytes(T('m'), u64(b), u64(t), lp(ns), lp(coll));

export const keyHashHex = (key: string) => toHex(sha256(utf8(key)));

/** What the private store needs to know of a collection. */
export interface CollectionInfo {
  readonly blockToLive: number;
  /** Whether this peer's org is a member (stores the values). */
  readonly isMember: boolean;
}

/** One collection's hashed writes of a valid transaction, as the block carries them. */
export interface TxCollectionHashes {
  readonly txNum: number;
  readonly txId: string;
  readonly namespace: string;
  readonly collection: string;
  /** sha256 of the private KVRWSet; empty when the transaction has no private writes there. */
  readonly pvtRwsetHash: Bytes;
  readonly hashedWrites: readonly {
    readonly keyHash: Bytes;
    readonly isDelete: boolean;
    readonly valueHash: Bytes;
    readonly isPurge: boolean;
  }[];
}

/** Missing private data of one transaction's collection. */
export interface MissingEntry {
  readonly blockNum: number;
  readonly txNum: number;
  readonly txId: string;
  readonly namespace: string;
  readonly collection: string;
  readonly attempts: number;
  /** Not to be retried before this time (ms since epoch). */
  readonly notBefore: number;
}

export interface PrepareCommitInput {
  readonly batch: WriteBatch;
  readonly blockNum: number;
  /** Valid transactions' collection hashes, in block order. */
  readonly txs: readonly TxCollectionHashes[];
  /** The validator's state updates of this block (already added to the batch). */
  readonly updates: readonly StateUpdate[];
  /** Private rwsets at hand (transient store) for a transaction, each a KVRWSet by (ns, coll). */
  readonly available: (txId: string, namespace: string, collection: string, hash: Bytes) => Bytes | undefined;
  readonly collection: (namespace: string, collection: string) => CollectionInfo | undefined;
  readonly now: number;
}

export interface PrepareCommitResult {
  readonly stored: number;
  readonly missing: number;
  readonly purgedKeys: number;
  readonly expired: number;
}

/** Checks pulled private writes one by one against the block's hashed writes (purged keys may be absent). */
export function writesMatchHashes(rwset: KVRWSet, hashes: TxCollectionHashes): boolean {
  const byKey = new Map(hashes.hashedWrites.map((w) => [toHex(w.keyHash), w]));
  for (const w of rwset.writes) {
    const h = byKey.get(keyHashHex(w.key));
    if (!h || h.isDelete !== w.isDelete) return false;
    if (!w.isDelete && !bytesEqual(h.valueHash, sha256(w.value))) return false;
  }
  return true;
}

export class PrivateDataStore {
  readonly #kv: KV;
  readonly #state: StateDB;

  constructor(kv: KV, state: StateDB) {
    this.#kv = kv;
    this.#state = state;
  }

  /**
   * Adds everything a block changes in private data to `batch`: the private writes of member
   * collections (from `available`, checked against the block's `pvtRwsetHash`), missing-data
   * records for what is not at hand, purges, blockToLive index entries and expiries.
   */
  async prepareCommit(input: PrepareCommitInput): Promise<PrepareCommitResult> {
    const { batch, blockNum } = input;
    const b = batch.scoped(this.#kv);
    const writes: StateWrite[] = [];
    let stored = 0;
    let missing = 0;
    let purgedKeys = 0;
    /** d-entries written in this batch, so a later purge in the same block rewrites them too. */
    const pendingD = new Map<string, { key: Bytes; rwset: KVRWSet }>();
    for (const tx of input.txs) {
      const info = input.collection(tx.namespace, tx.collection);
      const version: Version = { blockNum, txNum: tx.txNum };
      const pns = privateNamespace(tx.namespace, tx.collection);
      // Purges first: they remove every earlier value of the key (this transaction's own write is a delete).
      for (const w of tx.hashedWrites) {
        if (!w.isPurge || !info?.isMember) continue;
        purgedKeys += await this.#purgeKey(b, tx.namespace, tx.collection, toHex(w.keyHash), pendingD, writes, version);
      }
      const written = tx.hashedWrites.filter((w) => !w.isDelete).map((w) => toHex(w.keyHash));
      if (info && info.blockToLive > 0 && written.length > 0) {
        b.put(
          eKey(blockNum + info.blockToLive + 1, blockNum, tx.txNum, tx.namespace, tx.collection),
          encodeValue(written),
        );
      }
      if (!info?.isMember || tx.pvtRwsetHash.length === 0) continue;
      const bytes = input.available(tx.txId, tx.namespace, tx.collection, tx.pvtRwsetHash);
      if (bytes === undefined) {
        b.put(mKey(blockNum, tx.txNum, tx.namespace, tx.collection), encodeValue([tx.txId, 0, input.now]));
        missing++;
        continue;
      }
      const rwset = decodeKVRWSet(bytes);
      this.#applyWrites(b, rwset, tx, version, pns, writes, pendingD, blockNum);
      stored++;
    }
    const expired = await this.#expire(b, blockNum, input.updates, writes, input.collection);
    if (writes.length > 0) await this.#state.applyUpdates(batch, writes, blockNum + 1);
    return { stored, missing, purgedKeys, expired };
  }

  #applyWrites(
    b: WriteBatch,
    rwset: KVRWSet,
    tx: TxCollectionHashes,
    version: Version,
    pns: string,
    writes: StateWrite[],
    pendingD: Map<string, { key: Bytes; rwset: KVRWSet }> | undefined,
    blockNum: number,
  ): void {
    const kept = rwset.writes.filter((w) => !w.isDelete);
    for (const w of rwset.writes) {
      writes.push(
        w.isDelete
          ? { namespace: pns, key: w.key, kind: 'delete', version }
          : { namespace: pns, key: w.key, kind: 'put', value: w.value, version },
      );
    }
    if (kept.length === 0) return;
    const only: KVRWSet = { reads: [], rangeQueriesInfo: [], writes: kept, metadataWrites: [] };
    const key = dKey(blockNum, tx.txNum, tx.namespace, tx.collection);
    b.put(key, encodeKVRWSet(only));
    pendingD?.set(toHex(key), { key, rwset: only });
    for (const w of kept)
      b.put(xKey(tx.namespace, tx.collection, keyHashHex(w.key), blockNum, tx.txNum), new Uint8Array(0));
  }

  /** Removes the key's current value and every historical value (rewriting the `d` entries without it). */
  async #purgeKey(
    b: WriteBatch,
    ns: string,
    coll: string,
    kh: string,
    pendingD: Map<string, { key: Bytes; rwset: KVRWSet }>,
    writes: StateWrite[],
    version: Version,
  ): Promise<number> {
    const prefix = xPrefix(ns, coll, kh);
    const entries: { x: Bytes; d: Bytes }[] = [];
    for await (const [k] of this.#kv.iterate({ gte: prefix, lt: prefixUpperBound(prefix)! })) {
      const blk = readU64(k, prefix.length);
      const txn = readU64(k, prefix.length + 8);
      entries.push({ x: k, d: dKey(blk, txn, ns, coll) });
    }
    // The purging transaction's own rwset deletes the key in the state DB; a put of it earlier in
    // the same block is only in the batch.
    for (const p of pendingD.values()) {
      if (p.rwset.writes.some((w) => keyHashHex(w.key) === kh) && !entries.some((e) => bytesEqual(e.d, p.key))) {
        entries.push({ x: new Uint8Array(0), d: p.key });
      }
    }
    let purgedKey: string | undefined;
    for (const e of entries) {
      if (e.x.length > 0) b.del(e.x);
      const pending = pendingD.get(toHex(e.d));
      const bytes = pending ? encodeKVRWSet(pending.rwset) : await this.#kv.get(e.d);
      if (bytes === undefined) continue;
      const rwset = decodeKVRWSet(bytes);
      const rest = rwset.writes.filter((w) => {
        if (keyHashHex(w.key) !== kh) return true;
        purgedKey = w.key;
        return false;
      });
      if (rest.length === 0) {
        b.del(e.d);
        if (pending) pendingD.delete(toHex(e.d));
      } else {
        const next = { ...rwset, writes: rest };
        b.put(e.d, encodeKVRWSet(next));
        if (pending) pending.rwset = next;
      }
    }
    // The state DB's current value (when the purging tx's private rwset is missing, the key comes from history).
    if (purgedKey !== undefined) {
      writes.push({ namespace: privateNamespace(ns, coll), key: purgedKey, kind: 'delete', version });
    }
    return entries.length;
  }

  /** blockToLive: what expires at `blockNum`, unless the key was written again since. */
  async #expire(
    b: WriteBatch,
    blockNum: number,
    updates: readonly StateUpdate[],
    writes: StateWrite[],
    collection: PrepareCommitInput['collection'],
  ): Promise<number> {
    const prefix = ePrefix(blockNum);
    const touched = new Set(
      updates.filter((u) => u.collection !== undefined).map((u) => `${u.namespace}\u0000${u.collection}\u0000${u.key}`),
    );
    let n = 0;
    for await (const [k, v] of this.#kv.iterate({ gte: prefix, lt: prefixUpperBound(prefix)! })) {
      b.del(k);
      let o = prefix.length;
      const blk = readU64(k, o);
      const txn = readU64(k, o + 8);
      o += 16;
      const [ns, o2] = readLp(k, o);
      const [coll] = readLp(k, o2);
      const khs = readList(decodeValue(v, 'expiry'), 'expiry', (x, w) => readText(x, w));
      const isMember = collection(ns, coll)?.isMember ?? false;
      const d = dKey(blk, txn, ns, coll);
      const stored = isMember ? await this.#kv.get(d) : undefined;
      const keys = new Map((stored ? decodeKVRWSet(stored).writes : []).map((w) => [keyHashHex(w.key), w.key]));
      for (const kh of khs) {
        b.del(xKey(ns, coll, kh, blk, txn));
        if (touched.has(`${ns}\u0000${coll}\u0000${kh}`)) continue;
        const hashed = await this.#state.getState(hashedNamespace(ns, coll), kh);
        if (hashed && hashed.version.blockNum === blk && hashed.version.txNum === txn) {
          writes.push({ namespace: ns, collection: coll, key: kh, kind: 'delete', version: { blockNum, txNum: 0 } });
          const key = keys.get(kh);
          if (key !== undefined) {
            writes.push({
              namespace: privateNamespace(ns, coll),
              key,
              kind: 'delete',
              version: { blockNum, txNum: 0 },
            });
          }
        }
        n++;
      }
      b.del(d);
      b.del(mKey(blk, txn, ns, coll));
    }
    return n;
  }

  /**
   * Stores pulled private writes of a committed transaction (reconciliation), in `batch`: only keys
   * whose committed hash is still the one this transaction wrote become current values.
   */
  async prepareReconciled(batch: WriteBatch, entry: MissingEntry, rwset: KVRWSet, height: number): Promise<void> {
    const b = batch.scoped(this.#kv);
    const { blockNum, txNum, namespace: ns, collection: coll } = entry;
    const version: Version = { blockNum, txNum };
    const current: KVWrite[] = [];
    // History only for keys that still have a hash: a key purged (or deleted) since has none, and a
    // purge must not come back through a late reconciliation.
    const kept: KVWrite[] = [];
    for (const w of rwset.writes) {
      if (w.isDelete) continue;
      const hashed = await this.#state.getState(hashedNamespace(ns, coll), keyHashHex(w.key));
      if (hashed === undefined) continue;
      kept.push(w);
      if (hashed.version.blockNum === blockNum && hashed.version.txNum === txNum) current.push(w);
    }
    const writes: StateWrite[] = current.map((w) => ({
      namespace: privateNamespace(ns, coll),
      key: w.key,
      kind: 'put',
      value: w.value,
      version,
    }));
    const tx: TxCollectionHashes = {
      txNum,
      txId: entry.txId,
      namespace: ns,
      collection: coll,
      pvtRwsetHash: new Uint8Array(0),
      hashedWrites: [],
    };
    this.#applyWrites(b, { ...rwset, writes: kept }, tx, version, privateNamespace(ns, coll), [], undefined, blockNum);
    b.del(mKey(blockNum, txNum, ns, coll));
    if (writes.length > 0) await this.#state.applyUpdates(batch, writes, height);
  }

  /** Records another failed attempt (backoff) in its own small batch. */
  async recordAttempt(entry: MissingEntry, notBefore: number): Promise<void> {
    const b = this.#kv.batch();
    b.put(
      mKey(entry.blockNum, entry.txNum, entry.namespace, entry.collection),
      encodeValue([entry.txId, entry.attempts + 1, notBefore]),
    );
    await b.write();
  }

  /** Drops a missing record that can never be filled (expired, or the collection is gone). */
  async dropMissing(entry: MissingEntry): Promise<void> {
    const b = this.#kv.batch();
    b.del(mKey(entry.blockNum, entry.txNum, entry.namespace, entry.collection));
    await b.write();
  }

  /** Missing private data, oldest first. */
  async missing(limit = 1000): Promise<MissingEntry[]> {
    const out: MissingEntry[] = [];
    const prefix = T('m');
    for await (const [k, v] of this.#kv.iterate({ gte: prefix, lt: prefixUpperBound(prefix)!, limit })) {
      const blockNum = readU64(k, 1);
      const txNum = readU64(k, 9);
      const [namespace, o] = readLp(k, 17);
      const [collection] = readLp(k, o);
      const t = readTuple(decodeValue(v, 'missing'), 3, 'missing');
      out.push({
        blockNum,
        txNum,
        namespace,
        collection,
        txId: readText(t[0], 'missing.txId'),
        attempts: readUint(t[1], 'missing.attempts'),
        notBefore: readUint(t[2], 'missing.notBefore'),
      });
    }
    return out;
  }

  /** The private writes a transaction committed for a collection (what a pull answers), purged keys left out. */
  async committedWrites(blockNum: number, txNum: number, ns: string, coll: string): Promise<Bytes | undefined> {
    return this.#kv.get(dKey(blockNum, txNum, ns, coll));
  }

  /** Every stored historical value of a key, newest first. */
  async history(ns: string, coll: string, key: string): Promise<{ version: Version; value: Bytes }[]> {
    const prefix = xPrefix(ns, coll, keyHashHex(key));
    const out: { version: Version; value: Bytes }[] = [];
    for await (const [k] of this.#kv.iterate({ gte: prefix, lt: prefixUpperBound(prefix)!, reverse: true })) {
      const blk = readU64(k, prefix.length);
      const txn = readU64(k, prefix.length + 8);
      const bytes = await this.#kv.get(dKey(blk, txn, ns, coll));
      const w = bytes ? decodeKVRWSet(bytes).writes.find((x) => x.key === key) : undefined;
      if (w) out.push({ version: { blockNum: blk, txNum: txn }, value: w.value });
    }
    return out;
  }
}

/** The KVRWSet of `collection` in a private rwset whose hash is `hash`, if present. */
export function pickCollection(
  pvt: { nsPvtRwsets: { namespace: string; collectionPvtRwsets: { collectionName: string; rwset: Bytes }[] }[] },
  ns: string,
  coll: string,
  hash: Bytes,
): Bytes | undefined {
  for (const n of pvt.nsPvtRwsets) {
    if (n.namespace !== ns) continue;
    for (const c of n.collectionPvtRwsets) {
      if (c.collectionName === coll && bytesEqual(sha256(c.rwset), hash)) return c.rwset;
    }
  }
  return undefined;
}
