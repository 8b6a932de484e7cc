/** A sorted in-memory KV store for unit tests; behaves like LevelKV (snapshot iteration, atomic batches). */
import { LoomError } from '@loom/common';
import { compareBytes } from './keys.js';
import { type BatchOp, type IterateOptions, type KV, type KVBackend, kvFromBackend } from './kv.js';

interface Entry {
  key: Uint8Array;
  value: Uint8Array;
}

class MemoryBackend implements KVBackend {
  #entries: Entry[] = [];
  #closed = false;

  /** Index of the first entry whose key is >= key (or > key when `strict`). */
  #lowerBound(key: Uint8Array, strict: boolean): number {
    let lo = 0;
    let hi = this.#entries.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const c = compareBytes(this.#entries[mid]!.key, key);
      if (c < 0 || (strict && c === 0)) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  #open(): void {
    if (this.#closed) throw new LoomError('LEDGER_CLOSED', 'store is closed');
  }

  async get(key: Uint8Array): Promise<Uint8Array | undefined> {
    this.#open();
    const i = this.#lowerBound(key, false);
    const e = this.#entries[i];
    return e !== undefined && compareBytes(e.key, key) === 0 ? e.value.slice() : undefined;
  }

  async getMany(keys: Uint8Array[]): Promise<(Uint8Array | undefined)[]> {
    return Promise.all(keys.map((k) => this.get(k)));
  }

  iterate(o: IterateOptions): AsyncIterable<[Uint8Array, Uint8Array]> {
    this.#open();
    let start = 0;
    let end = this.#entries.length;
    if (o.gt !== undefined) start = this.#lowerBound(o.gt, true);
    else if (o.gte !== undefined) start = this.#lowerBound(o.gte, false);
    if (o.lt !== undefined) end = this.#lowerBound(o.lt, false);
    else if (o.lte !== undefined) end = this.#lowerBound(o.lte, true);
    // Entries are replaced, never mutated, so a slice is a snapshot.
    const snapshot = end > start ? this.#entries.slice(start, end) : [];
    if (o.reverse) snapshot.reverse();
    const limit = o.limit ?? Number.POSITIVE_INFINITY;
    return (async function* () {
      let n = 0;
      for (const e of snapshot) {
        if (n++ >= limit) return;
        yield [e.key.slice(), e.value.slice()] as [Uint8Array, Uint8Array];
      }
    })();
  }

  async write(ops: BatchOp[]): Promise<void> {
    this.#open();
    for (const op of ops) {
      const i = this.#lowerBound(op.key, false);
      const e = this.#entries[i];
      const found = e !== undefined && compareBytes(e.key, op.key) === 0;
      if (op.type === 'put') {
        const entry = { key: op.key.slice(), value: op.value.slice() };
        if (found) this.#entries[i] = entry;
        else this.#entries.splice(i, 0, entry);
      } else if (found) {
        this.#entries.splice(i, 1);
      }
    }
  }

  async close(): Promise<void> {
    this.#closed = true;
  }
}

/** A fresh, empty in-memory store. */
export function createMemoryKV(): KV {
  return kvFromBackend(new MemoryBackend());
}

/** A fresh, empty in-memory backend (absolute keys), e.g. to compose with `splitBackend`. */
export function createMemoryBackend(): KVBackend {
  return new MemoryBackend();
}
