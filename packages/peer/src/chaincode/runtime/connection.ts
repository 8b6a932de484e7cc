/**
 * The peer's end of one chaincode stream (whichever side dialled): REGISTER first, then the peer's
 * INIT/TRANSACTION messages, each served until COMPLETED or ERROR. The chaincode's state requests
 * are answered from the transaction's simulator, one at a time per transaction in arrival order
 * (the protocol matches a reply to the oldest request of its transaction). Query iterators live
 * here, per transaction, under ids the chaincode pulls with QUERY_STATE_NEXT.
 */
import type { Socket } from 'node:net';
import {
  type ChaincodeMessage,
  type ChaincodeRequest,
  DEFAULT_MAX_CHAINCODE_FRAME_BYTES,
  encodeChaincodeFrame,
  FrameDecoder,
  isChaincodeRequest,
  type QueryResultRecord,
  type ResponsePayload,
} from '@loom/common/chaincode-protocol';
import { LoomError, type Logger } from '@loom/common';
import type { KeyModification } from '../../ledger/history.js';
import type { QueryPage, QueryRecord, ResultIterator } from '../../simulation/tx-simulator.js';
import {
  ChaincodeRuntimeErrorCode,
  type CollectionOperation,
  type ExecuteRequest,
  type ExecuteResult,
} from './types.js';

const EMPTY = new Uint8Array(0);

interface TxContext {
  readonly request: ExecuteRequest;
  readonly resolve: (r: ExecuteResult) => void;
  readonly reject: (e: Error) => void;
  /** Requests of this transaction are served in order. */
  queue: Promise<void>;
  readonly iterators: Map<string, { it: ResultIterator<QueryRecord | KeyModification> }>;
  nextIterator: number;
}

export interface ConnectionOptions {
  readonly socket: Socket;
  /** Decides on REGISTER: true accepts (REGISTERED is sent), false refuses (ERROR, then close). */
  readonly onRegister: (chaincodeId: string, connection: ChaincodeStreamConnection) => boolean;
  /** Records per page of an unpaginated query. */
  readonly queryPageSize: number;
  readonly maxFrameBytes?: number | undefined;
  readonly logger?: Logger | undefined;
}

const txKey = (channelId: string, txId: string) => `${channelId}\u0000${txId}`;

export class ChaincodeStreamConnection {
  readonly #socket: Socket;
  readonly #opts: ConnectionOptions;
  readonly #decoder: FrameDecoder;
  readonly #txs = new Map<string, TxContext>();
  #chaincodeId: string | undefined;
  #closedError: LoomError | null = null;
  readonly closed: Promise<void>;
  #resolveClosed!: () => void;

  constructor(opts: ConnectionOptions) {
    this.#opts = opts;
    this.#socket = opts.socket;
    this.#decoder = new FrameDecoder(opts.maxFrameBytes ?? DEFAULT_MAX_CHAINCODE_FRAME_BYTES);
    this.closed = new Promise((r) => {
      this.#resolveClosed = r;
    });
    this.#socket.setNoDelay(true);
    this.#socket.on('data', (chunk: Uint8Array) => this.#onData(chunk));
    this.#socket.on('error', (e) => this.#shutdown(e.message));
    this.#socket.on('close', () => this.#shutdown('chaincode stream closed'));
  }

  /** The id the chaincode registered as; undefined before REGISTER. */
  get chaincodeId(): string | undefined {
    return this.#chaincodeId;
  }

  get isClosed(): boolean {
    return this.#closedError !== null;
  }

  /** Transactions in flight on this stream. */
  get activeTransactions(): number {
    return this.#txs.size;
  }

  /** Sends INIT/TRANSACTION and resolves with the chaincode's outcome. */
  execute(request: ExecuteRequest): Promise<ExecuteResult> {
    return new Promise<ExecuteResult>((resolve, reject) => {
      if (this.#closedError !== null) return reject(this.#closedError);
      const key = txKey(request.channelId, request.txId);
      if (this.#txs.has(key)) {
        return reject(
          new LoomError('CHAINCODE_DUPLICATE_TX', `transaction ${request.txId} is already running in this chaincode`, {
            details: { txId: request.txId },
          }),
        );
      }
      this.#txs.set(key, { request, resolve, reject, queue: Promise.resolve(), iterators: new Map(), nextIterator: 1 });
      this.#send({
        type: request.isInit ? 'INIT' : 'TRANSACTION',
        txId: request.txId,
        channelId: request.channelId,
        payload: request.input,
      });
    });
  }

  /** Abandons a transaction (timeout): later requests for it are refused. */
  abandon(channelId: string, txId: string): void {
    const ctx = this.#txs.get(txKey(channelId, txId));
    if (ctx === undefined) return;
    this.#txs.delete(txKey(channelId, txId));
    void closeIterators(ctx);
  }

  close(): void {
    this.#socket.destroy();
    this.#shutdown('chaincode stream closed by the peer');
  }

  #send(m: ChaincodeMessage): void {
    if (this.#socket.destroyed) return;
    this.#socket.write(encodeChaincodeFrame(m, this.#opts.maxFrameBytes));
  }

  #onData(chunk: Uint8Array): void {
    let messages: ChaincodeMessage[];
    try {
      messages = this.#decoder.pushMessages(chunk);
    } catch (e) {
      this.#opts.logger?.warn({ err: (e as Error).message }, 'malformed chaincode stream; closing it');
      this.#socket.destroy();
      this.#shutdown(`malformed chaincode stream: ${(e as Error).message}`);
      return;
    }
    for (const m of messages) this.#dispatch(m);
  }

  #dispatch(m: ChaincodeMessage): void {
    if (this.#chaincodeId === undefined) {
      if (m.type !== 'REGISTER') {
        this.#refuse(`expected REGISTER, got ${m.type}`);
        return;
      }
      const id = m.payload.chaincodeId;
      if (!this.#opts.onRegister(id, this)) {
        this.#refuse(`chaincode ${JSON.stringify(id)} was not launched by this peer`);
        return;
      }
      this.#chaincodeId = id;
      this.#send({ type: 'REGISTERED', txId: '', channelId: '', payload: {} });
      return;
    }
    if (m.type === 'KEEPALIVE') return;
    const key = txKey(m.channelId, m.txId);
    const ctx = this.#txs.get(key);
    if (m.type === 'COMPLETED' || m.type === 'ERROR') {
      if (ctx === undefined) return; // a transaction the peer gave up on
      this.#txs.delete(key);
      // Requests still queued are answered first; then the transaction's outcome is delivered.
      void ctx.queue.then(async () => {
        await closeIterators(ctx);
        if (m.type === 'COMPLETED') {
          ctx.resolve({ response: m.payload.response, event: m.payload.event });
        } else {
          ctx.resolve({ response: { status: 500, message: m.payload.message, payload: EMPTY }, event: null });
        }
      });
      return;
    }
    if (!isChaincodeRequest(m)) {
      this.#opts.logger?.warn({ type: m.type }, 'unexpected message from chaincode ignored');
      return;
    }
    if (ctx === undefined) {
      this.#send({
        type: 'ERROR',
        txId: m.txId,
        channelId: m.channelId,
        payload: { message: `no transaction context for ${m.txId} on channel ${m.channelId}` },
      });
      return;
    }
    ctx.queue = ctx.queue.then(async () => {
      let reply: ResponsePayload;
      try {
        reply = await this.#serve(ctx, m);
      } catch (e) {
        this.#send({
          type: 'ERROR',
          txId: m.txId,
          channelId: m.channelId,
          payload: { message: e instanceof Error ? e.message : String(e) },
        });
        return;
      }
      this.#send({ type: 'RESPONSE', txId: m.txId, channelId: m.channelId, payload: reply });
    });
  }

  #refuse(message: string): void {
    this.#send({ type: 'ERROR', txId: '', channelId: '', payload: { message } });
    this.#socket.end();
    setTimeout(() => this.#socket.destroy(), 100).unref();
    this.#shutdown(message);
  }

  #collection(ctx: TxContext, collection: string, op: CollectionOperation = 'read'): void {
    if (collection !== '' && ctx.request.collectionAccess !== undefined) {
      ctx.request.collectionAccess(collection, op);
      return;
    }
    const allowed = ctx.request.collections;
    if (collection !== '' && allowed !== undefined && !allowed.has(collection)) {
      throw new LoomError(
        'COLLECTION_NOT_FOUND',
        `collection ${collection} could not be found for chaincode ${ctx.request.chaincodeName}`,
      );
    }
  }

  #iteratorReply(
    ctx: TxContext,
    it: ResultIterator<QueryRecord | KeyModification>,
    first: { results: Array<QueryRecord | KeyModification>; hasMore: boolean },
    page: QueryPage | null,
  ): ResponsePayload {
    const iteratorId = String(ctx.nextIterator++);
    ctx.iterators.set(iteratorId, { it });
    return {
      kind: 'query',
      iteratorId,
      hasMore: first.hasMore,
      results: first.results.map(toRecord),
      metadata: page === null ? null : { fetchedRecordsCount: page.fetchedRecordsCount, bookmark: page.bookmark },
    };
  }

  async #serve(ctx: TxContext, m: ChaincodeRequest): Promise<ResponsePayload> {
    const sim = ctx.request.simulator;
    const ns = ctx.request.chaincodeName;
    const pageSize = this.#opts.queryPageSize;
    switch (m.type) {
      case 'GET_STATE': {
        const { collection, key } = m.payload;
        this.#collection(ctx, collection);
        const v = collection === '' ? await sim.getState(ns, key) : await sim.getPrivateData(ns, collection, key);
        return { kind: 'value', value: v ?? EMPTY };
      }
      case 'PUT_STATE': {
        const { collection, key, value } = m.payload;
        this.#collection(ctx, collection, 'write');
        if (collection === '') sim.setState(ns, key, value);
        else sim.setPrivateData(ns, collection, key, value);
        return { kind: 'empty' };
      }
      case 'DEL_STATE': {
        const { collection, key } = m.payload;
        this.#collection(ctx, collection, 'write');
        if (collection === '') sim.deleteState(ns, key);
        else sim.deletePrivateData(ns, collection, key);
        return { kind: 'empty' };
      }
      case 'GET_STATE_METADATA': {
        const { collection, key } = m.payload;
        this.#collection(ctx, collection, 'hash');
        const entries =
          collection === ''
            ? await sim.getStateMetadata(ns, key)
            : await sim.getPrivateDataMetadata(ns, collection, key);
        return { kind: 'metadata', entries };
      }
      case 'PUT_STATE_METADATA': {
        const { collection, key, metakey, value } = m.payload;
        this.#collection(ctx, collection, 'write');
        if (collection === '') sim.setStateMetadata(ns, key, metakey, value);
        else sim.setPrivateDataMetadata(ns, collection, key, metakey, value);
        return { kind: 'empty' };
      }
      case 'GET_STATE_BY_RANGE': {
        const { collection, startKey, endKey, pagination } = m.payload;
        this.#collection(ctx, collection);
        if (collection !== '') {
          const it = await sim.getPrivateDataRange(ns, collection, startKey, endKey);
          if (pagination !== null) {
            // Private ranges are not recorded; page them here.
            const all = await drain(it);
            return this.#privatePage(ctx, all, pagination.pageSize, pagination.bookmark);
          }
          return this.#iteratorReply(ctx, it, await it.next(pageSize), null);
        }
        const { iterator, page } = await sim.getStateRange(ns, startKey, endKey, pagination);
        if (page !== null) return this.#iteratorReply(ctx, iterator, { results: page.results, hasMore: false }, page);
        return this.#iteratorReply(ctx, iterator, await iterator.next(pageSize), null);
      }
      case 'GET_QUERY_RESULT': {
        const { collection, query, pagination } = m.payload;
        this.#collection(ctx, collection);
        const { iterator, page } =
          collection === ''
            ? await sim.executeQuery(ns, query, pagination)
            : await sim.executePrivateQuery(ns, collection, query, pagination);
        if (page !== null) return this.#iteratorReply(ctx, iterator, { results: page.results, hasMore: false }, page);
        return this.#iteratorReply(ctx, iterator, await iterator.next(pageSize), null);
      }
      case 'GET_HISTORY_FOR_KEY': {
        const it = await sim.getHistoryForKey(ns, m.payload.key);
        return this.#iteratorReply(ctx, it, await it.next(pageSize), null);
      }
      case 'QUERY_STATE_NEXT': {
        const entry = ctx.iterators.get(m.payload.iteratorId);
        if (entry === undefined) throw new LoomError('UNKNOWN_ITERATOR', `unknown iterator ${m.payload.iteratorId}`);
        const next = await entry.it.next(pageSize);
        return {
          kind: 'query',
          iteratorId: m.payload.iteratorId,
          hasMore: next.hasMore,
          results: next.results.map(toRecord),
          metadata: null,
        };
      }
      case 'QUERY_STATE_CLOSE': {
        const entry = ctx.iterators.get(m.payload.iteratorId);
        ctx.iterators.delete(m.payload.iteratorId);
        await entry?.it.close();
        return { kind: 'query', iteratorId: m.payload.iteratorId, hasMore: false, results: [], metadata: null };
      }
      case 'GET_PRIVATE_DATA_HASH': {
        const { collection, key } = m.payload;
        this.#collection(ctx, collection, 'hash');
        return { kind: 'value', value: (await sim.getPrivateDataHash(ns, collection, key)) ?? EMPTY };
      }
      case 'PURGE_PRIVATE_DATA': {
        const { collection, key } = m.payload;
        this.#collection(ctx, collection, 'write');
        sim.purgePrivateData(ns, collection, key);
        return { kind: 'empty' };
      }
      case 'INVOKE_CHAINCODE': {
        const invoke = ctx.request.invokeChaincode;
        if (invoke === undefined) throw new Error('chaincode-to-chaincode invocation is not available here');
        const spec = m.payload.chaincodeName;
        const slash = spec.indexOf('/');
        const chaincodeName = slash < 0 ? spec : spec.slice(0, slash);
        const channel = slash < 0 || spec.slice(slash + 1) === '' ? undefined : spec.slice(slash + 1);
        const response = await invoke({ chaincodeName, channel, args: m.payload.args });
        return { kind: 'chaincode', response };
      }
    }
  }

  #privatePage(ctx: TxContext, all: QueryRecord[], size: number, bookmark: string): ResponsePayload {
    let start = 0;
    if (bookmark !== '') {
      const i = all.findIndex((r) => r.key === bookmark);
      start = i < 0 ? all.length : i;
    }
    const results = all.slice(start, start + size);
    const next = all[start + size];
    const page: QueryPage = { results, fetchedRecordsCount: results.length, bookmark: next?.key ?? '' };
    const empty: ResultIterator<QueryRecord> = {
      next: async () => ({ results: [], hasMore: false }),
      close: async () => {},
    };
    return this.#iteratorReply(ctx, empty, { results, hasMore: false }, page);
  }

  #shutdown(reason: string): void {
    if (this.#closedError !== null) return;
    this.#closedError = new LoomError(ChaincodeRuntimeErrorCode.CRASHED, `chaincode stream ended: ${reason}`, {
      httpStatus: 500,
      details: { chaincodeId: this.#chaincodeId },
    });
    const txs = [...this.#txs.values()];
    this.#txs.clear();
    for (const ctx of txs) {
      void closeIterators(ctx);
      ctx.reject(this.#closedError);
    }
    this.#resolveClosed();
  }
}

async function drain(it: ResultIterator<QueryRecord>): Promise<QueryRecord[]> {
  const out: QueryRecord[] = [];
  for (;;) {
    const r = await it.next(1000);
    out.push(...r.results);
    if (!r.hasMore) break;
  }
  await it.close();
  return out;
}

async function closeIterators(ctx: TxContext): Promise<void> {
  const its = [...ctx.iterators.values()];
  ctx.iterators.clear();
  for (const { it } of its) await it.close().catch(() => {});
}

function toRecord(r: QueryRecord | KeyModification): QueryResultRecord {
  if ('key' in r) return { kind: 'kv', key: r.key, value: r.value };
  return {
    kind: 'history',
    txId: r.txId,
    timestamp: { seconds: Math.floor(r.timestamp / 1000), nanos: (r.timestamp % 1000) * 1_000_000 },
    isDelete: r.isDelete,
    value: r.value,
  };
}
