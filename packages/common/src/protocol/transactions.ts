/**
 * The hashes and signed byte strings of the transaction flow, and builders for proposals and
 * transaction envelopes. Every "signed bytes" function here concatenates encoded CBOR items, each
 * self-delimiting, so a concatenation has exactly one split. Pure; the hash function defaults to
 * @noble/hashes' SHA-256 and node callers pass node:crypto's for speed.
 */
import { sha256 as nobleSha256 } from '@noble/hashes/sha2.js';
import { type Bytes, concatBytes, hashConcat, toHex, utf8 } from '../encoding.js';
import { merkleRoot, type HashFn } from './merkle.js';
import {
  type Block,
  type BlockHeader,
  type ChaincodeAction,
  type ChannelHeader,
  decodeChaincodeAction,
  decodeChannelHeader,
  decodeEndorserTransaction,
  decodeEnvelope,
  decodeHeader,
  decodePayload,
  decodeProposalResponsePayload,
  decodeTxReadWriteSet,
  type Endorsement,
  encodeBlockHeader,
  encodeChaincodeInvocationSpec,
  encodeChaincodeProposalPayload,
  encodeChannelHeader,
  encodeEndorserTransaction,
  encodeHeader,
  encodePayload,
  encodeProposal,
  encodeSerializedIdentity,
  encodeSignatureHeader,
  HeaderType,
  type SerializedIdentity,
  type TxReadWriteSet,
} from './messages.js';

/**
 * An endorser transaction's channel header and chaincode action (results, events, response),
 * decoded from its envelope bytes. Throws (a decoding error) when the envelope is malformed or not
 * an endorser transaction.
 */
export function endorserTxAction(envelopeBytes: Bytes): { channelHeader: ChannelHeader; action: ChaincodeAction } {
  const payload = decodePayload(decodeEnvelope(envelopeBytes).payload);
  const channelHeader = decodeChannelHeader(decodeHeader(payload.header).channelHeader);
  if (channelHeader.type !== HeaderType.ENDORSER_TRANSACTION) throw new Error('not an endorser transaction');
  const etx = decodeEndorserTransaction(payload.data);
  const action = decodeChaincodeAction(decodeProposalResponsePayload(etx.proposalResponsePayload).extension);
  return { channelHeader, action };
}

/** An endorser transaction's channel header and read-write set (throws as endorserTxAction). */
export function endorserTxRwSet(envelopeBytes: Bytes): { channelHeader: ChannelHeader; rwset: TxReadWriteSet } {
  const { channelHeader, action } = endorserTxAction(envelopeBytes);
  return { channelHeader, rwset: decodeTxReadWriteSet(action.results) };
}

export const defaultHash: HashFn = (b) => nobleSha256(b);

/** txId = hex(sha256(nonce ‖ creator)), where creator is the encoded SerializedIdentity. */
export function computeTxId(nonce: Bytes, creator: Bytes, hash: HashFn = defaultHash): string {
  return toHex(hashConcat(hash, nonce, creator));
}

/** Binds endorsements to one proposal: sha256(Proposal.header ‖ ChaincodeProposalPayload.input). */
export function computeProposalHash(headerBytes: Bytes, inputBytes: Bytes, hash: HashFn = defaultHash): Bytes {
  return hashConcat(hash, headerBytes, inputBytes);
}

/** What an endorser signs: ProposalResponse.payload ‖ Endorsement.endorser. */
export function endorsementSignedBytes(proposalResponsePayload: Bytes, endorser: Bytes): Bytes {
  return concatBytes(proposalResponsePayload, endorser);
}

/** What each orderer signs for a block: header ‖ signatureHeader ‖ consenterMetadata. */
export function blockSignedBytes(headerBytes: Bytes, signatureHeader: Bytes, consenterMetadata: Bytes): Bytes {
  return concatBytes(headerBytes, signatureHeader, consenterMetadata);
}

/** What a config-update signer signs: signatureHeader ‖ configUpdate. */
export function configSignatureSignedBytes(signatureHeader: Bytes, configUpdate: Bytes): Bytes {
  return concatBytes(signatureHeader, configUpdate);
}

/** A block's dataHash: the Merkle root (merkle.ts) over its envelopes' bytes. */
export function computeDataHash(data: readonly Bytes[], hash: HashFn = defaultHash): Bytes {
  return merkleRoot(hash, data);
}

/** The block hash: sha256 of the encoded header bytes as stored and transmitted. */
export function computeBlockHash(block: Pick<Block, 'header'>, hash: HashFn = defaultHash): Bytes {
  return hash(block.header);
}

export const GENESIS_PREVIOUS_HASH = new Uint8Array(32);

/** Builds an unsigned block (no signatures, no validation codes) that chains onto `previousHash`. */
export function buildBlock(
  number: number,
  previousHash: Bytes,
  data: Bytes[],
  consenterMetadata: Bytes,
  hash: HashFn = defaultHash,
): Block {
  const header: BlockHeader = { number, previousHash, dataHash: computeDataHash(data, hash) };
  return {
    header: encodeBlockHeader(header),
    data,
    metadata: { signatures: [], consenterMetadata, txValidationCodes: new Uint8Array(0) },
  };
}

export interface Signer {
  sign(message: Bytes): Bytes | Promise<Bytes>;
}

export interface ProposalRequest {
  channelId: string;
  chaincodeName: string;
  /** Function name first, then its arguments; strings are UTF-8 encoded. */
  args: (string | Bytes)[];
  transient?: Record<string, Bytes> | Map<string, Bytes>;
  isInit?: boolean;
  creator: SerializedIdentity;
  nonce: Bytes;
  /** Milliseconds since the epoch; injected so builders stay deterministic. */
  timestamp: number;
  hash?: HashFn;
}

export interface BuiltProposal {
  txId: string;
  /** Encoded Proposal: sign these exact bytes (SignedProposal.signature). */
  proposalBytes: Bytes;
  headerBytes: Bytes;
  inputBytes: Bytes;
  channelHeader: ChannelHeader;
}

export function buildProposal(req: ProposalRequest): BuiltProposal {
  const creator = encodeSerializedIdentity(req.creator);
  const txId = computeTxId(req.nonce, creator, req.hash);
  const channelHeader: ChannelHeader = {
    type: HeaderType.ENDORSER_TRANSACTION,
    version: 1,
    channelId: req.channelId,
    txId,
    timestamp: req.timestamp,
    extension: utf8(req.chaincodeName),
  };
  const headerBytes = encodeHeader({
    channelHeader: encodeChannelHeader(channelHeader),
    signatureHeader: encodeSignatureHeader({ creator, nonce: req.nonce }),
  });
  const inputBytes = encodeChaincodeInvocationSpec({
    chaincodeName: req.chaincodeName,
    args: req.args.map((a) => (typeof a === 'string' ? utf8(a) : a)),
    isInit: req.isInit ?? false,
  });
  const transientMap = req.transient instanceof Map ? req.transient : new Map(Object.entries(req.transient ?? {}));
  const proposalBytes = encodeProposal({
    header: headerBytes,
    payload: encodeChaincodeProposalPayload({ input: inputBytes, transientMap }),
  });
  return { txId, proposalBytes, headerBytes, inputBytes, channelHeader };
}

/**
 * The transaction's Payload bytes from a proposal and matching endorsements: the proposal's header
 * bytes unchanged, its input without the transient map, and the payload every endorser signed.
 * The creator signs the returned bytes to make the Envelope.
 */
export function buildTransactionPayload(
  proposal: Pick<BuiltProposal, 'headerBytes' | 'inputBytes'>,
  proposalResponsePayload: Bytes,
  endorsements: Endorsement[],
): Bytes {
  return encodePayload({
    header: proposal.headerBytes,
    data: encodeEndorserTransaction({ input: proposal.inputBytes, proposalResponsePayload, endorsements }),
  });
}

/** A random nonce source must be injected by the caller; 24 bytes as Fabric uses. */
export const NONCE_LENGTH = 24;
