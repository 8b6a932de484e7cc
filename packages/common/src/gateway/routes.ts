/**
 * The gateway's HTTP contract, declared once: each route's method, path, success status and body
 * codecs. The peer builds its fastify handlers from these declarations (packages/peer/src/gateway)
 * and the client SDK its calls (`invokeRoute`, `openStreamRoute` below), so the two cannot drift.
 * Pure and browser-portable: the HTTP itself is a `GatewayTransport` the caller supplies.
 */
import type { Bytes } from '../encoding.js';
import { LoomError } from '../errors.js';
import type { KeyProof, TxProof } from '../ledger-proofs.js';
import type { Response } from '../protocol/messages.js';
import { FRAME_STREAM_CONTENT_TYPE, readGatewayFrames } from './frames.js';
import {
  type BlockEventsRequest,
  type BodyCodec,
  blockEventsRequestCodec,
  type ChaincodeEventFrame,
  type ChaincodeEventsRequest,
  chaincodeEventFrameCodec,
  chaincodeEventsRequestCodec,
  type CommitStatusRequest,
  type CommitStatusResponse,
  commitStatusRequestCodec,
  commitStatusResponseCodec,
  type EndorseResponse,
  endorseResponseCodec,
  evaluateResponseCodec,
  type KeyProofRequest,
  keyProofCodec,
  keyProofRequestCodec,
  type ProposalRequest,
  proposalRequestCodec,
  rawBytes,
  type SignedLedgerDigest,
  type SignedRequest,
  type SubmitResponse,
  signedDigestCodec,
  signedRequestCodec,
  submitResponseCodec,
  type TxProofRequest,
  txProofCodec,
  txProofRequestCodec,
} from './messages.js';

export const GATEWAY_CONTENT_TYPE = 'application/octet-stream';
export { FRAME_STREAM_CONTENT_TYPE };

/** A request as it travels: a body for POST, query parameters for GET. */
export interface WireRequest {
  readonly body?: Bytes;
  readonly query?: Readonly<Record<string, string>>;
}

export interface RequestCodec<T> {
  toWire(value: T): WireRequest;
  fromWire(wire: WireRequest): T;
}

/** A POST body codec as a request codec. */
function bodyRequest<T>(codec: BodyCodec<T>): RequestCodec<T> {
  return {
    toWire: (v) => ({ body: codec.encode(v) }),
    fromWire: (w) => {
      if (w.body === undefined || w.body.length === 0) {
        throw new LoomError('GATEWAY_BAD_REQUEST', 'request body required (application/octet-stream)', {
          httpStatus: 400,
        });
      }
      return codec.decode(w.body);
    },
  };
}

/** A signed request: the wire carries `SignedRequest`; handlers get the decoded inner request too. */
export interface Signed<T> {
  readonly signed: SignedRequest;
  readonly request: T;
}
function signedRequest<T>(inner: BodyCodec<T>): RequestCodec<Signed<T>> {
  const outer = bodyRequest(signedRequestCodec);
  return {
    toWire: (v) => outer.toWire(v.signed),
    fromWire: (w) => {
      const signed = outer.fromWire(w);
      return { signed, request: inner.decode(signed.request) };
    },
  };
}

/** A proposal forwarded by another peer's gateway, with the height that gateway has committed. */
export interface ProcessProposalRequest {
  readonly signedProposal: Bytes;
  readonly minHeight?: number;
}
function processProposalRequest(): RequestCodec<ProcessProposalRequest> {
  const body = bodyRequest(rawBytes);
  return {
    toWire: (v) => ({
      ...body.toWire(v.signedProposal),
      ...(v.minHeight !== undefined ? { query: { minHeight: String(v.minHeight) } } : {}),
    }),
    fromWire: (w) => {
      const signedProposal = body.fromWire(w);
      const raw = w.query?.minHeight;
      if (raw === undefined) return { signedProposal };
      if (typeof raw !== 'string' || !/^\d{1,15}$/.test(raw)) {
        throw new LoomError('GATEWAY_BAD_REQUEST', 'query parameter "minHeight" must be a block count (0..10^15)', {
          httpStatus: 400,
          details: { minHeight: String(raw) },
        });
      }
      return { signedProposal, minHeight: Number(raw) };
    },
  };
}

export interface UnaryRoute<Req, Res> {
  readonly kind: 'unary';
  readonly id: string;
  readonly method: 'GET' | 'POST';
  readonly path: string;
  readonly successStatus: number;
  readonly request: RequestCodec<Req>;
  readonly response: BodyCodec<Res>;
}

/** A route whose answer is a stream of length-prefixed frames (frames.ts) until either side hangs up. */
export interface StreamRoute<Req, Frame> {
  readonly kind: 'stream';
  readonly id: string;
  readonly method: 'POST';
  readonly path: string;
  readonly request: RequestCodec<Req>;
  readonly frame: BodyCodec<Frame>;
}

const unary = <Req, Res>(r: Omit<UnaryRoute<Req, Res>, 'kind'>): UnaryRoute<Req, Res> => ({ kind: 'unary', ...r });
const stream = <Req, F>(r: Omit<StreamRoute<Req, F>, 'kind'>): StreamRoute<Req, F> => ({ kind: 'stream', ...r });

export const gatewayRoutes = {
  /** Runs a proposal on one peer without endorsing for submission; answers the chaincode's Response. */
  evaluate: unary<ProposalRequest, Response>({
    id: 'evaluate',
    method: 'POST',
    path: '/v1/gateway/evaluate',
    successStatus: 200,
    request: bodyRequest(proposalRequestCodec),
    response: evaluateResponseCodec,
  }),
  /** Collects endorsements satisfying the chaincode's policy; answers the Payload for the client to sign. */
  endorse: unary<ProposalRequest, EndorseResponse>({
    id: 'endorse',
    method: 'POST',
    path: '/v1/gateway/endorse',
    successStatus: 200,
    request: bodyRequest(proposalRequestCodec),
    response: endorseResponseCodec,
  }),
  /** Body: the signed Envelope bytes. 202 once the ordering service accepted it for ordering. */
  submit: unary<Bytes, SubmitResponse>({
    id: 'submit',
    method: 'POST',
    path: '/v1/gateway/submit',
    successStatus: 202,
    request: bodyRequest(rawBytes),
    response: submitResponseCodec,
  }),
  /** Waits (bounded by the request's timeoutMs and the gateway's cap) until the transaction commits. */
  commitStatus: unary<Signed<CommitStatusRequest>, CommitStatusResponse>({
    id: 'commit-status',
    method: 'POST',
    path: '/v1/gateway/commit-status',
    successStatus: 200,
    request: signedRequest(commitStatusRequestCodec),
    response: commitStatusResponseCodec,
  }),
  /** Chaincode events of valid transactions from `startBlock` on, in ledger order. */
  chaincodeEvents: stream<Signed<ChaincodeEventsRequest>, ChaincodeEventFrame>({
    id: 'chaincode-events',
    method: 'POST',
    path: '/v1/gateway/chaincode-events',
    request: signedRequest(chaincodeEventsRequestCodec),
    frame: chaincodeEventFrameCodec,
  }),
  /** Committed blocks (encoded Block, validation codes filled) from `startBlock` on. */
  blockEvents: stream<Signed<BlockEventsRequest>, Bytes>({
    id: 'block-events',
    method: 'POST',
    path: '/v1/gateway/block-events',
    request: signedRequest(blockEventsRequestCodec),
    frame: rawBytes,
  }),
  /**
   * The peer's signed ledger digest. Unsigned GET: a digest is a root hash and reveals no data.
   * Proofs do reveal envelopes, so they are signed requests like events.
   */
  digest: unary<{ channel: string }, SignedLedgerDigest>({
    id: 'digest',
    method: 'GET',
    path: '/v1/gateway/digest',
    successStatus: 200,
    request: {
      toWire: (v) => ({ query: { channel: v.channel } }),
      fromWire: (w) => {
        const channel = w.query?.channel;
        if (typeof channel !== 'string' || channel === '') {
          throw new LoomError('GATEWAY_BAD_REQUEST', 'query parameter "channel" required', { httpStatus: 400 });
        }
        return { channel };
      },
    },
    response: signedDigestCodec,
  }),
  txProof: unary<Signed<TxProofRequest>, TxProof>({
    id: 'tx-proof',
    method: 'POST',
    path: '/v1/gateway/proof/tx',
    successStatus: 200,
    request: signedRequest(txProofRequestCodec),
    response: txProofCodec,
  }),
  keyProof: unary<Signed<KeyProofRequest>, KeyProof>({
    id: 'key-proof',
    method: 'POST',
    path: '/v1/gateway/proof/key',
    successStatus: 200,
    request: signedRequest(keyProofRequestCodec),
    response: keyProofCodec,
  }),
  /**
   * Peer to peer: a gateway asks another peer to endorse. Body SignedProposal, answer
   * ProposalResponse. `?minHeight=N` asks the endorser to wait (briefly) until it has committed N
   * blocks of the proposal's channel, so it reads what the gateway's own peer has already committed.
   */
  processProposal: unary<ProcessProposalRequest, Bytes>({
    id: 'process-proposal',
    method: 'POST',
    path: '/v1/peer/process-proposal',
    successStatus: 200,
    request: processProposalRequest(),
    response: rawBytes,
  }),
} as const;

// ---- errors ---------------------------------------------------------------------------------

export const GatewayErrorCode = {
  BAD_REQUEST: 'GATEWAY_BAD_REQUEST',
  /** No endorser produced a usable endorsement (each endorser's reason is in details.endorsers). */
  ENDORSEMENT_FAILED: 'ENDORSEMENT_FAILED',
  /** Endorsers returned different ProposalResponse payload bytes (different rwsets or results). */
  ENDORSEMENT_MISMATCH: 'ENDORSEMENT_MISMATCH',
  /** The chaincode answered with a status ≥ 400. */
  CHAINCODE_ERROR: 'CHAINCODE_ERROR',
  /** No combination of reachable peers satisfies the endorsement policy. */
  NO_ENDORSEMENT_PLAN: 'NO_ENDORSEMENT_PLAN',
  BAD_SIGNATURE: 'GATEWAY_BAD_SIGNATURE',
  REQUEST_EXPIRED: 'GATEWAY_REQUEST_EXPIRED',
  ORDERER_UNAVAILABLE: 'ORDERER_UNAVAILABLE',
  COMMIT_STATUS_TIMEOUT: 'COMMIT_STATUS_TIMEOUT',
  NOT_SUPPORTED: 'GATEWAY_NOT_SUPPORTED',
} as const;

/** What one endorser (or evaluating peer) said, as carried in `details.endorsers`. */
export interface EndorserErrorDetail {
  readonly mspId: string;
  readonly endpoint: string;
  readonly code: string;
  readonly message: string;
}

/** The JSON body of every gateway error answer. */
export interface GatewayErrorBody {
  readonly code: string;
  readonly message: string;
  readonly details: { readonly endorsers?: readonly EndorserErrorDetail[]; readonly [k: string]: unknown };
}

// ---- the client side of the contract --------------------------------------------------------

export interface TransportRequest {
  readonly method: string;
  readonly url: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly body?: Uint8Array;
  readonly timeoutMs?: number;
  readonly signal?: AbortSignal;
}

/**
 * The HTTP a caller supplies: node:https in Node (the client's transport-node.ts, or common's
 * `createHttpsClient`, which has this shape), `fetch` in a browser.
 */
export interface GatewayTransport {
  request(req: TransportRequest): Promise<{
    status: number;
    headers: Readonly<Record<string, string | string[] | undefined>>;
    body: Uint8Array;
  }>;
  /** Resolves once the response headers arrive; the body then streams until it ends or `signal` aborts. */
  stream(req: TransportRequest): Promise<{
    status: number;
    headers: Readonly<Record<string, string | string[] | undefined>>;
    body: AsyncIterable<Uint8Array>;
  }>;
  close(): void;
}

export interface CallOptions {
  readonly timeoutMs?: number;
  readonly signal?: AbortSignal;
}

function urlOf(baseUrl: string, path: string, query: WireRequest['query']): string {
  const base = baseUrl.replace(/\/+$/, '');
  const qs = query ? new URLSearchParams(query as Record<string, string>).toString() : '';
  return `${base}${path}${qs ? `?${qs}` : ''}`;
}

/** Turns an error answer into the LoomError it describes (code, message, details, status). */
export function gatewayErrorFromResponse(status: number, body: Uint8Array, routeId: string): LoomError {
  let parsed: Partial<GatewayErrorBody> | undefined;
  try {
    parsed = JSON.parse(new TextDecoder().decode(body)) as Partial<GatewayErrorBody>;
  } catch {
    parsed = undefined;
  }
  if (parsed && typeof parsed.code === 'string') {
    return new LoomError(parsed.code, typeof parsed.message === 'string' ? parsed.message : parsed.code, {
      httpStatus: status,
      details: (parsed.details ?? {}) as Record<string, unknown>,
    });
  }
  return new LoomError(`HTTP_${status}`, `${routeId}: HTTP ${status}`, { httpStatus: status, details: {} });
}

/** Calls a unary route; resolves with the decoded answer or throws the server's error as a LoomError. */
export async function invokeRoute<Req, Res>(
  transport: GatewayTransport,
  baseUrl: string,
  route: UnaryRoute<Req, Res>,
  request: Req,
  options: CallOptions = {},
): Promise<Res> {
  const wire = route.request.toWire(request);
  const res = await transport.request({
    method: route.method,
    url: urlOf(baseUrl, route.path, wire.query),
    headers: {
      accept: GATEWAY_CONTENT_TYPE,
      ...(wire.body !== undefined ? { 'content-type': GATEWAY_CONTENT_TYPE } : {}),
    },
    ...(wire.body !== undefined ? { body: wire.body } : {}),
    ...(options.timeoutMs !== undefined ? { timeoutMs: options.timeoutMs } : {}),
    ...(options.signal !== undefined ? { signal: options.signal } : {}),
  });
  if (res.status !== route.successStatus) throw gatewayErrorFromResponse(res.status, res.body, route.id);
  return route.response.decode(res.body);
}

/** An open stream: iterate its frames; `close()` hangs up. */
export interface FrameStream<F> extends AsyncIterable<F> {
  close(): void;
}

/** Opens a stream route; throws the server's error if it refuses before streaming. */
export async function openStreamRoute<Req, F>(
  transport: GatewayTransport,
  baseUrl: string,
  route: StreamRoute<Req, F>,
  request: Req,
  options: CallOptions = {},
): Promise<FrameStream<F>> {
  const abort = new AbortController();
  const onOuterAbort = () => abort.abort(options.signal?.reason);
  options.signal?.addEventListener('abort', onOuterAbort, { once: true });
  const wire = route.request.toWire(request);
  const res = await transport.stream({
    method: route.method,
    url: urlOf(baseUrl, route.path, wire.query),
    headers: { accept: FRAME_STREAM_CONTENT_TYPE, 'content-type': GATEWAY_CONTENT_TYPE },
    ...(wire.body !== undefined ? { body: wire.body } : {}),
    ...(options.timeoutMs !== undefined ? { timeoutMs: options.timeoutMs } : {}),
    signal: abort.signal,
  });
  if (res.status !== 200) {
    const chunks: Uint8Array[] = [];
    for await (const c of res.body) chunks.push(c);
    let n = 0;
    for (const c of chunks) n += c.length;
    const body = new Uint8Array(n);
    n = 0;
    for (const c of chunks) {
      body.set(c, n);
      n += c.length;
    }
    throw gatewayErrorFromResponse(res.status, body, route.id);
  }
  let closed = false;
  const close = () => {
    if (closed) return;
    closed = true;
    options.signal?.removeEventListener('abort', onOuterAbort);
    abort.abort();
  };
  async function* frames(): AsyncGenerator<F> {
    try {
      for await (const f of readGatewayFrames(res.body)) yield route.frame.decode(f);
    } catch (e) {
      if (closed) return;
      throw e;
    } finally {
      close();
    }
  }
  const it = frames();
  return { [Symbol.asyncIterator]: () => it, close };
}
