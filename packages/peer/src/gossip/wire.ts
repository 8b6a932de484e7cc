/**
 * Gossip wire formats (canonical CBOR tuples, see docs/gossip.md). Pure.
 *
 * - Hello (`/loom/gossip/hello/1.0.0`): each side sends `[mspId, certPem, nodeId, peerId, listenAddr,
 *   knownAddrs, timestamp, signature]`, the signature by its MSP signing key over
 *   `encode(["loom/gossip-hello/1", mspId, certPem, nodeId, peerId, listenAddr, timestamp])`. It binds
 *   the libp2p peer id (authenticated by noise) to the MSP identity; everything later on a stream from
 *   that peer id is attributed to that identity.
 * - Message (`/loom/gossip/msg/1.0.0`): one frame `[kind, channel, protocol, data]` (kind `req` or
 *   `push`); a request is answered by one frame `[ok, data | message]`.
 */
import {
  type Bytes,
  decodeValue,
  encodeValue,
  LoomError,
  readBool,
  readBytes,
  readList,
  readText,
  readTuple,
  readUint,
} from '@loom/common';
import { verifyOrThrow } from '@loom/common/crypto/signing';

export const HELLO_PROTOCOL = '/loom/gossip/hello/1.0.0';
export const MESSAGE_PROTOCOL = '/loom/gossip/msg/1.0.0';
export const HELLO_DOMAIN = 'loom/gossip-hello/1';
export const HELLO_MAX_SKEW_MS = 60_000;

export const GossipErrorCode = {
  HANDSHAKE_REJECTED: 'GOSSIP_HANDSHAKE_REJECTED',
  FORBIDDEN: 'GOSSIP_FORBIDDEN',
  UNAUTHENTICATED: 'GOSSIP_UNAUTHENTICATED',
  MALFORMED: 'GOSSIP_MALFORMED_MESSAGE',
  NO_HANDLER: 'GOSSIP_NO_HANDLER',
  REMOTE_ERROR: 'GOSSIP_REMOTE_ERROR',
  UNREACHABLE: 'GOSSIP_PEER_UNREACHABLE',
  TIMEOUT: 'GOSSIP_TIMEOUT',
} as const;

export interface Hello {
  readonly mspId: string;
  readonly certPem: string;
  /** The peer's configured id (e.g. `peer0.org1.example.com`): election order and logs. */
  readonly nodeId: string;
  readonly peerId: string;
  /** `host:port` where the sender accepts gossip connections ('' when it does not listen). */
  readonly listenAddr: string;
  /** Gossip addresses the sender knows (membership spreads through hellos). */
  readonly knownAddrs: readonly string[];
  readonly timestamp: number;
  readonly signature: Bytes;
}

export function helloSignedBytes(h: Omit<Hello, 'signature' | 'knownAddrs'>): Bytes {
  return encodeValue([HELLO_DOMAIN, h.mspId, h.certPem, h.nodeId, h.peerId, h.listenAddr, h.timestamp]);
}

export async function makeHello(
  signer: { sign(m: Bytes): Bytes | Promise<Bytes> },
  fields: Omit<Hello, 'signature'>,
): Promise<Bytes> {
  const signature = await signer.sign(helloSignedBytes(fields));
  return encodeValue([
    fields.mspId,
    fields.certPem,
    fields.nodeId,
    fields.peerId,
    fields.listenAddr,
    [...fields.knownAddrs],
    fields.timestamp,
    signature,
  ]);
}

export function decodeHello(b: Bytes): Hello {
  const t = readTuple(decodeValue(b, 'Hello'), 8, 'Hello');
  return {
    mspId: readText(t[0], 'Hello.mspId'),
    certPem: readText(t[1], 'Hello.certPem'),
    nodeId: readText(t[2], 'Hello.nodeId'),
    peerId: readText(t[3], 'Hello.peerId'),
    listenAddr: readText(t[4], 'Hello.listenAddr'),
    knownAddrs: readList(t[5], 'Hello.knownAddrs', readText, 1024),
    timestamp: readUint(t[6], 'Hello.timestamp'),
    signature: readBytes(t[7], 'Hello.signature'),
  };
}

export function helloRejected(reason: string): LoomError {
  return new LoomError(GossipErrorCode.HANDSHAKE_REJECTED, `gossip handshake rejected: ${reason}`, {
    httpStatus: 403,
    details: { reason },
  });
}

/**
 * Checks a hello's form, peer id binding, freshness and signature (not membership: the caller checks
 * the identity against its channels' MSPs).
 */
export function verifyHello(bytes: Bytes, expect: { remotePeerId: string; now: number; maxSkewMs?: number }): Hello {
  let h: Hello;
  try {
    h = decodeHello(bytes);
  } catch (e) {
    throw helloRejected(`malformed: ${(e as Error).message}`);
  }
  if (h.peerId !== expect.remotePeerId)
    throw helloRejected(`peer id ${h.peerId} is not the connection's ${expect.remotePeerId}`);
  const skew = expect.maxSkewMs ?? HELLO_MAX_SKEW_MS;
  if (Math.abs(expect.now - h.timestamp) > skew) throw helloRejected(`stale timestamp ${h.timestamp}`);
  try {
    verifyOrThrow(h.certPem, helloSignedBytes(h), h.signature);
  } catch (e) {
    throw helloRejected(`bad signature: ${(e as Error).message}`);
  }
  return h;
}

export type MessageKind = 'req' | 'push';

export interface GossipFrame {
  readonly kind: MessageKind;
  readonly channel: string;
  readonly protocol: string;
  readonly data: Bytes;
}

export function encodeMessage(m: GossipFrame): Bytes {
  return encodeValue([m.kind, m.channel, m.protocol, m.data]);
}

export function decodeMessage(b: Bytes): GossipFrame {
  const t = readTuple(decodeValue(b, 'GossipMessage'), 4, 'GossipMessage');
  const kind = readText(t[0], 'GossipMessage.kind');
  if (kind !== 'req' && kind !== 'push') throw new Error(`unknown message kind ${kind}`);
  return {
    kind,
    channel: readText(t[1], 'GossipMessage.channel'),
    protocol: readText(t[2], 'GossipMessage.protocol'),
    data: readBytes(t[3], 'GossipMessage.data'),
  };
}

export function encodeResponse(r: { ok: true; data: Bytes } | { ok: false; code: string; message: string }): Bytes {
  return r.ok ? encodeValue([true, r.data]) : encodeValue([false, `${r.code}: ${r.message}`]);
}

export function decodeResponse(b: Bytes): { ok: true; data: Bytes } | { ok: false; message: string } {
  const t = readTuple(decodeValue(b, 'GossipResponse'), 2, 'GossipResponse');
  return readBool(t[0], 'GossipResponse.ok')
    ? { ok: true, data: readBytes(t[1], 'GossipResponse.data') }
    : { ok: false, message: readText(t[1], 'GossipResponse.message') };
}

// ---- block dissemination protocols (payloads of the messages above) ------------------------------

export const ALIVE_PROTOCOL = 'loom/alive/1';
export const BLOCK_PUSH_PROTOCOL = 'loom/block-push/1';
export const BLOCK_RANGE_PROTOCOL = 'loom/block-range/1';
export const PRIVDATA_PROTOCOL = 'loom/state-privdata/1';

/** Heartbeat: who I am, how high my ledger is, whether I may lead my org's delivery. */
export interface Alive {
  readonly height: number;
  /** `auto`, `true` (static leader) or `false` (never leads while a leader is alive). */
  readonly leadership: 'auto' | 'true' | 'false';
  /** True while this peer pulls blocks from the orderers. */
  readonly pulling: boolean;
}

export function encodeAlive(a: Alive): Bytes {
  return encodeValue([a.height, a.leadership, a.pulling]);
}

export function decodeAlive(b: Bytes): Alive {
  const t = readTuple(decodeValue(b, 'Alive'), 3, 'Alive');
  const leadership = readText(t[1], 'Alive.leadership');
  if (leadership !== 'auto' && leadership !== 'true' && leadership !== 'false') throw new Error('bad leadership');
  return { height: readUint(t[0], 'Alive.height'), leadership, pulling: readBool(t[2], 'Alive.pulling') };
}

export function encodeRangeRequest(r: { from: number; count: number }): Bytes {
  return encodeValue([r.from, r.count]);
}

export function decodeRangeRequest(b: Bytes): { from: number; count: number } {
  const t = readTuple(decodeValue(b, 'BlockRange'), 2, 'BlockRange');
  return { from: readUint(t[0], 'BlockRange.from'), count: readUint(t[1], 'BlockRange.count') };
}

/** A range answer: `[height, blocks]` (the responder's height, then consecutive blocks from `from`). */
export function encodeRangeResponse(r: { height: number; blocks: readonly Bytes[] }): Bytes {
  return encodeValue([r.height, [...r.blocks]]);
}

export function decodeRangeResponse(b: Bytes): { height: number; blocks: Bytes[] } {
  const t = readTuple(decodeValue(b, 'BlockRangeResponse'), 2, 'BlockRangeResponse');
  return {
    height: readUint(t[0], 'BlockRangeResponse.height'),
    blocks: readList(t[1], 'BlockRangeResponse.blocks', readBytes, 10_000),
  };
}

/** A private data request during state transfer: `[blockNumber]`; answer: `[present, bytes]`. */
export function encodePrivateDataRequest(blockNumber: number): Bytes {
  return encodeValue([blockNumber]);
}

export function decodePrivateDataRequest(b: Bytes): number {
  return readUint(readTuple(decodeValue(b, 'PrivateDataRequest'), 1, 'PrivateDataRequest')[0], 'blockNumber');
}

export function encodePrivateDataResponse(data: Bytes | undefined): Bytes {
  return encodeValue(data ? [true, data] : [false, new Uint8Array(0)]);
}

export function decodePrivateDataResponse(b: Bytes): Bytes | undefined {
  const t = readTuple(decodeValue(b, 'PrivateDataResponse'), 2, 'PrivateDataResponse');
  return readBool(t[0], 'present') ? readBytes(t[1], 'data') : undefined;
}
