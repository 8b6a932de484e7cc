/**
 * What a voter signs: its ConfigSignature over a proposal's ConfigUpdate bytes (a yes vote), and —
 * for the vote that approves — the CONFIG_UPDATE envelope holding the update and the yes votes'
 * signatures. Signing is injected (`sign(message) → DER signature`); nonces are passed in, so this
 * stays pure and portable.
 */
import type { Bytes } from '../encoding.js';
import { type ConfigSignature, encodeConfigUpdateEnvelope } from '../protocol/channel-config.js';
import {
  encodeChannelHeader,
  encodeEnvelope,
  encodeHeader,
  encodePayload,
  encodeSerializedIdentity,
  encodeSignatureHeader,
  HeaderType,
  type SerializedIdentity,
} from '../protocol/messages.js';
import { configSignatureSignedBytes } from '../protocol/transactions.js';

export type SignFn = (message: Bytes) => Bytes | Promise<Bytes>;

/** An admin's ConfigSignature over `configUpdate`. `nonce`: at least 24 random bytes. */
export async function signConfigUpdate(
  configUpdate: Bytes,
  signer: SerializedIdentity,
  sign: SignFn,
  nonce: Bytes,
): Promise<ConfigSignature> {
  const signatureHeader = encodeSignatureHeader({ creator: encodeSerializedIdentity(signer), nonce });
  return { signatureHeader, signature: await sign(configSignatureSignedBytes(signatureHeader, configUpdate)) };
}

/** A CONFIG_UPDATE envelope for the orderer, signed by `signer`. */
export async function buildConfigUpdateEnvelope(o: {
  readonly channelId: string;
  readonly configUpdate: Bytes;
  readonly signatures: readonly ConfigSignature[];
  readonly signer: SerializedIdentity;
  readonly sign: SignFn;
  readonly nonce: Bytes;
  readonly timestampMs: number;
}): Promise<Bytes> {
  const payload = encodePayload({
    header: encodeHeader({
      channelHeader: encodeChannelHeader({
        type: HeaderType.CONFIG_UPDATE,
        version: 1,
        channelId: o.channelId,
        txId: '',
        timestamp: o.timestampMs,
        extension: new Uint8Array(),
      }),
      signatureHeader: encodeSignatureHeader({ creator: encodeSerializedIdentity(o.signer), nonce: o.nonce }),
    }),
    data: encodeConfigUpdateEnvelope({ configUpdate: o.configUpdate, signatures: [...o.signatures] }),
  });
  return encodeEnvelope({ payload, signature: await o.sign(payload) });
}
