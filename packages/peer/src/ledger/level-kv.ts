/** The KV interface on `level` (LevelDB on disk). The only module of the ledger that imports level. */
import { Level } from 'level';
import { type BatchOp, type IterateOptions, type KV, type KVBackend, kvFromBackend } from './kv.js';

class LevelBackend implements KVBackend {
  readonly #db: Level<Uint8Array, Uint8Array>;
  constructor(db: Level<Uint8Array, Uint8Array>) {
    this.#db = db;
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
    await this.#db.batch(ops);
  }
  close(): Promise<void> {
    return this.#db.close();
  }
}

/** Opens (creating if missing) a level database at `path`. */
export async function openLevelKV(path: string): Promise<KV> {
  const db = new Level<Uint8Array, Uint8Array>(path, { keyEncoding: 'view', valueEncoding: 'view' });
  await db.open();
  return kvFromBackend(new LevelBackend(db));
}
