/**
 * The peer ↔ chaincode stream protocol, shaped like Fabric's ChaincodeMessage stream but carried as
 * length-prefixed CBOR frames over a plain byte stream (TCP or a Unix socket).
 *
 * Frame: `u32 big-endian length ‖ CBOR([type: text, txId: text, channelId: text, payload])`, where
 * `payload` is the positional CBOR array of the type's payload below (maps, such as `transientMap`,
 * travel as `[key, value]` lists in ascending key order; see encoding.ts). Either side may end the stream.
 *
 * Connection: the chaincode opens (dial-out) or accepts (chaincode-as-a-service) the stream, then
 * sends REGISTER; the peer answers REGISTERED (or ERROR and closes). After that the peer sends INIT /
 * TRANSACTION messages; for each one the chaincode may send state requests carrying the same
 * `(channelId, txId)`, each answered by exactly one RESPONSE or ERROR, and ends with COMPLETED (or
 * ERROR). A chaincode keeps at most one request outstanding per transaction, so a reply is always
 * matched to the oldest request of its `(channelId, txId)`; different transactions interleave freely.
 * The read-write set is built by the peer from these requests: the chaincode never sends one.
 *
 * | type                  | dir  | payload (positional)                                                                  | reply          |
 * |-----------------------|------|---------------------------------------------------------------------------------------|----------------|
 * | REGISTER              | cc→p | `[chaincodeId]` (`name:version` or package id)                                        | REGISTERED     |
 * | REGISTERED            | p→cc | `[]`                                                                                  | —              |
 * | INIT, TRANSACTION     | p→cc | `[args, transientMap, signedProposal, creator [mspId, idBytes], txTimestamp [s, ns]]`  | COMPLETED      |
 * | COMPLETED             | cc→p | `[response [status, message, payload], results, event [name, payload] or null]`       | —              |
 * | ERROR                 | both | `[message]`: failed request or refused REGISTER (p→cc); tx that could not run (cc→p) | —              |
 * | GET_STATE             | cc→p | `[collection, key]` (`collection` is "" for public state, likewise below)             | RESPONSE value |
 * | PUT_STATE             | cc→p | `[collection, key, value]`                                                            | RESPONSE empty |
 * | DEL_STATE             | cc→p | `[collection, key]`                                                                   | RESPONSE empty |
 * | GET_STATE_METADATA    | cc→p | `[collection, key]`                                                                   | RESPONSE metadata |
 * | PUT_STATE_METADATA    | cc→p | `[collection, key, metakey, value]` (e.g. `VALIDATION_PARAMETER`)                     | RESPONSE empty |
 * | GET_STATE_BY_RANGE    | cc→p | `[collection, startKey, endKey, pagination [pageSize, bookmark] or null]`             | RESPONSE query |
 * | QUERY_STATE_NEXT      | cc→p | `[iteratorId]`                                                                        | RESPONSE query |
 * | QUERY_STATE_CLOSE     | cc→p | `[iteratorId]`                                                                        | RESPONSE query (empty) |
 * | GET_QUERY_RESULT      | cc→p | `[collection, query, pagination or null]` (Mango-style JSON selector)                 | RESPONSE query |
 * | GET_HISTORY_FOR_KEY   | cc→p | `[key]`                                                                               | RESPONSE query (history) |
 * | GET_PRIVATE_DATA_HASH | cc→p | `[collection, key]`                                                                   | RESPONSE value (sha256 or empty) |
 * | PURGE_PRIVATE_DATA    | cc→p | `[collection, key]`                                                                   | RESPONSE empty |
 * | INVOKE_CHAINCODE      | cc→p | `[chaincodeName, args]` (`name` or `name/channel`)                                    | RESPONSE chaincode |
 * | RESPONSE              | p→cc | `[kind, ...]`, one of the reply kinds below                                           | —              |
 * | KEEPALIVE             | both | `[]`; ignored by the receiver                                                         | —              |
 *
 * Queries:
 * - Ranges are `[startKey, endKey)`; an empty `endKey` is unbounded. A shim sends U+0001 for an empty
 *   `startKey` (as Fabric's shims do), so a simple-key range never returns composite keys, which begin
 *   with U+0000. A partial composite key query is the range `[prefix, prefix + U+10FFFF)`.
 * - Without pagination the peer answers with a first page of results, `hasMore` and an `iteratorId`;
 *   the chaincode pulls further pages with QUERY_STATE_NEXT and frees the iterator with
 *   QUERY_STATE_CLOSE. With pagination (`[pageSize, bookmark]`, bookmark "" for the first page) the
 *   peer returns at most `pageSize` records in total and sets `pageMetadata` on the first RESPONSE:
 *   `fetchedRecordsCount` and the `bookmark` to resume from ("" when nothing is left).
 * - GET_QUERY_RESULT runs a Mango-style JSON query (`{"selector": ...}`) against the rich-query store.
 *
 * RESPONSE kinds:
 * - `["empty"]`
 * - `["value", value]`: a state value; empty bytes when the key does not exist (as Fabric)
 * - `["metadata", map<text, bytes>]`
 * - `["query", iteratorId, hasMore, results, pageMetadata [fetchedRecordsCount, bookmark] or null]`, each
 *   result `["kv", key, value]` or `["history", txId, [s, ns], isDelete, value]`
 * - `["chaincode", [status, message, payload]]`: the called chaincode's response
 *
 * Pure and browser-portable.
 */
import {
  type Bytes,
  decodeValue,
  encodeSortedMap,
  encodeValue,
  readBool,
  readBytes,
  readList,
  readOptional,
  readSortedMap,
  readText,
  readTuple,
  readUint,
} from './encoding.js';
import { EncodingErrorCode, LoomError } from './errors.js';

export const ChaincodeProtocolErrorCode = {
  /** A frame header announced more bytes than the receiver accepts. */
  FRAME_TOO_LARGE: 'CHAINCODE_FRAME_TOO_LARGE',
  /** The stream ended in the middle of a frame. */
  FRAME_TRUNCATED: 'CHAINCODE_FRAME_TRUNCATED',
  /** A message arrived that the protocol does not allow in this state. */
  UNEXPECTED_MESSAGE: 'CHAINCODE_UNEXPECTED_MESSAGE',
} as const;

export const CHAINCODE_MESSAGE_TYPES = [
  'REGISTER',
  'REGISTERED',
  'INIT',
  'TRANSACTION',
  'COMPLETED',
  'ERROR',
  'GET_STATE',
  'PUT_STATE',
  'DEL_STATE',
  'GET_STATE_METADATA',
  'PUT_STATE_METADATA',
  'GET_STATE_BY_RANGE',
  'QUERY_STATE_NEXT',
  'QUERY_STATE_CLOSE',
  'GET_QUERY_RESULT',
  'GET_HISTORY_FOR_KEY',
  'GET_PRIVATE_DATA_HASH',
  'PURGE_PRIVATE_DATA',
  'INVOKE_CHAINCODE',
  'RESPONSE',
  'KEEPALIVE',
] as const;
export type ChaincodeMessageType = (typeof CHAINCODE_MESSAGE_TYPES)[number];
const messageTypes = new Set<string>(CHAINCODE_MESSAGE_TYPES);

/** Fabric's google.protobuf.Timestamp shape. */
export interface ChaincodeTimestamp {
  seconds: number;
  nanos: number;
}

export interface ChaincodeResponse {
  /** 200 OK; 500 for `Shim.error`. */
  status: number;
  message: string;
  payload: Bytes;
}

export interface RegisterPayload {
  chaincodeId: string;
}
export interface TransactionPayload {
  /** args[0] is the function name. */
  args: Bytes[];
  transientMap: Map<string, Bytes>;
  /** Encoded SignedProposal as the client sent it (empty where there was none). */
  signedProposal: Bytes;
  /** The proposal creator, decoded by the peer. */
  creator: { mspId: string; idBytes: Bytes };
  txTimestamp: ChaincodeTimestamp;
}
export interface CompletedPayload {
  response: ChaincodeResponse;
  /** Reserved: the read-write set is assembled by the peer; a chaincode sends empty bytes. */
  results: Bytes;
  event: { eventName: string; payload: Bytes } | null;
}
export interface ErrorPayload {
  message: string;
}
export interface KeyPayload {
  collection: string;
  key: string;
}
export interface PutStatePayload {
  collection: string;
  key: string;
  value: Bytes;
}
export interface PutStateMetadataPayload {
  collection: string;
  key: string;
  metakey: string;
  value: Bytes;
}
export interface PaginationRequest {
  pageSize: number;
  bookmark: string;
}
export interface RangeQueryPayload {
  collection: string;
  startKey: string;
  endKey: string;
  pagination: PaginationRequest | null;
}
export interface RichQueryPayload {
  collection: string;
  query: string;
  pagination: PaginationRequest | null;
}
export interface IteratorPayload {
  iteratorId: string;
}
export interface HistoryPayload {
  key: string;
}
export interface InvokeChaincodePayload {
  /** `name`, or `name/channel` to call a chaincode on another channel (read only there). */
  chaincodeName: string;
  args: Bytes[];
}

export type QueryResultRecord =
  | { kind: 'kv'; key: string; value: Bytes }
  | { kind: 'history'; txId: string; timestamp: ChaincodeTimestamp; isDelete: boolean; value: Bytes };

export interface QueryPageMetadata {
  fetchedRecordsCount: number;
  bookmark: string;
}

export type ResponsePayload =
  | { kind: 'empty' }
  | { kind: 'value'; value: Bytes }
  | { kind: 'metadata'; entries: Map<string, Bytes> }
  | {
      kind: 'query';
      iteratorId: string;
      hasMore: boolean;
      results: QueryResultRecord[];
      metadata: QueryPageMetadata | null;
    }
  | { kind: 'chaincode'; response: ChaincodeResponse };

type Empty = Record<string, never>;

/** Payload type of each message type. */
export interface ChaincodePayloads {
  REGISTER: RegisterPayload;
  REGISTERED: Empty;
  INIT: TransactionPayload;
  TRANSACTION: TransactionPayload;
  COMPLETED: CompletedPayload;
  ERROR: ErrorPayload;
  GET_STATE: KeyPayload;
  PUT_STATE: PutStatePayload;
  DEL_STATE: KeyPayload;
  GET_STATE_METADATA: KeyPayload;
  PUT_STATE_METADATA: PutStateMetadataPayload;
  GET_STATE_BY_RANGE: RangeQueryPayload;
  QUERY_STATE_NEXT: IteratorPayload;
  QUERY_STATE_CLOSE: IteratorPayload;
  GET_QUERY_RESULT: RichQueryPayload;
  GET_HISTORY_FOR_KEY: HistoryPayload;
  GET_PRIVATE_DATA_HASH: KeyPayload;
  PURGE_PRIVATE_DATA: KeyPayload;
  INVOKE_CHAINCODE: InvokeChaincodePayload;
  RESPONSE: ResponsePayload;
  KEEPALIVE: Empty;
}

export type ChaincodeMessageOf<T extends ChaincodeMessageType> = {
  type: T;
  txId: string;
  channelId: string;
  payload: ChaincodePayloads[T];
};

/** One message of the stream, discriminated by `type`. */
export type ChaincodeMessage = { [T in ChaincodeMessageType]: ChaincodeMessageOf<T> }[ChaincodeMessageType];

/** Message types a chaincode sends to ask the peer for something; each gets one RESPONSE or ERROR. */
export const CHAINCODE_REQUEST_TYPES = [
  'GET_STATE',
  'PUT_STATE',
  'DEL_STATE',
  'GET_STATE_METADATA',
  'PUT_STATE_METADATA',
  'GET_STATE_BY_RANGE',
  'QUERY_STATE_NEXT',
  'QUERY_STATE_CLOSE',
  'GET_QUERY_RESULT',
  'GET_HISTORY_FOR_KEY',
  'GET_PRIVATE_DATA_HASH',
  'PURGE_PRIVATE_DATA',
  'INVOKE_CHAINCODE',
] as const satisfies readonly ChaincodeMessageType[];
export type ChaincodeRequestType = (typeof CHAINCODE_REQUEST_TYPES)[number];
export type ChaincodeRequest = { [T in ChaincodeRequestType]: ChaincodeMessageOf<T> }[ChaincodeRequestType];
const requestTypes = new Set<string>(CHAINCODE_REQUEST_TYPES);
export function isChaincodeRequest(m: ChaincodeMessage): m is ChaincodeRequest {
  return requestTypes.has(m.type);
}

// ---------------------------------------------------------------------------------------------
// Payload encoding

const encTimestamp = (t: ChaincodeTimestamp) => [t.seconds, t.nanos];
const encResponse = (r: ChaincodeResponse) => [r.status, r.message, r.payload];
const encPagination = (p: PaginationRequest | null) => (p === null ? null : [p.pageSize, p.bookmark]);

function encodePayloadValue(m: ChaincodeMessage): unknown[] {
  switch (m.type) {
    case 'REGISTER':
      return [m.payload.chaincodeId];
    case 'REGISTERED':
    case 'KEEPALIVE':
      return [];
    case 'INIT':
    case 'TRANSACTION': {
      const p = m.payload;
      return [
        p.args,
        encodeSortedMap(p.transientMap),
        p.signedProposal,
        [p.creator.mspId, p.creator.idBytes],
        encTimestamp(p.txTimestamp),
      ];
    }
    case 'COMPLETED': {
      const p = m.payload;
      return [encResponse(p.response), p.results, p.event === null ? null : [p.event.eventName, p.event.payload]];
    }
    case 'ERROR':
      return [m.payload.message];
    case 'GET_STATE':
    case 'DEL_STATE':
    case 'GET_STATE_METADATA':
    case 'GET_PRIVATE_DATA_HASH':
    case 'PURGE_PRIVATE_DATA':
      return [m.payload.collection, m.payload.key];
    case 'PUT_STATE':
      return [m.payload.collection, m.payload.key, m.payload.value];
    case 'PUT_STATE_METADATA':
      return [m.payload.collection, m.payload.key, m.payload.metakey, m.payload.value];
    case 'GET_STATE_BY_RANGE':
      return [m.payload.collection, m.payload.startKey, m.payload.endKey, encPagination(m.payload.pagination)];
    case 'GET_QUERY_RESULT':
      return [m.payload.collection, m.payload.query, encPagination(m.payload.pagination)];
    case 'QUERY_STATE_NEXT':
    case 'QUERY_STATE_CLOSE':
      return [m.payload.iteratorId];
    case 'GET_HISTORY_FOR_KEY':
      return [m.payload.key];
    case 'INVOKE_CHAINCODE':
      return [m.payload.chaincodeName, m.payload.args];
    case 'RESPONSE':
      return encodeResponsePayload(m.payload);
  }
}

function encodeResponsePayload(p: ResponsePayload): unknown[] {
  switch (p.kind) {
    case 'empty':
      return ['empty'];
    case 'value':
      return ['value', p.value];
    case 'metadata':
      return ['metadata', encodeSortedMap(p.entries)];
    case 'query':
      return [
        'query',
        p.iteratorId,
        p.hasMore,
        p.results.map((r) =>
          r.kind === 'kv'
            ? ['kv', r.key, r.value]
            : ['history', r.txId, encTimestamp(r.timestamp), r.isDelete, r.value],
        ),
        p.metadata === null ? null : [p.metadata.fetchedRecordsCount, p.metadata.bookmark],
      ];
    case 'chaincode':
      return ['chaincode', encResponse(p.response)];
  }
}

function wrongShape(what: string, message: string): LoomError {
  return new LoomError(EncodingErrorCode.WRONG_SHAPE, `${what}: ${message}`, { details: { what } });
}

function readTimestamp(x: unknown, w: string): ChaincodeTimestamp {
  const t = readTuple(x, 2, w);
  const nanos = readUint(t[1], `${w}.nanos`);
  if (nanos > 999_999_999) throw wrongShape(`${w}.nanos`, 'expected at most 999999999');
  return { seconds: readUint(t[0], `${w}.seconds`), nanos };
}
function readResponse(x: unknown, w: string): ChaincodeResponse {
  const t = readTuple(x, 3, w);
  return {
    status: readUint(t[0], `${w}.status`),
    message: readText(t[1], `${w}.message`),
    payload: readBytes(t[2], `${w}.payload`),
  };
}
function readPagination(x: unknown, w: string): PaginationRequest | null {
  return readOptional(x, w, (y, yw) => {
    const t = readTuple(y, 2, yw);
    return { pageSize: readUint(t[0], `${yw}.pageSize`), bookmark: readText(t[1], `${yw}.bookmark`) };
  });
}
function readKey(x: unknown, w: string): KeyPayload {
  const t = readTuple(x, 2, w);
  return { collection: readText(t[0], `${w}.collection`), key: readText(t[1], `${w}.key`) };
}

function readQueryResult(x: unknown, w: string): QueryResultRecord {
  if (!Array.isArray(x) || x.length < 1) throw wrongShape(w, 'expected a tagged query result');
  const kind = readText(x[0], `${w}.kind`);
  if (kind === 'kv') {
    const t = readTuple(x, 3, w);
    return { kind, key: readText(t[1], `${w}.key`), value: readBytes(t[2], `${w}.value`) };
  }
  if (kind === 'history') {
    const t = readTuple(x, 5, w);
    return {
      kind,
      txId: readText(t[1], `${w}.txId`),
      timestamp: readTimestamp(t[2], `${w}.timestamp`),
      isDelete: readBool(t[3], `${w}.isDelete`),
      value: readBytes(t[4], `${w}.value`),
    };
  }
  throw wrongShape(`${w}.kind`, `unknown query result kind ${kind}`);
}

function readResponsePayload(x: unknown, w: string): ResponsePayload {
  if (!Array.isArray(x) || x.length < 1) throw wrongShape(w, 'expected a tagged response');
  const kind = readText(x[0], `${w}.kind`);
  switch (kind) {
    case 'empty':
      readTuple(x, 1, w);
      return { kind };
    case 'value':
      return { kind, value: readBytes(readTuple(x, 2, w)[1], `${w}.value`) };
    case 'metadata':
      return { kind, entries: readSortedMap(readTuple(x, 2, w)[1], `${w}.entries`, readBytes) };
    case 'query': {
      const t = readTuple(x, 5, w);
      return {
        kind,
        iteratorId: readText(t[1], `${w}.iteratorId`),
        hasMore: readBool(t[2], `${w}.hasMore`),
        results: readList(t[3], `${w}.results`, readQueryResult),
        metadata: readOptional(t[4], `${w}.metadata`, (y, yw) => {
          const u = readTuple(y, 2, yw);
          return {
            fetchedRecordsCount: readUint(u[0], `${yw}.fetchedRecordsCount`),
            bookmark: readText(u[1], `${yw}.bookmark`),
          };
        }),
      };
    }
    case 'chaincode':
      return { kind, response: readResponse(readTuple(x, 2, w)[1], `${w}.response`) };
    default:
      throw wrongShape(`${w}.kind`, `unknown response kind ${kind}`);
  }
}

function readPayload(type: ChaincodeMessageType, x: unknown): ChaincodePayloads[ChaincodeMessageType] {
  const w = `ChaincodeMessage(${type}).payload`;
  switch (type) {
    case 'REGISTER':
      return { chaincodeId: readText(readTuple(x, 1, w)[0], `${w}.chaincodeId`) };
    case 'REGISTERED':
    case 'KEEPALIVE':
      readTuple(x, 0, w);
      return {};
    case 'INIT':
    case 'TRANSACTION': {
      const t = readTuple(x, 5, w);
      const c = readTuple(t[3], 2, `${w}.creator`);
      return {
        args: readList(t[0], `${w}.args`, readBytes),
        transientMap: readSortedMap(t[1], `${w}.transientMap`, readBytes),
        signedProposal: readBytes(t[2], `${w}.signedProposal`),
        creator: { mspId: readText(c[0], `${w}.creator.mspId`), idBytes: readBytes(c[1], `${w}.creator.idBytes`) },
        txTimestamp: readTimestamp(t[4], `${w}.txTimestamp`),
      };
    }
    case 'COMPLETED': {
      const t = readTuple(x, 3, w);
      return {
        response: readResponse(t[0], `${w}.response`),
        results: readBytes(t[1], `${w}.results`),
        event: readOptional(t[2], `${w}.event`, (y, yw) => {
          const u = readTuple(y, 2, yw);
          return { eventName: readText(u[0], `${yw}.eventName`), payload: readBytes(u[1], `${yw}.payload`) };
        }),
      };
    }
    case 'ERROR':
      return { message: readText(readTuple(x, 1, w)[0], `${w}.message`) };
    case 'GET_STATE':
    case 'DEL_STATE':
    case 'GET_STATE_METADATA':
    case 'GET_PRIVATE_DATA_HASH':
    case 'PURGE_PRIVATE_DATA':
      return readKey(x, w);
    case 'PUT_STATE': {
      const t = readTuple(x, 3, w);
      return {
        collection: readText(t[0], `${w}.collection`),
        key: readText(t[1], `${w}.key`),
        value: readBytes(t[2], `${w}.value`),
      };
    }
    case 'PUT_STATE_METADATA': {
      const t = readTuple(x, 4, w);
      return {
        collection: readText(t[0], `${w}.collection`),
        key: readText(t[1], `${w}.key`),
        metakey: readText(t[2], `${w}.metakey`),
        value: readBytes(t[3], `${w}.value`),
      };
    }
    case 'GET_STATE_BY_RANGE': {
      const t = readTuple(x, 4, w);
      return {
        collection: readText(t[0], `${w}.collection`),
        startKey: readText(t[1], `${w}.startKey`),
        endKey: readText(t[2], `${w}.endKey`),
        pagination: readPagination(t[3], `${w}.pagination`),
      };
    }
    case 'GET_QUERY_RESULT': {
      const t = readTuple(x, 3, w);
      return {
        collection: readText(t[0], `${w}.collection`),
        query: readText(t[1], `${w}.query`),
        pagination: readPagination(t[2], `${w}.pagination`),
      };
    }
    case 'QUERY_STATE_NEXT':
    case 'QUERY_STATE_CLOSE':
      return { iteratorId: readText(readTuple(x, 1, w)[0], `${w}.iteratorId`) };
    case 'GET_HISTORY_FOR_KEY':
      return { key: readText(readTuple(x, 1, w)[0], `${w}.key`) };
    case 'INVOKE_CHAINCODE': {
      const t = readTuple(x, 2, w);
      return { chaincodeName: readText(t[0], `${w}.chaincodeName`), args: readList(t[1], `${w}.args`, readBytes) };
    }
    case 'RESPONSE':
      return readResponsePayload(x, w);
  }
}

/** The CBOR body of one frame (without the length prefix). */
export function encodeChaincodeMessage(m: ChaincodeMessage): Bytes {
  return encodeValue([m.type, m.txId, m.channelId, encodePayloadValue(m)]);
}

export function decodeChaincodeMessage(b: Bytes): ChaincodeMessage {
  const t = readTuple(decodeValue(b, 'ChaincodeMessage'), 4, 'ChaincodeMessage');
  const type = readText(t[0], 'ChaincodeMessage.type');
  if (!messageTypes.has(type)) throw wrongShape('ChaincodeMessage.type', `unknown message type ${type}`);
  const mt = type as ChaincodeMessageType;
  return {
    type: mt,
    txId: readText(t[1], 'ChaincodeMessage.txId'),
    channelId: readText(t[2], 'ChaincodeMessage.channelId'),
    payload: readPayload(mt, t[3]),
  } as ChaincodeMessage;
}

// ---------------------------------------------------------------------------------------------
// Framing

/** Fabric's default gRPC message limit. */
export const DEFAULT_MAX_CHAINCODE_FRAME_BYTES = 100 * 1024 * 1024;
const HEADER_BYTES = 4;

/** `u32be length ‖ body`. */
export function encodeFrame(body: Bytes, maxFrameBytes = DEFAULT_MAX_CHAINCODE_FRAME_BYTES): Bytes {
  if (body.length > maxFrameBytes) throw frameTooLarge(body.length, maxFrameBytes);
  const out = new Uint8Array(HEADER_BYTES + body.length);
  new DataView(out.buffer).setUint32(0, body.length, false);
  out.set(body, HEADER_BYTES);
  return out;
}

/** A message as one frame, ready for the socket. */
export function encodeChaincodeFrame(m: ChaincodeMessage, maxFrameBytes = DEFAULT_MAX_CHAINCODE_FRAME_BYTES): Bytes {
  return encodeFrame(encodeChaincodeMessage(m), maxFrameBytes);
}

function frameTooLarge(size: number, max: number): LoomError {
  return new LoomError(
    ChaincodeProtocolErrorCode.FRAME_TOO_LARGE,
    `chaincode frame of ${size} bytes exceeds the limit of ${max} bytes`,
    { details: { size, max } },
  );
}

/**
 * Reassembles frames from a byte stream delivered in arbitrary chunks: a chunk may hold part of a
 * frame, several frames, or both. A header announcing more than `maxFrameBytes` fails at once,
 * before the body is buffered, and the decoder stays failed (the stream has lost its framing).
 */
export class FrameDecoder {
  readonly #max: number;
  #chunks: Bytes[] = [];
  #buffered = 0;
  #need: number | null = null;
  #failed: LoomError | null = null;

  constructor(maxFrameBytes = DEFAULT_MAX_CHAINCODE_FRAME_BYTES) {
    this.#max = maxFrameBytes;
  }

  /** Bytes received but not yet returned as a frame. */
  get bufferedBytes(): number {
    return this.#buffered;
  }

  /** Feeds a chunk; returns the frame bodies it completed, in order. */
  push(chunk: Bytes): Bytes[] {
    if (this.#failed !== null) throw this.#failed;
    if (chunk.length > 0) {
      this.#chunks.push(chunk);
      this.#buffered += chunk.length;
    }
    const out: Bytes[] = [];
    for (;;) {
      if (this.#need === null) {
        if (this.#buffered < HEADER_BYTES) break;
        const h = this.#take(HEADER_BYTES);
        const size = new DataView(h.buffer, h.byteOffset, HEADER_BYTES).getUint32(0, false);
        if (size > this.#max) {
          this.#failed = frameTooLarge(size, this.#max);
          this.#chunks = [];
          this.#buffered = 0;
          throw this.#failed;
        }
        this.#need = size;
      }
      if (this.#buffered < this.#need) break;
      out.push(this.#take(this.#need));
      this.#need = null;
    }
    return out;
  }

  /** Decodes every message completed by `chunk`. */
  pushMessages(chunk: Bytes): ChaincodeMessage[] {
    return this.push(chunk).map(decodeChaincodeMessage);
  }

  /** Call at end of stream: throws if a frame was cut short. */
  end(): void {
    if (this.#failed === null && (this.#need !== null || this.#buffered > 0)) {
      throw new LoomError(
        ChaincodeProtocolErrorCode.FRAME_TRUNCATED,
        `chaincode stream ended inside a frame (${this.#buffered} bytes pending)`,
        { details: { pending: this.#buffered } },
      );
    }
  }

  #take(n: number): Bytes {
    if (n === 0) return new Uint8Array(0);
    const first = this.#chunks[0]!;
    if (first.length >= n) {
      const out = first.subarray(0, n);
      if (first.length === n) this.#chunks.shift();
      else this.#chunks[0] = first.subarray(n);
      this.#buffered -= n;
      return out;
    }
    const out = new Uint8Array(n);
    let o = 0;
    while (o < n) {
      const c = this.#chunks[0]!;
      const k = Math.min(c.length, n - o);
      out.set(c.subarray(0, k), o);
      o += k;
      if (k === c.length) this.#chunks.shift();
      else this.#chunks[0] = c.subarray(k);
    }
    this.#buffered -= n;
    return out;
  }
}
