import type { ProgressState } from './types.js';

/** Sliding window of append messages in flight to one follower, by the last index each carried. */
export class Inflights {
  readonly #capacity: number;
  #buffer: number[] = [];

  constructor(capacity: number) {
    this.#capacity = capacity;
  }

  get count(): number {
    return this.#buffer.length;
  }

  full(): boolean {
    return this.#buffer.length >= this.#capacity;
  }

  add(lastIndex: number): void {
    this.#buffer.push(lastIndex);
  }

  /** Frees every message whose entries the follower acknowledged (last index ≤ `index`). */
  freeLE(index: number): void {
    let n = 0;
    while (n < this.#buffer.length && this.#buffer[n]! <= index) n++;
    if (n > 0) this.#buffer = this.#buffer.slice(n);
  }

  freeFirstOne(): void {
    this.#buffer.shift();
  }

  reset(): void {
    this.#buffer = [];
  }
}

/**
 * The leader's view of one member's log. `probe`: one append at a time until the match point is
 * found; `replicate`: optimistic pipelining within the inflight window; `snapshot`: waiting for a
 * snapshot to be installed.
 */
export class Progress {
  match = 0;
  next: number;
  state: ProgressState = 'probe';
  pendingSnapshot = 0;
  /** Ticks since the snapshot was sent; lets the leader retry one that was lost. */
  snapshotTicks = 0;
  /** In probe state: an append was sent and not answered yet. */
  probeSent = false;
  /** Heard from since the last check-quorum round. */
  recentActive = false;
  isLearner: boolean;
  readonly inflights: Inflights;

  constructor(next: number, maxInflight: number, isLearner: boolean) {
    this.next = next;
    this.isLearner = isLearner;
    this.inflights = new Inflights(maxInflight);
  }

  #reset(state: ProgressState): void {
    this.state = state;
    this.probeSent = false;
    this.pendingSnapshot = 0;
    this.snapshotTicks = 0;
    this.inflights.reset();
  }

  becomeProbe(): void {
    if (this.state === 'snapshot') {
      const pending = this.pendingSnapshot;
      this.#reset('probe');
      this.next = Math.max(this.match + 1, pending + 1);
    } else {
      this.#reset('probe');
      this.next = this.match + 1;
    }
  }

  /** The snapshot was lost or refused: start over from the last known match. */
  snapshotFailed(): void {
    this.#reset('probe');
    this.next = this.match + 1;
  }

  becomeReplicate(): void {
    this.#reset('replicate');
    this.next = this.match + 1;
  }

  becomeSnapshot(index: number): void {
    this.#reset('snapshot');
    this.pendingSnapshot = index;
  }

  /** Records an acknowledgement of everything up to `index`; false if it told us nothing new. */
  maybeUpdate(index: number): boolean {
    let updated = false;
    if (this.match < index) {
      this.match = index;
      updated = true;
      this.probeSent = false;
    }
    this.next = Math.max(this.next, index + 1);
    return updated;
  }

  /**
   * A rejection of the append at `rejected`; `matchHint` is where the follower's log may match.
   * False if the rejection is stale.
   */
  maybeDecrTo(rejected: number, matchHint: number): boolean {
    if (this.state === 'replicate') {
      if (rejected <= this.match) return false;
      this.next = this.match + 1;
      return true;
    }
    if (this.next - 1 !== rejected) return false;
    this.next = Math.max(Math.min(rejected, matchHint + 1), this.match + 1);
    this.probeSent = false;
    return true;
  }

  isPaused(): boolean {
    switch (this.state) {
      case 'probe':
        return this.probeSent;
      case 'replicate':
        return this.inflights.full();
      case 'snapshot':
        return true;
    }
  }
}
