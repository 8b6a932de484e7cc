/**
 * Fabric's range and partial-composite-key queries over the state DB, with and without pagination
 * (fabric-shim's `getStateByRange[WithPagination]`, `getStateByPartialCompositeKey[WithPagination]`).
 *
 * Bookmarks are opaque strings naming the last key returned; the next page starts right after it.
 * `metadata.bookmark` is empty when the page reached the end of the range, so paging until an
 * empty bookmark yields every key exactly once.
 */
import { fromBase64, fromUtf8, toBase64, utf8 } from '@loom/common';
import { EMPTY_KEY_SUBSTITUTE, partialCompositeKeyRange, validateSimpleKeys } from './composite-key.js';
import { compareStrings } from './query/collation.js';
import { queryInvalid } from './query/selector.js';
import type { RangeScanOptions } from './state-db.js';
import type { StateEntry } from './state-reader.js';

/** What a paginated query answers besides its results (fabric-shim's QueryResponseMetadata). */
export interface QueryResponseMetadata {
  fetchedRecordsCount: number;
  bookmark: string;
}

export interface PagedResult<T> {
  results: T[];
  metadata: QueryResponseMetadata;
}

interface RangeScanner {
  rangeScan(ns: string, startKey: string, endKey: string, options?: RangeScanOptions): AsyncIterable<StateEntry>;
}

export function encodeKeyBookmark(key: string): string {
  return toBase64(utf8(key)).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

export function decodeKeyBookmark(bookmark: string): string {
  try {
    const b = bookmark.replace(/-/g, '+').replace(/_/g, '/');
    return fromUtf8(fromBase64(b + '='.repeat((4 - (b.length % 4)) % 4)));
  } catch {
    throw queryInvalid('invalid bookmark', { bookmark });
  }
}

function checkPageSize(pageSize: number): void {
  if (!Number.isSafeInteger(pageSize) || pageSize <= 0) throw queryInvalid('pageSize must be a positive integer');
}

/** One page of [startKey, endKey) after `bookmark`. A raw scan: the caller validates the bounds. */
export async function pagedRangeScan(
  state: RangeScanner,
  ns: string,
  startKey: string,
  endKey: string,
  pageSize: number,
  bookmark = '',
): Promise<PagedResult<StateEntry>> {
  checkPageSize(pageSize);
  let start = startKey;
  if (bookmark !== '') {
    // The smallest key after the bookmarked one is that key followed by U+0000.
    const after = `${decodeKeyBookmark(bookmark)}\u0000`;
    if (compareStrings(after, start) > 0) start = after;
  }
  const results: StateEntry[] = [];
  let more = false;
  if (endKey === '' || compareStrings(start, endKey) < 0) {
    for await (const e of state.rangeScan(ns, start, endKey, { limit: pageSize + 1 })) {
      if (results.length === pageSize) {
        more = true;
        break;
      }
      results.push(e);
    }
  }
  const last = results[results.length - 1];
  return {
    results,
    metadata: { fetchedRecordsCount: results.length, bookmark: more && last ? encodeKeyBookmark(last.key) : '' },
  };
}

/** Simple keys in [startKey, endKey); an empty start means the first simple key, an empty end the last. */
export function getStateByRange(state: RangeScanner, ns: string, startKey: string, endKey: string) {
  validateSimpleKeys(startKey, endKey);
  return state.rangeScan(ns, startKey === '' ? EMPTY_KEY_SUBSTITUTE : startKey, endKey);
}

export async function getStateByRangeWithPagination(
  state: RangeScanner,
  ns: string,
  startKey: string,
  endKey: string,
  pageSize: number,
  bookmark = '',
): Promise<PagedResult<StateEntry>> {
  validateSimpleKeys(startKey, endKey);
  return pagedRangeScan(state, ns, startKey === '' ? EMPTY_KEY_SUBSTITUTE : startKey, endKey, pageSize, bookmark);
}

export function getStateByPartialCompositeKey(
  state: RangeScanner,
  ns: string,
  objectType: string,
  attributes: readonly string[],
): AsyncIterable<StateEntry> {
  const { startKey, endKey } = partialCompositeKeyRange(objectType, attributes);
  return state.rangeScan(ns, startKey, endKey);
}

export async function getStateByPartialCompositeKeyWithPagination(
  state: RangeScanner,
  ns: string,
  objectType: string,
  attributes: readonly string[],
  pageSize: number,
  bookmark = '',
): Promise<PagedResult<StateEntry>> {
  const { startKey, endKey } = partialCompositeKeyRange(objectType, attributes);
  return pagedRangeScan(state, ns, startKey, endKey, pageSize, bookmark);
}
