/**
 * One chaincode ↔ peer stream, whichever side dialled: frames in, frames out, REGISTER first, then
 * transactions multiplexed by `(channelId, txId)`. Within one transaction requests go out one at a
 * time (the peer answers them in order), so a reply always belongs to the oldest outstanding
 * request of its transaction; independent transactions run concurrently.
 */
import type { Duplex } from 'node:stream';
import {
  type ChaincodeMessage,
  type ChaincodeMessageOf,
  type ChaincodePayloads,
  type ChaincodeRequestType,
  DEFAULT_MAX_CHAINCODE_FRAME_BYTES,
  FrameDecoder,
  type ResponsePayload,
  type TransactionPayload,
  encodeChaincodeFrame,
} from '@loom/common/chaincode-protocol';
import { LoomError } from '@loom/common/errors';
import type { ChaincodeLogger } from './logger.js';
import { ChaincodeStub } from './stub.js';
import type { ChaincodeInterface, ChaincodeResponse, PeerRequester } from './types.js';

export const ChaincodeShimErrorCode = {
  /** The peer answered a request with ERROR. */
  PEER_ERROR: 'CHAINCODE_PEER_ERROR',
  /** The stream closed (or was never registered) while a request was outstanding. */
  STREAM_CLOSED: 'CHAINCODE_STREAM_CLOSED',
  /** The peer refused REGISTER. */
  REGISTER_FAILED: 'CHAINCODE_REGISTER_FAILED',
  /** A stub call made after its transaction completed. */
  TX_FINISHED: 'CHAINCODE_TX_FINISHED',
} as const;

interface PendingRequest {
  message: ChaincodeMessage;
  resolve: (r: ResponsePayload) => void;
  reject: (e: Error) => void;
}

export interface ChaincodeStreamOptions {
  chaincodeId: string;
  logger: ChaincodeLogger;
  maxFrameBytes?: number;
}

const txKey = (channelId: string, txId: string) => `${channelId}\u0000${txId}`;

export class ChaincodeStream implements PeerRequester {
  readonly #chaincode: ChaincodeInterface;
  readonly #socket: Duplex;
  readonly #opts: ChaincodeStreamOptions;
  readonly #decoder: FrameDecoder;
  /** Per transaction: queued requests, the head being the one awaiting its reply. */
  readonly #queues = new Map<string, PendingRequest[]>();
  readonly #activeTx = new Set<string>();
  #registered = false;
  #closedError: Error | null = null;
  #onRegistered: { resolve: () => void; reject: (e: Error) => void } | null = null;
  readonly closed: Promise<void>;
  #resolveClosed!: () => void;

  constructor(chaincode: ChaincodeInterface, socket: Duplex, opts: ChaincodeStreamOptions) {
    this.#chaincode = chaincode;
    this.#socket = socket;
    this.#opts = opts;
    this.#decoder = new FrameDecoder(opts.maxFrameBytes ?? DEFAULT_MAX_CHAINCODE_FRAME_BYTES);
    this.closed = new Promise((r) => {
      this.#resolveClosed = r;
    });
    socket.on('data', (chunk: Uint8Array) => this.#onData(chunk));
    socket.on('error', (e) => this.#shutdown(e));
    socket.on('close', () => this.#shutdown(null));
  }

  /** Sends REGISTER and resolves on REGISTERED. */
  register(): Promise<void> {
    return new Promise((resolve, reject) => {
      if (this.#closedError !== null) return reject(this.#closedError);
      this.#onRegistered = { resolve, reject };
      this.#send({ type: 'REGISTER', txId: '', channelId: '', payload: { chaincodeId: this.#opts.chaincodeId } });
    });
  }

  get registered(): boolean {
    return this.#registered;
  }

  close(): void {
    this.#socket.end();
    this.#socket.destroy();
  }

  request<T extends ChaincodeRequestType>(
    channelId: string,
    txId: string,
    type: T,
    payload: ChaincodePayloads[T],
  ): Promise<ResponsePayload> {
    return new Promise((resolve, reject) => {
      if (this.#closedError !== null) return reject(this.#closedError);
      const key = txKey(channelId, txId);
      if (!this.#activeTx.has(key)) {
        return reject(
          new LoomError(ChaincodeShimErrorCode.TX_FINISHED, `transaction ${txId} has already completed`, {
            details: { txId, channelId, type },
          }),
        );
      }
      const message = { type, txId, channelId, payload } as ChaincodeMessageOf<T> as ChaincodeMessage;
      let q = this.#queues.get(key);
      if (q === undefined) this.#queues.set(key, (q = []));
      q.push({ message, resolve, reject });
      if (q.length === 1) this.#send(message);
    });
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
      this.#opts.logger.error('malformed stream from peer: %s', (e as Error).message);
      this.#shutdown(e as Error);
      this.#socket.destroy();
      return;
    }
    for (const m of messages) this.#dispatch(m);
  }

  #dispatch(m: ChaincodeMessage): void {
    switch (m.type) {
      case 'REGISTERED':
        this.#registered = true;
        this.#onRegistered?.resolve();
        this.#onRegistered = null;
        return;
      case 'KEEPALIVE':
        return;
      case 'INIT':
      case 'TRANSACTION':
        if (!this.#registered) {
          this.#send({ type: 'ERROR', txId: m.txId, channelId: m.channelId, payload: { message: 'not registered' } });
          return;
        }
        void this.#runTransaction(m.type, m.channelId, m.txId, m.payload);
        return;
      case 'RESPONSE':
        this.#settle(m.channelId, m.txId, (p) => p.resolve(m.payload));
        return;
      case 'ERROR':
        if (!this.#registered && this.#onRegistered !== null) {
          const e = new LoomError(
            ChaincodeShimErrorCode.REGISTER_FAILED,
            `peer refused registration: ${m.payload.message}`,
          );
          this.#onRegistered.reject(e);
          this.#onRegistered = null;
          return;
        }
        this.#settle(m.channelId, m.txId, (p) =>
          p.reject(
            new LoomError(ChaincodeShimErrorCode.PEER_ERROR, m.payload.message, {
              details: { txId: m.txId, channelId: m.channelId, request: p.message.type },
            }),
          ),
        );
        return;
      default:
        this.#opts.logger.warn('ignoring unexpected %s message from peer (tx %s)', m.type, m.txId);
    }
  }

  #settle(channelId: string, txId: string, f: (p: PendingRequest) => void): void {
    const key = txKey(channelId, txId);
    const q = this.#queues.get(key);
    const head = q?.shift();
    if (q === undefined || head === undefined) {
      this.#opts.logger.warn('reply for transaction %s with no request outstanding', txId);
      return;
    }
    const next = q[0];
    if (next === undefined) this.#queues.delete(key);
    else this.#send(next.message);
    f(head);
  }

  async #runTransaction(
    type: 'INIT' | 'TRANSACTION',
    channelId: string,
    txId: string,
    payload: TransactionPayload,
  ): Promise<void> {
    const key = txKey(channelId, txId);
    if (this.#activeTx.has(key)) {
      this.#send({ type: 'ERROR', txId, channelId, payload: { message: `duplicate transaction ${txId} in progress` } });
      return;
    }
    this.#activeTx.add(key);
    const stub = new ChaincodeStub(this, channelId, txId, payload);
    let done: ChaincodeMessage;
    try {
      const resp: ChaincodeResponse | undefined =
        type === 'INIT' ? await this.#chaincode.Init(stub) : await this.#chaincode.Invoke(stub);
      if (resp === undefined || resp === null || typeof resp.status !== 'number') {
        throw new Error(`${type === 'INIT' ? 'Init' : 'Invoke'} returned an invalid response`);
      }
      if (resp.status >= 400)
        this.#opts.logger.info('%s of tx %s returned status %d: %s', type, txId, resp.status, resp.message);
      const event = stub.chaincodeEvent;
      done = {
        type: 'COMPLETED',
        txId,
        channelId,
        payload: {
          response: { status: resp.status, message: resp.message ?? '', payload: toBytes(resp.payload) },
          results: new Uint8Array(0),
          event: event === undefined ? null : { eventName: event.eventName, payload: event.payload },
        },
      };
    } catch (e) {
      const message = e instanceof Error ? e.message : String(e);
      this.#opts.logger.error('%s of tx %s failed: %s', type, txId, message);
      done = { type: 'ERROR', txId, channelId, payload: { message } };
    }
    this.#activeTx.delete(key);
    const q = this.#queues.get(key);
    if (q !== undefined) {
      // The chaincode returned without awaiting some calls: they can no longer be answered.
      this.#queues.delete(key);
      for (const p of q) {
        p.reject(new LoomError(ChaincodeShimErrorCode.TX_FINISHED, `transaction ${txId} has already completed`));
      }
    }
    this.#send(done);
  }

  #shutdown(e: Error | null): void {
    if (this.#closedError !== null) return;
    this.#closedError = new LoomError(
      ChaincodeShimErrorCode.STREAM_CLOSED,
      e === null ? 'chaincode stream closed' : `chaincode stream failed: ${e.message}`,
      { cause: e ?? undefined },
    );
    this.#onRegistered?.reject(this.#closedError);
    this.#onRegistered = null;
    for (const q of this.#queues.values()) for (const p of q) p.reject(this.#closedError);
    this.#queues.clear();
    this.#resolveClosed();
  }
}

function toBytes(p: unknown): Uint8Array {
  if (p === undefined || p === null) return new Uint8Array(0);
  if (p instanceof Uint8Array) return p;
  if (typeof p === 'string') return Buffer.from(p, 'utf8');
  return Buffer.from(JSON.stringify(p), 'utf8');
}
