/**
 * Private data between peers: push (an endorser disseminating a private rwset to member peers'
 * transient stores) and pull (reconciliation of missing data from member peers). The interface is
 * small so gossip can back it later; this module implements it over the peers' HTTPS API:
 *
 *   POST /v1/privdata/push   body: SignedPrivateDataRequest(kind 'push')  → 200 `{stored: n}`
 *   POST /v1/privdata/pull   body: SignedPrivateDataRequest(kind 'pull')  → 200 CBOR PullResponse
 *
 * SignedPrivateDataRequest = CBOR `[signed: bytes, signature: bytes]`, signed = CBOR
 * `[kind: text, channelId: text, timestampMs: uint, sender: bytes(SerializedIdentity), payload: bytes]`;
 * the signature is the sender peer's ECDSA over `signed` exactly as shipped (docs/protocol.md).
 * Push payload = CBOR `[txId, endorsedAtHeight, TxPvtReadWriteSet bytes]`; pull payload = CBOR
 * list of `[blockNum, txNum, namespace, collection]`; pull response = CBOR list of
 * `[blockNum, txNum, namespace, collection, KVRWSet bytes]` for what the answering peer holds.
 */
import {
  type Bytes,
  decodeSerializedIdentity,
  decodeValue,
  encodeSerializedIdentity,
  encodeValue,
  LoomError,
  readBytes,
  readList,
  readText,
  readTuple,
  readUint,
  type SerializedIdentity,
} from '@loom/common';
import type { GatewayTransport } from '@loom/common/gateway/index';

export const PrivateDataErrorCode = {
  /** Fewer member peers acknowledged the private rwset than the collection's requiredPeerCount. */
  DISSEMINATION_FAILED: 'PRIVDATA_DISSEMINATION_FAILED',
  /** The proposal creator's org may not read/write the collection (memberOnlyRead/memberOnlyWrite). */
  ACCESS_DENIED: 'PRIVDATA_ACCESS_DENIED',
  /** This peer's org is not a member of the collection: it holds hashes only. */
  NOT_A_MEMBER: 'PRIVDATA_NOT_A_MEMBER',
  /** A push/pull request that does not decode, is stale, or is not signed by a member peer. */
  BAD_REQUEST: 'PRIVDATA_BAD_REQUEST',
  FORBIDDEN: 'PRIVDATA_FORBIDDEN',
  /** The peer could not be reached or answered with an error. */
  PEER_UNAVAILABLE: 'PRIVDATA_PEER_UNAVAILABLE',
} as const;

/** A peer to push to or pull from: its org and API base URL. */
export interface PrivateDataPeer {
  readonly mspId: string;
  readonly endpoint: string;
}

export interface PushMessage {
  readonly channelId: string;
  readonly txId: string;
  readonly endorsedAtHeight: number;
  /** An encoded TxPvtReadWriteSet holding only collections the receiver's org is a member of. */
  readonly pvtRwset: Bytes;
}

export interface PullItem {
  readonly blockNum: number;
  readonly txNum: number;
  readonly namespace: string;
  readonly collection: string;
}

export interface PulledItem extends PullItem {
  /** KVRWSet bytes (writes). */
  readonly rwset: Bytes;
}

export interface PullMessage {
  readonly channelId: string;
  readonly items: readonly PullItem[];
}

/** How private data travels between peers (HTTPS today; gossip can implement it too). */
export interface PrivateDataTransport {
  /** Resolves once the peer stored the rwset in its transient store; rejects otherwise. */
  push(peer: PrivateDataPeer, message: PushMessage, timeoutMs: number): Promise<void>;
  /** What the peer holds of the items (possibly none). */
  pull(peer: PrivateDataPeer, message: PullMessage, timeoutMs: number): Promise<PulledItem[]>;
}

export const privateDataRoutes = {
  push: { method: 'POST', path: '/v1/privdata/push' },
  pull: { method: 'POST', path: '/v1/privdata/pull' },
} as const;

export type RequestKind = 'push' | 'pull';

export interface SignedRequest {
  readonly kind: RequestKind;
  readonly channelId: string;
  readonly timestampMs: number;
  readonly sender: SerializedIdentity;
  readonly payload: Bytes;
  /** The bytes the signature covers, as received. */
  readonly signed: Bytes;
  readonly signature: Bytes;
}

const bad = (message: string) => new LoomError(PrivateDataErrorCode.BAD_REQUEST, message, { httpStatus: 400 });

export async function encodeSignedRequest(
  kind: RequestKind,
  channelId: string,
  payload: Bytes,
  signer: { identity: SerializedIdentity; sign(m: Bytes): Bytes | Promise<Bytes> },
  now: number,
): Promise<Bytes> {
  const signed = encodeValue([kind, channelId, now, encodeSerializedIdentity(signer.identity), payload]);
  return encodeValue([signed, await signer.sign(signed)]);
}

export function decodeSignedRequest(body: Bytes): SignedRequest {
  try {
    const outer = readTuple(decodeValue(body, 'SignedPrivateDataRequest'), 2, 'SignedPrivateDataRequest');
    const signed = readBytes(outer[0], 'signed');
    const signature = readBytes(outer[1], 'signature');
    const t = readTuple(decodeValue(signed, 'PrivateDataRequest'), 5, 'PrivateDataRequest');
    const kind = readText(t[0], 'kind');
    if (kind !== 'push' && kind !== 'pull') throw new Error(`unknown kind ${kind}`);
    return {
      kind,
      channelId: readText(t[1], 'channelId'),
      timestampMs: readUint(t[2], 'timestampMs'),
      sender: decodeSerializedIdentity(readBytes(t[3], 'sender')),
      payload: readBytes(t[4], 'payload'),
      signed,
      signature,
    };
  } catch (e) {
    throw bad(`private data request does not decode: ${(e as Error).message}`);
  }
}

export const encodePushPayload = (m: PushMessage) => encodeValue([m.txId, m.endorsedAtHeight, m.pvtRwset]);
export function decodePushPayload(channelId: string, b: Bytes): PushMessage {
  try {
    const t = readTuple(decodeValue(b, 'PushPayload'), 3, 'PushPayload');
    return {
      channelId,
      txId: readText(t[0], 'txId'),
      endorsedAtHeight: readUint(t[1], 'endorsedAtHeight'),
      pvtRwset: readBytes(t[2], 'pvtRwset'),
    };
  } catch (e) {
    throw bad(`push payload does not decode: ${(e as Error).message}`);
  }
}

export const encodePullPayload = (items: readonly PullItem[]) =>
  encodeValue(items.map((i) => [i.blockNum, i.txNum, i.namespace, i.collection]));
export function decodePullPayload(b: Bytes): PullItem[] {
  try {
    return readList(
      decodeValue(b, 'PullPayload'),
      'PullPayload',
      (x, w) => {
        const t = readTuple(x, 4, w);
        return {
          blockNum: readUint(t[0], `${w}.blockNum`),
          txNum: readUint(t[1], `${w}.txNum`),
          namespace: readText(t[2], `${w}.namespace`),
          collection: readText(t[3], `${w}.collection`),
        };
      },
      1000,
    );
  } catch (e) {
    throw bad(`pull payload does not decode: ${(e as Error).message}`);
  }
}

export const encodePullResponse = (items: readonly PulledItem[]) =>
  encodeValue(items.map((i) => [i.blockNum, i.txNum, i.namespace, i.collection, i.rwset]));
export function decodePullResponse(b: Bytes): PulledItem[] {
  return readList(decodeValue(b, 'PullResponse'), 'PullResponse', (x, w) => {
    const t = readTuple(x, 5, w);
    return {
      blockNum: readUint(t[0], `${w}.blockNum`),
      txNum: readUint(t[1], `${w}.txNum`),
      namespace: readText(t[2], `${w}.namespace`),
      collection: readText(t[3], `${w}.collection`),
      rwset: readBytes(t[4], `${w}.rwset`),
    };
  });
}

/** The transport over the peers' HTTP(S) API, each request signed by this peer. */
export function createHttpPrivateDataTransport(o: {
  readonly transport: () => GatewayTransport;
  readonly signer: { identity: SerializedIdentity; sign(m: Bytes): Bytes | Promise<Bytes> };
  readonly clock?: () => number;
}): PrivateDataTransport {
  const now = () => o.clock?.() ?? Date.now();
  const call = async (
    peer: PrivateDataPeer,
    kind: RequestKind,
    channelId: string,
    payload: Bytes,
    timeoutMs: number,
  ) => {
    const body = await encodeSignedRequest(kind, channelId, payload, o.signer, now());
    let res: { status: number; body: Bytes };
    try {
      res = await o.transport().request({
        url: `${peer.endpoint}${privateDataRoutes[kind].path}`,
        method: 'POST',
        headers: { 'content-type': 'application/octet-stream' },
        body,
        timeoutMs,
      });
    } catch (e) {
      throw new LoomError(PrivateDataErrorCode.PEER_UNAVAILABLE, `${peer.endpoint}: ${(e as Error).message}`, {
        cause: e,
        httpStatus: 503,
      });
    }
    if (res.status !== 200) {
      let message = `HTTP ${res.status}`;
      try {
        const j = JSON.parse(new TextDecoder().decode(res.body)) as { code?: string; message?: string };
        message = `${j.code ?? res.status}: ${j.message ?? ''}`;
      } catch {
        // not JSON
      }
      throw new LoomError(PrivateDataErrorCode.PEER_UNAVAILABLE, `${peer.endpoint} refused ${kind}: ${message}`, {
        httpStatus: 503,
      });
    }
    return res.body;
  };
  return {
    async push(peer, m, timeoutMs) {
      await call(peer, 'push', m.channelId, encodePushPayload(m), timeoutMs);
    },
    async pull(peer, m, timeoutMs) {
      return decodePullResponse(await call(peer, 'pull', m.channelId, encodePullPayload(m.items), timeoutMs));
    },
  };
}
