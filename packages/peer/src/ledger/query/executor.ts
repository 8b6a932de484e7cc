/**
 * Runs rich queries against the state DB: finds candidates through an index when the planner
 * (query.ts) picks one, else by scanning the namespace, then filters every candidate with the
 * selector, orders, pages and projects. Candidates from an index are a superset of the matches
 * and the final order is total, so the results are identical either way.
 */
import type { Version } from '@loom/common';
import { utf8 } from '@loom/common';
import { documentWithId } from '../rich-index-store.js';
import type { StateDB } from '../state-db.js';
import type { VersionedValue } from '../state-reader.js';
import { type JsonObject, parseDocument } from './collation.js';
import {
  comparePositions,
  decodeBookmark,
  encodeBookmark,
  type ParsedQuery,
  parseQuery,
  planQuery,
  project,
  positionOf,
  type QueryPlan,
  type ResultPosition,
} from './query.js';
import { matches, queryInvalid } from './selector.js';

export interface RichQueryResult {
  key: string;
  /** The stored value, or with `fields` the projected document as JSON. */
  value: Uint8Array;
  version: Version;
}

export interface RichQueryMetadata {
  fetchedRecordsCount: number;
  /** Position after the last result; empty when there are no more results. */
  bookmark: string;
  /** Set when `use_index` could not be honoured. */
  warning?: string;
}

export interface RichQueryResponse {
  results: RichQueryResult[];
  metadata: RichQueryMetadata;
  plan: QueryPlan;
}

export interface RichQueryOptions {
  /** fabric-shim's `getQueryResultWithPagination`: the page size overrides the query's `limit`. */
  pageSize?: number;
  /** Overrides the query's `bookmark`. */
  bookmark?: string;
  /** Ignore indexes (for tests and diagnosis). */
  fullScan?: boolean;
}

export type RichQueryState = Pick<StateDB, 'rangeScan' | 'getStates' | 'indexes' | 'scanIndex'>;

const FULL_SCAN: QueryPlan = {
  index: null,
  equal: [],
  lower: undefined,
  upper: undefined,
  usedForSort: false,
  reason: 'full scan of the namespace: indexes disabled',
  warning: undefined,
};

const toParsed = (query: string | object | ParsedQuery): ParsedQuery => parseQuery(query);

/** The plan a query would run with: which index (if any) and which range of it. */
export function explainQuery(
  state: Pick<RichQueryState, 'indexes'>,
  ns: string,
  query: string | object | ParsedQuery,
  options: Pick<RichQueryOptions, 'fullScan'> = {},
): QueryPlan {
  return options.fullScan ? FULL_SCAN : planQuery(toParsed(query), state.indexes(ns));
}

interface Hit {
  key: string;
  entry: VersionedValue;
  doc: JsonObject;
  pos: ResultPosition;
}

async function* candidates(
  state: RichQueryState,
  ns: string,
  plan: QueryPlan,
): AsyncIterable<{ key: string; entry: VersionedValue }> {
  if (plan.index === null) {
    for await (const e of state.rangeScan(ns, '', '')) yield { key: e.key, entry: e };
    return;
  }
  let keys: string[] = [];
  const flush = async function* () {
    const entries = await state.getStates(ns, keys);
    for (const [i, entry] of entries.entries()) if (entry !== undefined) yield { key: keys[i]!, entry };
    keys = [];
  };
  for await (const key of state.scanIndex(ns, plan)) {
    keys.push(key);
    if (keys.length === 256) yield* flush();
  }
  if (keys.length > 0) yield* flush();
}

export async function executeQuery(
  state: RichQueryState,
  ns: string,
  query: string | object | ParsedQuery,
  options: RichQueryOptions = {},
): Promise<RichQueryResponse> {
  const q = toParsed(query);
  if (options.pageSize !== undefined && (!Number.isSafeInteger(options.pageSize) || options.pageSize <= 0)) {
    throw queryInvalid('pageSize must be a positive integer');
  }
  const plan = explainQuery(state, ns, q, options);
  const bookmarkText = options.bookmark || q.bookmark;
  const after = bookmarkText ? decodeBookmark(bookmarkText, q.sort.length) : undefined;

  const hits: Hit[] = [];
  for await (const { key, entry } of candidates(state, ns, plan)) {
    const stored = parseDocument(entry.value);
    if (stored === undefined) continue;
    const doc = documentWithId(stored, key);
    if (!matches(q.selector, doc)) continue;
    const pos = positionOf(q.sort, key, doc);
    if (after !== undefined && comparePositions(q.sort, pos, after) <= 0) continue;
    hits.push({ key, entry, doc, pos });
  }
  hits.sort((a, b) => comparePositions(q.sort, a.pos, b.pos));

  const limit = options.pageSize ?? q.limit ?? Number.POSITIVE_INFINITY;
  const page = hits.slice(q.skip, q.skip + limit);
  const more = hits.length > q.skip + page.length;
  const last = page[page.length - 1];
  const metadata: RichQueryMetadata = {
    fetchedRecordsCount: page.length,
    bookmark: more && last !== undefined ? encodeBookmark(last.pos) : '',
  };
  if (plan.warning !== undefined) metadata.warning = plan.warning;
  return {
    results: page.map((h) => ({
      key: h.key,
      value: q.fields === undefined ? h.entry.value : utf8(JSON.stringify(project(h.doc, q.fields))),
      version: h.entry.version,
    })),
    metadata,
    plan,
  };
}
