/**
 * The peer's HTTP contracts for its ledger, declared once so server and clients agree. Bytes in
 * JSON bodies are base64 (envelopes, values, signatures) or lowercase hex (hashes).
 */
import {
  type Bytes,
  decodeChaincodeEvent,
  encodeValue,
  endorserTxAction,
  toBase64,
  toHex,
  TxValidationCode,
} from '@loom/common';
import type { KeyProof, LedgerDigest, TxProof } from '../ledger/accumulator.js';
import { envelopeTxId } from '../ledger/block-store.js';

export const peerRoutes = {
  joinChannel: { method: 'POST', path: '/v1/channels' },
  listChannels: { method: 'GET', path: '/v1/channels' },
  height: { method: 'GET', path: '/v1/channels/:channel/height' },
  block: { method: 'GET', path: '/v1/channels/:channel/blocks/:number' },
  tx: { method: 'GET', path: '/v1/channels/:channel/tx/:txId' },
  state: { method: 'GET', path: '/v1/channels/:channel/state/:namespace/:key' },
  digest: { method: 'GET', path: '/v1/channels/:channel/digest' },
  txProof: { method: 'GET', path: '/v1/channels/:channel/proof/tx/:txId' },
  keyProof: { method: 'GET', path: '/v1/channels/:channel/proof/key/:namespace/:key' },
  blockEvents: { method: 'GET', path: '/v1/channels/:channel/events/blocks' },
  chaincodeEvents: { method: 'GET', path: '/v1/channels/:channel/events/chaincode/:chaincode' },
  /** Admin (localhost only): install a chaincode package (body: package bytes) → `{packageId, label}`. */
  installChaincode: { method: 'POST', path: '/v1/admin/chaincodes' },
  /** `{peerId, addr}`: this peer's gossip (libp2p) identity and `host:port`; 404 when gossip is off. */
  gossipEndpoint: { method: 'GET', path: '/v1/gossip/endpoint' },
  /** Admin (localhost only): `{installed: [{packageId, label, type, references}]}`. */
  installedChaincodes: { method: 'GET', path: '/v1/admin/chaincodes' },
  /** Admin (localhost only): one installed package's bytes (`application/octet-stream`); 404 if not installed. */
  installedPackage: { method: 'GET', path: '/v1/admin/chaincodes/:packageId' },
} as const;

export interface LedgerDigestJson {
  readonly channelId: string;
  readonly height: number;
  readonly txCount: number;
  /** Hex. */
  readonly root: string;
}

/** `GET /digest`: the digest, the peer's signature over `encodeLedgerDigest(digest)`, and who signed. */
export interface SignedDigestJson {
  readonly digest: LedgerDigestJson;
  /** Base64 DER ECDSA signature. */
  readonly signature: string;
  readonly signer: { readonly mspId: string; readonly certPem: string };
}

export interface TxProofJson {
  readonly channelId: string;
  readonly txId: string;
  readonly blockNum: number;
  readonly txNum: number;
  readonly validationCode: number;
  /** Base64. */
  readonly envelope: string;
  readonly leafIndex: number;
  readonly treeSize: number;
  /** Hex, leaf to root. */
  readonly auditPath: string[];
}

export interface KeyProofJson {
  readonly namespace: string;
  readonly key: string;
  readonly version: { blockNum: number; txNum: number };
  readonly isDelete: boolean;
  readonly valueHash: string;
  readonly tx: TxProofJson;
}

export const digestToJson = (d: LedgerDigest): LedgerDigestJson => ({
  channelId: d.channelId,
  height: d.height,
  txCount: d.txCount,
  root: toHex(d.root),
});

export const txProofToJson = (p: TxProof): TxProofJson => ({
  channelId: p.channelId,
  txId: p.txId,
  blockNum: p.blockNum,
  txNum: p.txNum,
  validationCode: p.validationCode,
  envelope: toBase64(p.envelope),
  leafIndex: p.leafIndex,
  treeSize: p.treeSize,
  auditPath: p.auditPath.map(toHex),
});

export const keyProofToJson = (p: KeyProof): KeyProofJson => ({
  namespace: p.namespace,
  key: p.key,
  version: { ...p.version },
  isDelete: p.isDelete,
  valueHash: toHex(p.valueHash),
  tx: txProofToJson(p.tx),
});

/**
 * A filtered block event frame: CBOR `[blockNum, list<[txId, code]>]`.
 */
export function encodeFilteredBlock(blockNum: number, envelopes: readonly Bytes[], codes: Uint8Array): Bytes {
  return encodeValue([
    blockNum,
    envelopes.map((e, i) => [envelopeTxId(e) ?? '', codes[i] ?? TxValidationCode.NOT_VALIDATED]),
  ]);
}

export interface ChaincodeEventRecord {
  readonly blockNum: number;
  readonly txNum: number;
  readonly txId: string;
  readonly chaincodeId: string;
  readonly eventName: string;
  readonly payload: Bytes;
}

/** A chaincode event frame: CBOR `[blockNum, txNum, txId, chaincodeId, eventName, payload]`. */
export function encodeChaincodeEventFrame(e: ChaincodeEventRecord): Bytes {
  return encodeValue([e.blockNum, e.txNum, e.txId, e.chaincodeId, e.eventName, e.payload]);
}

/** The chaincode events set by the valid transactions of a committed block. */
export function chaincodeEventsOf(
  blockNum: number,
  envelopes: readonly Bytes[],
  codes: Uint8Array,
): ChaincodeEventRecord[] {
  const out: ChaincodeEventRecord[] = [];
  for (const [txNum, env] of envelopes.entries()) {
    if (codes[txNum] !== TxValidationCode.VALID) continue;
    try {
      // Not an endorser transaction, or unreadable: throws, and carries no event.
      const { channelHeader: ch, action } = endorserTxAction(env);
      if (action.events.length === 0) continue;
      const ev = decodeChaincodeEvent(action.events);
      out.push({
        blockNum,
        txNum,
        txId: ch.txId,
        chaincodeId: ev.chaincodeId,
        eventName: ev.eventName,
        payload: ev.payload,
      });
    } catch {
      // A valid transaction always decodes; anything else carries no event.
    }
  }
  return out;
}
