import { type ConfState, type Entry, type HardState, RaftError, type Snapshot } from './types.js';

/**
 * What the node reads of its own durable state. The node never writes through it: the caller
 * persists what a Ready hands it and then updates the view (for the in-memory one: `append`,
 * `setHardState`, `applySnapshot`, `compact`).
 */
export interface RaftStorage {
  hardState(): HardState;
  /** The latest snapshot; index 0 when there is none. */
  snapshot(): Snapshot;
  /** Index of the first entry still held (snapshot index + 1). */
  firstIndex(): number;
  /** Index of the last entry held, or the snapshot index when the log is empty. */
  lastIndex(): number;
  /** Term of the entry at `index`, defined for [snapshot index, lastIndex]. */
  term(index: number): number | undefined;
  /** Entries in [lo, hi), lo ≥ firstIndex, hi ≤ lastIndex + 1. */
  entries(lo: number, hi: number): Entry[];
}

export const EMPTY_CONF_STATE: ConfState = { voters: [], learners: [] };
const EMPTY_SNAPSHOT: Snapshot = {
  metadata: { index: 0, term: 0, confState: EMPTY_CONF_STATE },
  data: new Uint8Array(),
};

export class MemoryRaftStorage implements RaftStorage {
  #hardState: HardState = { term: 0, vote: '', commit: 0 };
  #snapshot: Snapshot = EMPTY_SNAPSHOT;
  /** #entries[i] has index #snapshot.metadata.index + 1 + i. */
  #entries: Entry[] = [];

  hardState(): HardState {
    return this.#hardState;
  }

  snapshot(): Snapshot {
    return this.#snapshot;
  }

  firstIndex(): number {
    return this.#snapshot.metadata.index + 1;
  }

  lastIndex(): number {
    return this.#snapshot.metadata.index + this.#entries.length;
  }

  term(index: number): number | undefined {
    const offset = this.#snapshot.metadata.index;
    if (index === offset) return this.#snapshot.metadata.term;
    return this.#entries[index - offset - 1]?.term;
  }

  entries(lo: number, hi: number): Entry[] {
    const offset = this.#snapshot.metadata.index + 1;
    if (lo < offset) throw new RaftError('COMPACTED', `entries from ${lo} were compacted (first index ${offset})`);
    if (hi > this.lastIndex() + 1) throw new RaftError('UNAVAILABLE', `entries to ${hi - 1} are beyond the log`);
    return this.#entries.slice(lo - offset, hi - offset);
  }

  setHardState(hardState: HardState): void {
    this.#hardState = hardState;
  }

  /** Appends entries, replacing any held suffix that starts at `entries[0].index`. */
  append(entries: readonly Entry[]): void {
    const first = entries[0];
    if (first === undefined) return;
    const offset = this.#snapshot.metadata.index + 1;
    if (first.index > this.lastIndex() + 1) {
      throw new RaftError('INVALID_ARGUMENT', `gap: appending ${first.index} after ${this.lastIndex()}`);
    }
    // Entries already covered by the snapshot are committed and need not be kept.
    const skip = Math.max(0, offset - first.index);
    if (skip >= entries.length) return;
    const start = first.index + skip;
    this.#entries.length = start - offset;
    for (let i = skip; i < entries.length; i++) this.#entries.push(entries[i]!);
  }

  /** Replaces the whole log with a snapshot received from the leader. */
  applySnapshot(snapshot: Snapshot): void {
    if (snapshot.metadata.index <= this.#snapshot.metadata.index) return;
    this.#snapshot = snapshot;
    this.#entries = [];
  }

  /** Records a snapshot this node made (`RaftNode.compact`) and drops the entries it covers. */
  compact(snapshot: Snapshot): void {
    const index = snapshot.metadata.index;
    const offset = this.#snapshot.metadata.index;
    if (index <= offset) return;
    if (index > this.lastIndex()) throw new RaftError('UNAVAILABLE', `cannot compact to ${index} beyond the log`);
    this.#entries = this.#entries.slice(index - offset);
    this.#snapshot = snapshot;
  }
}
