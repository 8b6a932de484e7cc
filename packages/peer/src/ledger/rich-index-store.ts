/**
 * Rich-query indexes over JSON state: definitions and entries in the `richidx` sublevel (layout in
 * keys.ts), maintained by the state DB in the same batch as every state write.
 */
import { concatBytes, fromUtf8, utf8 } from '@loom/common';
import type { KV, WriteBatch } from './kv.js';
import { namespacePrefix, prefixUpperBound, tagged } from './keys.js';
import { encodeCollationKey, type Json, type JsonObject } from './query/collation.js';
import { encodeTuple, type IndexDefinition, indexTuple, parseIndexDefinition } from './query/index-def.js';
import type { QueryPlan } from './query/query.js';

const NUL = new Uint8Array([0]);

/** Documents are matched and indexed with `_id` set to their key, as in CouchDB. */
export function documentWithId(doc: JsonObject, key: string): JsonObject {
  return { ...doc, _id: key };
}

function defKey(ns: string, def: Pick<IndexDefinition, 'ddoc' | 'name'>): Uint8Array {
  return tagged('D', namespacePrefix(ns), utf8(def.ddoc), NUL, utf8(def.name));
}

function entryPrefix(ns: string, def: IndexDefinition): Uint8Array {
  return tagged('E', namespacePrefix(ns), utf8(def.ddoc), NUL, utf8(def.name), NUL);
}

export class RichIndexStore {
  readonly #kv: KV;
  readonly #defs = new Map<string, Map<string, IndexDefinition>>();

  private constructor(kv: KV) {
    this.#kv = kv;
  }

  static async open(kv: KV): Promise<RichIndexStore> {
    const store = new RichIndexStore(kv);
    for await (const [k, v] of kv.iterate({ gte: tagged('D'), lt: tagged('E') })) {
      const ns = fromUtf8(k.subarray(1, k.indexOf(0, 1)));
      store.#register(ns, parseIndexDefinition(v));
    }
    return store;
  }

  #register(ns: string, def: IndexDefinition): void {
    let m = this.#defs.get(ns);
    if (m === undefined) this.#defs.set(ns, (m = new Map()));
    m.set(`${def.ddoc}\u0000${def.name}`, def);
  }

  definitions(ns: string): IndexDefinition[] {
    return [...(this.#defs.get(ns)?.values() ?? [])];
  }

  hasIndexes(ns: string): boolean {
    return (this.#defs.get(ns)?.size ?? 0) > 0;
  }

  #entryKey(ns: string, def: IndexDefinition, key: string, doc: JsonObject): Uint8Array | undefined {
    const t = indexTuple(def, documentWithId(doc, key));
    return t === undefined ? undefined : concatBytes(entryPrefix(ns, def), encodeTuple(t), utf8(key));
  }

  /** Replaces `key`'s entries in every index of `ns`: old document out, new document in. */
  updateEntries(
    batch: WriteBatch,
    ns: string,
    key: string,
    oldDoc: JsonObject | undefined,
    newDoc: JsonObject | undefined,
  ): void {
    const b = batch.scoped(this.#kv);
    for (const def of this.definitions(ns)) {
      const oldKey = oldDoc === undefined ? undefined : this.#entryKey(ns, def, key, oldDoc);
      const newKey = newDoc === undefined ? undefined : this.#entryKey(ns, def, key, newDoc);
      if (oldKey !== undefined) b.del(oldKey);
      if (newKey !== undefined) b.put(newKey, utf8(key));
    }
  }

  /**
   * Defines an index and builds it over `documents` (the namespace's current state) in one batch.
   * Redefining an index with other fields rebuilds it; the same definition again is a no-op.
   */
  async create(
    ns: string,
    def: IndexDefinition,
    documents: AsyncIterable<{ key: string; doc: JsonObject }>,
  ): Promise<{ created: boolean }> {
    const existing = this.#defs.get(ns)?.get(`${def.ddoc}\u0000${def.name}`);
    if (existing !== undefined && JSON.stringify(existing.fields) === JSON.stringify(def.fields)) {
      return { created: false };
    }
    const batch = this.#kv.batch();
    if (existing !== undefined) {
      const p = entryPrefix(ns, existing);
      for await (const [k] of this.#kv.iterate({ gte: p, lt: prefixUpperBound(p)! })) batch.del(k);
    }
    for await (const { key, doc } of documents) {
      const k = this.#entryKey(ns, def, key, doc);
      if (k !== undefined) batch.put(k, utf8(key));
    }
    batch.put(defKey(ns, def), utf8(JSON.stringify({ index: { fields: def.fields }, ddoc: def.ddoc, name: def.name })));
    await batch.write();
    this.#register(ns, def);
    return { created: true };
  }

  /** Keys of the documents in the index range a plan selects, in index order. */
  async *scan(ns: string, plan: QueryPlan): AsyncIterable<string> {
    const def = plan.index;
    if (def === null) return;
    const base = concatBytes(entryPrefix(ns, def), encodeTuple(plan.equal));
    const end = prefixUpperBound(base)!;
    const bound = (v: Json) => concatBytes(base, encodeCollationKey(v));
    let gte = base;
    let lt = end;
    if (plan.lower !== undefined) {
      const l = bound(plan.lower.value);
      gte = plan.lower.inclusive ? l : prefixUpperBound(l)!;
    }
    if (plan.upper !== undefined) {
      const u = bound(plan.upper.value);
      lt = plan.upper.inclusive ? prefixUpperBound(u)! : u;
    }
    for await (const [, v] of this.#kv.iterate({ gte, lt })) yield fromUtf8(v);
  }
}
