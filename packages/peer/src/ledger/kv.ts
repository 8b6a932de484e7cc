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
