/**
 * Transaction simulation with Fabric's read-write set semantics. A simulator runs one proposal
 * (and the chaincodes it calls on the same channel, each under its own namespace) against the
 * committed state and records what the validator needs, never writing state:
 *
 * - reads: each key once, with the committed version first seen (`null` when absent);
 * - NO read-your-own-writes: `getState` after `putState` returns the committed value (Fabric);
 * - writes: the last write of a key wins; a put of an empty value is a delete (Fabric);
 * - metadata writes (`VALIDATION_PARAMETER`), merged per key within the transaction;
 * - range queries: `[start, end)`, whether the iterator ran to the end, and the keys and versions
 *   handed to the chaincode, for phantom detection; they do not enter the read set;
 * - rich queries and history queries are not recorded (no phantom protection for them, as Fabric);
 * - paginated queries and private-data range/rich queries belong to read-only transactions (Fabric):
 *   one after a write, or a write after one, is refused (`SIMULATION_READ_ONLY_QUERY`);
 * - private data: writes in the private rwset (`TxPvtReadWriteSet`, never in a block), and in the
 *   public rwset their hashes (`keyHash = sha256(key)`, `valueHash = sha256(value)`), the hashed
 *   reads (versions of the committed hashes) and `pvtRwsetHash = sha256(private KVRWSet)`; as in
 *   Fabric, private reads are recorded hashed only. `getPrivateDataHash` reads the hashed
 *   namespace; `purgePrivateData` is a delete with `isPurge` on the hash.
 *
 * Output is canonical: namespaces, collections and keys sorted in code point order, range queries in
 * the order they were opened, so every endorser that saw the same state produces identical bytes.
 *
 * Consistency: the simulator takes the ledger height when it starts and, when the ledger has a
 * `CommitGate`, holds its shared side until `done()`, so every read comes from that one height.
 * Iterators read level's implicit iterator snapshots. Without a gate, reads could straddle a commit;
 * MVCC validation then invalidates the transaction, so nothing wrong is ever committed.
 */
import {
  type Bytes,
  type CollectionHashedReadWriteSet,
  type CollectionPvtReadWriteSet,
  encodeKVRWSet,
  encodeTxPvtReadWriteSet,
  encodeTxReadWriteSet,
  type KVRead,
  type KVRWSet,
  LoomError,
  type NsPvtReadWriteSet,
  type NsReadWriteSet,
  type RangeQueryInfo,
  sha256,
  toHex,
  type TxPvtReadWriteSet,
  type TxReadWriteSet,
  type Version,
} from '@loom/common';
import { EMPTY_KEY_SUBSTITUTE } from '../ledger/composite-key.js';
import type { HistoryIndex, KeyModification } from '../ledger/history.js';
import { executeQuery, type RichQueryState } from '../ledger/query/executor.js';
import { decodeKeyBookmark, encodeKeyBookmark } from '../ledger/range-query.js';
import type { StateDB } from '../ledger/state-db.js';
import { hashedNamespace, privateNamespace } from '../ledger/state-db.js';
import type { StateEntry } from '../ledger/state-reader.js';
import { compareKeys } from '../validation/state-reader.js';
import type { CommitGate } from './commit-gate.js';

export const SimulationErrorCode = {
  /** A call after `done()`. */
  SIMULATION_DONE: 'SIMULATION_DONE',
  /** Empty key, or a key that is not valid text. */
  INVALID_KEY: 'SIMULATION_INVALID_KEY',
  /** A private value whose hash is committed is missing from this peer's private store. */
  PRIVATE_DATA_UNAVAILABLE: 'PRIVATE_DATA_UNAVAILABLE',
  /** The iterator id is unknown or already closed. */
  UNKNOWN_ITERATOR: 'SIMULATION_UNKNOWN_ITERATOR',
  /** The ledger has no history index. */
  HISTORY_DISABLED: 'SIMULATION_HISTORY_DISABLED',
  /**
   * Paginated queries and private-data range/rich queries are for read-only transactions (Fabric):
   * such a query after a write, or a write after one, fails the simulation.
   */
  READ_ONLY_QUERY: 'SIMULATION_READ_ONLY_QUERY',
} as const;

/** What a simulation reads: the state DB (with its rich-query indexes), the history index, the gate. */
export interface SimulationLedger {
  readonly state: Pick<StateDB, 'getState' | 'getMetadata' | 'rangeScan' | 'height'> & RichQueryState;
  readonly history?: HistoryIndex | undefined;
  readonly gate?: CommitGate | undefined;
}

export interface Pagination {
  pageSize: number;
  bookmark: string;
}

/** One record handed to the chaincode by a query. */
export interface QueryRecord {
  key: string;
  value: Bytes;
}

/** A query's results, served a page at a time. */
export interface ResultIterator<T> {
  /** Up to `max` further results, and whether any remain. */
  next(max: number): Promise<{ results: T[]; hasMore: boolean }>;
  close(): Promise<void>;
}

/** A paginated query's single page. */
export interface QueryPage {
  results: QueryRecord[];
  fetchedRecordsCount: number;
  bookmark: string;
}

export interface SimulationResults {
  /** The public read-write set (with hashed private data): goes into the endorsement. */
  readonly rwset: TxReadWriteSet;
  readonly rwsetBytes: Bytes;
  /** The private read-write set, for dissemination to collection members; null when no private writes or reads. */
  readonly pvtRwset: TxPvtReadWriteSet | null;
  readonly pvtRwsetBytes: Bytes | null;
}

interface Write {
  isDelete: boolean;
  value: Bytes;
}

interface CollectionSet {
  /** Private writes (private rwset and their hashes), keyed by key. */
  readonly writes: Map<string, Write & { isPurge: boolean }>;
  readonly metadataWrites: Map<string, Map<string, Bytes>>;
  /** Reads, keyed by key: recorded hashed only (Fabric's private rwset holds no reads). */
  readonly hashedReads: Map<string, Version | null>;
}

interface NamespaceSet {
  readonly reads: Map<string, Version | null>;
  readonly writes: Map<string, Write>;
  readonly metadataWrites: Map<string, Map<string, Bytes>>;
  readonly ranges: RangeRecorder[];
  readonly collections: Map<string, CollectionSet>;
}

const EMPTY = new Uint8Array(0);
const loneSurrogate = /\p{Cs}/u;

function checkKey(key: string, what = 'key'): void {
  if (typeof key !== 'string' || key === '' || loneSurrogate.test(key)) {
    throw new LoomError(SimulationErrorCode.INVALID_KEY, `${what} must be a non-empty valid string`, {
      details: { key },
    });
  }
}

const keyHashHex = (key: string): string => toHex(sha256(new TextEncoder().encode(key)));

const sortedEntries = <V>(m: ReadonlyMap<string, V>): [string, V][] =>
  [...m.entries()].sort((a, b) => compareKeys(a[0], b[0]));

/** Records a public range query's delivered keys while it is read a page at a time. */
class RangeRecorder implements ResultIterator<QueryRecord> {
  readonly startKey: string;
  readonly endKey: string;
  readonly reads: KVRead[] = [];
  exhausted = false;
  readonly #iterator: AsyncIterator<StateEntry>;
  #peeked: StateEntry | undefined;
  #closed = false;

  constructor(source: AsyncIterable<StateEntry>, startKey: string, endKey: string) {
    this.startKey = startKey;
    this.endKey = endKey;
    this.#iterator = source[Symbol.asyncIterator]();
  }

  async #pull(): Promise<StateEntry | undefined> {
    if (this.#peeked !== undefined) {
      const p = this.#peeked;
      this.#peeked = undefined;
      return p;
    }
    if (this.exhausted || this.#closed) return undefined;
    const r = await this.#iterator.next();
    if (r.done) {
      this.exhausted = true;
      return undefined;
    }
    return r.value;
  }

  async next(max: number): Promise<{ results: QueryRecord[]; hasMore: boolean }> {
    const results: QueryRecord[] = [];
    while (results.length < max) {
      const e = await this.#pull();
      if (e === undefined) break;
      this.reads.push({ key: e.key, version: e.version });
      results.push({ key: e.key, value: e.value });
    }
    // Look one ahead so the chaincode learns whether to ask again; the peeked entry is not read yet.
    if (this.#peeked === undefined && !this.exhausted && !this.#closed) {
      const r = await this.#iterator.next();
      if (r.done) this.exhausted = true;
      else this.#peeked = r.value;
    }
    return { results, hasMore: this.#peeked !== undefined };
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#peeked = undefined;
    if (!this.exhausted) await this.#iterator.return?.();
  }

  info(): RangeQueryInfo {
    return { startKey: this.startKey, endKey: this.endKey, itrExhausted: this.exhausted, reads: [...this.reads] };
  }
}

/** Results already in memory (rich queries, history, private ranges), handed out a page at a time. */
class ListIterator<T> implements ResultIterator<T> {
  #items: T[];
  #pos = 0;
  constructor(items: T[]) {
    this.#items = items;
  }
  async next(max: number): Promise<{ results: T[]; hasMore: boolean }> {
    const results = this.#items.slice(this.#pos, this.#pos + max);
    this.#pos += results.length;
    return { results, hasMore: this.#pos < this.#items.length };
  }
  async close(): Promise<void> {
    this.#items = [];
    this.#pos = 0;
  }
}

export interface TxSimulatorOptions {
  readonly txId: string;
  readonly channelId: string;
}

/**
 * A simulation of one transaction. Namespaces are chaincode names; `collection` names a private
 * data collection of that chaincode.
 */
export class TxSimulator {
  readonly txId: string;
  readonly channelId: string;
  /** Ledger height (blocks) the simulation reads. */
  readonly height: number;
  readonly #ledger: SimulationLedger;
  readonly #release: () => void;
  readonly #namespaces = new Map<string, NamespaceSet>();
  readonly #open = new Set<ResultIterator<unknown>>();
  #done = false;
  /** What made this a writing transaction, or the read-only query it ran (Fabric's rule, below). */
  #wrote = false;
  #readOnlyQuery: string | undefined;

  private constructor(ledger: SimulationLedger, opts: TxSimulatorOptions, height: number, release: () => void) {
    this.#ledger = ledger;
    this.txId = opts.txId;
    this.channelId = opts.channelId;
    this.height = height;
    this.#release = release;
  }

  /** Opens a simulation: enters the commit gate (if any), then takes the height it reads at. */
  static async start(ledger: SimulationLedger, opts: TxSimulatorOptions): Promise<TxSimulator> {
    const release = ledger.gate === undefined ? () => {} : await ledger.gate.acquireShared();
    try {
      return new TxSimulator(ledger, opts, await ledger.state.height(), release);
    } catch (e) {
      release();
      throw e;
    }
  }

  #check(): void {
    if (this.#done) {
      throw new LoomError(SimulationErrorCode.SIMULATION_DONE, `simulation of ${this.txId} is finished`);
    }
  }

  /** A write: refused after a read-only query (paginated, or over private data). */
  #checkWrite(): void {
    this.#check();
    if (this.#readOnlyQuery !== undefined) {
      throw new LoomError(
        SimulationErrorCode.READ_ONLY_QUERY,
        `transaction ${this.txId} ran a ${this.#readOnlyQuery}, which is only supported in a read-only transaction: it cannot write`,
        { details: { txId: this.txId, query: this.#readOnlyQuery } },
      );
    }
    this.#wrote = true;
  }

  /** A query only read-only transactions may run: refused after a write. */
  #readOnly(query: string): void {
    if (this.#wrote) {
      throw new LoomError(
        SimulationErrorCode.READ_ONLY_QUERY,
        `a ${query} is only supported in a read-only transaction; transaction ${this.txId} has already written`,
        { details: { txId: this.txId, query } },
      );
    }
    this.#readOnlyQuery ??= query;
  }

  #ns(ns: string): NamespaceSet {
    let s = this.#namespaces.get(ns);
    if (s === undefined) {
      s = { reads: new Map(), writes: new Map(), metadataWrites: new Map(), ranges: [], collections: new Map() };
      this.#namespaces.set(ns, s);
    }
    return s;
  }

  #coll(ns: string, collection: string): CollectionSet {
    const n = this.#ns(ns);
    let c = n.collections.get(collection);
    if (c === undefined) {
      c = { writes: new Map(), metadataWrites: new Map(), hashedReads: new Map() };
      n.collections.set(collection, c);
    }
    return c;
  }

  // ---- public state ----

  /** The committed value (undefined when absent), recording the read. */
  async getState(ns: string, key: string): Promise<Bytes | undefined> {
    this.#check();
    checkKey(key);
    const e = await this.#ledger.state.getState(ns, key);
    const reads = this.#ns(ns).reads;
    if (!reads.has(key)) reads.set(key, e?.version ?? null);
    return e?.value;
  }

  /** The committed metadata of a key (empty when none), recording a read of the key. */
  async getStateMetadata(ns: string, key: string): Promise<Map<string, Bytes>> {
    this.#check();
    checkKey(key);
    const e = await this.#ledger.state.getState(ns, key);
    const reads = this.#ns(ns).reads;
    if (!reads.has(key)) reads.set(key, e?.version ?? null);
    return new Map(e?.metadata ?? []);
  }

  setState(ns: string, key: string, value: Bytes): void {
    this.#checkWrite();
    checkKey(key);
    // Fabric: a nil/empty value is a delete.
    this.#ns(ns).writes.set(key, value.length === 0 ? { isDelete: true, value: EMPTY } : { isDelete: false, value });
  }

  deleteState(ns: string, key: string): void {
    this.#checkWrite();
    checkKey(key);
    this.#ns(ns).writes.set(key, { isDelete: true, value: EMPTY });
  }

  setStateMetadata(ns: string, key: string, metakey: string, value: Bytes): void {
    this.#checkWrite();
    checkKey(key);
    checkKey(metakey, 'metadata key');
    const m = this.#ns(ns).metadataWrites;
    let entries = m.get(key);
    if (entries === undefined) m.set(key, (entries = new Map()));
    entries.set(metakey, value);
  }

  /**
   * A range query over simple or composite keys, `[startKey, endKey)`, `endKey` '' unbounded. An
   * empty `startKey` starts at the first simple key (U+0001), so composite keys (U+0000…) never
   * appear in a simple-key range. With `pagination`, one page of at most `pageSize` results after
   * the bookmark. The keys handed out are recorded as the query's reads.
   */
  async getStateRange(
    ns: string,
    startKey: string,
    endKey: string,
    pagination: Pagination | null = null,
  ): Promise<{ iterator: ResultIterator<QueryRecord>; page: QueryPage | null }> {
    this.#check();
    let start = startKey === '' ? EMPTY_KEY_SUBSTITUTE : startKey;
    if (pagination !== null) {
      checkPageSize(pagination.pageSize);
      this.#readOnly('paginated range query');
      if (pagination.bookmark !== '') {
        const after = `${decodeKeyBookmark(pagination.bookmark)}\u0000`;
        if (compareKeys(after, start) > 0) start = after;
      }
    }
    const empty = endKey !== '' && compareKeys(start, endKey) >= 0;
    const source = empty ? (async function* () {})() : this.#ledger.state.rangeScan(ns, start, endKey);
    const recorder = new RangeRecorder(source, start, endKey);
    this.#ns(ns).ranges.push(recorder);
    this.#open.add(recorder);
    if (pagination === null) return { iterator: this.#tracked(recorder), page: null };
    const { results, hasMore } = await recorder.next(pagination.pageSize);
    await recorder.close();
    const last = results[results.length - 1];
    const page: QueryPage = {
      results,
      fetchedRecordsCount: results.length,
      bookmark: hasMore && last !== undefined ? encodeKeyBookmark(last.key) : '',
    };
    return { iterator: this.#tracked(new ListIterator<QueryRecord>([])), page };
  }

  /** A rich (Mango) query over a namespace's JSON values; not recorded (no phantom protection). */
  async executeQuery(
    ns: string,
    query: string,
    pagination: Pagination | null = null,
  ): Promise<{ iterator: ResultIterator<QueryRecord>; page: QueryPage | null }> {
    return this.#richQuery(ns, query, pagination);
  }

  /** Every committed modification of a key, newest first; not recorded. */
  async getHistoryForKey(ns: string, key: string): Promise<ResultIterator<KeyModification>> {
    this.#check();
    checkKey(key);
    const history = this.#ledger.history;
    if (history === undefined) {
      throw new LoomError(SimulationErrorCode.HISTORY_DISABLED, 'history database is not enabled on this peer');
    }
    const out: KeyModification[] = [];
    for await (const m of history.getHistoryForKey(ns, key)) out.push(m);
    return this.#tracked(new ListIterator(out));
  }

  // ---- private data ----

  /**
   * The private value (undefined when absent). The read is recorded in the hashed rwset only, with
   * the version of the key's committed hash, as Fabric does: a read-only private transaction then
   * has no private rwset to disseminate.
   */
  async getPrivateData(ns: string, collection: string, key: string): Promise<Bytes | undefined> {
    this.#check();
    checkKey(key);
    checkKey(collection, 'collection');
    const kh = keyHashHex(key);
    const [hashed, value] = await Promise.all([
      this.#ledger.state.getState(hashedNamespace(ns, collection), kh),
      this.#ledger.state.getState(privateNamespace(ns, collection), key),
    ]);
    if (hashed !== undefined && value === undefined) {
      throw new LoomError(
        SimulationErrorCode.PRIVATE_DATA_UNAVAILABLE,
        `private data matching public hash version is not available for ${ns}/${collection}/${key}`,
        { details: { namespace: ns, collection, key } },
      );
    }
    const c = this.#coll(ns, collection);
    if (!c.hashedReads.has(key)) c.hashedReads.set(key, hashed?.version ?? null);
    return value?.value;
  }

  /** The committed hash of a private value (undefined when absent); records a hashed read only. */
  async getPrivateDataHash(ns: string, collection: string, key: string): Promise<Bytes | undefined> {
    this.#check();
    checkKey(key);
    checkKey(collection, 'collection');
    const kh = keyHashHex(key);
    const hashed = await this.#ledger.state.getState(hashedNamespace(ns, collection), kh);
    const c = this.#coll(ns, collection);
    if (!c.hashedReads.has(key)) c.hashedReads.set(key, hashed?.version ?? null);
    return hashed?.value;
  }

  /** The metadata of a private key (kept on its hashed entry); records a hashed read. */
  async getPrivateDataMetadata(ns: string, collection: string, key: string): Promise<Map<string, Bytes>> {
    this.#check();
    checkKey(key);
    checkKey(collection, 'collection');
    const kh = keyHashHex(key);
    const hashed = await this.#ledger.state.getState(hashedNamespace(ns, collection), kh);
    const c = this.#coll(ns, collection);
    if (!c.hashedReads.has(key)) c.hashedReads.set(key, hashed?.version ?? null);
    return new Map(hashed?.metadata ?? []);
  }

  setPrivateData(ns: string, collection: string, key: string, value: Bytes): void {
    this.#checkWrite();
    checkKey(key);
    checkKey(collection, 'collection');
    this.#coll(ns, collection).writes.set(
      key,
      value.length === 0
        ? { isDelete: true, value: EMPTY, isPurge: false }
        : { isDelete: false, value, isPurge: false },
    );
  }

  deletePrivateData(ns: string, collection: string, key: string): void {
    this.#checkWrite();
    checkKey(key);
    checkKey(collection, 'collection');
    this.#coll(ns, collection).writes.set(key, { isDelete: true, value: EMPTY, isPurge: false });
  }

  /** Deletes the key and asks every peer to purge its private value and history. */
  purgePrivateData(ns: string, collection: string, key: string): void {
    this.#checkWrite();
    checkKey(key);
    checkKey(collection, 'collection');
    this.#coll(ns, collection).writes.set(key, { isDelete: true, value: EMPTY, isPurge: true });
  }

  setPrivateDataMetadata(ns: string, collection: string, key: string, metakey: string, value: Bytes): void {
    this.#checkWrite();
    checkKey(key);
    checkKey(collection, 'collection');
    checkKey(metakey, 'metadata key');
    const m = this.#coll(ns, collection).metadataWrites;
    let entries = m.get(key);
    if (entries === undefined) m.set(key, (entries = new Map()));
    entries.set(metakey, value);
  }

  /** A range over a collection's private values. Not recorded for phantoms (Fabric does not either). */
  async getPrivateDataRange(
    ns: string,
    collection: string,
    startKey: string,
    endKey: string,
  ): Promise<ResultIterator<QueryRecord>> {
    this.#check();
    checkKey(collection, 'collection');
    this.#readOnly('private data range query');
    const start = startKey === '' ? EMPTY_KEY_SUBSTITUTE : startKey;
    const out: QueryRecord[] = [];
    if (endKey === '' || compareKeys(start, endKey) < 0) {
      for await (const e of this.#ledger.state.rangeScan(privateNamespace(ns, collection), start, endKey)) {
        out.push({ key: e.key, value: e.value });
      }
    }
    return this.#tracked(new ListIterator(out));
  }

  /** A rich query over a collection's private values; not recorded. */
  async executePrivateQuery(
    ns: string,
    collection: string,
    query: string,
    pagination: Pagination | null = null,
  ): Promise<{ iterator: ResultIterator<QueryRecord>; page: QueryPage | null }> {
    this.#check();
    checkKey(collection, 'collection');
    this.#readOnly('private data rich query');
    return this.#richQuery(privateNamespace(ns, collection), query, pagination);
  }

  async #richQuery(
    ns: string,
    query: string,
    pagination: Pagination | null,
  ): Promise<{ iterator: ResultIterator<QueryRecord>; page: QueryPage | null }> {
    this.#check();
    if (pagination !== null) {
      checkPageSize(pagination.pageSize);
      this.#readOnly('paginated rich query');
    }
    const r = await executeQuery(
      this.#ledger.state,
      ns,
      query,
      pagination === null ? {} : { pageSize: pagination.pageSize, bookmark: pagination.bookmark },
    );
    const results = r.results.map((x) => ({ key: x.key, value: x.value }));
    if (pagination === null) return { iterator: this.#tracked(new ListIterator(results)), page: null };
    return {
      iterator: this.#tracked(new ListIterator<QueryRecord>([])),
      page: { results, fetchedRecordsCount: r.metadata.fetchedRecordsCount, bookmark: r.metadata.bookmark },
    };
  }

  #tracked<T>(it: ResultIterator<T>): ResultIterator<T> {
    this.#open.add(it);
    return it;
  }

  // ---- results ----

  /** The canonical read-write sets. Closes open iterators (their range reads end where they stopped). */
  async results(): Promise<SimulationResults> {
    await this.#closeIterators();
    const nsRwsets: NsReadWriteSet[] = [];
    const nsPvt: NsPvtReadWriteSet[] = [];
    for (const [namespace, n] of sortedEntries(this.#namespaces)) {
      const rwset: KVRWSet = {
        reads: sortedEntries(n.reads).map(([key, version]) => ({ key, version })),
        rangeQueriesInfo: n.ranges.map((r) => r.info()),
        writes: sortedEntries(n.writes).map(([key, w]) => ({ key, isDelete: w.isDelete, value: w.value })),
        metadataWrites: sortedEntries(n.metadataWrites).map(([key, entries]) => ({ key, entries: new Map(entries) })),
      };
      const hashed: CollectionHashedReadWriteSet[] = [];
      const pvt: CollectionPvtReadWriteSet[] = [];
      for (const [collectionName, c] of sortedEntries(n.collections)) {
        const hasPrivate = c.writes.size + c.metadataWrites.size > 0;
        let pvtRwsetHash: Bytes = EMPTY;
        if (hasPrivate) {
          const bytes = encodeKVRWSet({
            reads: [],
            rangeQueriesInfo: [],
            writes: sortedEntries(c.writes).map(([key, w]) => ({ key, isDelete: w.isDelete, value: w.value })),
            metadataWrites: sortedEntries(c.metadataWrites).map(([key, entries]) => ({
              key,
              entries: new Map(entries),
            })),
          });
          pvt.push({ collectionName, rwset: bytes });
          pvtRwsetHash = sha256(bytes);
        }
        const byHash = <V>(m: Map<string, V>) =>
          [...m.entries()].map(([k, v]) => [keyHashHex(k), v] as [string, V]).sort((a, b) => compareKeys(a[0], b[0]));
        hashed.push({
          collectionName,
          hashedRwset: {
            hashedReads: byHash(c.hashedReads).map(([kh, version]) => ({ keyHash: fromHexKey(kh), version })),
            hashedWrites: byHash(c.writes).map(([kh, w]) => ({
              keyHash: fromHexKey(kh),
              isDelete: w.isDelete,
              valueHash: w.isDelete ? EMPTY : sha256(w.value),
              isPurge: w.isPurge,
            })),
            metadataWrites: byHash(c.metadataWrites).map(([kh, entries]) => ({
              keyHash: fromHexKey(kh),
              entries: new Map(entries),
            })),
          },
          pvtRwsetHash,
        });
      }
      nsRwsets.push({ namespace, rwset, collectionHashedRwsets: hashed });
      if (pvt.length > 0) nsPvt.push({ namespace, collectionPvtRwsets: pvt });
    }
    const rwset: TxReadWriteSet = { nsRwsets };
    const pvtRwset: TxPvtReadWriteSet | null = nsPvt.length === 0 ? null : { nsPvtRwsets: nsPvt };
    return {
      rwset,
      rwsetBytes: encodeTxReadWriteSet(rwset),
      pvtRwset,
      pvtRwsetBytes: pvtRwset === null ? null : encodeTxPvtReadWriteSet(pvtRwset),
    };
  }

  /** Namespaces the simulation touched (read or wrote). */
  get namespaces(): string[] {
    return [...this.#namespaces.keys()].sort(compareKeys);
  }

  /** Ends the simulation: closes iterators and leaves the commit gate. Idempotent. */
  async done(): Promise<void> {
    if (this.#done) return;
    try {
      await this.#closeIterators();
    } finally {
      this.#done = true;
      this.#release();
    }
  }

  async #closeIterators(): Promise<void> {
    const open = [...this.#open];
    this.#open.clear();
    for (const it of open) await it.close().catch(() => {});
  }
}

function fromHexKey(hex: string): Bytes {
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = Number.parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

function checkPageSize(pageSize: number): void {
  if (!Number.isSafeInteger(pageSize) || pageSize <= 0) {
    throw new LoomError('QUERY_INVALID', 'pageSize must be a positive integer', { details: { pageSize } });
  }
}

/** Opens a simulation of one transaction. */
export function startSimulation(ledger: SimulationLedger, opts: TxSimulatorOptions): Promise<TxSimulator> {
  return TxSimulator.start(ledger, opts);
}
