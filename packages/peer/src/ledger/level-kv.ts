/** The KV interface on `level` (LevelDB on disk). The only module of the ledger that imports level. */
import { Level } from 'level';
import { join } from 'node:path';
import { type BatchOp, type IterateOptions, type KV, type KVBackend, kvFromBackend, splitBackend } from './kv.js';
import { prefixUpperBound } from './keys.js';

class LevelBackend implements KVBackend {
  readonly #db: Level<Uint8Array, Uint8Array>;
  readonly #sync: boolean;
  constructor(db: Level<Uint8Array, Uint8Array>, sync = false) {
    this.#db = db;
    this.#sync = sync;
  }
  get(key: Uint8Array): Promise<Uint8Array | undefined> {
    return this.#db.get(key);
  }
  getMany(keys: Uint8Array[]): Promise<(Uint8Array | undefined)[]> {
    return keys.length === 0 ? Promise.resolve([]) : this.#db.getMany(keys);
  }
  async *iterate(o: IterateOptions): AsyncIterable<[Uint8Array, Uint8Array]> {
    const opts: Record<string, unknown> = { reverse: o.reverse ?? false };
    if (o.gt !== undefined) opts.gt = o.gt;
    if (o.gte !== undefined) opts.gte = o.gte;
    if (o.lt !== undefined) opts.lt = o.lt;
    if (o.lte !== undefined) opts.lte = o.lte;
    if (o.limit !== undefined) opts.limit = o.limit;
    // Level iterators read from an implicit snapshot taken when they are created.
    for await (const [k, v] of this.#db.iterator(opts)) yield [k, v];
  }
  async write(ops: BatchOp[]): Promise<void> {
    // BatchOp has level's operation shape already: handed over as is (a block has thousands).
    await (this.#sync ? this.#db.batch(ops, { sync: true }) : this.#db.batch(ops));
  }
  close(): Promise<void> {
    return this.#db.close();
  }
}

export interface LevelKVOptions {
  /**
   * Keys starting with `prefix` go to a second level database in the subdirectory `dir` of `path`
   * (`splitBackend` in kv.ts): for entries whose keys only grow and whose values are large.
   */
  /** LevelDB's memtable size in bytes for the (main) database (LevelDB's default: 4 MB). */
  readonly writeBufferSize?: number;
  readonly split?: {
    readonly prefix: Uint8Array;
    readonly dir: string;
    /** Writes to the second database reach the disk (fdatasync) before they resolve. */
    readonly sync?: boolean;
  };
}

async function openLevel(path: string, writeBufferSize?: number): Promise<Level<Uint8Array, Uint8Array>> {
  const db = new Level<Uint8Array, Uint8Array>(path, {
    keyEncoding: 'view',
    valueEncoding: 'view',
    ...(writeBufferSize === undefined ? {} : { writeBufferSize }),
  });
  await db.open();
  return db;
}

/** Opens (creating if missing) a level database at `path`. */
export async function openLevelKV(path: string, options: LevelKVOptions = {}): Promise<KV> {
  const db = await openLevel(path, options.writeBufferSize);
  if (!options.split) return kvFromBackend(new LevelBackend(db));
  const { prefix, dir } = options.split;
  let side: Level<Uint8Array, Uint8Array>;
  try {
    side = await openLevel(join(path, dir));
  } catch (e) {
    await db.close();
    throw e;
  }
  // Written before the split existed: such keys are still read from the main database.
  const upper = prefixUpperBound(prefix);
  const legacy = await db.keys({ gte: prefix, ...(upper ? { lt: upper } : {}), limit: 1 }).all();
  return kvFromBackend(
    splitBackend(new LevelBackend(db), new LevelBackend(side, options.split.sync === true), prefix, {
      legacyInMain: legacy.length > 0,
    }),
  );
}
