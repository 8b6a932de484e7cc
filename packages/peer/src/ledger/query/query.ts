/**
 * A rich query (CouchDB `_find` body as Fabric chaincode passes it to `getQueryResult`), its
 * ordering, bookmarks, projection and the choice of index. Pure: no I/O.
 *
 *   {"selector": {...}, "sort": [{"size": "desc"}, "owner"], "limit": 10, "skip": 0,
 *    "bookmark": "...", "use_index": ["_design/indexOwnerDoc", "indexOwner"], "fields": ["owner"]}
 *
 * Result order is total and the same whichever way candidates are found: by the `sort` fields
 * (a document without a sort field sorts first), then by key. Without `sort`, by key. Unlike
 * CouchDB, `sort` needs no index and directions may be mixed.
 */
import { fromBase64, fromUtf8, LoomError, toBase64, utf8 } from '@loom/common';
import { compareJson, compareStrings, type Json, type JsonObject } from './collation.js';
import { ddocName, type IndexDefinition } from './index-def.js';
import {
  type Condition,
  fieldValue,
  parseSelector,
  queryInvalid,
  type RangeOp,
  type Selector,
  splitPath,
} from './selector.js';

export interface SortField {
  field: string;
  path: string[];
  desc: boolean;
}

export interface ParsedQuery {
  selector: Selector;
  sort: SortField[];
  limit: number | undefined;
  skip: number;
  bookmark: string | undefined;
  useIndex: { ddoc: string; name: string | undefined } | undefined;
  fields: string[] | undefined;
}

/** CouchDB `_find` options that do not change results here. */
const ignoredKeys = new Set(['execution_stats', 'r', 'conflicts', 'update', 'stable', 'allow_fallback']);

function nonNegativeInt(v: unknown, what: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0)
    throw queryInvalid(`${what} must be a non-negative integer`);
  return v;
}

const parsedQueries = new WeakSet<ParsedQuery>();

/** True for the result of `parseQuery` (as opposed to a raw query object). */
export function isParsedQuery(q: unknown): q is ParsedQuery {
  return typeof q === 'object' && q !== null && parsedQueries.has(q as ParsedQuery);
}

/** Parses a query (JSON text or object); throws LoomError QUERY_INVALID (400). */
export function parseQuery(input: string | object): ParsedQuery {
  if (isParsedQuery(input)) return input;
  let q: unknown = input;
  if (typeof input === 'string') {
    try {
      q = JSON.parse(input);
    } catch (e) {
      throw queryInvalid(`query is not JSON: ${(e as Error).message}`);
    }
  }
  if (q === null || typeof q !== 'object' || Array.isArray(q)) throw queryInvalid('query must be a JSON object');
  const o = q as Record<string, unknown>;
  for (const k of Object.keys(o)) {
    if (!['selector', 'sort', 'limit', 'skip', 'bookmark', 'use_index', 'fields'].includes(k) && !ignoredKeys.has(k)) {
      throw queryInvalid(`unknown query field ${JSON.stringify(k)}`);
    }
  }
  if (o.selector === undefined) throw queryInvalid('query needs a "selector"');
  const selector = parseSelector(o.selector);

  const sort: SortField[] = [];
  if (o.sort !== undefined) {
    if (!Array.isArray(o.sort)) throw queryInvalid('"sort" must be an array');
    for (const s of o.sort) {
      if (typeof s === 'string') {
        sort.push({ field: s, path: splitPath(s), desc: false });
        continue;
      }
      const entries = s !== null && typeof s === 'object' && !Array.isArray(s) ? Object.entries(s) : [];
      const [field, dir] = entries[0] ?? [];
      if (entries.length !== 1 || field === undefined || (dir !== 'asc' && dir !== 'desc')) {
        throw queryInvalid(`invalid sort entry ${JSON.stringify(s)}`);
      }
      sort.push({ field, path: splitPath(field), desc: dir === 'desc' });
    }
  }

  let useIndex: ParsedQuery['useIndex'];
  if (o.use_index !== undefined) {
    const u = o.use_index;
    const parts = typeof u === 'string' ? [u] : Array.isArray(u) ? u : undefined;
    if (parts === undefined || parts.length < 1 || parts.length > 2 || !parts.every((p) => typeof p === 'string')) {
      throw queryInvalid('"use_index" must be "ddoc" or ["ddoc", "name"]');
    }
    useIndex = { ddoc: ddocName(parts[0] as string), name: parts[1] as string | undefined };
  }

  let fields: string[] | undefined;
  if (o.fields !== undefined) {
    if (!Array.isArray(o.fields) || !o.fields.every((f) => typeof f === 'string')) {
      throw queryInvalid('"fields" must be an array of field names');
    }
    for (const f of o.fields) splitPath(f);
    fields = o.fields as string[];
  }
  if (o.bookmark !== undefined && typeof o.bookmark !== 'string') throw queryInvalid('"bookmark" must be a string');

  const parsed: ParsedQuery = {
    selector,
    sort,
    limit: o.limit === undefined ? undefined : nonNegativeInt(o.limit, '"limit"'),
    skip: o.skip === undefined ? 0 : nonNegativeInt(o.skip, '"skip"'),
    bookmark: o.bookmark === '' ? undefined : (o.bookmark as string | undefined),
    useIndex,
    fields,
  };
  parsedQueries.add(parsed);
  return parsed;
}

// ---- ordering and bookmarks ----

/** Where a document sits in a query's result order. */
export interface ResultPosition {
  key: string;
  /** One per sort field; undefined when the document lacks the field. */
  sortValues: (Json | undefined)[];
}

export function positionOf(sort: readonly SortField[], key: string, doc: Json): ResultPosition {
  return { key, sortValues: sort.map((s) => fieldValue(doc, s.path)) };
}

export function comparePositions(sort: readonly SortField[], a: ResultPosition, b: ResultPosition): number {
  for (const [i, s] of sort.entries()) {
    const x = a.sortValues[i];
    const y = b.sortValues[i];
    const c = x === undefined ? (y === undefined ? 0 : -1) : y === undefined ? 1 : compareJson(x, y);
    if (c !== 0) return s.desc ? -c : c;
  }
  return compareStrings(a.key, b.key);
}

const toBase64Url = (s: string) => toBase64(utf8(s)).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
function fromBase64Url(s: string): string {
  const b = s.replace(/-/g, '+').replace(/_/g, '/');
  return fromUtf8(fromBase64(b + '='.repeat((4 - (b.length % 4)) % 4)));
}

/** An opaque bookmark: the position of the last result returned; the next page starts after it. */
export function encodeBookmark(p: ResultPosition): string {
  return toBase64Url(JSON.stringify([p.key, p.sortValues.map((v) => (v === undefined ? [] : [v]))]));
}

export function decodeBookmark(bookmark: string, sortLength: number): ResultPosition {
  try {
    const v: unknown = JSON.parse(fromBase64Url(bookmark));
    if (Array.isArray(v) && v.length === 2 && typeof v[0] === 'string' && Array.isArray(v[1])) {
      const sv = v[1] as unknown[];
      if (sv.length === sortLength && sv.every((x) => Array.isArray(x) && x.length <= 1)) {
        return { key: v[0], sortValues: (sv as Json[][]).map((x) => (x.length === 0 ? undefined : x[0])) };
      }
    }
  } catch (e) {
    if (e instanceof LoomError && e.code !== 'ENCODING_MALFORMED') throw e;
  }
  throw queryInvalid('invalid bookmark (not from this query?)', { bookmark });
}

/** `fields` projection: a document with only the named (dotted) fields that exist. */
export function project(doc: JsonObject, fields: readonly string[]): JsonObject {
  const out: JsonObject = {};
  for (const f of fields) {
    const path = splitPath(f);
    const v = fieldValue(doc, path);
    if (v === undefined) continue;
    let cur = out;
    for (const seg of path.slice(0, -1)) {
      const next = cur[seg];
      if (next === undefined || next === null || typeof next !== 'object' || Array.isArray(next)) cur[seg] = {};
      cur = cur[seg] as JsonObject;
    }
    cur[path[path.length - 1]!] = v;
  }
  return out;
}

// ---- index choice ----

export interface IndexBound {
  value: Json;
  inclusive: boolean;
}

export interface QueryPlan {
  /** The index scanned, or null for a full scan of the namespace. */
  index: IndexDefinition | null;
  /** Values the index's leading fields must equal. */
  equal: Json[];
  /** Bounds on the next index field after the `equal` ones. */
  lower: IndexBound | undefined;
  upper: IndexBound | undefined;
  /** True when the index order matches `sort`. */
  usedForSort: boolean;
  reason: string;
  /** Set when `use_index` named an index that could not be used (the query still runs). */
  warning: string | undefined;
}

function flattenAnd(s: Selector): Selector[] {
  return s.kind === 'and' ? s.nodes.flatMap(flattenAnd) : [s];
}

/** Conditions that every matching document satisfies, per field path (JSON-encoded). */
function requiredConditions(selector: Selector): Map<string, Condition[]> {
  const out = new Map<string, Condition[]>();
  for (const n of flattenAnd(selector)) {
    if (n.kind !== 'field' || n.path.length === 0) continue;
    const k = JSON.stringify(n.path);
    const list = out.get(k) ?? [];
    list.push(n.cond);
    out.set(k, list);
  }
  return out;
}

const isRange = (c: Condition): c is { op: RangeOp; value: Json } =>
  c.op === '$gt' || c.op === '$gte' || c.op === '$lt' || c.op === '$lte';

interface Candidate {
  plan: QueryPlan;
  score: number;
}

function evaluateIndex(def: IndexDefinition, conds: Map<string, Condition[]>, sort: SortField[]): Candidate | string {
  const perField = def.fields.map((f) => conds.get(JSON.stringify(splitPath(f))) ?? []);
  // A document without an indexed field is not in the index, so every field must be required to
  // exist by the selector; a missing field fails every condition except {"$exists": false}.
  for (const [i, cs] of perField.entries()) {
    if (!cs.some((c) => !(c.op === '$exists' && !c.value))) {
      return `the selector does not require field ${JSON.stringify(def.fields[i])} of the index`;
    }
  }
  const equal: Json[] = [];
  let lower: IndexBound | undefined;
  let upper: IndexBound | undefined;
  for (const cs of perField) {
    const e = cs.find((c) => c.op === '$eq');
    if (e !== undefined && e.op === '$eq') {
      equal.push(e.value);
      continue;
    }
    for (const c of cs) {
      if (!isRange(c)) continue;
      const inclusive = c.op === '$gte' || c.op === '$lte';
      if (c.op === '$gt' || c.op === '$gte') {
        const cmp = lower === undefined ? 1 : compareJson(c.value, lower.value);
        if (cmp > 0 || (cmp === 0 && !inclusive)) lower = { value: c.value, inclusive };
      } else {
        const cmp = upper === undefined ? -1 : compareJson(c.value, upper.value);
        if (cmp < 0 || (cmp === 0 && !inclusive)) upper = { value: c.value, inclusive };
      }
    }
    break;
  }
  const usedForSort =
    sort.length > 0 &&
    sort.length <= def.fields.length &&
    sort.every((s, i) => s.field === def.fields[i] && s.desc === sort[0]!.desc);
  const narrowed = equal.length > 0 || lower !== undefined || upper !== undefined;
  const score = equal.length * 2 + (lower !== undefined || upper !== undefined ? 1 : 0) + (usedForSort ? 0.5 : 0);
  const what = narrowed
    ? `equality on ${equal.length} leading field(s)${lower || upper ? ' and a range on the next' : ''}`
    : 'a scan of the whole index';
  return {
    plan: {
      index: def,
      equal,
      lower,
      upper,
      usedForSort,
      reason: `index ${def.ddoc}/${def.name} [${def.fields.join(', ')}]: ${what}`,
      warning: undefined,
    },
    score,
  };
}

/**
 * Chooses an index. `use_index` wins when the index exists and is usable; otherwise a warning is
 * returned and the usual choice applies: the usable index with the most leading equality fields
 * (then a range, then matching `sort`), fewest fields, then name; a full scan when none narrows.
 */
export function planQuery(q: ParsedQuery, indexes: readonly IndexDefinition[]): QueryPlan {
  const conds = requiredConditions(q.selector);
  let warning: string | undefined;
  if (q.useIndex !== undefined) {
    const u = q.useIndex;
    const def = indexes.find((d) => d.ddoc === u.ddoc && (u.name === undefined || d.name === u.name));
    const label = u.name === undefined ? `_design/${u.ddoc}` : `_design/${u.ddoc}, ${u.name}`;
    if (def === undefined) {
      warning = `no matching index found for use_index [${label}]; the query ran without it`;
    } else {
      const c = evaluateIndex(def, conds, q.sort);
      if (typeof c !== 'string') return { ...c.plan, reason: `use_index: ${c.plan.reason}` };
      warning = `use_index [${label}] cannot be used: ${c}; the query ran without it`;
    }
  }
  let best: Candidate | undefined;
  for (const def of indexes) {
    const c = evaluateIndex(def, conds, q.sort);
    if (typeof c === 'string' || c.score === 0) continue;
    if (
      best === undefined ||
      c.score > best.score ||
      (c.score === best.score &&
        (def.fields.length < best.plan.index!.fields.length ||
          (def.fields.length === best.plan.index!.fields.length &&
            compareStrings(`${def.ddoc}\u0000${def.name}`, `${best.plan.index!.ddoc}\u0000${best.plan.index!.name}`) <
              0)))
    ) {
      best = c;
    }
  }
  if (best !== undefined) return { ...best.plan, warning };
  return {
    index: null,
    equal: [],
    lower: undefined,
    upper: undefined,
    usedForSort: false,
    reason: 'full scan of the namespace: no index covers the selector',
    warning,
  };
}
