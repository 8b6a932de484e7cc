/**
 * Rich-query index definitions in Fabric's chaincode-package layout (CouchDB's `_index` body):
 *
 *   META-INF/statedb/couchdb/indexes/indexOwner.json
 *     {"index":{"fields":["docType","owner"]},"ddoc":"indexOwnerDoc","name":"indexOwner","type":"json"}
 *   META-INF/statedb/couchdb/collections/<collection>/indexes/*.json   (private data collections)
 *
 * A document is in an index only when it has every indexed field (as in CouchDB). Pure.
 */
import { concatBytes } from '@loom/common';
import { encodeCollationKey, type Json } from './collation.js';
import { fieldValue, queryInvalid, splitPath } from './selector.js';

export interface IndexDefinition {
  /** Design document name without the `_design/` prefix (defaults to `name`). */
  ddoc: string;
  name: string;
  /** Indexed fields, dotted paths, in order. */
  fields: string[];
}

function validName(s: unknown): s is string {
  return typeof s === 'string' && s.length > 0 && !s.includes('\u0000');
}

/** Strips CouchDB's `_design/` prefix. */
export function ddocName(ddoc: string): string {
  return ddoc.startsWith('_design/') ? ddoc.slice('_design/'.length) : ddoc;
}

/** Parses one index file (JSON text, bytes or an already parsed object); throws QUERY_INVALID. */
export function parseIndexDefinition(input: string | Uint8Array | unknown): IndexDefinition {
  let obj: unknown = input;
  if (typeof input === 'string' || input instanceof Uint8Array) {
    try {
      obj = JSON.parse(typeof input === 'string' ? input : new TextDecoder().decode(input));
    } catch (e) {
      throw queryInvalid(`index definition is not JSON: ${(e as Error).message}`);
    }
  }
  if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) {
    throw queryInvalid('index definition must be a JSON object');
  }
  const def = obj as Record<string, unknown>;
  if (def.type !== undefined && def.type !== 'json') throw queryInvalid(`unsupported index type ${String(def.type)}`);
  const index = def.index as Record<string, unknown> | undefined;
  const rawFields = index?.fields;
  if (!Array.isArray(rawFields) || rawFields.length === 0) {
    throw queryInvalid('index definition needs "index": {"fields": [...]} with at least one field');
  }
  if (index?.partial_filter_selector !== undefined) throw queryInvalid('partial indexes are not supported');
  const fields = rawFields.map((f) => {
    // CouchDB accepts "field" or {"field": "asc"|"desc"}; the direction does not matter for a scan.
    if (typeof f === 'string') return f;
    if (f !== null && typeof f === 'object' && !Array.isArray(f)) {
      const entries = Object.entries(f as Record<string, unknown>);
      if (entries.length === 1 && (entries[0]![1] === 'asc' || entries[0]![1] === 'desc')) return entries[0]![0];
    }
    throw queryInvalid(`invalid index field ${JSON.stringify(f)}`);
  });
  for (const f of fields) splitPath(f);
  if (!validName(def.name)) throw queryInvalid('index definition needs a "name"');
  const ddoc = def.ddoc === undefined ? def.name : def.ddoc;
  if (!validName(ddoc)) throw queryInvalid('invalid "ddoc" in index definition');
  const d = ddocName(ddoc);
  if (!validName(d)) throw queryInvalid('invalid "ddoc" in index definition');
  return { ddoc: d, name: def.name, fields };
}

/**
 * Index definitions found in a chaincode package's files, keyed by path. Public-state indexes
 * apply to `namespace`; a collection's go to `collectionNamespace(namespace, collection)`.
 */
export function indexDefinitionsFromPackage(
  files: ReadonlyMap<string, string | Uint8Array>,
): { collection: string | undefined; definition: IndexDefinition }[] {
  const out: { collection: string | undefined; definition: IndexDefinition }[] = [];
  for (const [path, content] of files) {
    const p = path.replace(/^\/+/, '');
    if (/^META-INF\/statedb\/couchdb\/indexes\/[^/]+\.json$/.test(p)) {
      out.push({ collection: undefined, definition: parseIndexDefinition(content) });
      continue;
    }
    const m = /^META-INF\/statedb\/couchdb\/collections\/([^/]+)\/indexes\/[^/]+\.json$/.exec(p);
    if (m !== null) out.push({ collection: m[1]!, definition: parseIndexDefinition(content) });
  }
  return out;
}

/** The indexed values of a document, or undefined when it lacks one of the fields. */
export function indexTuple(def: IndexDefinition, doc: Json): Json[] | undefined {
  const out: Json[] = [];
  for (const f of def.fields) {
    const v = fieldValue(doc, splitPath(f));
    if (v === undefined) return undefined;
    out.push(v);
  }
  return out;
}

export function encodeTuple(values: readonly Json[]): Uint8Array {
  return concatBytes(...values.map(encodeCollationKey));
}
