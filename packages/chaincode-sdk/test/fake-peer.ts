/**
 * A fake peer for compatibility tests: an in-memory versioned state speaking the real chaincode wire
 * protocol (FrameDecoder + encodeChaincodeFrame) over a real loopback TCP socket. Reads see committed
 * state; a transaction's writes are buffered and committed when it COMPLETEs with status < 400, with
 * a history record per key. Non-paginated iterators are served two results per page so QUERY_STATE_NEXT
 * is exercised.
 */
import { createHash } from 'node:crypto';
import { type Server, type Socket, connect, createServer } from 'node:net';
import {
  type ChaincodeMessage,
  type ChaincodeMessageOf,
  type QueryResultRecord,
  type ResponsePayload,
  type TransactionPayload,
  FrameDecoder,
  encodeChaincodeFrame,
} from '@loom/common/chaincode-protocol';

export interface StoredValue {
  value: Uint8Array;
  version: number;
}

export interface HistoryRecord {
  txId: string;
  seconds: number;
  isDelete: boolean;
  value: Uint8Array;
}

export type TxOutcome = ChaincodeMessageOf<'COMPLETED'> | ChaincodeMessageOf<'ERROR'>;

interface OpenIterator {
  records: QueryResultRecord[];
  position: number;
}

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);

export class FakePeer {
  /** collection ('' = public) → key → value */
  readonly state = new Map<string, Map<string, StoredValue>>();
  readonly metadata = new Map<string, Map<string, Uint8Array>>();
  readonly history = new Map<string, HistoryRecord[]>();
  /** Every message received from the chaincode, in order. */
  readonly received: ChaincodeMessage[] = [];
  registeredAs: string | undefined;
  pageSize = 2;
  #socket: Socket | undefined;
  #server: Server | undefined;
  #decoder = new FrameDecoder();
  #waiters = new Map<string, (m: TxOutcome) => void>();
  #writes = new Map<string, Array<{ collection: string; key: string; value: Uint8Array | null }>>();
  #iterators = new Map<string, OpenIterator>();
  #nextIterator = 1;
  #version = 1;
  #registered: Promise<void>;
  #onRegistered!: () => void;

  constructor() {
    this.#registered = new Promise((r) => {
      this.#onRegistered = r;
    });
  }

  /** Dial-out mode: the peer listens, the chaincode connects. Resolves with `host:port`. */
  async listen(): Promise<string> {
    const server = createServer((s) => this.#attach(s));
    this.#server = server;
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const a = server.address();
    if (a === null || typeof a === 'string') throw new Error('no address');
    return `127.0.0.1:${a.port}`;
  }

  /** Chaincode-as-a-service mode: the peer dials the chaincode server. */
  async dial(address: string): Promise<void> {
    const [host, port] = address.split(/:(?=\d+$)/);
    const s = connect({ host: host!, port: Number(port) });
    await new Promise<void>((r, j) => {
      s.once('connect', r);
      s.once('error', j);
    });
    this.#attach(s);
  }

  registered(): Promise<void> {
    return this.#registered;
  }

  async close(): Promise<void> {
    this.#socket?.destroy();
    const server = this.#server;
    if (server !== undefined) await new Promise<void>((r) => server.close(() => r()));
  }

  /** Writes committed state directly. */
  seed(key: string, value: string | Uint8Array, collection = ''): void {
    const v = typeof value === 'string' ? enc(value) : value;
    this.#coll(collection).set(key, { value: v, version: this.#version++ });
    this.#appendHistory(collection, key, `seed-${key}`, false, v);
  }

  get(key: string, collection = ''): string | undefined {
    const v = this.state.get(collection)?.get(key);
    return v === undefined ? undefined : dec(v.value);
  }

  /** Sends TRANSACTION (or INIT) and resolves with the chaincode's COMPLETED or ERROR. */
  invoke(
    args: string[],
    opts: Partial<Omit<TransactionPayload, 'args'>> & { txId?: string; channelId?: string; init?: boolean } = {},
  ): Promise<TxOutcome> {
    const txId = opts.txId ?? `tx${Math.random().toString(16).slice(2)}`;
    const channelId = opts.channelId ?? 'mychannel';
    const payload: TransactionPayload = {
      args: args.map(enc),
      transientMap: opts.transientMap ?? new Map(),
      signedProposal: opts.signedProposal ?? new Uint8Array(0),
      creator: opts.creator ?? { mspId: 'Org1MSP', idBytes: enc('not a certificate') },
      txTimestamp: opts.txTimestamp ?? { seconds: 1_700_000_000, nanos: 123_000_000 },
    };
    return new Promise((resolve) => {
      this.#waiters.set(`${channelId}/${txId}`, resolve);
      this.#send({ type: opts.init ? 'INIT' : 'TRANSACTION', txId, channelId, payload });
    });
  }

  /** Messages received for one transaction, in order. */
  messagesFor(txId: string): ChaincodeMessage[] {
    return this.received.filter((m) => m.txId === txId);
  }

  /** Sends raw bytes (for protocol abuse tests). */
  sendRaw(bytes: Uint8Array): void {
    this.#socket!.write(bytes);
  }

  #attach(s: Socket): void {
    this.#socket = s;
    s.on('data', (chunk: Uint8Array) => {
      for (const m of this.#decoder.pushMessages(chunk)) this.#onMessage(m);
    });
    s.on('error', () => {});
  }

  #send(m: ChaincodeMessage): void {
    this.#socket!.write(encodeChaincodeFrame(m));
  }

  #reply(req: ChaincodeMessage, payload: ResponsePayload): void {
    this.#send({ type: 'RESPONSE', txId: req.txId, channelId: req.channelId, payload });
  }

  #coll(c: string): Map<string, StoredValue> {
    let m = this.state.get(c);
    if (m === undefined) this.state.set(c, (m = new Map()));
    return m;
  }

  #appendHistory(collection: string, key: string, txId: string, isDelete: boolean, value: Uint8Array): void {
    if (collection !== '') return;
    const h = this.history.get(key) ?? [];
    h.push({ txId, seconds: 1_700_000_000 + h.length, isDelete, value });
    this.history.set(key, h);
  }

  #openIterator(
    req: ChaincodeMessage,
    records: QueryResultRecord[],
    pageSize: number | null,
    bookmarkOf?: () => string,
  ) {
    if (pageSize !== null) {
      this.#reply(req, {
        kind: 'query',
        iteratorId: '',
        hasMore: false,
        results: records,
        metadata: { fetchedRecordsCount: records.length, bookmark: bookmarkOf?.() ?? '' },
      });
      return;
    }
    const id = `it${this.#nextIterator++}`;
    const it = { records, position: 0 };
    this.#iterators.set(id, it);
    this.#replyPage(req, id, it);
  }

  #replyPage(req: ChaincodeMessage, id: string, it: OpenIterator): void {
    const page = it.records.slice(it.position, it.position + this.pageSize);
    it.position += page.length;
    const hasMore = it.position < it.records.length;
    this.#reply(req, { kind: 'query', iteratorId: id, hasMore, results: page, metadata: null });
  }

  #range(collection: string, startKey: string, endKey: string): Array<[string, StoredValue]> {
    return [...this.#coll(collection).entries()]
      .filter(([k]) => k >= startKey && (endKey === '' || k < endKey))
      .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  }

  #onMessage(m: ChaincodeMessage): void {
    this.received.push(m);
    const key = `${m.channelId}/${m.txId}`;
    switch (m.type) {
      case 'REGISTER':
        this.registeredAs = m.payload.chaincodeId;
        this.#send({ type: 'REGISTERED', txId: '', channelId: '', payload: {} });
        this.#onRegistered();
        return;
      case 'COMPLETED': {
        const writes = this.#writes.get(key) ?? [];
        this.#writes.delete(key);
        if (m.payload.response.status < 400) {
          for (const w of writes) {
            if (w.value === null) this.#coll(w.collection).delete(w.key);
            else this.#coll(w.collection).set(w.key, { value: w.value, version: this.#version++ });
            this.#appendHistory(w.collection, w.key, m.txId, w.value === null, w.value ?? new Uint8Array(0));
          }
        }
        this.#waiters.get(key)?.(m);
        this.#waiters.delete(key);
        return;
      }
      case 'ERROR':
        this.#writes.delete(key);
        this.#waiters.get(key)?.(m);
        this.#waiters.delete(key);
        return;
      case 'GET_STATE': {
        if (m.payload.key === 'boom') {
          this.#send({
            type: 'ERROR',
            txId: m.txId,
            channelId: m.channelId,
            payload: { message: 'simulated peer failure' },
          });
          return;
        }
        const v = this.state.get(m.payload.collection)?.get(m.payload.key);
        this.#reply(m, { kind: 'value', value: v?.value ?? new Uint8Array(0) });
        return;
      }
      case 'GET_PRIVATE_DATA_HASH': {
        const v = this.state.get(m.payload.collection)?.get(m.payload.key);
        const value =
          v === undefined ? new Uint8Array(0) : new Uint8Array(createHash('sha256').update(v.value).digest());
        this.#reply(m, { kind: 'value', value });
        return;
      }
      case 'PUT_STATE':
      case 'DEL_STATE':
      case 'PURGE_PRIVATE_DATA': {
        const list = this.#writes.get(key) ?? [];
        list.push({
          collection: m.payload.collection,
          key: m.payload.key,
          value: m.type === 'PUT_STATE' ? m.payload.value : null,
        });
        this.#writes.set(key, list);
        this.#reply(m, { kind: 'empty' });
        return;
      }
      case 'PUT_STATE_METADATA': {
        const mk = `${m.payload.collection}/${m.payload.key}`;
        const entries = this.metadata.get(mk) ?? new Map();
        entries.set(m.payload.metakey, m.payload.value);
        this.metadata.set(mk, entries);
        this.#reply(m, { kind: 'empty' });
        return;
      }
      case 'GET_STATE_METADATA':
        this.#reply(m, {
          kind: 'metadata',
          entries: this.metadata.get(`${m.payload.collection}/${m.payload.key}`) ?? new Map(),
        });
        return;
      case 'GET_STATE_BY_RANGE': {
        const p = m.payload;
        let rows = this.#range(p.collection, p.pagination?.bookmark || p.startKey, p.endKey);
        let bookmark = '';
        if (p.pagination !== null) {
          bookmark = rows[p.pagination.pageSize]?.[0] ?? '';
          rows = rows.slice(0, p.pagination.pageSize);
        }
        this.#openIterator(
          m,
          rows.map(([k, v]) => ({ kind: 'kv', key: k, value: v.value })),
          p.pagination?.pageSize ?? null,
          () => bookmark,
        );
        return;
      }
      case 'GET_QUERY_RESULT': {
        const p = m.payload;
        const selector = (JSON.parse(p.query) as { selector: Record<string, unknown> }).selector;
        let rows = this.#range(p.collection, '', '').filter(([, v]) => {
          try {
            const doc = JSON.parse(dec(v.value)) as Record<string, unknown>;
            return Object.entries(selector).every(([f, want]) => doc[f] === want);
          } catch {
            return false;
          }
        });
        let bookmark = '';
        if (p.pagination !== null) {
          const start = p.pagination.bookmark === '' ? 0 : rows.findIndex(([k]) => k === p.pagination!.bookmark);
          bookmark = rows[start + p.pagination.pageSize]?.[0] ?? '';
          rows = rows.slice(start, start + p.pagination.pageSize);
        }
        this.#openIterator(
          m,
          rows.map(([k, v]) => ({ kind: 'kv', key: k, value: v.value })),
          p.pagination?.pageSize ?? null,
          () => bookmark,
        );
        return;
      }
      case 'GET_HISTORY_FOR_KEY': {
        const records: QueryResultRecord[] = (this.history.get(m.payload.key) ?? []).map((h) => ({
          kind: 'history',
          txId: h.txId,
          timestamp: { seconds: h.seconds, nanos: 0 },
          isDelete: h.isDelete,
          value: h.value,
        }));
        this.#openIterator(m, records, null);
        return;
      }
      case 'QUERY_STATE_NEXT': {
        const it = this.#iterators.get(m.payload.iteratorId);
        if (it === undefined) {
          this.#send({ type: 'ERROR', txId: m.txId, channelId: m.channelId, payload: { message: 'unknown iterator' } });
          return;
        }
        this.#replyPage(m, m.payload.iteratorId, it);
        return;
      }
      case 'QUERY_STATE_CLOSE':
        this.#iterators.delete(m.payload.iteratorId);
        this.#reply(m, {
          kind: 'query',
          iteratorId: m.payload.iteratorId,
          hasMore: false,
          results: [],
          metadata: null,
        });
        return;
      case 'INVOKE_CHAINCODE':
        this.#reply(m, {
          kind: 'chaincode',
          response: {
            status: 200,
            message: '',
            payload: enc(`${m.payload.chaincodeName}(${m.payload.args.map(dec).join(',')})`),
          },
        });
        return;
      default:
        return;
    }
  }
}
