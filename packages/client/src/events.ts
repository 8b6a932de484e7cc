/** Event types the SDK hands to applications. Portable. */
import type { Block } from '@loom/common/portable';
import type { Checkpointer } from './checkpointer.js';

export interface ChaincodeEvent {
  readonly blockNumber: number;
  readonly transactionId: string;
  readonly chaincodeName: string;
  readonly eventName: string;
  readonly payload: Uint8Array;
}

/** A committed block, validation codes filled by the peer that delivered it. */
export interface BlockEvent {
  readonly blockNumber: number;
  readonly block: Block;
}

/** An async iterable whose underlying stream `close()` ends. */
export interface CloseableAsyncIterable<T> extends AsyncIterable<T> {
  close(): void;
}

export interface EventsOptions {
  /** Block to start from when there is no checkpoint; default: the next block committed. */
  readonly startBlock?: number;
  /** Resume after the position it holds (takes precedence over `startBlock`). */
  readonly checkpoint?: Checkpointer;
}
