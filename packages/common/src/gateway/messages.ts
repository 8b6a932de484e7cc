/**
 * The bodies of the gateway's HTTP contract and their one encoding. Bodies are deterministic CBOR
 * positional arrays (docs/protocol.md rules 1–4) sent as `application/octet-stream`: they carry signed
 * bytes (SignedProposal, Envelope, signed requests) that must reach the server exactly as signed, and
 * CBOR carries bytes without base64. Error bodies are JSON (`{code, message, details}`), never signed,
 * so an operator can read them with curl. Pure and browser-portable.
 */
import {
  type Bytes,
  decodeValue,
  encodeValue,
  readBytes,
  readList,
  readOptional,
  readText,
  readTuple,
  readUint,
} from '../encoding.js';
import { EncodingErrorCode, LoomError } from '../errors.js';
import type { KeyProof, LedgerDigest, TxProof } from '../ledger-proofs.js';
import type { Response } from '../protocol/messages.js';

/** Encodes a body for the wire and decodes (strictly) what arrived. */
export interface BodyCodec<T> {
  encode(value: T): Bytes;
  decode(bytes: Bytes): T;
}

/** Bodies that are already protocol bytes (SignedProposal, Envelope, ProposalResponse) pass through. */
export const rawBytes: BodyCodec<Bytes> = { encode: (b) => b, decode: (b) => b };

const readTexts = (x: unknown, w: string) => readList(x, w, readText, 64);
const encResponse = (r: Response) => [r.status, r.message, r.payload];
function readResponse(x: unknown, w: string): Response {
  const t = readTuple(x, 3, w);
  return {
    status: readUint(t[0], `${w}.status`),
    message: readText(t[1], `${w}.message`),
    payload: readBytes(t[2], `${w}.payload`),
  };
}

// ---- evaluate / endorse ---------------------------------------------------------------------

/** `[signedProposal: bytes(SignedProposal), organizations: list<text>]` — empty list: the gateway chooses. */
export interface ProposalRequest {
  readonly signedProposal: Bytes;
  /** evaluate: organizations whose peers may answer; endorse: organizations that must endorse. */
  readonly organizations: readonly string[];
}
export const proposalRequestCodec: BodyCodec<ProposalRequest> = {
  encode: (v) => encodeValue([v.signedProposal, [...v.organizations]]),
  decode: (b) => {
    const t = readTuple(decodeValue(b, 'ProposalRequest'), 2, 'ProposalRequest');
    return {
      signedProposal: readBytes(t[0], 'ProposalRequest.signedProposal'),
      organizations: readTexts(t[1], 'ProposalRequest.organizations'),
    };
  },
};

/** evaluate's answer: the chaincode Response `[status, message, payload]`. */
export const evaluateResponseCodec: BodyCodec<Response> = {
  encode: (v) => encodeValue(encResponse(v)),
  decode: (b) => readResponse(decodeValue(b, 'EvaluateResponse'), 'EvaluateResponse'),
};

/** `[txId, preparedTransaction: bytes(Payload), result: Response]`: the client signs preparedTransaction. */
export interface EndorseResponse {
  readonly txId: string;
  readonly preparedTransaction: Bytes;
  readonly result: Response;
}
export const endorseResponseCodec: BodyCodec<EndorseResponse> = {
  encode: (v) => encodeValue([v.txId, v.preparedTransaction, encResponse(v.result)]),
  decode: (b) => {
    const t = readTuple(decodeValue(b, 'EndorseResponse'), 3, 'EndorseResponse');
    return {
      txId: readText(t[0], 'EndorseResponse.txId'),
      preparedTransaction: readBytes(t[1], 'EndorseResponse.preparedTransaction'),
      result: readResponse(t[2], 'EndorseResponse.result'),
    };
  },
};

/** submit's 202 answer `[txId]`: the orderer accepted the envelope for ordering. */
export interface SubmitResponse {
  readonly txId: string;
}
export const submitResponseCodec: BodyCodec<SubmitResponse> = {
  encode: (v) => encodeValue([v.txId]),
  decode: (b) => ({
    txId: readText(readTuple(decodeValue(b, 'SubmitResponse'), 1, 'SubmitResponse')[0], 'SubmitResponse.txId'),
  }),
};

// ---- signed requests (commit status, events, proofs) -----------------------------------------

/**
 * A request that is not a proposal but still says who asks: `[request: bytes, signature: bytes]`,
 * the signature by `creator` over `request` exactly as sent. Each request starts with a domain
 * string naming its kind, so a signature for one kind can never be replayed as another, and carries
 * a timestamp the gateway checks against its clock.
 */
export interface SignedRequest {
  readonly request: Bytes;
  readonly signature: Bytes;
}
export const signedRequestCodec: BodyCodec<SignedRequest> = {
  encode: (v) => encodeValue([v.request, v.signature]),
  decode: (b) => {
    const t = readTuple(decodeValue(b, 'SignedRequest'), 2, 'SignedRequest');
    return { request: readBytes(t[0], 'SignedRequest.request'), signature: readBytes(t[1], 'SignedRequest.signature') };
  },
};

/** The fields every signed request has. */
export interface RequestAuth {
  readonly channel: string;
  /** Encoded SerializedIdentity of the requester. */
  readonly creator: Bytes;
  /** Milliseconds since the epoch. */
  readonly timestamp: number;
}

export const RequestDomain = {
  COMMIT_STATUS: 'loom/gateway/commit-status/v1',
  CHAINCODE_EVENTS: 'loom/gateway/chaincode-events/v1',
  BLOCK_EVENTS: 'loom/gateway/block-events/v1',
  TX_PROOF: 'loom/gateway/tx-proof/v1',
  KEY_PROOF: 'loom/gateway/key-proof/v1',
} as const;

/**
 * Builds the codec of one signed request kind: `[domain, channel, creator, timestamp, ...fields]`.
 */
function requestCodec<T extends RequestAuth>(
  domain: string,
  name: string,
  fields: (v: T) => unknown[],
  read: (rest: unknown[], w: string) => Omit<T, keyof RequestAuth>,
  arity: number,
): BodyCodec<T> {
  return {
    encode: (v) => encodeValue([domain, v.channel, v.creator, v.timestamp, ...fields(v)]),
    decode: (b) => {
      const t = readTuple(decodeValue(b, name), 4 + arity, name);
      if (readText(t[0], `${name}.domain`) !== domain) {
        throw new LoomError(EncodingErrorCode.WRONG_SHAPE, `${name}: not a ${domain} request`, {
          details: { what: `${name}.domain` },
        });
      }
      return {
        channel: readText(t[1], `${name}.channel`),
        creator: readBytes(t[2], `${name}.creator`),
        timestamp: readUint(t[3], `${name}.timestamp`),
        ...read(t.slice(4), name),
      } as T;
    },
  };
}

/** `[domain, channel, creator, timestamp, txId, timeoutMs]` */
export interface CommitStatusRequest extends RequestAuth {
  readonly txId: string;
  /** How long the gateway may wait for the commit before answering COMMIT_STATUS_TIMEOUT. */
  readonly timeoutMs: number;
}
export const commitStatusRequestCodec = requestCodec<CommitStatusRequest>(
  RequestDomain.COMMIT_STATUS,
  'CommitStatusRequest',
  (v) => [v.txId, v.timeoutMs],
  (r, w) => ({ txId: readText(r[0], `${w}.txId`), timeoutMs: readUint(r[1], `${w}.timeoutMs`) }),
  2,
);

/** `[txId, blockNumber, validationCode, validationCodeName]` */
export interface CommitStatusResponse {
  readonly txId: string;
  readonly blockNumber: number;
  readonly validationCode: number;
  /** TxValidationCode name, e.g. `VALID`, `MVCC_READ_CONFLICT`. */
  readonly validationCodeName: string;
}
export const commitStatusResponseCodec: BodyCodec<CommitStatusResponse> = {
  encode: (v) => encodeValue([v.txId, v.blockNumber, v.validationCode, v.validationCodeName]),
  decode: (b) => {
    const t = readTuple(decodeValue(b, 'CommitStatusResponse'), 4, 'CommitStatusResponse');
    return {
      txId: readText(t[0], 'CommitStatusResponse.txId'),
      blockNumber: readUint(t[1], 'CommitStatusResponse.blockNumber'),
      validationCode: readUint(t[2], 'CommitStatusResponse.validationCode'),
      validationCodeName: readText(t[3], 'CommitStatusResponse.validationCodeName'),
    };
  },
};

/** `[domain, channel, creator, timestamp, chaincode, startBlock: uint?]` — null: from the next block committed. */
export interface ChaincodeEventsRequest extends RequestAuth {
  readonly chaincode: string;
  readonly startBlock: number | null;
}
export const chaincodeEventsRequestCodec = requestCodec<ChaincodeEventsRequest>(
  RequestDomain.CHAINCODE_EVENTS,
  'ChaincodeEventsRequest',
  (v) => [v.chaincode, v.startBlock],
  (r, w) => ({
    chaincode: readText(r[0], `${w}.chaincode`),
    startBlock: readOptional(r[1], `${w}.startBlock`, readUint),
  }),
  2,
);

/** `[domain, channel, creator, timestamp, startBlock: uint?]` — null: from the next block committed. */
export interface BlockEventsRequest extends RequestAuth {
  readonly startBlock: number | null;
}
export const blockEventsRequestCodec = requestCodec<BlockEventsRequest>(
  RequestDomain.BLOCK_EVENTS,
  'BlockEventsRequest',
  (v) => [v.startBlock],
  (r, w) => ({ startBlock: readOptional(r[0], `${w}.startBlock`, readUint) }),
  1,
);

/** One chaincode event frame: `[blockNumber, txNum, txId, chaincodeId, eventName, payload]`. */
export interface ChaincodeEventFrame {
  readonly blockNumber: number;
  /** Position of the transaction in its block; events of a block arrive in this order. */
  readonly txNum: number;
  readonly txId: string;
  readonly chaincodeId: string;
  readonly eventName: string;
  readonly payload: Bytes;
}
export const chaincodeEventFrameCodec: BodyCodec<ChaincodeEventFrame> = {
  encode: (v) => encodeValue([v.blockNumber, v.txNum, v.txId, v.chaincodeId, v.eventName, v.payload]),
  decode: (b) => {
    const t = readTuple(decodeValue(b, 'ChaincodeEventFrame'), 6, 'ChaincodeEventFrame');
    return {
      blockNumber: readUint(t[0], 'ChaincodeEventFrame.blockNumber'),
      txNum: readUint(t[1], 'ChaincodeEventFrame.txNum'),
      txId: readText(t[2], 'ChaincodeEventFrame.txId'),
      chaincodeId: readText(t[3], 'ChaincodeEventFrame.chaincodeId'),
      eventName: readText(t[4], 'ChaincodeEventFrame.eventName'),
      payload: readBytes(t[5], 'ChaincodeEventFrame.payload'),
    };
  },
};

// ---- ledger digest and proofs ----------------------------------------------------------------

/** `GET /digest?channel=` answer: `[[channelId, height, txCount, root], signature, signer: bytes(SerializedIdentity)]`. */
export interface SignedLedgerDigest {
  readonly digest: LedgerDigest;
  /** The peer's signature over `encodeLedgerDigest(digest)`. */
  readonly signature: Bytes;
  /** Encoded SerializedIdentity of the signing peer. */
  readonly signer: Bytes;
}
const encDigest = (d: LedgerDigest) => [d.channelId, d.height, d.txCount, d.root];
function readDigest(x: unknown, w: string): LedgerDigest {
  const t = readTuple(x, 4, w);
  return {
    channelId: readText(t[0], `${w}.channelId`),
    height: readUint(t[1], `${w}.height`),
    txCount: readUint(t[2], `${w}.txCount`),
    root: readBytes(t[3], `${w}.root`),
  };
}
export const signedDigestCodec: BodyCodec<SignedLedgerDigest> = {
  encode: (v) => encodeValue([encDigest(v.digest), v.signature, v.signer]),
  decode: (b) => {
    const t = readTuple(decodeValue(b, 'SignedLedgerDigest'), 3, 'SignedLedgerDigest');
    return {
      digest: readDigest(t[0], 'SignedLedgerDigest.digest'),
      signature: readBytes(t[1], 'SignedLedgerDigest.signature'),
      signer: readBytes(t[2], 'SignedLedgerDigest.signer'),
    };
  },
};

/** `[domain, channel, creator, timestamp, txId]` */
export interface TxProofRequest extends RequestAuth {
  readonly txId: string;
}
export const txProofRequestCodec = requestCodec<TxProofRequest>(
  RequestDomain.TX_PROOF,
  'TxProofRequest',
  (v) => [v.txId],
  (r, w) => ({ txId: readText(r[0], `${w}.txId`) }),
  1,
);

/** `[domain, channel, creator, timestamp, namespace, key]` */
export interface KeyProofRequest extends RequestAuth {
  readonly namespace: string;
  readonly key: string;
}
export const keyProofRequestCodec = requestCodec<KeyProofRequest>(
  RequestDomain.KEY_PROOF,
  'KeyProofRequest',
  (v) => [v.namespace, v.key],
  (r, w) => ({ namespace: readText(r[0], `${w}.namespace`), key: readText(r[1], `${w}.key`) }),
  2,
);

const encTxProof = (p: TxProof) => [
  p.channelId,
  p.txId,
  p.blockNum,
  p.txNum,
  p.validationCode,
  p.envelope,
  p.leafIndex,
  p.treeSize,
  [...p.auditPath],
];
function readTxProof(x: unknown, w: string): TxProof {
  const t = readTuple(x, 9, w);
  return {
    channelId: readText(t[0], `${w}.channelId`),
    txId: readText(t[1], `${w}.txId`),
    blockNum: readUint(t[2], `${w}.blockNum`),
    txNum: readUint(t[3], `${w}.txNum`),
    validationCode: readUint(t[4], `${w}.validationCode`),
    envelope: readBytes(t[5], `${w}.envelope`),
    leafIndex: readUint(t[6], `${w}.leafIndex`),
    treeSize: readUint(t[7], `${w}.treeSize`),
    auditPath: readList(t[8], `${w}.auditPath`, readBytes, 64),
  };
}
/** `[channelId, txId, blockNum, txNum, validationCode, envelope, leafIndex, treeSize, auditPath]` */
export const txProofCodec: BodyCodec<TxProof> = {
  encode: (v) => encodeValue(encTxProof(v)),
  decode: (b) => readTxProof(decodeValue(b, 'TxProof'), 'TxProof'),
};
/** `[namespace, key, [blockNum, txNum], isDelete, valueHash, TxProof]` */
export const keyProofCodec: BodyCodec<KeyProof> = {
  encode: (v) =>
    encodeValue([v.namespace, v.key, [v.version.blockNum, v.version.txNum], v.isDelete, v.valueHash, encTxProof(v.tx)]),
  decode: (b) => {
    const t = readTuple(decodeValue(b, 'KeyProof'), 6, 'KeyProof');
    const ver = readTuple(t[2], 2, 'KeyProof.version');
    if (typeof t[3] !== 'boolean') {
      throw new LoomError(EncodingErrorCode.WRONG_SHAPE, 'KeyProof.isDelete: expected a boolean', {
        details: { what: 'KeyProof.isDelete' },
      });
    }
    return {
      namespace: readText(t[0], 'KeyProof.namespace'),
      key: readText(t[1], 'KeyProof.key'),
      version: {
        blockNum: readUint(ver[0], 'KeyProof.version.blockNum'),
        txNum: readUint(ver[1], 'KeyProof.version.txNum'),
      },
      isDelete: t[3],
      valueHash: readBytes(t[4], 'KeyProof.valueHash'),
      tx: readTxProof(t[5], 'KeyProof.tx'),
    };
  },
};
