/**
 * World state: per namespace, key → {value, version (blockNum, txNum), metadata}, with the
 * savepoint (the height the state reflects) written in the same batch as the updates, and the
 * rich-query indexes of each namespace kept in step. Layout in keys.ts.
 *
 * Namespaces: a chaincode's public state is its name; a private collection's values live in
 * `privateNamespace(cc, coll)` = `cc$$p<coll>` and the hashes of its private writes in
 * `hashedNamespace(cc, coll)` = `cc$$h<coll>` with keys hex(sha256(key)) — Fabric's naming.
 */
import {
  concatBytes,
  decodeValue,
  encodeSortedMap,
  encodeValue,
  LoomError,
  readBytes,
  readSortedMap,
  readTuple,
  readUint,
  utf8,
  type Version,
} from '@loom/common';
import { hashedNamespace } from '../validation/state-reader.js';
import { batchIdentity, type IterateOptions, type KV, type WriteBatch } from './kv.js';
import { checkText, namespacePrefix, prefixUpperBound, readU64, tagged, u64 } from './keys.js';
import { type JsonObject, parseDocument } from './query/collation.js';
import type { IndexDefinition } from './query/index-def.js';
import type { QueryPlan } from './query/query.js';
import { RichIndexStore } from './rich-index-store.js';
import type { StateEntry, StateReader, VersionedValue } from './state-reader.js';

export { hashedNamespace };

/** The state DB namespace of a private collection's values (Fabric's `ns$$p<coll>`). */
export function privateNamespace(namespace: string, collection: string): string {
  return `${namespace}$$p${collection}`;
}

/**
 * One change to state; the validator's `StateUpdate` has this shape. `put` sets the value (and the
 * metadata when given, else keeps it); `delete` removes the key and its metadata; `metadata`
 * replaces the metadata and keeps the value (ignored when the key does not exist). Every kind sets
 * the key's version. With `collection`, the write goes to `hashedNamespace(namespace, collection)`.
 */
export interface StateWrite {
  readonly namespace: string;
  readonly collection?: string | undefined;
  readonly key: string;
  readonly kind: 'put' | 'delete' | 'metadata';
  readonly value?: Uint8Array | undefined;
  readonly metadata?: ReadonlyMap<string, Uint8Array> | undefined;
  readonly version: Version;
}

export interface RangeScanOptions {
  reverse?: boolean;
  limit?: number;
}

export interface StateDB extends StateReader {
  rangeScan(ns: string, startKey: string, endKey: string, options?: RangeScanOptions): AsyncIterable<StateEntry>;
  getStates(ns: string, keys: readonly string[]): Promise<(VersionedValue | undefined)[]>;
  /**
   * Adds the updates (in order) and the new savepoint to `batch`; index entries follow every write.
   * Updates in one batch see the earlier ones of that batch; batches are committed one at a time.
   * `committed`: entries the caller has just read (e.g. while validating the block), by
   * `stateCacheKey(ns, key)` (undefined: the key does not exist); only the others are read here.
   */
  applyUpdates(
    batch: WriteBatch,
    updates: readonly StateWrite[],
    height: number,
    committed?: ReadonlyMap<string, VersionedValue | undefined>,
  ): Promise<void>;
  /**
   * Defines a rich-query index on a namespace and builds it over the current state, in its own
   * batch. Call it between block commits (the committer serializes them), e.g. when a chaincode
   * definition with indexes is committed.
   */
  createIndex(ns: string, definition: IndexDefinition): Promise<{ created: boolean }>;
  indexes(ns: string): IndexDefinition[];
  /** Keys in the index range that a query plan selects. */
  scanIndex(ns: string, plan: QueryPlan): AsyncIterable<string>;
}

const SAVEPOINT = tagged('s');

/** The key `applyUpdates` knows a committed entry by (namespace as stored, e.g. a hashed one). */
export const stateCacheKey = (ns: string, key: string): string => `${ns}\u0000${key}`;

function encodeEntry(v: VersionedValue): Uint8Array {
  return encodeValue([v.value, v.version.blockNum, v.version.txNum, encodeSortedMap(v.metadata)]);
}

function decodeEntry(b: Uint8Array): VersionedValue {
  const t = readTuple(decodeValue(b, 'StateEntry'), 4, 'StateEntry');
  return {
    value: readBytes(t[0], 'StateEntry.value'),
    version: { blockNum: readUint(t[1], 'StateEntry.blockNum'), txNum: readUint(t[2], 'StateEntry.txNum') },
    metadata: readSortedMap(t[3], 'StateEntry.metadata', readBytes),
  };
}

/** `tagged('d', namespacePrefix(ns))` per namespace, computed once (a block writes thousands of keys). */
const dataPrefixes = new Map<string, Uint8Array>();
function dataPrefix(ns: string): Uint8Array {
  let p = dataPrefixes.get(ns);
  if (p === undefined) {
    p = tagged('d', namespacePrefix(ns));
    if (dataPrefixes.size >= 1024) dataPrefixes.clear();
    dataPrefixes.set(ns, p);
  }
  return p;
}
/** `tagged('d', namespacedKey(ns, key))`. */
function dataKey(ns: string, key: string): Uint8Array {
  checkText(key, 'key', true);
  return concatBytes(dataPrefix(ns), utf8(key));
}
const textDecoder = new TextDecoder('utf-8', { fatal: true });

class LevelStateDB implements StateDB {
  readonly #kv: KV;
  readonly #indexes: RichIndexStore;
  /** Values written to a batch not yet written, so later updates in it see earlier ones. */
  readonly #pending = new WeakMap<object, Map<string, VersionedValue | null>>();

  constructor(kv: KV, indexes: RichIndexStore) {
    this.#kv = kv;
    this.#indexes = indexes;
  }

  async getState(ns: string, key: string): Promise<VersionedValue | undefined> {
    const b = await this.#kv.get(dataKey(ns, key));
    return b === undefined ? undefined : decodeEntry(b);
  }

  async getStates(ns: string, keys: readonly string[]): Promise<(VersionedValue | undefined)[]> {
    const bs = await this.#kv.getMany(keys.map((k) => dataKey(ns, k)));
    return bs.map((b) => (b === undefined ? undefined : decodeEntry(b)));
  }

  async getVersion(ns: string, key: string): Promise<Version | undefined> {
    return (await this.getState(ns, key))?.version;
  }

  async getMetadata(ns: string, key: string): Promise<Map<string, Uint8Array> | undefined> {
    const m = (await this.getState(ns, key))?.metadata;
    return m === undefined || m.size === 0 ? undefined : m;
  }

  async height(): Promise<number> {
    const b = await this.#kv.get(SAVEPOINT);
    return b === undefined ? 0 : readU64(b);
  }

  async *rangeScan(
    ns: string,
    startKey: string,
    endKey: string,
    options: RangeScanOptions = {},
  ): AsyncIterable<StateEntry> {
    const nsStart = tagged('d', namespacePrefix(ns));
    const gte = dataKey(ns, startKey);
    const lt = endKey === '' ? prefixUpperBound(nsStart)! : dataKey(ns, endKey);
    const o: IterateOptions = { gte, lt, reverse: options.reverse ?? false };
    if (options.limit !== undefined) o.limit = options.limit;
    for await (const [k, v] of this.#kv.iterate(o)) {
      yield { key: textDecoder.decode(k.subarray(nsStart.length)), ...decodeEntry(v) };
    }
  }

  async applyUpdates(
    batch: WriteBatch,
    updates: readonly StateWrite[],
    height: number,
    known?: ReadonlyMap<string, VersionedValue | undefined>,
  ): Promise<void> {
    const id = batchIdentity(batch);
    let pending = this.#pending.get(id);
    if (pending === undefined) this.#pending.set(id, (pending = new Map()));
    const b = batch.scoped(this.#kv);
    const nsOf = (u: StateWrite) =>
      u.collection === undefined ? u.namespace : hashedNamespace(u.namespace, u.collection);
    // Read every touched key's committed entry at once (not one read per write), except those known.
    const toRead = new Map<string, Uint8Array>();
    const committed = new Map<string, VersionedValue | undefined>();
    for (const u of updates) {
      const pk = stateCacheKey(nsOf(u), u.key);
      if (pending.has(pk) || toRead.has(pk) || committed.has(pk)) continue;
      if (known?.has(pk)) committed.set(pk, known.get(pk));
      else toRead.set(pk, dataKey(nsOf(u), u.key));
    }
    const readKeys = [...toRead.keys()];
    for (const [i, v] of (await this.#kv.getMany([...toRead.values()])).entries()) {
      committed.set(readKeys[i]!, v === undefined ? undefined : decodeEntry(v));
    }
    for (const u of updates) {
      const ns = nsOf(u);
      const pk = stateCacheKey(ns, u.key);
      const old = pending.has(pk) ? (pending.get(pk) ?? undefined) : committed.get(pk);
      let next: VersionedValue | null;
      switch (u.kind) {
        case 'put':
          if (u.value === undefined) {
            throw new LoomError('LEDGER_BAD_UPDATE', `put of ${ns}/${JSON.stringify(u.key)} without a value`);
          }
          next = {
            value: u.value,
            version: u.version,
            metadata: new Map(u.metadata ?? old?.metadata ?? []),
          };
          break;
        case 'delete':
          next = null;
          break;
        case 'metadata':
          if (old === undefined) continue;
          next = { value: old.value, version: u.version, metadata: new Map(u.metadata ?? []) };
          break;
      }
      if (next === null) b.del(dataKey(ns, u.key));
      else b.put(dataKey(ns, u.key), encodeEntry(next));
      if (u.kind !== 'metadata' && this.#indexes.hasIndexes(ns)) {
        const doc = (v: VersionedValue | null | undefined): JsonObject | undefined =>
          v === null || v === undefined ? undefined : parseDocument(v.value);
        this.#indexes.updateEntries(batch, ns, u.key, doc(old), doc(next));
      }
      pending.set(pk, next);
    }
    b.put(SAVEPOINT, u64(height));
  }

  createIndex(ns: string, definition: IndexDefinition): Promise<{ created: boolean }> {
    const self = this;
    async function* documents() {
      for await (const e of self.rangeScan(ns, '', '')) {
        const doc = parseDocument(e.value);
        if (doc !== undefined) yield { key: e.key, doc };
      }
    }
    return this.#indexes.create(ns, definition, documents());
  }

  indexes(ns: string): IndexDefinition[] {
    return this.#indexes.definitions(ns);
  }

  scanIndex(ns: string, plan: QueryPlan): AsyncIterable<string> {
    return this.#indexes.scan(ns, plan);
  }
}

/** Opens the state DB on its sublevel (rich-query indexes nest under it as `richidx`). */
export async function openStateDB(kv: KV): Promise<StateDB> {
  return new LevelStateDB(kv, await RichIndexStore.open(kv.sublevel('richidx')));
}
