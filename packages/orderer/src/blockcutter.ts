/**
 * The block cutter: a pure rule that turns a stream of ordered envelopes into batches (Fabric's
 * `blockcutter`). No timers: the caller runs the BatchTimeout timer from `pendingSince()` and calls
 * `cut()` when it fires; the clock is injected so the start time of a batch is deterministic in tests.
 *
 * Rules, in the order they are applied to each envelope:
 * 1. A config transaction (CONFIG / CONFIG_UPDATE) is isolated: the pending batch is cut, then the
 *    config transaction becomes a batch of its own.
 * 2. An envelope larger than PreferredMaxBytes is isolated the same way.
 * 3. If adding the envelope would push the pending batch over PreferredMaxBytes, the pending batch is
 *    cut first.
 * 4. The envelope joins the pending batch; at MaxMessageCount the pending batch is cut.
 * AbsoluteMaxBytes is enforced earlier, at broadcast (ORDERER_ENVELOPE_TOO_LARGE).
 */
import { type Bytes, decodeChannelHeader, decodeEnvelope, decodeHeader, decodePayload, HeaderType } from '@loom/common';

export interface BatchLimits {
  readonly maxMessageCount: number;
  readonly preferredMaxBytes: number;
  readonly absoluteMaxBytes: number;
  readonly batchTimeoutMs: number;
}

export interface OrderedResult {
  /** Batches cut by this envelope, in order (zero, one or two). */
  readonly batches: Bytes[][];
  /** True when envelopes are waiting in the pending batch (start the BatchTimeout timer). */
  readonly pending: boolean;
}

/** Milliseconds; injected so the cutter never reads the wall clock. */
export type Clock = () => number;

/** True for CONFIG and CONFIG_UPDATE envelopes; false for anything else, including malformed bytes. */
export function isConfigEnvelope(envelope: Bytes): boolean {
  try {
    const payload = decodePayload(decodeEnvelope(envelope).payload);
    const type = decodeChannelHeader(decodeHeader(payload.header).channelHeader).type;
    return type === HeaderType.CONFIG || type === HeaderType.CONFIG_UPDATE;
  } catch {
    return false;
  }
}

export interface BlockCutter {
  /** Orders one envelope; `isConfig` skips decoding when the caller already knows the header type. */
  ordered(envelope: Bytes, isConfig?: boolean): OrderedResult;
  /** Cuts and returns the pending batch (empty when none). */
  cut(): Bytes[];
  /** When the pending batch received its first envelope, or undefined when nothing is pending. */
  pendingSince(): number | undefined;
  readonly pendingCount: number;
  readonly pendingBytes: number;
  /** New limits from a config block; they apply from the next envelope. */
  setLimits(limits: BatchLimits): void;
  readonly limits: BatchLimits;
}

export function createBlockCutter(limits: BatchLimits, clock: Clock): BlockCutter {
  return new BatchCutter(limits, clock);
}

class BatchCutter implements BlockCutter {
  #limits: BatchLimits;
  readonly #clock: Clock;
  #pending: Bytes[] = [];
  #pendingBytes = 0;
  #since: number | undefined;

  constructor(limits: BatchLimits, clock: Clock) {
    this.#limits = limits;
    this.#clock = clock;
  }

  get limits(): BatchLimits {
    return this.#limits;
  }

  get pendingCount(): number {
    return this.#pending.length;
  }

  get pendingBytes(): number {
    return this.#pendingBytes;
  }

  setLimits(limits: BatchLimits): void {
    this.#limits = limits;
  }

  pendingSince(): number | undefined {
    return this.#since;
  }

  ordered(envelope: Bytes, isConfig: boolean = isConfigEnvelope(envelope)): OrderedResult {
    const batches: Bytes[][] = [];
    const size = envelope.length;
    if (isConfig || size > this.#limits.preferredMaxBytes) {
      if (this.#pending.length > 0) batches.push(this.cut());
      batches.push([envelope]);
      return { batches, pending: false };
    }
    if (this.#pending.length > 0 && this.#pendingBytes + size > this.#limits.preferredMaxBytes) {
      batches.push(this.cut());
    }
    if (this.#pending.length === 0) this.#since = this.#clock();
    this.#pending.push(envelope);
    this.#pendingBytes += size;
    if (this.#pending.length >= this.#limits.maxMessageCount) batches.push(this.cut());
    return { batches, pending: this.#pending.length > 0 };
  }

  cut(): Bytes[] {
    const batch = this.#pending;
    this.#pending = [];
    this.#pendingBytes = 0;
    this.#since = undefined;
    return batch;
  }
}
