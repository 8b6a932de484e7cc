/** Small readers over blocks shared by orderers and peers. Pure. */
import { LoomError } from '../errors.js';
import { type ChannelConfig, decodeChannelConfig, decodeConfigEnvelope } from '../protocol/channel-config.js';
import {
  type Block,
  decodeChannelHeader,
  decodeEnvelope,
  decodeHeader,
  decodePayload,
  HeaderType,
} from '../protocol/messages.js';

/** The channel config a config block carries, or undefined for a normal block. */
export function decodeConfigEnvelopeFromBlock(block: Block): ChannelConfig | undefined {
  if (block.data.length !== 1) return undefined;
  const env = decodeEnvelope(block.data[0]!);
  const payload = decodePayload(env.payload);
  const ch = decodeChannelHeader(decodeHeader(payload.header).channelHeader);
  if (ch.type !== HeaderType.CONFIG) return undefined;
  const cfg = decodeChannelConfig(decodeConfigEnvelope(payload.data).config);
  if (cfg.channelId !== ch.channelId) {
    throw new LoomError('CONFIG_BLOCK_INVALID', `config block for ${ch.channelId} carries config of ${cfg.channelId}`);
  }
  return cfg;
}
