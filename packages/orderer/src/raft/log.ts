import type { RaftStorage } from './storage.js';
import { type Entry, RaftError, type Snapshot } from './types.js';

/**
 * The node's view of its log: what storage holds, plus an unstable tail (and possibly a snapshot)
 * not yet handed to the caller for persisting. Unstable entries shadow stored ones from
 * `#offset` on, which is how a conflicting suffix gets replaced.
 */
export class RaftLog {
  readonly #storage: RaftStorage;
  #unstableSnapshot: Snapshot | undefined;
  #unstable: Entry[] = [];
  /** Index of #unstable[0]. */
  #offset: number;
  committed: number;
  applied: number;

  constructor(storage: RaftStorage, applied: number) {
    this.#storage = storage;
    this.#offset = storage.lastIndex() + 1;
    this.committed = storage.hardState().commit;
    const snapshotIndex = storage.snapshot().metadata.index;
    if (this.committed < snapshotIndex) this.committed = snapshotIndex;
    this.applied = Math.min(Math.max(applied, snapshotIndex), this.committed);
  }

  firstIndex(): number {
    if (this.#unstableSnapshot !== undefined) return this.#unstableSnapshot.metadata.index + 1;
    return this.#storage.firstIndex();
  }

  lastIndex(): number {
    if (this.#unstable.length > 0) return this.#offset + this.#unstable.length - 1;
    if (this.#unstableSnapshot !== undefined) return this.#unstableSnapshot.metadata.index;
    return this.#storage.lastIndex();
  }

  /** Term at `index`, or undefined when compacted away or beyond the log. */
  term(index: number): number | undefined {
    if (index >= this.#offset) return this.#unstable[index - this.#offset]?.term;
    const snap = this.#unstableSnapshot;
    if (snap !== undefined) return index === snap.metadata.index ? snap.metadata.term : undefined;
    if (index === 0) return 0;
    return this.#storage.term(index);
  }

  lastTerm(): number {
    return this.term(this.lastIndex()) ?? 0;
  }

  matchTerm(index: number, term: number): boolean {
    return this.term(index) === term;
  }

  /** Raft §5.4.1: a candidate's log is at least as up to date as ours. */
  isUpToDate(lastIndex: number, lastTerm: number): boolean {
    const ourTerm = this.lastTerm();
    return lastTerm > ourTerm || (lastTerm === ourTerm && lastIndex >= this.lastIndex());
  }

  /**
   * Entries in [lo, hi), at most `maxBytes` of data but at least one entry; undefined when `lo`
   * was compacted (the caller then needs a snapshot).
   */
  slice(lo: number, hi: number, maxBytes = Number.POSITIVE_INFINITY): Entry[] | undefined {
    if (lo < this.firstIndex()) return undefined;
    hi = Math.min(hi, this.lastIndex() + 1);
    if (lo >= hi) return [];
    const out: Entry[] = [];
    if (lo < this.#offset) {
      const stored = this.#storage.entries(lo, Math.min(hi, this.#offset));
      for (const e of stored) out.push(e);
    }
    for (let i = Math.max(lo, this.#offset); i < hi; i++) out.push(this.#unstable[i - this.#offset]!);
    if (maxBytes === Number.POSITIVE_INFINITY) return out;
    let size = 0;
    for (let i = 0; i < out.length; i++) {
      size += out[i]!.data.length;
      if (size > maxBytes && i > 0) return out.slice(0, i);
    }
    return out;
  }

  /**
   * Appends the leader's entries after `prevIndex`, truncating at the first conflict. Returns the
   * index of the last new entry and the entries actually written, or undefined when
   * `prevIndex/prevTerm` do not match.
   */
  maybeAppend(
    prevIndex: number,
    prevTerm: number,
    commit: number,
    entries: readonly Entry[],
  ): { lastNew: number; appended: readonly Entry[] } | undefined {
    if (!this.matchTerm(prevIndex, prevTerm)) return undefined;
    const lastNew = prevIndex + entries.length;
    let conflict = -1;
    for (let i = 0; i < entries.length; i++) {
      const e = entries[i]!;
      if (!this.matchTerm(e.index, e.term)) {
        conflict = i;
        break;
      }
    }
    let appended: readonly Entry[] = [];
    if (conflict >= 0) {
      const first = entries[conflict]!;
      if (first.index <= this.committed) {
        throw new Error(`raft: entry ${first.index} conflicts with committed entry (committed ${this.committed})`);
      }
      appended = entries.slice(conflict);
      this.append(appended);
    }
    this.commitTo(Math.min(commit, lastNew));
    return { lastNew, appended };
  }

  /** Appends to the unstable tail; entries[0] may overwrite from any index after the commit point. */
  append(entries: readonly Entry[]): void {
    const first = entries[0];
    if (first === undefined) return;
    const after = first.index;
    if (after === this.#offset + this.#unstable.length) {
      for (const e of entries) this.#unstable.push(e);
    } else if (after <= this.#offset) {
      // Replaces everything from `after`, including entries already in storage.
      this.#offset = after;
      this.#unstable = entries.slice();
    } else {
      this.#unstable = this.#unstable.slice(0, after - this.#offset);
      for (const e of entries) this.#unstable.push(e);
    }
  }

  commitTo(index: number): void {
    if (index > this.committed) {
      if (index > this.lastIndex()) throw new Error(`raft: commit ${index} is beyond last index ${this.lastIndex()}`);
      this.committed = index;
    }
  }

  /** The largest index ≤ `index` whose term is ≤ `term` (for fast backtracking). */
  findConflictByTerm(index: number, term: number): { index: number; term: number } {
    for (;;) {
      const t = this.term(index);
      if (t === undefined || t <= term) return { index, term: t ?? 0 };
      index--;
    }
  }

  /** Follower: replaces the log with a snapshot from the leader. */
  restore(snapshot: Snapshot): void {
    this.#unstableSnapshot = snapshot;
    this.#unstable = [];
    this.#offset = snapshot.metadata.index + 1;
    this.committed = snapshot.metadata.index;
  }

  unstableEntries(): readonly Entry[] {
    return this.#unstable;
  }

  unstableSnapshot(): Snapshot | undefined {
    return this.#unstableSnapshot;
  }

  /** The caller persisted everything up to (index, term): drop it from the unstable tail. */
  stableTo(index: number, term: number): void {
    if (this.term(index) !== term || index < this.#offset) return;
    const n = index - this.#offset + 1;
    this.#unstable = this.#unstable.slice(n);
    this.#offset = index + 1;
  }

  stableSnapshotTo(index: number): void {
    if (this.#unstableSnapshot?.metadata.index === index) this.#unstableSnapshot = undefined;
  }

  /** The latest snapshot to send a follower whose next entries were compacted. */
  snapshot(): Snapshot {
    return this.#unstableSnapshot ?? this.#storage.snapshot();
  }

  /** Committed entries not yet handed out for applying, starting after `from`. */
  nextCommitted(from: number): Entry[] {
    const lo = Math.max(from, this.firstIndex() - 1) + 1;
    if (lo > this.committed) return [];
    const out = this.slice(lo, this.committed + 1);
    if (out === undefined) throw new RaftError('COMPACTED', `committed entries from ${lo} were compacted`);
    return out;
  }

  hasNextCommitted(from: number): boolean {
    return this.committed > Math.max(from, this.firstIndex() - 1);
  }
}
