/**
 * The peer ↔ chaincode stream protocol, shaped like Fabric's ChaincodeMessage stream but carried as
 * length-prefixed CBOR frames over a plain byte stream (TCP or a Unix socket).
 *
 * Frame: `u32 big-endian length ‖ CBOR([type: text, txId: text, channelId: text, payload])`, where
 * `payload` is the positional CBOR array of the type's payload below. Either side may end the stream.
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
 * | ERROR                 | both | `[message]`: a failed request (p→cc) or a transaction that could not run (cc→p)       | —              |
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
import { type Bytes } from './encoding.js';
export declare const ChaincodeProtocolErrorCode: {
    /** A frame header announced more bytes than the receiver accepts. */
    readonly FRAME_TOO_LARGE: "CHAINCODE_FRAME_TOO_LARGE";
    /** The stream ended in the middle of a frame. */
    readonly FRAME_TRUNCATED: "CHAINCODE_FRAME_TRUNCATED";
    /** A message arrived that the protocol does not allow in this state. */
    readonly UNEXPECTED_MESSAGE: "CHAINCODE_UNEXPECTED_MESSAGE";
};
export declare const CHAINCODE_MESSAGE_TYPES: readonly ["REGISTER", "REGISTERED", "INIT", "TRANSACTION", "COMPLETED", "ERROR", "GET_STATE", "PUT_STATE", "DEL_STATE", "GET_STATE_METADATA", "PUT_STATE_METADATA", "GET_STATE_BY_RANGE", "QUERY_STATE_NEXT", "QUERY_STATE_CLOSE", "GET_QUERY_RESULT", "GET_HISTORY_FOR_KEY", "GET_PRIVATE_DATA_HASH", "PURGE_PRIVATE_DATA", "INVOKE_CHAINCODE", "RESPONSE", "KEEPALIVE"];
export type ChaincodeMessageType = (typeof CHAINCODE_MESSAGE_TYPES)[number];
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
    creator: {
        mspId: string;
        idBytes: Bytes;
    };
    txTimestamp: ChaincodeTimestamp;
}
export interface CompletedPayload {
    response: ChaincodeResponse;
    /** Reserved: the read-write set is assembled by the peer; a chaincode sends empty bytes. */
    results: Bytes;
    event: {
        eventName: string;
        payload: Bytes;
    } | null;
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
export type QueryResultRecord = {
    kind: 'kv';
    key: string;
    value: Bytes;
} | {
    kind: 'history';
    txId: string;
    timestamp: ChaincodeTimestamp;
    isDelete: boolean;
    value: Bytes;
};
export interface QueryPageMetadata {
    fetchedRecordsCount: number;
    bookmark: string;
}
export type ResponsePayload = {
    kind: 'empty';
} | {
    kind: 'value';
    value: Bytes;
} | {
    kind: 'metadata';
    entries: Map<string, Bytes>;
} | {
    kind: 'query';
    iteratorId: string;
    hasMore: boolean;
    results: QueryResultRecord[];
    metadata: QueryPageMetadata | null;
} | {
    kind: 'chaincode';
    response: ChaincodeResponse;
};
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
export type ChaincodeMessage = {
    [T in ChaincodeMessageType]: ChaincodeMessageOf<T>;
}[ChaincodeMessageType];
/** Message types a chaincode sends to ask the peer for something; each gets one RESPONSE or ERROR. */
export declare const CHAINCODE_REQUEST_TYPES: readonly ["GET_STATE", "PUT_STATE", "DEL_STATE", "GET_STATE_METADATA", "PUT_STATE_METADATA", "GET_STATE_BY_RANGE", "QUERY_STATE_NEXT", "QUERY_STATE_CLOSE", "GET_QUERY_RESULT", "GET_HISTORY_FOR_KEY", "GET_PRIVATE_DATA_HASH", "PURGE_PRIVATE_DATA", "INVOKE_CHAINCODE"];
export type ChaincodeRequestType = (typeof CHAINCODE_REQUEST_TYPES)[number];
export type ChaincodeRequest = {
    [T in ChaincodeRequestType]: ChaincodeMessageOf<T>;
}[ChaincodeRequestType];
export declare function isChaincodeRequest(m: ChaincodeMessage): m is ChaincodeRequest;
/** The CBOR body of one frame (without the length prefix). */
export declare function encodeChaincodeMessage(m: ChaincodeMessage): Bytes;
export declare function decodeChaincodeMessage(b: Bytes): ChaincodeMessage;
/** Fabric's default gRPC message limit. */
export declare const DEFAULT_MAX_CHAINCODE_FRAME_BYTES: number;
/** `u32be length ‖ body`. */
export declare function encodeFrame(body: Bytes, maxFrameBytes?: number): Bytes;
/** A message as one frame, ready for the socket. */
export declare function encodeChaincodeFrame(m: ChaincodeMessage, maxFrameBytes?: number): Bytes;
/**
 * Reassembles frames from a byte stream delivered in arbitrary chunks: a chunk may hold part of a
 * frame, several frames, or both. A header announcing more than `maxFrameBytes` fails at once,
 * before the body is buffered, and the decoder stays failed (the stream has lost its framing).
 */
export declare class FrameDecoder {
    #private;
    constructor(maxFrameBytes?: number);
    /** Bytes received but not yet returned as a frame. */
    get bufferedBytes(): number;
    /** Feeds a chunk; returns the frame bodies it completed, in order. */
    push(chunk: Bytes): Bytes[];
    /** Decodes every message completed by `chunk`. */
    pushMessages(chunk: Bytes): ChaincodeMessage[];
    /** Call at end of stream: throws if a frame was cut short. */
    end(): void;
}
export {};
