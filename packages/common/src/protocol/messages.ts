/**
 * Loom's protocol structures and their one byte encoding. Layouts are documented field by field in
 * docs/protocol.md; every structure is a positional CBOR array (see ../encoding.ts). Where a structure
 * is signed or hashed, its parent carries it as a byte string so the signature covers exactly the
 * transmitted bytes.
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
} from '../encoding.js';
import { EncodingErrorCode, LoomError } from '../errors.js';

// ---------------------------------------------------------------------------------------------
// Identities and headers

/** An identity as carried on the wire: the MSP that vouches for it and its PEM certificate (UTF-8). */
export interface SerializedIdentity {
  mspId: string;
  idBytes: Bytes;
}

export function encodeSerializedIdentity(v: SerializedIdentity): Bytes {
  return encodeValue([v.mspId, v.idBytes]);
}
export function decodeSerializedIdentity(b: Bytes): SerializedIdentity {
  const t = readTuple(decodeValue(b, 'SerializedIdentity'), 2, 'SerializedIdentity');
  return { mspId: readText(t[0], 'SerializedIdentity.mspId'), idBytes: readBytes(t[1], 'SerializedIdentity.idBytes') };
}

/** Header types (numbers as in Fabric's common.HeaderType where one exists). */
export const HeaderType = {
  MESSAGE: 0,
  CONFIG: 1,
  CONFIG_UPDATE: 2,
  ENDORSER_TRANSACTION: 3,
  DELIVER_SEEK_INFO: 5,
  GOVERNANCE: 20,
} as const;
export type HeaderType = (typeof HeaderType)[keyof typeof HeaderType];
const headerTypes = new Set<number>(Object.values(HeaderType));

export interface SignatureHeader {
  /** Encoded SerializedIdentity of the signer. */
  creator: Bytes;
  /** At least 24 random bytes; makes the txId unique. */
  nonce: Bytes;
}
export function encodeSignatureHeader(v: SignatureHeader): Bytes {
  return encodeValue([v.creator, v.nonce]);
}
export function decodeSignatureHeader(b: Bytes): SignatureHeader {
  const t = readTuple(decodeValue(b, 'SignatureHeader'), 2, 'SignatureHeader');
  return { creator: readBytes(t[0], 'SignatureHeader.creator'), nonce: readBytes(t[1], 'SignatureHeader.nonce') };
}

export interface ChannelHeader {
  type: HeaderType;
  version: number;
  channelId: string;
  /** Hex sha256(nonce ‖ creator) for transactions and proposals; empty where not applicable. */
  txId: string;
  /** Milliseconds since the Unix epoch, set by the creator. */
  timestamp: number;
  /** Type-specific: for ENDORSER_TRANSACTION the chaincode name (UTF-8); otherwise empty. */
  extension: Bytes;
}
export function encodeChannelHeader(v: ChannelHeader): Bytes {
  return encodeValue([v.type, v.version, v.channelId, v.txId, v.timestamp, v.extension]);
}
export function decodeChannelHeader(b: Bytes): ChannelHeader {
  const t = readTuple(decodeValue(b, 'ChannelHeader'), 6, 'ChannelHeader');
  const type = readUint(t[0], 'ChannelHeader.type');
  if (!headerTypes.has(type)) {
    throw new LoomError(EncodingErrorCode.WRONG_SHAPE, `ChannelHeader.type: unknown header type ${type}`, {
      details: { what: 'ChannelHeader.type', type },
    });
  }
  return {
    type: type as HeaderType,
    version: readUint(t[1], 'ChannelHeader.version'),
    channelId: readText(t[2], 'ChannelHeader.channelId'),
    txId: readText(t[3], 'ChannelHeader.txId'),
    timestamp: readUint(t[4], 'ChannelHeader.timestamp'),
    extension: readBytes(t[5], 'ChannelHeader.extension'),
  };
}

export interface Header {
  /** Encoded ChannelHeader. */
  channelHeader: Bytes;
  /** Encoded SignatureHeader. */
  signatureHeader: Bytes;
}
export function encodeHeader(v: Header): Bytes {
  return encodeValue([v.channelHeader, v.signatureHeader]);
}
export function decodeHeader(b: Bytes): Header {
  const t = readTuple(decodeValue(b, 'Header'), 2, 'Header');
  return {
    channelHeader: readBytes(t[0], 'Header.channelHeader'),
    signatureHeader: readBytes(t[1], 'Header.signatureHeader'),
  };
}

// ---------------------------------------------------------------------------------------------
// Proposals

export interface ChaincodeInvocationSpec {
  chaincodeName: string;
  /** args[0] is the function name, as in Fabric. */
  args: Bytes[];
  isInit: boolean;
}
export function encodeChaincodeInvocationSpec(v: ChaincodeInvocationSpec): Bytes {
  return encodeValue([v.chaincodeName, v.args, v.isInit]);
}
export function decodeChaincodeInvocationSpec(b: Bytes): ChaincodeInvocationSpec {
  const t = readTuple(decodeValue(b, 'ChaincodeInvocationSpec'), 3, 'ChaincodeInvocationSpec');
  return {
    chaincodeName: readText(t[0], 'ChaincodeInvocationSpec.chaincodeName'),
    args: readList(t[1], 'ChaincodeInvocationSpec.args', readBytes),
    isInit: readBool(t[2], 'ChaincodeInvocationSpec.isInit'),
  };
}

export interface ChaincodeProposalPayload {
  /** Encoded ChaincodeInvocationSpec: what goes into the transaction. */
  input: Bytes;
  /** Transient data: reaches the endorsers, never the ledger. */
  transientMap: Map<string, Bytes>;
}
export function encodeChaincodeProposalPayload(v: ChaincodeProposalPayload): Bytes {
  return encodeValue([v.input, encodeSortedMap(v.transientMap)]);
}
export function decodeChaincodeProposalPayload(b: Bytes): ChaincodeProposalPayload {
  const t = readTuple(decodeValue(b, 'ChaincodeProposalPayload'), 2, 'ChaincodeProposalPayload');
  return {
    input: readBytes(t[0], 'ChaincodeProposalPayload.input'),
    transientMap: readSortedMap(t[1], 'ChaincodeProposalPayload.transientMap', readBytes),
  };
}

export interface Proposal {
  /** Encoded Header (the same bytes become the transaction's payload header). */
  header: Bytes;
  /** Encoded ChaincodeProposalPayload. */
  payload: Bytes;
}
export function encodeProposal(v: Proposal): Bytes {
  return encodeValue([v.header, v.payload]);
}
export function decodeProposal(b: Bytes): Proposal {
  const t = readTuple(decodeValue(b, 'Proposal'), 2, 'Proposal');
  return { header: readBytes(t[0], 'Proposal.header'), payload: readBytes(t[1], 'Proposal.payload') };
}

export interface SignedProposal {
  /** Encoded Proposal; the signature covers exactly these bytes. */
  proposalBytes: Bytes;
  signature: Bytes;
}
export function encodeSignedProposal(v: SignedProposal): Bytes {
  return encodeValue([v.proposalBytes, v.signature]);
}
export function decodeSignedProposal(b: Bytes): SignedProposal {
  const t = readTuple(decodeValue(b, 'SignedProposal'), 2, 'SignedProposal');
  return {
    proposalBytes: readBytes(t[0], 'SignedProposal.proposalBytes'),
    signature: readBytes(t[1], 'SignedProposal.signature'),
  };
}

// ---------------------------------------------------------------------------------------------
// Read-write sets

export interface Version {
  blockNum: number;
  txNum: number;
}
const encodeVersion = (v: Version | null) => (v === null ? null : [v.blockNum, v.txNum]);
function readVersion(x: unknown, what: string): Version | null {
  return readOptional(x, what, (y, w) => {
    const t = readTuple(y, 2, w);
    return { blockNum: readUint(t[0], `${w}.blockNum`), txNum: readUint(t[1], `${w}.txNum`) };
  });
}

/** A key read during simulation with the version seen (null: the key did not exist). */
export interface KVRead {
  key: string;
  version: Version | null;
}
export interface KVWrite {
  key: string;
  isDelete: boolean;
  value: Bytes;
}
export interface KVMetadataWrite {
  key: string;
  /** Metadata entries by name, e.g. `VALIDATION_PARAMETER` for key-level endorsement. */
  entries: Map<string, Bytes>;
}
/** A range query's bounds and the keys it returned, re-executed at validation to detect phantoms. */
export interface RangeQueryInfo {
  startKey: string;
  endKey: string;
  itrExhausted: boolean;
  reads: KVRead[];
}
export interface KVRWSet {
  reads: KVRead[];
  rangeQueriesInfo: RangeQueryInfo[];
  writes: KVWrite[];
  metadataWrites: KVMetadataWrite[];
}
export interface KVReadHash {
  keyHash: Bytes;
  version: Version | null;
}
export interface KVWriteHash {
  keyHash: Bytes;
  isDelete: boolean;
  valueHash: Bytes;
  /** Set by `purgePrivateData`: the key's private value is removed everywhere, history included. */
  isPurge: boolean;
}
export interface KVMetadataWriteHash {
  keyHash: Bytes;
  entries: Map<string, Bytes>;
}
export interface HashedRWSet {
  hashedReads: KVReadHash[];
  hashedWrites: KVWriteHash[];
  metadataWrites: KVMetadataWriteHash[];
}
export interface CollectionHashedReadWriteSet {
  collectionName: string;
  hashedRwset: HashedRWSet;
  /** sha256 of the encoded private KVRWSet for this collection (see CollectionPvtReadWriteSet). */
  pvtRwsetHash: Bytes;
}
export interface NsReadWriteSet {
  namespace: string;
  rwset: KVRWSet;
  collectionHashedRwsets: CollectionHashedReadWriteSet[];
}
export interface TxReadWriteSet {
  nsRwsets: NsReadWriteSet[];
}

const encKVRead = (r: KVRead) => [r.key, encodeVersion(r.version)];
const encKVRWSet = (s: KVRWSet) => [
  s.reads.map(encKVRead),
  s.rangeQueriesInfo.map((q) => [q.startKey, q.endKey, q.itrExhausted, q.reads.map(encKVRead)]),
  s.writes.map((w) => [w.key, w.isDelete, w.value]),
  s.metadataWrites.map((m) => [m.key, encodeSortedMap(m.entries)]),
];
const encHashed = (h: HashedRWSet) => [
  h.hashedReads.map((r) => [r.keyHash, encodeVersion(r.version)]),
  h.hashedWrites.map((w) => [w.keyHash, w.isDelete, w.valueHash, w.isPurge]),
  h.metadataWrites.map((m) => [m.keyHash, encodeSortedMap(m.entries)]),
];

function readKVRead(x: unknown, w: string): KVRead {
  const t = readTuple(x, 2, w);
  return { key: readText(t[0], `${w}.key`), version: readVersion(t[1], `${w}.version`) };
}
function readKVRWSet(x: unknown, w: string): KVRWSet {
  const t = readTuple(x, 4, w);
  return {
    reads: readList(t[0], `${w}.reads`, readKVRead),
    rangeQueriesInfo: readList(t[1], `${w}.rangeQueriesInfo`, (q, qw) => {
      const u = readTuple(q, 4, qw);
      return {
        startKey: readText(u[0], `${qw}.startKey`),
        endKey: readText(u[1], `${qw}.endKey`),
        itrExhausted: readBool(u[2], `${qw}.itrExhausted`),
        reads: readList(u[3], `${qw}.reads`, readKVRead),
      };
    }),
    writes: readList(t[2], `${w}.writes`, (y, yw) => {
      const u = readTuple(y, 3, yw);
      return {
        key: readText(u[0], `${yw}.key`),
        isDelete: readBool(u[1], `${yw}.isDelete`),
        value: readBytes(u[2], `${yw}.value`),
      };
    }),
    metadataWrites: readList(t[3], `${w}.metadataWrites`, (y, yw) => {
      const u = readTuple(y, 2, yw);
      return { key: readText(u[0], `${yw}.key`), entries: readSortedMap(u[1], `${yw}.entries`, readBytes) };
    }),
  };
}
function readHashed(x: unknown, w: string): HashedRWSet {
  const t = readTuple(x, 3, w);
  return {
    hashedReads: readList(t[0], `${w}.hashedReads`, (y, yw) => {
      const u = readTuple(y, 2, yw);
      return { keyHash: readBytes(u[0], `${yw}.keyHash`), version: readVersion(u[1], `${yw}.version`) };
    }),
    hashedWrites: readList(t[1], `${w}.hashedWrites`, (y, yw) => {
      const u = readTuple(y, 4, yw);
      return {
        keyHash: readBytes(u[0], `${yw}.keyHash`),
        isDelete: readBool(u[1], `${yw}.isDelete`),
        valueHash: readBytes(u[2], `${yw}.valueHash`),
        isPurge: readBool(u[3], `${yw}.isPurge`),
      };
    }),
    metadataWrites: readList(t[2], `${w}.metadataWrites`, (y, yw) => {
      const u = readTuple(y, 2, yw);
      return { keyHash: readBytes(u[0], `${yw}.keyHash`), entries: readSortedMap(u[1], `${yw}.entries`, readBytes) };
    }),
  };
}

export function encodeKVRWSet(v: KVRWSet): Bytes {
  return encodeValue(encKVRWSet(v));
}
export function decodeKVRWSet(b: Bytes): KVRWSet {
  return readKVRWSet(decodeValue(b, 'KVRWSet'), 'KVRWSet');
}

export function encodeTxReadWriteSet(v: TxReadWriteSet): Bytes {
  return encodeValue(
    v.nsRwsets.map((ns) => [
      ns.namespace,
      encKVRWSet(ns.rwset),
      ns.collectionHashedRwsets.map((c) => [c.collectionName, encHashed(c.hashedRwset), c.pvtRwsetHash]),
    ]),
  );
}
export function decodeTxReadWriteSet(b: Bytes): TxReadWriteSet {
  const nsRwsets = readList(decodeValue(b, 'TxReadWriteSet'), 'TxReadWriteSet', (x, w) => {
    const t = readTuple(x, 3, w);
    return {
      namespace: readText(t[0], `${w}.namespace`),
      rwset: readKVRWSet(t[1], `${w}.rwset`),
      collectionHashedRwsets: readList(t[2], `${w}.collectionHashedRwsets`, (y, yw) => {
        const u = readTuple(y, 3, yw);
        return {
          collectionName: readText(u[0], `${yw}.collectionName`),
          hashedRwset: readHashed(u[1], `${yw}.hashedRwset`),
          pvtRwsetHash: readBytes(u[2], `${yw}.pvtRwsetHash`),
        };
      }),
    };
  });
  return { nsRwsets };
}

/** Private read-write sets: travel endorser → transient stores → private stores; never in a block. */
export interface CollectionPvtReadWriteSet {
  collectionName: string;
  /** Encoded KVRWSet; its sha256 is the `pvtRwsetHash` in the public rwset. */
  rwset: Bytes;
}
export interface NsPvtReadWriteSet {
  namespace: string;
  collectionPvtRwsets: CollectionPvtReadWriteSet[];
}
export interface TxPvtReadWriteSet {
  nsPvtRwsets: NsPvtReadWriteSet[];
}
export function encodeTxPvtReadWriteSet(v: TxPvtReadWriteSet): Bytes {
  return encodeValue(
    v.nsPvtRwsets.map((ns) => [ns.namespace, ns.collectionPvtRwsets.map((c) => [c.collectionName, c.rwset])]),
  );
}
export function decodeTxPvtReadWriteSet(b: Bytes): TxPvtReadWriteSet {
  const nsPvtRwsets = readList(decodeValue(b, 'TxPvtReadWriteSet'), 'TxPvtReadWriteSet', (x, w) => {
    const t = readTuple(x, 2, w);
    return {
      namespace: readText(t[0], `${w}.namespace`),
      collectionPvtRwsets: readList(t[1], `${w}.collectionPvtRwsets`, (y, yw) => {
        const u = readTuple(y, 2, yw);
        return { collectionName: readText(u[0], `${yw}.collectionName`), rwset: readBytes(u[1], `${yw}.rwset`) };
      }),
    };
  });
  return { nsPvtRwsets };
}

// ---------------------------------------------------------------------------------------------
// Proposal responses (endorsements)

export interface Response {
  /** 200 OK; ≥ 400 an error (chaincode `Shim.error` gives 500). */
  status: number;
  message: string;
  payload: Bytes;
}
const encResponse = (r: Response) => [r.status, r.message, r.payload];
function readResponse(x: unknown, w: string): Response {
  const t = readTuple(x, 3, w);
  return {
    status: readUint(t[0], `${w}.status`),
    message: readText(t[1], `${w}.message`),
    payload: readBytes(t[2], `${w}.payload`),
  };
}

export interface ChaincodeEvent {
  chaincodeId: string;
  txId: string;
  eventName: string;
  payload: Bytes;
}
export function encodeChaincodeEvent(v: ChaincodeEvent): Bytes {
  return encodeValue([v.chaincodeId, v.txId, v.eventName, v.payload]);
}
export function decodeChaincodeEvent(b: Bytes): ChaincodeEvent {
  const t = readTuple(decodeValue(b, 'ChaincodeEvent'), 4, 'ChaincodeEvent');
  return {
    chaincodeId: readText(t[0], 'ChaincodeEvent.chaincodeId'),
    txId: readText(t[1], 'ChaincodeEvent.txId'),
    eventName: readText(t[2], 'ChaincodeEvent.eventName'),
    payload: readBytes(t[3], 'ChaincodeEvent.payload'),
  };
}

export interface ChaincodeAction {
  /** Encoded TxReadWriteSet. */
  results: Bytes;
  /** Encoded ChaincodeEvent, or empty when the chaincode set none. */
  events: Bytes;
  response: Response;
  chaincodeName: string;
  chaincodeVersion: string;
}
export function encodeChaincodeAction(v: ChaincodeAction): Bytes {
  return encodeValue([v.results, v.events, encResponse(v.response), v.chaincodeName, v.chaincodeVersion]);
}
export function decodeChaincodeAction(b: Bytes): ChaincodeAction {
  const t = readTuple(decodeValue(b, 'ChaincodeAction'), 5, 'ChaincodeAction');
  return {
    results: readBytes(t[0], 'ChaincodeAction.results'),
    events: readBytes(t[1], 'ChaincodeAction.events'),
    response: readResponse(t[2], 'ChaincodeAction.response'),
    chaincodeName: readText(t[3], 'ChaincodeAction.chaincodeName'),
    chaincodeVersion: readText(t[4], 'ChaincodeAction.chaincodeVersion'),
  };
}

export interface ProposalResponsePayload {
  /** proposalHash(header, input): binds the endorsement to one proposal. */
  proposalHash: Bytes;
  /** Encoded ChaincodeAction. */
  extension: Bytes;
}
export function encodeProposalResponsePayload(v: ProposalResponsePayload): Bytes {
  return encodeValue([v.proposalHash, v.extension]);
}
export function decodeProposalResponsePayload(b: Bytes): ProposalResponsePayload {
  const t = readTuple(decodeValue(b, 'ProposalResponsePayload'), 2, 'ProposalResponsePayload');
  return {
    proposalHash: readBytes(t[0], 'ProposalResponsePayload.proposalHash'),
    extension: readBytes(t[1], 'ProposalResponsePayload.extension'),
  };
}

/** An endorser's signature over `payload ‖ endorser` (see endorsementSignedBytes). */
export interface Endorsement {
  /** Encoded SerializedIdentity of the endorsing peer. */
  endorser: Bytes;
  signature: Bytes;
}
const encEndorsement = (e: Endorsement) => [e.endorser, e.signature];
function readEndorsement(x: unknown, w: string): Endorsement {
  const t = readTuple(x, 2, w);
  return { endorser: readBytes(t[0], `${w}.endorser`), signature: readBytes(t[1], `${w}.signature`) };
}

export interface ProposalResponse {
  version: number;
  timestamp: number;
  response: Response;
  /** Encoded ProposalResponsePayload; identical across endorsers when they agree. */
  payload: Bytes;
  /** Null when the chaincode failed (status ≥ 400) and nothing was endorsed. */
  endorsement: Endorsement | null;
}
export function encodeProposalResponse(v: ProposalResponse): Bytes {
  return encodeValue([
    v.version,
    v.timestamp,
    encResponse(v.response),
    v.payload,
    v.endorsement === null ? null : encEndorsement(v.endorsement),
  ]);
}
export function decodeProposalResponse(b: Bytes): ProposalResponse {
  const t = readTuple(decodeValue(b, 'ProposalResponse'), 5, 'ProposalResponse');
  return {
    version: readUint(t[0], 'ProposalResponse.version'),
    timestamp: readUint(t[1], 'ProposalResponse.timestamp'),
    response: readResponse(t[2], 'ProposalResponse.response'),
    payload: readBytes(t[3], 'ProposalResponse.payload'),
    endorsement: readOptional(t[4], 'ProposalResponse.endorsement', readEndorsement),
  };
}

// ---------------------------------------------------------------------------------------------
// Transactions

/** The data of an ENDORSER_TRANSACTION payload. */
export interface EndorserTransaction {
  /** The proposal's ChaincodeInvocationSpec bytes (transient data stripped by construction). */
  input: Bytes;
  /** Encoded ProposalResponsePayload that every endorsement signed. */
  proposalResponsePayload: Bytes;
  endorsements: Endorsement[];
}
export function encodeEndorserTransaction(v: EndorserTransaction): Bytes {
  return encodeValue([v.input, v.proposalResponsePayload, v.endorsements.map(encEndorsement)]);
}
export function decodeEndorserTransaction(b: Bytes): EndorserTransaction {
  const t = readTuple(decodeValue(b, 'EndorserTransaction'), 3, 'EndorserTransaction');
  return {
    input: readBytes(t[0], 'EndorserTransaction.input'),
    proposalResponsePayload: readBytes(t[1], 'EndorserTransaction.proposalResponsePayload'),
    endorsements: readList(t[2], 'EndorserTransaction.endorsements', readEndorsement, 1000),
  };
}

export interface Payload {
  /** Encoded Header; for endorser transactions, the proposal's header bytes unchanged. */
  header: Bytes;
  /** Type-specific: EndorserTransaction, ConfigEnvelope, ConfigUpdateEnvelope, SeekInfo, ... */
  data: Bytes;
}
export function encodePayload(v: Payload): Bytes {
  return encodeValue([v.header, v.data]);
}
export function decodePayload(b: Bytes): Payload {
  const t = readTuple(decodeValue(b, 'Payload'), 2, 'Payload');
  return { header: readBytes(t[0], 'Payload.header'), data: readBytes(t[1], 'Payload.data') };
}

/** What is broadcast and what a block carries: a payload signed by its creator. */
export interface Envelope {
  /** Encoded Payload; the signature covers exactly these bytes. */
  payload: Bytes;
  signature: Bytes;
}
export function encodeEnvelope(v: Envelope): Bytes {
  return encodeValue([v.payload, v.signature]);
}
export function decodeEnvelope(b: Bytes): Envelope {
  const t = readTuple(decodeValue(b, 'Envelope'), 2, 'Envelope');
  return { payload: readBytes(t[0], 'Envelope.payload'), signature: readBytes(t[1], 'Envelope.signature') };
}

// ---------------------------------------------------------------------------------------------
// Blocks

export interface BlockHeader {
  number: number;
  /** sha256 of the previous block's header bytes; 32 zero bytes for block 0. */
  previousHash: Bytes;
  /** Merkle root over the block's envelopes (see merkle.ts). */
  dataHash: Bytes;
}
export function encodeBlockHeader(v: BlockHeader): Bytes {
  return encodeValue([v.number, v.previousHash, v.dataHash]);
}
export function decodeBlockHeader(b: Bytes): BlockHeader {
  const t = readTuple(decodeValue(b, 'BlockHeader'), 3, 'BlockHeader');
  return {
    number: readUint(t[0], 'BlockHeader.number'),
    previousHash: readBytes(t[1], 'BlockHeader.previousHash'),
    dataHash: readBytes(t[2], 'BlockHeader.dataHash'),
  };
}

/** One orderer's signature over `header ‖ signatureHeader ‖ consenterMetadata` (see blockSignedBytes). */
export interface BlockSignature {
  /** Encoded SignatureHeader of the signing orderer. */
  signatureHeader: Bytes;
  signature: Bytes;
}

export interface BlockMetadata {
  signatures: BlockSignature[];
  /** Encoded ConsenterMetadata; signed together with the header. */
  consenterMetadata: Bytes;
  /** One validation code per transaction, filled by the committing peer (not signed). */
  txValidationCodes: Bytes;
}

export interface ConsenterMetadata {
  /** Block number of the latest config block at or before this block. */
  lastConfig: number;
  /** Raft log index of the entry that carried this block (0 outside Raft). */
  raftIndex: number;
}
export function encodeConsenterMetadata(v: ConsenterMetadata): Bytes {
  return encodeValue([v.lastConfig, v.raftIndex]);
}
export function decodeConsenterMetadata(b: Bytes): ConsenterMetadata {
  const t = readTuple(decodeValue(b, 'ConsenterMetadata'), 2, 'ConsenterMetadata');
  return {
    lastConfig: readUint(t[0], 'ConsenterMetadata.lastConfig'),
    raftIndex: readUint(t[1], 'ConsenterMetadata.raftIndex'),
  };
}

export interface Block {
  /** Encoded BlockHeader; the block hash is sha256 of these bytes. */
  header: Bytes;
  /** Encoded Envelopes, in order. */
  data: Bytes[];
  metadata: BlockMetadata;
}
export function encodeBlock(v: Block): Bytes {
  return encodeValue([
    v.header,
    v.data,
    [
      v.metadata.signatures.map((s) => [s.signatureHeader, s.signature]),
      v.metadata.consenterMetadata,
      v.metadata.txValidationCodes,
    ],
  ]);
}
export function decodeBlock(b: Bytes): Block {
  const t = readTuple(decodeValue(b, 'Block'), 3, 'Block');
  const m = readTuple(t[2], 3, 'Block.metadata');
  return {
    header: readBytes(t[0], 'Block.header'),
    data: readList(t[1], 'Block.data', readBytes),
    metadata: {
      signatures: readList(m[0], 'Block.metadata.signatures', (x, w) => {
        const u = readTuple(x, 2, w);
        return {
          signatureHeader: readBytes(u[0], `${w}.signatureHeader`),
          signature: readBytes(u[1], `${w}.signature`),
        };
      }),
      consenterMetadata: readBytes(m[1], 'Block.metadata.consenterMetadata'),
      txValidationCodes: readBytes(m[2], 'Block.metadata.txValidationCodes'),
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Deliver

export type SeekPosition = { kind: 'oldest' } | { kind: 'newest' } | { kind: 'specified'; number: number };
export interface SeekInfo {
  start: SeekPosition;
  stop: SeekPosition;
  /** BLOCK_UNTIL_READY waits for blocks not yet cut; FAIL_IF_NOT_READY ends the stream instead. */
  behavior: 'BLOCK_UNTIL_READY' | 'FAIL_IF_NOT_READY';
}
const encSeek = (p: SeekPosition) => (p.kind === 'specified' ? [p.kind, p.number] : [p.kind]);
function readSeek(x: unknown, w: string): SeekPosition {
  if (!Array.isArray(x) || x.length < 1) return readTuple(x, 1, w) as never;
  const kind = readText(x[0], `${w}.kind`);
  if (kind === 'oldest' || kind === 'newest') {
    readTuple(x, 1, w);
    return { kind };
  }
  if (kind === 'specified') {
    const t = readTuple(x, 2, w);
    return { kind, number: readUint(t[1], `${w}.number`) };
  }
  throw new LoomError(EncodingErrorCode.WRONG_SHAPE, `${w}: unknown seek position kind ${kind}`, {
    details: { what: w },
  });
}
export function encodeSeekInfo(v: SeekInfo): Bytes {
  return encodeValue([encSeek(v.start), encSeek(v.stop), v.behavior]);
}
export function decodeSeekInfo(b: Bytes): SeekInfo {
  const t = readTuple(decodeValue(b, 'SeekInfo'), 3, 'SeekInfo');
  const behavior = readText(t[2], 'SeekInfo.behavior');
  if (behavior !== 'BLOCK_UNTIL_READY' && behavior !== 'FAIL_IF_NOT_READY') {
    throw new LoomError(EncodingErrorCode.WRONG_SHAPE, `SeekInfo.behavior: unknown behavior ${behavior}`, {
      details: { what: 'SeekInfo.behavior' },
    });
  }
  return {
    start: readSeek(t[0], 'SeekInfo.start'),
    stop: readSeek(t[1], 'SeekInfo.stop'),
    behavior: behavior as SeekInfo['behavior'],
  };
}
