/**
 * Where an event listener has got to, so a restarted application resumes with no gap and no
 * duplicate (fabric-gateway's Checkpointer). The position is the next block to read and, within it,
 * the last transaction already processed. Portable; a file-backed one is in file-checkpointer.ts.
 */
import type { ChaincodeEvent } from './events.js';

export interface Checkpointer {
  /** The block to resume from; undefined before anything was checkpointed. */
  getBlockNumber(): number | undefined;
  /** The last transaction processed in `getBlockNumber()`; undefined when none of it was. */
  getTransactionId(): string | undefined;
  /** Block `blockNumber` is fully processed: resume from the next one. */
  checkpointBlock(blockNumber: number): Promise<void>;
  /** Transaction `transactionId` of block `blockNumber` is processed: resume after it. */
  checkpointTransaction(blockNumber: number, transactionId: string): Promise<void>;
  checkpointChaincodeEvent(event: ChaincodeEvent): Promise<void>;
}

export interface CheckpointState {
  readonly blockNumber: number | undefined;
  readonly transactionId: string | undefined;
}

/** Holds the position in memory: survives reconnecting, not restarting. */
export class InMemoryCheckpointer implements Checkpointer {
  #state: CheckpointState = { blockNumber: undefined, transactionId: undefined };

  getBlockNumber(): number | undefined {
    return this.#state.blockNumber;
  }
  getTransactionId(): string | undefined {
    return this.#state.transactionId;
  }
  async checkpointBlock(blockNumber: number): Promise<void> {
    await this.save({ blockNumber: blockNumber + 1, transactionId: undefined });
  }
  async checkpointTransaction(blockNumber: number, transactionId: string): Promise<void> {
    await this.save({ blockNumber, transactionId });
  }
  async checkpointChaincodeEvent(event: ChaincodeEvent): Promise<void> {
    await this.checkpointTransaction(event.blockNumber, event.transactionId);
  }
  /** Subclasses persist the state first, then call this. */
  protected async save(state: CheckpointState): Promise<void> {
    this.#state = state;
  }
  protected restore(state: CheckpointState): void {
    this.#state = state;
  }
}

export const checkpointers = {
  inMemory: (): Checkpointer => new InMemoryCheckpointer(),
};
