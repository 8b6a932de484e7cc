import { RaftNode, type RaftNodeConfig } from '../raft-node.js';
import { MemoryRaftStorage } from '../storage.js';
import { type ConfState, decodeConfChange, type Entry, type Message } from '../types.js';

/**
 * A hand-driven cluster for unit tests: messages queue in `outbox` until the test delivers them,
 * so a test decides exactly which messages arrive, are dropped, or wait.
 */
export interface TestMember {
  readonly id: string;
  node: RaftNode;
  readonly storage: MemoryRaftStorage;
  readonly applied: Entry[];
  conf: ConfState | undefined;
  down: boolean;
}

export type TestNodeOptions = Partial<Omit<RaftNodeConfig, 'id' | 'storage'>> & { storage?: MemoryRaftStorage };

export class TestCluster {
  readonly members = new Map<string, TestMember>();
  outbox: Message[] = [];
  /** Messages for which this returns true are dropped on delivery. */
  drop: (m: Message) => boolean = () => false;
  readonly delivered: Message[] = [];

  constructor(ids: readonly string[] = [], options: TestNodeOptions = {}) {
    for (const id of ids) this.add(id, { voters: ids, ...options });
  }

  add(id: string, options: TestNodeOptions = {}): TestMember {
    const storage = options.storage ?? new MemoryRaftStorage();
    const node = new RaftNode({
      electionTick: 10,
      heartbeatTick: 1,
      preVote: true,
      random: () => 0.99,
      ...options,
      id,
      storage,
    });
    const m: TestMember = { id, node, storage, applied: [], conf: undefined, down: false };
    this.members.set(id, m);
    this.process(id);
    return m;
  }

  get(id: string): TestMember {
    const m = this.members.get(id);
    if (m === undefined) throw new Error(`no member ${id}`);
    return m;
  }

  node(id: string): RaftNode {
    return this.get(id).node;
  }

  /** Persist, queue messages, apply, advance — until the node has nothing more to say. */
  process(id: string): void {
    const m = this.get(id);
    while (m.node.hasReady()) {
      const rd = m.node.ready();
      if (rd.snapshot !== undefined) {
        m.storage.applySnapshot(rd.snapshot);
        m.conf = rd.snapshot.metadata.confState;
      }
      m.storage.append(rd.entries);
      if (rd.hardState !== undefined) m.storage.setHardState(rd.hardState);
      for (const msg of rd.messages) this.outbox.push(msg);
      for (const e of rd.committedEntries) {
        m.applied.push(e);
        if (e.type === 'confChange') m.conf = m.node.applyConfChange(decodeConfChange(e.data));
      }
      m.node.advance();
    }
  }

  processAll(): void {
    for (const id of this.members.keys()) this.process(id);
  }

  tick(id: string, times = 1): void {
    for (let i = 0; i < times; i++) {
      this.get(id).node.tick();
      this.process(id);
    }
  }

  tickAll(times = 1): void {
    for (let i = 0; i < times; i++) for (const id of this.members.keys()) if (!this.get(id).down) this.tick(id);
  }

  /** Takes the queued messages matching `filter` out of the outbox. */
  take(filter: (m: Message) => boolean = () => true): Message[] {
    const taken = this.outbox.filter(filter);
    this.outbox = this.outbox.filter((m) => !filter(m));
    return taken;
  }

  deliverOne(m: Message): void {
    const to = this.members.get(m.to);
    if (to === undefined || to.down || this.drop(m)) return;
    this.delivered.push(m);
    to.node.step(m);
    this.process(m.to);
  }

  /** Delivers queued messages (and the ones they cause) until the network is quiet. */
  deliverAll(filter: (m: Message) => boolean = () => true, maxRounds = 100): void {
    for (let round = 0; round < maxRounds; round++) {
      const batch = this.take(filter);
      if (batch.length === 0) return;
      for (const m of batch) this.deliverOne(m);
    }
  }

  /** Ticks `id` until it starts an election, then lets the election run to completion. */
  elect(id: string): void {
    const node = this.node(id);
    for (let i = 0; i < 100 && node.status().role === 'follower'; i++) this.tick(id);
    this.deliverAll();
    if (node.status().role !== 'leader') throw new Error(`${id} did not win (${node.status().role})`);
  }

  /** Leader heartbeats until every follower has caught up. */
  settle(rounds = 5): void {
    for (let i = 0; i < rounds; i++) {
      for (const [id, m] of this.members) {
        if (!m.down && m.node.status().role === 'leader') this.tick(id);
      }
      this.deliverAll();
    }
  }
}
