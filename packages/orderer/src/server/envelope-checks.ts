/**
 * The checks an orderer applies to an envelope before ordering it (broadcast) or before serving
 * blocks for it (deliver), in this order:
 *   1. size ≤ the channel's AbsoluteMaxBytes                     ORDERER_ENVELOPE_TOO_LARGE 413
 *   2. it decodes: Envelope → Payload → Header → Channel/SignatureHeader → creator   ORDERER_BAD_ENVELOPE 400
 *   3. the channel header names this channel and an allowed type ORDERER_BAD_ENVELOPE 400
 *   4. the creator is valid in the channel's MSPs                MSP_* 400/403
 *   5. the creator's signature over `Envelope.payload`            SIGNATURE_INVALID / SIGNATURE_HIGH_S 401
 *   6. the policy: `Writers` (broadcast), `Readers` (deliver)     POLICY_NOT_SATISFIED 403
 * CONFIG_UPDATE: the creator must be a writer of the channel (application or orderer `Writers`), and
 * the update itself must be valid against the config in force (validateConfigUpdateEnvelope: base
 * sequence, versions, the modification policy of every changed element over the admins' signatures),
 * answered as CONFIG_* 400/403/409 naming the policy that fell short. The leader checks it again
 * when it orders it.
 */
import {
  type ChannelHeader,
  decodeChannelHeader,
  decodeConfigUpdateEnvelope,
  decodeEnvelope,
  decodeHeader,
  decodePayload,
  decodeSerializedIdentity,
  decodeSignatureHeader,
  HeaderType,
  isLoomError,
  LoomError,
  ordererPoliciesOf,
  validateConfigUpdateEnvelope,
} from '@loom/common';
import type { ValidatedIdentity } from '@loom/common/msp/types';
import { OrdererErrorCode } from '../chain.js';
import type { ChannelResources } from '../channel-resources.js';

export interface CheckedEnvelope {
  readonly channelHeader: ChannelHeader;
  readonly creator: ValidatedIdentity;
  /** Payload.data */
  readonly data: Uint8Array;
}

function bad(message: string, cause?: unknown): LoomError {
  return new LoomError(OrdererErrorCode.BAD_ENVELOPE, message, { httpStatus: 400, cause });
}

export function checkEnvelope(
  bytes: Uint8Array,
  channel: string,
  resources: ChannelResources,
  allowed: readonly number[],
): CheckedEnvelope {
  const max = resources.limits.absoluteMaxBytes;
  if (bytes.length > max) {
    throw new LoomError(
      OrdererErrorCode.ENVELOPE_TOO_LARGE,
      `envelope of ${bytes.length} bytes exceeds AbsoluteMaxBytes ${max}`,
      {
        httpStatus: 413,
        details: { size: bytes.length, absoluteMaxBytes: max },
      },
    );
  }
  let env: ReturnType<typeof decodeEnvelope>;
  let channelHeader: ChannelHeader;
  let creatorBytes: Uint8Array;
  let data: Uint8Array;
  try {
    env = decodeEnvelope(bytes);
    const payload = decodePayload(env.payload);
    data = payload.data;
    const header = decodeHeader(payload.header);
    channelHeader = decodeChannelHeader(header.channelHeader);
    creatorBytes = decodeSignatureHeader(header.signatureHeader).creator;
  } catch (e) {
    throw bad(`malformed envelope: ${(e as Error).message}`, e);
  }
  if (channelHeader.channelId !== channel) {
    throw bad(`envelope is for channel '${channelHeader.channelId}', sent to '${channel}'`);
  }
  if (!allowed.includes(channelHeader.type)) {
    throw bad(`header type ${channelHeader.type} is not accepted here`);
  }
  let creator: ValidatedIdentity;
  try {
    const serialized = decodeSerializedIdentity(creatorBytes);
    creator = resources.msps.verifySignature(serialized, env.payload, env.signature);
  } catch (e) {
    if (isLoomError(e) && e.code.startsWith('ENCODING_')) throw bad(`malformed creator: ${e.message}`, e);
    throw e;
  }
  return { channelHeader, creator, data };
}

/** Broadcast: Writers for transactions; an org admin for config updates (see above). */
export function authorizeBroadcast(checked: CheckedEnvelope, resources: ChannelResources): void {
  if (checked.channelHeader.type === HeaderType.CONFIG_UPDATE) {
    const c = checked.creator;
    if (!resources.policies.evaluate('Writers', [c]).satisfied && !ordererWriter(resources, c)) {
      throw new LoomError('POLICY_NOT_SATISFIED', 'a config update must be submitted by a writer of the channel', {
        httpStatus: 403,
        details: { policy: 'Writers', mspId: c.mspId },
      });
    }
    let cue: ReturnType<typeof decodeConfigUpdateEnvelope>;
    try {
      cue = decodeConfigUpdateEnvelope(checked.data);
    } catch (e) {
      throw bad(`malformed config update: ${(e as Error).message}`, e);
    }
    validateConfigUpdateEnvelope(resources.config, cue, resources.msps);
    return;
  }
  resources.policies.require('Writers', [checked.creator]);
}

/** Whether `c` satisfies the orderer section's Writers; a channel whose orderer section has none has no such writer. */
function ordererWriter(resources: ChannelResources, c: ValidatedIdentity): boolean {
  const policies = ordererWriters(resources);
  try {
    return policies.evaluate('Writers', [c]).satisfied;
  } catch (e) {
    if (isLoomError(e) && e.code === 'POLICY_NOT_FOUND') return false;
    throw e;
  }
}

const ordererPolicyCache = new WeakMap<ChannelResources, ReturnType<typeof ordererPoliciesOf>>();
function ordererWriters(resources: ChannelResources) {
  let p = ordererPolicyCache.get(resources);
  if (!p) {
    p = ordererPoliciesOf(resources.config);
    ordererPolicyCache.set(resources, p);
  }
  return p;
}
