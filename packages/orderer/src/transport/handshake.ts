/**
 * The signed handshake that binds a consenter's libp2p identity to its orderer certificate.
 *
 * On a new cluster stream each side sends `[certPem, peerId, channel, timestamp, signature]`, the
 * signature being its orderer ECDSA key's over `encode(["loom/cluster-handshake/1", certPem, peerId,
 * channel, timestamp])`. The receiver accepts only if: the certificate is the `identityCert` of one of
 * the channel's consenters; the signature verifies under that certificate's key; `peerId` is the
 * connection's authenticated (noise) remote peer; and the timestamp is within the allowed skew.
 * Otherwise the stream is closed and the reason logged.
 */
import { decodeValue, encodeValue, LoomError, readBytes, readText, readTuple, readUint } from '@loom/common';
import { verifyOrThrow } from '@loom/common/crypto/signing';
import type { ClusterMember } from './types.js';

export const HANDSHAKE_DOMAIN = 'loom/cluster-handshake/1';
export const HANDSHAKE_MAX_SKEW_MS = 60_000;

export interface Handshake {
  readonly certPem: string;
  readonly peerId: string;
  readonly channel: string;
  readonly timestamp: number;
  readonly signature: Uint8Array;
}

export const HandshakeErrorCode = 'CLUSTER_HANDSHAKE_REJECTED';

export function handshakeSignedBytes(h: Omit<Handshake, 'signature'>): Uint8Array {
  return encodeValue([HANDSHAKE_DOMAIN, h.certPem, h.peerId, h.channel, h.timestamp]);
}

export async function makeHandshake(
  signer: { sign(m: Uint8Array): Uint8Array | Promise<Uint8Array> },
  fields: Omit<Handshake, 'signature'>,
): Promise<Uint8Array> {
  const signature = await signer.sign(handshakeSignedBytes(fields));
  return encodeValue([fields.certPem, fields.peerId, fields.channel, fields.timestamp, signature]);
}

export function decodeHandshake(b: Uint8Array): Handshake {
  const t = readTuple(decodeValue(b, 'Handshake'), 5, 'Handshake');
  return {
    certPem: readText(t[0], 'Handshake.certPem'),
    peerId: readText(t[1], 'Handshake.peerId'),
    channel: readText(t[2], 'Handshake.channel'),
    timestamp: readUint(t[3], 'Handshake.timestamp'),
    signature: readBytes(t[4], 'Handshake.signature'),
  };
}

const normalizePem = (pem: string) => pem.replace(/\r/g, '').trim();

function reject(reason: string): LoomError {
  return new LoomError(HandshakeErrorCode, `cluster handshake rejected: ${reason}`, {
    httpStatus: 403,
    details: { reason },
  });
}

/**
 * Checks a received handshake; returns the consenter it authenticates. `members` is the channel's
 * consenter set (undefined: the channel is unknown here).
 */
export function verifyHandshake(
  bytes: Uint8Array,
  expect: {
    remotePeerId: string;
    channel?: string;
    members: (channel: string) => readonly ClusterMember[] | undefined;
    now: number;
    maxSkewMs?: number;
  },
): { handshake: Handshake; member: ClusterMember } {
  let h: Handshake;
  try {
    h = decodeHandshake(bytes);
  } catch (e) {
    throw reject(`malformed: ${(e as Error).message}`);
  }
  if (expect.channel !== undefined && h.channel !== expect.channel)
    throw reject(`channel ${h.channel}, expected ${expect.channel}`);
  const members = expect.members(h.channel);
  if (!members) throw reject(`unknown channel ${h.channel}`);
  const cert = normalizePem(h.certPem);
  const member = members.find((m) => normalizePem(m.identityCert) === cert);
  if (!member) throw reject(`certificate is not a consenter of ${h.channel}`);
  if (h.peerId !== expect.remotePeerId)
    throw reject(`peer id ${h.peerId} is not the connection's ${expect.remotePeerId}`);
  const skew = expect.maxSkewMs ?? HANDSHAKE_MAX_SKEW_MS;
  if (Math.abs(expect.now - h.timestamp) > skew) throw reject(`stale timestamp ${h.timestamp} (now ${expect.now})`);
  try {
    verifyOrThrow(h.certPem, handshakeSignedBytes(h), h.signature);
  } catch (e) {
    throw reject(`bad signature: ${(e as Error).message}`);
  }
  return { handshake: h, member };
}
