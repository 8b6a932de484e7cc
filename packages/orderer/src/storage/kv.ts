/**
 * The narrow key-value interface the orderer's stores are written against. `level` appears only in
 * `LevelKv`; tests can use `MemoryKv`. Keys are strings, values bytes; `batch` is atomic.
 */
import { Level } from 'level';

export type KvOp =
  | { readonly type: 'put'; readonly key: string; readonly value: Uint8Array }
  | { readonly type: 'del'; readonly key: string };

export interface KvStore {
  get(key: string): Promise<Uint8Array | undefined>;
  /** Applies every operation or none. */
  batch(ops: readonly KvOp[]): Promise<void>;
  /** Entries with gte ≤ key < lt, in key order. */
  range(gte: string, lt: string, options?: { limit?: number }): AsyncIterable<[string, Uint8Array]>;
  close(): Promise<void>;
}

export interface LevelKvOptions {
  /**
   * Flush every batch to the disk (fdatasync) before it resolves, so that what Raft has persisted
   * (term, vote, entries) and acknowledged survives a power loss or a kernel crash, not only a killed
   * process. Default true; false trades that for speed on machines where it costs much.
   */
  readonly sync?: boolean;
}

export class LevelKv implements KvStore {
  readonly #db: Level<string, Uint8Array>;
  readonly #sync: boolean;

  private constructor(db: Level<string, Uint8Array>, sync: boolean) {
    this.#db = db;
    this.#sync = sync;
  }

  static async open(path: string, options: LevelKvOptions = {}): Promise<LevelKv> {
    const db = new Level<string, Uint8Array>(path, { keyEncoding: 'utf8', valueEncoding: 'view' });
    await db.open();
    return new LevelKv(db, options.sync ?? true);
  }

  async get(key: string): Promise<Uint8Array | undefined> {
    return (await this.#db.get(key)) ?? undefined;
  }

  async batch(ops: readonly KvOp[]): Promise<void> {
    if (ops.length === 0) return;
    await this.#db.batch(ops as KvOp[] as never, { sync: this.#sync });
  }

  async *range(gte: string, lt: string, options: { limit?: number } = {}): AsyncIterable<[string, Uint8Array]> {
    for await (const [k, v] of this.#db.iterator({ gte, lt, limit: options.limit ?? -1 })) yield [k, v];
  }

  async close(): Promise<void> {
    await this.#db.close();
  }
}

/** In-memory KvStore for unit tests: same semantics, sorted on read. */
export class MemoryKv implements KvStore {
  readonly #map = new Map<string, Uint8Array>();

  async get(key: string): Promise<Uint8Array | undefined> {
    return this.#map.get(key);
  }

  async batch(ops: readonly KvOp[]): Promise<void> {
    for (const op of ops) {
      if (op.type === 'put') this.#map.set(op.key, op.value);
      else this.#map.delete(op.key);
    }
  }

  async *range(gte: string, lt: string, options: { limit?: number } = {}): AsyncIterable<[string, Uint8Array]> {
    const keys = [...this.#map.keys()].filter((k) => k >= gte && k < lt).sort();
    const limit = options.limit ?? Number.POSITIVE_INFINITY;
    let n = 0;
    for (const k of keys) {
      if (n++ >= limit) return;
      const v = this.#map.get(k);
      if (v !== undefined) yield [k, v];
    }
  }

  async close(): Promise<void> {}
}
