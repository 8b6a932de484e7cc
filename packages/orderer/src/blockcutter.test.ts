import {
  encodeChannelHeader,
  encodeEnvelope,
  encodeHeader,
  encodePayload,
  encodeSignatureHeader,
  HeaderType,
} from '@loom/common';
import { describe, expect, it } from 'vitest';
import { type BatchLimits, createBlockCutter, isConfigEnvelope } from './blockcutter.js';

const limits: BatchLimits = { maxMessageCount: 3, preferredMaxBytes: 100, absoluteMaxBytes: 1000, batchTimeoutMs: 50 };

function raw(size: number, fill = 1): Uint8Array {
  return new Uint8Array(size).fill(fill);
}

function envelope(type: number): Uint8Array {
  const header = encodeHeader({
    channelHeader: encodeChannelHeader({
      type: type as never,
      version: 1,
      channelId: 'ch',
      txId: '',
      timestamp: 1,
      extension: new Uint8Array(),
    }),
    signatureHeader: encodeSignatureHeader({ creator: new Uint8Array([1]), nonce: new Uint8Array(24) }),
  });
  return encodeEnvelope({ payload: encodePayload({ header, data: new Uint8Array() }), signature: new Uint8Array(8) });
}

describe('BlockCutter', () => {
  it('cuts at MaxMessageCount', () => {
    const c = createBlockCutter(limits, () => 0);
    expect(c.ordered(raw(10), false)).toEqual({ batches: [], pending: true });
    expect(c.ordered(raw(10), false)).toEqual({ batches: [], pending: true });
    const r = c.ordered(raw(10), false);
    expect(r.pending).toBe(false);
    expect(r.batches).toHaveLength(1);
    expect(r.batches[0]).toHaveLength(3);
    expect(c.pendingCount).toBe(0);
  });

  it('cuts the pending batch before it would exceed PreferredMaxBytes', () => {
    const c = createBlockCutter(limits, () => 0);
    c.ordered(raw(60, 1), false);
    const r = c.ordered(raw(60, 2), false);
    expect(r.batches).toEqual([[raw(60, 1)]]);
    expect(r.pending).toBe(true);
    expect(c.pendingBytes).toBe(60);
  });

  it('sends an envelope larger than PreferredMaxBytes alone, after the pending batch', () => {
    const c = createBlockCutter(limits, () => 0);
    c.ordered(raw(10, 1), false);
    const r = c.ordered(raw(150, 2), false);
    expect(r.batches).toEqual([[raw(10, 1)], [raw(150, 2)]]);
    expect(r.pending).toBe(false);
    // With nothing pending, the large envelope is the only batch.
    expect(c.ordered(raw(150, 3), false).batches).toEqual([[raw(150, 3)]]);
  });

  it('puts config transactions in blocks of their own', () => {
    const c = createBlockCutter({ ...limits, maxMessageCount: 10, preferredMaxBytes: 10_000 }, () => 0);
    const normal = envelope(HeaderType.ENDORSER_TRANSACTION);
    const config = envelope(HeaderType.CONFIG);
    const update = envelope(HeaderType.CONFIG_UPDATE);
    expect(isConfigEnvelope(normal)).toBe(false);
    expect(isConfigEnvelope(config)).toBe(true);
    expect(isConfigEnvelope(update)).toBe(true);
    expect(isConfigEnvelope(raw(5))).toBe(false);
    c.ordered(normal);
    const r = c.ordered(config);
    expect(r.batches).toEqual([[normal], [config]]);
    expect(r.pending).toBe(false);
    expect(c.ordered(update).batches).toEqual([[update]]);
  });

  it('reports when the pending batch started, for the caller-driven BatchTimeout', () => {
    let now = 1000;
    const c = createBlockCutter(limits, () => now);
    expect(c.pendingSince()).toBeUndefined();
    c.ordered(raw(10), false);
    now = 1020;
    c.ordered(raw(10), false);
    expect(c.pendingSince()).toBe(1000);
    now = 1050;
    // The timer fired: the caller cuts whatever is pending.
    expect(c.cut()).toHaveLength(2);
    expect(c.pendingSince()).toBeUndefined();
    expect(c.cut()).toEqual([]);
    c.ordered(raw(10), false);
    expect(c.pendingSince()).toBe(1050);
  });

  it('applies new limits from the next envelope', () => {
    const c = createBlockCutter(limits, () => 0);
    c.setLimits({ ...limits, maxMessageCount: 1 });
    expect(c.ordered(raw(10), false).batches).toHaveLength(1);
  });
});
