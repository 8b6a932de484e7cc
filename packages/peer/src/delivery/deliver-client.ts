/**
 * Pulls a channel's blocks from the ordering service: a signed DELIVER_SEEK_INFO envelope asks an
 * orderer for every block from the ledger height on (BLOCK_UNTIL_READY), the answer is a stream of
 * length-prefixed blocks, and each block goes through `commitBlock` (which checks the orderer
 * signature and the hash chain before committing). When a stream fails — connection refused or
 * dropped, HTTP error, a block that does not verify — the client moves to the next orderer
 * (round-robin) after a backoff that grows to `maxBackoffMs` and resets once blocks flow again.
 * It reconnects until stopped.
 */
import { randomBytes } from 'node:crypto';
import {
  type Bytes,
  computeTxId,
  encodeChannelHeader,
  encodeEnvelope,
  encodeHeader,
  encodePayload,
  encodeSeekInfo,
  encodeSerializedIdentity,
  encodeSignatureHeader,
  HeaderType,
  LoomError,
  type Logger,
  type SerializedIdentity,
  sha256,
} from '@loom/common';
import { BLOCK_STREAM_CONTENT_TYPE, readFrames } from './frames.js';

export interface DeliverSigner {
  readonly identity: SerializedIdentity;
  sign(message: Bytes): Bytes | Promise<Bytes>;
}

/** What delivery needs of a ledger. */
export interface DeliverTarget {
  height(): number;
  commitBlock(block: Bytes): Promise<unknown>;
}

export interface DeliverClientOptions {
  readonly channelId: string;
  /** Orderer base URLs, e.g. `http://127.0.0.1:7050`. */
  readonly orderers: readonly string[];
  readonly signer: DeliverSigner;
  readonly ledger: DeliverTarget;
  readonly logger?: Logger;
  readonly initialBackoffMs?: number;
  readonly maxBackoffMs?: number;
  /** Milliseconds since the epoch, for the seek envelope's timestamp. */
  readonly now?: () => number;
  readonly fetch?: typeof fetch;
}

export interface DeliverClientStatus {
  readonly running: boolean;
  readonly endpoint: string | undefined;
  readonly connected: boolean;
  readonly blocksReceived: number;
  readonly failures: number;
  readonly lastError: string | undefined;
}

export interface DeliverClient {
  start(): void;
  stop(): Promise<void>;
  status(): DeliverClientStatus;
}

export const DeliverErrorCode = {
  NO_ORDERERS: 'DELIVER_NO_ORDERERS',
  HTTP_ERROR: 'DELIVER_HTTP_ERROR',
} as const;

/** The signed deliver request for blocks `start`.. (no end), waiting for blocks not yet cut. */
export async function buildSeekEnvelope(
  channelId: string,
  signer: DeliverSigner,
  start: number,
  timestamp: number,
): Promise<Bytes> {
  const creator = encodeSerializedIdentity(signer.identity);
  const nonce = randomBytes(24);
  const header = encodeHeader({
    channelHeader: encodeChannelHeader({
      type: HeaderType.DELIVER_SEEK_INFO,
      version: 1,
      channelId,
      txId: computeTxId(nonce, creator, sha256),
      timestamp,
      extension: new Uint8Array(0),
    }),
    signatureHeader: encodeSignatureHeader({ creator, nonce }),
  });
  const payload = encodePayload({
    header,
    data: encodeSeekInfo({
      start: { kind: 'specified', number: start },
      stop: { kind: 'specified', number: Number.MAX_SAFE_INTEGER },
      behavior: 'BLOCK_UNTIL_READY',
    }),
  });
  return encodeEnvelope({ payload, signature: await signer.sign(payload) });
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}

export function createDeliverClient(options: DeliverClientOptions): DeliverClient {
  if (options.orderers.length === 0) {
    throw new LoomError(DeliverErrorCode.NO_ORDERERS, `no orderer endpoints for channel ${options.channelId}`);
  }
  const initial = options.initialBackoffMs ?? 100;
  const max = options.maxBackoffMs ?? 5_000;
  const doFetch = options.fetch ?? fetch;
  const now = options.now ?? Date.now;
  const log = options.logger;
  let abort: AbortController | undefined;
  let loop: Promise<void> | undefined;
  const st = {
    running: false,
    endpoint: undefined as string | undefined,
    connected: false,
    blocksReceived: 0,
    failures: 0,
    lastError: undefined as string | undefined,
  };

  /** One deliver stream from one orderer; returns the number of blocks committed. */
  async function streamFrom(endpoint: string, signal: AbortSignal): Promise<number> {
    const start = options.ledger.height();
    const body = await buildSeekEnvelope(options.channelId, options.signer, start, now());
    const url = `${endpoint.replace(/\/+$/, '')}/v1/channels/${encodeURIComponent(options.channelId)}/deliver`;
    const res = await doFetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/octet-stream', accept: BLOCK_STREAM_CONTENT_TYPE },
      body,
      signal,
    });
    if (!res.ok || !res.body) {
      const text = await res.text().catch(() => '');
      throw new LoomError(
        DeliverErrorCode.HTTP_ERROR,
        `deliver from ${endpoint}: HTTP ${res.status} ${text.slice(0, 300)}`,
        {
          details: { endpoint, status: res.status },
        },
      );
    }
    st.connected = true;
    log?.info({ channel: options.channelId, endpoint, start }, 'deliver stream open');
    let n = 0;
    // Two blocks in flight: the next block is handed to the ledger while the current one commits, so
    // its signatures are verified by the worker pool meanwhile (the ledger still commits in order).
    const inFlight: Promise<unknown>[] = [];
    const settleOldest = async () => {
      await inFlight[0];
      inFlight.shift();
      n++;
      st.blocksReceived++;
    };
    try {
      for await (const frame of readFrames(res.body as unknown as AsyncIterable<Uint8Array>)) {
        const next = options.ledger.commitBlock(frame);
        next.catch(() => undefined); // awaited in turn, once the block before it is done
        inFlight.push(next);
        if (inFlight.length > 1) await settleOldest();
      }
      while (inFlight.length > 0) await settleOldest();
    } finally {
      // Never leave a commit running behind the next stream, which starts at the ledger's height.
      await Promise.allSettled(inFlight);
      st.connected = false;
    }
    return n;
  }

  async function run(signal: AbortSignal): Promise<void> {
    let i = 0;
    let backoff = initial;
    while (!signal.aborted) {
      const endpoint = options.orderers[i % options.orderers.length]!;
      st.endpoint = endpoint;
      let delivered = 0;
      try {
        delivered = await streamFrom(endpoint, signal);
        if (!signal.aborted) log?.info({ channel: options.channelId, endpoint, delivered }, 'deliver stream ended');
      } catch (e) {
        if (signal.aborted) break;
        st.failures++;
        st.lastError = (e as Error).message;
        log?.warn({ channel: options.channelId, endpoint, err: st.lastError }, 'deliver stream failed');
      }
      if (signal.aborted) break;
      if (delivered > 0) backoff = initial;
      // A stream that ends or fails moves on to the next orderer.
      i++;
      await sleep(backoff, signal);
      backoff = Math.min(max, backoff * 2);
    }
  }

  return {
    start() {
      if (loop) return;
      abort = new AbortController();
      st.running = true;
      loop = run(abort.signal).finally(() => {
        st.running = false;
      });
    },
    async stop() {
      abort?.abort();
      await loop;
      loop = undefined;
    },
    status: () => ({ ...st }),
  };
}
