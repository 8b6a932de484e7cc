/**
 * Result iterators shaped like fabric-shim's StateQueryIterator / HistoryQueryIterator: `next()`
 * resolves `{value, done}`, `close()` frees the peer-side iterator, and `for await` walks every
 * result and closes at the end (or on `break`). Results arrive from the peer a page at a time;
 * `next()` asks for the following page when the current one is used up.
 */
import type { QueryResultRecord, ResponsePayload } from '@loom/common/chaincode-protocol';
import type { PeerRequester } from './types.js';

type QueryResponse = Extract<ResponsePayload, { kind: 'query' }>;

/** A state or private-data record. */
export interface KV {
  key: string;
  value: Buffer;
  namespace?: string;
}

export interface KeyModification {
  txId: string;
  value: Buffer;
  timestamp: { seconds: number; nanos: number };
  isDelete: boolean;
}

export interface QueryResponseMetadata {
  fetchedRecordsCount: number;
  bookmark: string;
}

/** What the paginated queries resolve to. */
export interface StateQueryResponse<T> {
  iterator: T;
  metadata: QueryResponseMetadata;
}

abstract class CommonIterator<T> implements AsyncIterable<T> {
  readonly #peer: PeerRequester;
  readonly #channelId: string;
  readonly #txId: string;
  #response: QueryResponse;
  #position = 0;
  #closed = false;

  constructor(peer: PeerRequester, channelId: string, txId: string, response: QueryResponse) {
    this.#peer = peer;
    this.#channelId = channelId;
    this.#txId = txId;
    this.#response = response;
  }

  protected abstract convert(r: QueryResultRecord): T;

  async next(): Promise<IteratorResult<T, undefined>> {
    for (;;) {
      const r = this.#response.results[this.#position];
      if (r !== undefined) {
        this.#position++;
        return { value: this.convert(r), done: false };
      }
      if (!this.#response.hasMore || this.#closed) return { value: undefined, done: true };
      const reply = await this.#peer.request(this.#channelId, this.#txId, 'QUERY_STATE_NEXT', {
        iteratorId: this.#response.iteratorId,
      });
      this.#response = expectQuery(reply);
      this.#position = 0;
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#peer.request(this.#channelId, this.#txId, 'QUERY_STATE_CLOSE', {
      iteratorId: this.#response.iteratorId,
    });
  }

  async *[Symbol.asyncIterator](): AsyncIterator<T> {
    try {
      for (;;) {
        const r = await this.next();
        if (r.done) return;
        yield r.value;
      }
    } finally {
      await this.close();
    }
  }
}

export class StateQueryIterator extends CommonIterator<KV> {
  protected convert(r: QueryResultRecord): KV {
    if (r.kind !== 'kv') throw new Error(`expected a key/value result, got ${r.kind}`);
    return { key: r.key, value: Buffer.from(r.value) };
  }
}

export class HistoryQueryIterator extends CommonIterator<KeyModification> {
  protected convert(r: QueryResultRecord): KeyModification {
    if (r.kind !== 'history') throw new Error(`expected a history result, got ${r.kind}`);
    return { txId: r.txId, value: Buffer.from(r.value), timestamp: { ...r.timestamp }, isDelete: r.isDelete };
  }
}

export function expectQuery(reply: ResponsePayload): QueryResponse {
  if (reply.kind !== 'query') throw new Error(`peer answered a query with a ${reply.kind} response`);
  return reply;
}

/**
 * fabric-shim's query methods return a promise that is also async-iterable, so both
 * `const it = await stub.getStateByRange(a, b)` and `for await (const kv of stub.getStateByRange(a, b))`
 * work.
 */
export type IterablePromise<R, T> = Promise<R> & AsyncIterable<T>;

export function iterablePromise<R, T>(p: Promise<R>, iteratorOf: (r: R) => AsyncIterable<T>): IterablePromise<R, T> {
  const out = p as IterablePromise<R, T>;
  out[Symbol.asyncIterator] = () => {
    let inner: AsyncIterator<T> | undefined;
    return {
      async next() {
        inner ??= iteratorOf(await p)[Symbol.asyncIterator]();
        return inner.next();
      },
      async return() {
        if (inner?.return) return inner.return();
        // Never started: the generator's `finally` would not run, so close the iterator here.
        const it = iteratorOf(await p) as AsyncIterable<T> & { close?: () => Promise<void> };
        await it.close?.();
        return { value: undefined, done: true };
      },
    };
  };
  return out;
}
