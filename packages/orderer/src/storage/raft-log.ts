/**
 * Durable Raft state for one channel: WAL entries, hard state and the latest snapshot, kept in a
 * KvStore and mirrored in memory (the Raft core reads its storage synchronously).
 *
 * Key layout (per channel; channel names never contain `/`):
 *   r/<channel>/hs              HardState (raft/codec.ts encoding)
 *   r/<channel>/snap            Snapshot  (raft/codec.ts encoding)
 *   r/<channel>/e/<index:016x>  Entry     (raft/codec.ts encoding); hex index keeps keys in log order
 *
 * `persist` writes everything one Ready hands over (snapshot, entries, hard state) in ONE atomic
 * batch and only then updates the in-memory view, so a crash leaves either the old or the new state.
 * A hard state that differs from the held one only in its commit index is not written on its own
 * (Raft's commit index is volatile; see persist).
 */
import {
  decodeEntry,
  decodeHardState,
  decodeSnapshot,
  encodeEntry,
  encodeHardState,
  encodeSnapshot,
} from '../raft/codec.js';
import { MemoryRaftStorage } from '../raft/storage.js';
import type { Entry, HardState, Snapshot } from '../raft/types.js';
import type { KvOp, KvStore } from './kv.js';

export const raftKeys = {
  hardState: (channel: string) => `r/${channel}/hs`,
  snapshot: (channel: string) => `r/${channel}/snap`,
  entry: (channel: string, index: number) => `r/${channel}/e/${index.toString(16).padStart(16, '0')}`,
  entriesFrom: (channel: string) => `r/${channel}/e/`,
  entriesEnd: (channel: string) => `r/${channel}/e0`,
  all: (channel: string) => [`r/${channel}/`, `r/${channel}0`] as const,
};

/** What one Ready asks to make durable. */
export interface RaftPersist {
  readonly hardState?: HardState | undefined;
  readonly entries?: readonly Entry[] | undefined;
  readonly snapshot?: Snapshot | undefined;
}

/** A RaftStorage (read by the core) backed by a KvStore. */
export class DurableRaftStorage extends MemoryRaftStorage {
  readonly #kv: KvStore;
  readonly #channel: string;

  private constructor(kv: KvStore, channel: string) {
    super();
    this.#kv = kv;
    this.#channel = channel;
  }

  /** Loads the channel's durable Raft state (empty for a new channel). */
  static async open(kv: KvStore, channel: string): Promise<DurableRaftStorage> {
    const s = new DurableRaftStorage(kv, channel);
    const snap = await kv.get(raftKeys.snapshot(channel));
    if (snap) s.applySnapshot(decodeSnapshot(snap));
    const hs = await kv.get(raftKeys.hardState(channel));
    if (hs) s.setHardState(decodeHardState(hs));
    const entries: Entry[] = [];
    for await (const [, v] of kv.range(raftKeys.entriesFrom(channel), raftKeys.entriesEnd(channel))) {
      const e = decodeEntry(v);
      if (e.index <= s.snapshot().metadata.index) continue;
      entries.push(e);
    }
    s.append(entries);
    return s;
  }

  /** True when nothing was ever persisted for this channel. */
  get isEmpty(): boolean {
    return this.lastIndex() === 0 && this.hardState().term === 0;
  }

  /** Persists a Ready's snapshot, entries and hard state in one atomic batch, then updates the view. */
  async persist(r: RaftPersist): Promise<void> {
    const ops: KvOp[] = [];
    const ch = this.#channel;
    let first = this.firstIndex();
    let last = this.lastIndex();
    if (r.snapshot && r.snapshot.metadata.index > this.snapshot().metadata.index) {
      ops.push({ type: 'put', key: raftKeys.snapshot(ch), value: encodeSnapshot(r.snapshot) });
      for (let i = first; i <= last; i++) ops.push({ type: 'del', key: raftKeys.entry(ch, i) });
      first = r.snapshot.metadata.index + 1;
      last = r.snapshot.metadata.index;
    }
    const entries = r.entries ?? [];
    const head = entries[0];
    if (head) {
      // A new suffix replaces whatever was held from its first index on.
      for (let i = Math.max(head.index, first); i <= last; i++) ops.push({ type: 'del', key: raftKeys.entry(ch, i) });
      for (const e of entries) {
        if (e.index < first) continue;
        ops.push({ type: 'put', key: raftKeys.entry(ch, e.index), value: encodeEntry(e) });
      }
    }
    if (r.hardState) {
      // Term and vote must be durable before anything is sent; the commit index need not be (it is
      // volatile state in Raft: a node restarted with an older one learns it again from the leader,
      // and re-applied entries are skipped). A Ready that only moves the commit index, the common
      // case on a leader as acknowledgements come in, costs no level write; the commit index is
      // written whenever a write happens anyway.
      const held = this.hardState();
      const commitOnly = ops.length === 0 && r.hardState.term === held.term && r.hardState.vote === held.vote;
      if (!commitOnly) ops.push({ type: 'put', key: raftKeys.hardState(ch), value: encodeHardState(r.hardState) });
    }
    await this.#kv.batch(ops);
    if (r.snapshot) this.applySnapshot(r.snapshot);
    if (head) this.append(entries);
    if (r.hardState) this.setHardState(r.hardState);
  }

  /** Records a snapshot this node took and deletes the entries it covers, atomically. */
  async persistCompaction(snapshot: Snapshot): Promise<void> {
    const index = snapshot.metadata.index;
    if (index <= this.snapshot().metadata.index) return;
    const ops: KvOp[] = [{ type: 'put', key: raftKeys.snapshot(this.#channel), value: encodeSnapshot(snapshot) }];
    for (let i = this.firstIndex(); i <= index; i++) ops.push({ type: 'del', key: raftKeys.entry(this.#channel, i) });
    await this.#kv.batch(ops);
    this.compact(snapshot);
  }

  /** Deletes every Raft key of the channel (channel removal). */
  static async destroy(kv: KvStore, channel: string): Promise<void> {
    const [gte, lt] = raftKeys.all(channel);
    const ops: KvOp[] = [];
    for await (const [k] of kv.range(gte, lt)) ops.push({ type: 'del', key: k });
    await kv.batch(ops);
  }
}
