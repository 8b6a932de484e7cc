/**
 * The ledger's narrow key-value interface. Keys and values are bytes; keys sort by unsigned byte
 * order. A store can be split into sublevels by key prefixing (not by separate databases), so that
 * ONE write batch can span the block store, state DB, history and indexes and commit atomically:
 * a batch from any view accepts writes for any other view of the same root through `scoped(kv)`.
 *
 * Implementations provide a `KVBackend` over absolute keys; `kvFromBackend` builds the prefixing
 * views. `level` appears only in `level-kv.ts`.
 */
import { concatBytes, LoomError } from '@loom/common';
import { compareBytes, prefixUpperBound } from './keys.js';

export interface IterateOptions {
  gt?: Uint8Array;
  gte?: Uint8Array;
  lt?: Uint8Array;
  lte?: Uint8Array;
  reverse?: boolean;
  limit?: number;
}

export type BatchOp = { type: 'put'; key: Uint8Array; value: Uint8Array } | { type: 'del'; key: Uint8Array };

/** Writes collected in memory and applied all together, or not at all, by `write()`. */
export interface WriteBatch {
  put(key: Uint8Array, value: Uint8Array): this;
  del(key: Uint8Array): this;
  /** The same batch, with keys relative to `kv` (a view of the same root store). */
  scoped(kv: KV): WriteBatch;
  /** Number of operations in the whole batch (all scopes). */
  readonly length: number;
  /** Applies every operation atomically. A batch can be written once. */
  write(): Promise<void>;
}

export interface KV {
  /** This view's key prefix, relative to the root store (empty for the root). */
  readonly prefix: Uint8Array;
  get(key: Uint8Array): Promise<Uint8Array | undefined>;
  getMany(keys: readonly Uint8Array[]): Promise<(Uint8Array | undefined)[]>;
  /** Entries in key order (or reverse) within the bounds; reads a consistent snapshot. */
  iterate(options?: IterateOptions): AsyncIterable<[Uint8Array, Uint8Array]>;
  batch(): WriteBatch;
  /**
   * A view whose keys are prefixed with `name` + 0x00; `name` must be non-empty and contain no NUL.
   * The parent's iteration includes the sublevel's entries (under that prefix), as the root's does.
   */
  sublevel(name: string): KV;
  /** Closes the root store (all views). */
  close(): Promise<void>;
}

/** What an implementation provides: operations on absolute keys. */
export interface KVBackend {
  get(key: Uint8Array): Promise<Uint8Array | undefined>;
  getMany(keys: Uint8Array[]): Promise<(Uint8Array | undefined)[]>;
  iterate(options: IterateOptions): AsyncIterable<[Uint8Array, Uint8Array]>;
  write(ops: BatchOp[]): Promise<void>;
  close(): Promise<void>;
}

const backends = new WeakMap<KV, KVBackend>();
const batchRoots = new WeakMap<WriteBatch, object>();

/** An identity shared by a batch and all its scoped views: lets stores keep per-batch state. */
export function batchIdentity(batch: WriteBatch): object {
  const root = batchRoots.get(batch);
  if (root === undefined) throw new LoomError('LEDGER_BAD_BATCH', 'not a batch created by a KV store');
  return root;
}

const textEncoder = new TextEncoder();

export function kvFromBackend(backend: KVBackend): KV {
  return makeView(backend, new Uint8Array(0));
}

function makeView(backend: KVBackend, prefix: Uint8Array): KV {
  const abs = (key: Uint8Array) => (prefix.length === 0 ? key : concatBytes(prefix, key));
  const kv: KV = {
    prefix,
    get: (key) => backend.get(abs(key)),
    getMany: (keys) => backend.getMany(keys.map(abs)),
    iterate: (options = {}) => iterateView(backend, prefix, options),
    batch: () => newBatch(backend, prefix),
    sublevel(name: string): KV {
      if (name.length === 0 || name.includes('\u0000')) {
        throw new LoomError('LEDGER_BAD_SUBLEVEL', `invalid sublevel name ${JSON.stringify(name)}`);
      }
      return makeView(backend, concatBytes(prefix, textEncoder.encode(name), new Uint8Array([0])));
    },
    close: () => backend.close(),
  };
  backends.set(kv, backend);
  return kv;
}

async function* iterateView(
  backend: KVBackend,
  prefix: Uint8Array,
  o: IterateOptions,
): AsyncIterable<[Uint8Array, Uint8Array]> {
  if (o.limit !== undefined && o.limit <= 0) return;
  const abs: IterateOptions = { reverse: o.reverse ?? false };
  if (o.limit !== undefined) abs.limit = o.limit;
  // A strict bound wins over an inclusive one given together with it.
  if (o.gt !== undefined) abs.gt = concatBytes(prefix, o.gt);
  else if (o.gte !== undefined) abs.gte = concatBytes(prefix, o.gte);
  else if (prefix.length > 0) abs.gte = prefix;
  if (o.lt !== undefined) abs.lt = concatBytes(prefix, o.lt);
  else if (o.lte !== undefined) abs.lte = concatBytes(prefix, o.lte);
  else if (prefix.length > 0) {
    const upper = prefixUpperBound(prefix);
    if (upper !== undefined) abs.lt = upper;
  }
  for await (const [k, v] of backend.iterate(abs)) {
    yield [prefix.length === 0 ? k : k.subarray(prefix.length), v];
  }
}

function newBatch(backend: KVBackend, prefix: Uint8Array): WriteBatch {
  const root = { ops: [] as BatchOp[], written: false };
  const check = () => {
    if (root.written) throw new LoomError('LEDGER_BAD_BATCH', 'batch already written');
  };
  const scopedBatch = (p: Uint8Array): WriteBatch => {
    const b: WriteBatch = {
      put(key, value) {
        check();
        root.ops.push({ type: 'put', key: concatBytes(p, key), value: value.slice() });
        return this;
      },
      del(key) {
        check();
        root.ops.push({ type: 'del', key: concatBytes(p, key) });
        return this;
      },
      scoped(kv: KV) {
        if (backends.get(kv) !== backend) {
          throw new LoomError('LEDGER_BAD_BATCH', 'batch scoped to a view of another store');
        }
        return scopedBatch(kv.prefix);
      },
      get length() {
        return root.ops.length;
      },
      async write() {
        check();
        root.written = true;
        if (root.ops.length > 0) await backend.write(root.ops);
      },
    };
    batchRoots.set(b, root);
    return b;
  };
  return scopedBatch(prefix);
}

/** True when `key` lies within the bounds of `o` (used by backends without native bounds). */
export function withinBounds(key: Uint8Array, o: IterateOptions): boolean {
  if (o.gt !== undefined && compareBytes(key, o.gt) <= 0) return false;
  if (o.gte !== undefined && compareBytes(key, o.gte) < 0) return false;
  if (o.lt !== undefined && compareBytes(key, o.lt) >= 0) return false;
  if (o.lte !== undefined && compareBytes(key, o.lte) > 0) return false;
  return true;
}

function hasPrefix(key: Uint8Array, prefix: Uint8Array): boolean {
  if (key.length < prefix.length) return false;
  for (let i = 0; i < prefix.length; i++) if (key[i] !== prefix[i]) return false;
  return true;
}

/** Which of the two stores of a split backend a range can touch. */
function rangeTouches(o: IterateOptions, prefix: Uint8Array, upper: Uint8Array | undefined) {
  const lower = o.gt ?? o.gte;
  const top = o.lt ?? o.lte;
  // The range's part below the prefix, or at/above its upper bound, lies in the main store.
  const belowPrefix = lower === undefined || compareBytes(lower, prefix) < 0;
  const abovePrefix =
    upper !== undefined &&
    (top === undefined || compareBytes(top, upper) > 0 || (o.lt === undefined && compareBytes(top, upper) === 0));
  // The range misses [prefix, upper) entirely when it ends before prefix or starts at/after upper.
  const endsBefore =
    top !== undefined && (o.lt !== undefined ? compareBytes(top, prefix) <= 0 : compareBytes(top, prefix) < 0);
  const startsAfter = upper !== undefined && lower !== undefined && compareBytes(lower, upper) >= 0;
  const side = !endsBefore && !startsAfter;
  return { main: belowPrefix || abovePrefix || !side, side };
}

async function* mergeSorted(
  a: AsyncIterable<[Uint8Array, Uint8Array]>,
  b: AsyncIterable<[Uint8Array, Uint8Array]>,
  reverse: boolean,
  limit: number | undefined,
): AsyncIterable<[Uint8Array, Uint8Array]> {
  const ia = a[Symbol.asyncIterator]();
  const ib = b[Symbol.asyncIterator]();
  let na = await ia.next();
  let nb = await ib.next();
  let left = limit ?? Number.POSITIVE_INFINITY;
  try {
    while (left > 0 && !(na.done && nb.done)) {
      let takeA: boolean;
      if (na.done) takeA = false;
      else if (nb.done) takeA = true;
      else {
        const c = compareBytes(na.value[0], nb.value[0]);
        takeA = reverse ? c >= 0 : c <= 0;
      }
      if (takeA) {
        yield na.value as [Uint8Array, Uint8Array];
        na = await ia.next();
      } else {
        yield nb.value as [Uint8Array, Uint8Array];
        nb = await ib.next();
      }
      left--;
    }
  } finally {
    if (!na.done) await ia.return?.();
    if (!nb.done) await ib.return?.();
  }
}

/**
 * One backend over two stores: keys starting with `prefix` live in `side`, all others in `main`.
 * The channel ledger keeps its block bytes this way (ledger.ts): their keys only ever grow and their
 * values are large, so in a store of their own LevelDB moves their files down its levels without
 * rewriting them, instead of recompacting megabytes per block together with random small keys.
 *
 * A batch writes its `side` operations first and then the others: each part is atomic, the whole
 * is not. A crash in between leaves side entries nothing in `main` refers to yet, which the ledger
 * is built to tolerate (its height lives in `main`; a block's bytes are rewritten when it commits).
 * `legacyInMain`: `main` may still hold keys under `prefix` written before the split; reads and
 * iteration then look in both (`side` first).
 */
export function splitBackend(
  main: KVBackend,
  side: KVBackend,
  prefix: Uint8Array,
  options: { legacyInMain?: boolean } = {},
): KVBackend {
  const upper = prefixUpperBound(prefix);
  const legacy = options.legacyInMain === true;
  return {
    async get(key) {
      if (!hasPrefix(key, prefix)) return main.get(key);
      const v = await side.get(key);
      return v === undefined && legacy ? main.get(key) : v;
    },
    async getMany(keys) {
      const sideAt: number[] = [];
      const mainAt: number[] = [];
      for (let i = 0; i < keys.length; i++) (hasPrefix(keys[i]!, prefix) ? sideAt : mainAt).push(i);
      if (sideAt.length === 0) return main.getMany(keys);
      const out = new Array<Uint8Array | undefined>(keys.length);
      const [m, s] = await Promise.all([
        mainAt.length === 0 ? [] : main.getMany(mainAt.map((i) => keys[i]!)),
        side.getMany(sideAt.map((i) => keys[i]!)),
      ]);
      mainAt.forEach((i, j) => {
        out[i] = m[j];
      });
      const missing: number[] = [];
      sideAt.forEach((i, j) => {
        out[i] = s[j];
        if (s[j] === undefined) missing.push(i);
      });
      if (legacy && missing.length > 0) {
        const old = await main.getMany(missing.map((i) => keys[i]!));
        missing.forEach((i, j) => {
          out[i] = old[j];
        });
      }
      return out;
    },
    iterate(o) {
      const touches = rangeTouches(o, prefix, upper);
      if (!touches.side) return main.iterate(o);
      if (!touches.main && !legacy) return side.iterate(o);
      const { limit, ...unlimited } = o;
      return mergeSorted(main.iterate(unlimited), side.iterate(unlimited), o.reverse === true, limit);
    },
    async write(ops) {
      const sideOps: BatchOp[] = [];
      const mainOps: BatchOp[] = [];
      for (const op of ops) (hasPrefix(op.key, prefix) ? sideOps : mainOps).push(op);
      if (sideOps.length > 0) await side.write(sideOps);
      if (mainOps.length > 0) await main.write(mainOps);
    },
    async close() {
      await Promise.all([main.close(), side.close()]);
    },
  };
}
