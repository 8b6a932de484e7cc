import { RaftNode } from '../raft-node.js';
import { MemoryRaftStorage } from '../storage.js';
import {
  type ConfState,
  decodeConfChange,
  type Entry,
  type HardState,
  type Message,
  RaftError,
  type Ready,
  type Role,
  type Snapshot,
} from '../types.js';
import { EventQueue } from './event-queue.js';
import { Prng } from './prng.js';

/**
 * A deterministic simulation of one Raft group: N nodes in one process over a seeded network and
 * clock that drops, delays, reorders and duplicates messages, partitions nodes, crashes and
 * restarts them from what they persisted, changes membership, moves leadership, compacts logs,
 * and checks the Raft safety invariants after every event; then heals everything and checks that
 * the group makes progress again within a bounded number of ticks.
 */

export type Invariant =
  | 'election-safety'
  | 'log-matching'
  | 'leader-completeness'
  | 'state-machine-safety'
  | 'gapless-apply'
  | 'commit-monotonic'
  | 'liveness'
  | 'exception';

export class SimFailure extends Error {
  readonly seed: number;
  readonly invariant: Invariant;
  readonly trace: readonly string[];
  constructor(seed: number, invariant: Invariant, detail: string, trace: readonly string[]) {
    super(`seed ${seed}: ${invariant} violated: ${detail}`);
    this.name = 'SimFailure';
    this.seed = seed;
    this.invariant = invariant;
    this.trace = trace;
  }
}

export interface SimResult {
  readonly seed: number;
  readonly nodes: number;
  readonly ticks: number;
  readonly events: number;
  readonly applied: number;
  readonly elections: number;
  readonly confChanges: number;
  readonly snapshotsSent: number;
  readonly crashes: number;
  /** Ticks from healing until a fresh proposal was applied on every member. */
  readonly recoveryTicks: number;
}

/** A storage that breaks its contract, to check that the simulator notices. */
export type StorageFault = 'forgetVote' | 'loseLastEntry';

export interface SimOptions {
  /** Test the simulator itself: persist through a storage with this bug. */
  readonly storageFault?: StorageFault;
  /** Ticks of faults before healing (default 600). */
  readonly chaosTicks?: number;
  /** Ticks allowed after healing for a leader to emerge and a new proposal to apply everywhere (default 200). */
  readonly livenessTicks?: number;
}

const TICK = 10; // time units per tick; message delays are in the same units
const TRACE_LEN = 40;

interface StateMachine {
  applied: number;
  digest: number;
  conf: ConfState;
}

type CrashPoint = 'beforePersist' | 'beforeSend' | 'beforeApply' | 'afterCommit';

interface Host {
  readonly id: string;
  readonly initial: boolean;
  readonly storage: MemoryRaftStorage;
  readonly sm: StateMachine;
  node: RaftNode | undefined;
  incarnation: number;
  /** Last role and term seen in a Ready (volatile). */
  role: Role;
  term: number;
  /** Stopped for good after its removal was applied. */
  removed: boolean;
  removedAt: number;
  crashAt: CrashPoint | undefined;
  /** Tick at which to crash (a fault aimed at fresh leaders). */
  crashAtTick: number;
  phase: number;
}

type Event =
  | { kind: 'tick'; host: Host; incarnation: number }
  | { kind: 'deliver'; msg: Message; sender: Host; senderIncarnation: number }
  | { kind: 'control' };

const textEncoder = new TextEncoder();

function dataKey(e: Entry): string {
  let s = e.type === 'confChange' ? 'c' : 'n';
  const d = e.data;
  for (let i = 0; i < d.length; i++) s += String.fromCharCode(d[i]!);
  return s;
}

function mix(h: number, v: number): number {
  h ^= v;
  return Math.imul(h, 0x01000193) >>> 0;
}

function digestEntry(prev: number, e: Entry): number {
  let h = mix(prev, e.index);
  h = mix(h, e.term);
  const d = e.data;
  for (let i = 0; i < d.length; i++) h = mix(h, d[i]!);
  return h;
}

function encodeSm(applied: number, digest: number): Uint8Array {
  return textEncoder.encode(`${applied}:${digest}`);
}

function decodeSm(data: Uint8Array): { applied: number; digest: number } {
  const [a, d] = new TextDecoder().decode(data).split(':');
  return { applied: Number(a), digest: Number(d) };
}

/** Loses what it was asked to persist in one specific way (see StorageFault). */
class FaultyStorage extends MemoryRaftStorage {
  readonly #fault: StorageFault;
  constructor(fault: StorageFault) {
    super();
    this.#fault = fault;
  }
  override setHardState(hs: HardState): void {
    super.setHardState(this.#fault === 'forgetVote' ? { ...hs, vote: '' } : hs);
  }
  override append(entries: readonly Entry[]): void {
    // Acknowledges a multi-entry write but keeps only part of it.
    super.append(this.#fault === 'loseLastEntry' && entries.length > 1 ? entries.slice(0, -1) : entries);
  }
}

export function runSimulation(seed: number, options: SimOptions = {}): SimResult {
  return new Simulation(seed, options).run();
}

class Simulation {
  readonly #seed: number;
  readonly #rng: Prng;
  readonly #chaosTicks: number;
  readonly #livenessTicks: number;
  readonly #storageFault: StorageFault | undefined;
  readonly #queue = new EventQueue<Event>();
  readonly #hosts = new Map<string, Host>();
  readonly #trace: string[] = [];
  #traceAt = 0;
  #now = 0;
  #events = 0;

  // Knobs drawn per seed.
  readonly #nodes: number;
  readonly #electionTick: number;
  readonly #heartbeatTick: number;
  readonly #checkQuorum: boolean;
  readonly #maxSizePerMsg: number;
  readonly #maxInflight: number;
  readonly #compactEvery: number;
  #dropRate: number;
  #dupRate: number;
  #maxDelay: number;
  #spikeRate: number;
  readonly #faultRate: number;
  readonly #restartRate: number;
  readonly #newLeaderCrashRate: number;

  /** Blocked directed links "from>to". */
  #blocked = new Set<string>();
  #healed = false;
  #nextNodeId: number;
  #nextValue = 0;

  // Invariant state.
  readonly #leaderOfTerm = new Map<number, string>();
  /** (index, term) of every persisted entry → its content and the term of the entry before it. */
  readonly #entries = new Map<number, { key: string; prevTerm: number | undefined }>();
  /** Every applied index → entry term, content, digest after applying, lowest term of a node that applied it. */
  readonly #applied = new Map<number, { term: number; key: string; digest: number; observedTerm: number }>();
  #maxApplied = 0;

  // Stats.
  #elections = 0;
  #confChanges = 0;
  #snapshotsSent = 0;
  #crashes = 0;

  constructor(seed: number, options: SimOptions) {
    this.#seed = seed;
    this.#rng = new Prng(seed);
    const rng = this.#rng;
    this.#chaosTicks = options.chaosTicks ?? 600;
    this.#livenessTicks = options.livenessTicks ?? 200;
    this.#storageFault = options.storageFault;
    this.#nodes = rng.chance(0.5) ? 3 : 5;
    this.#electionTick = rng.int(8, 12);
    this.#heartbeatTick = rng.int(1, 3);
    this.#checkQuorum = rng.chance(0.5);
    this.#maxSizePerMsg = rng.pick([1, 8, 32, 1024 * 1024]);
    this.#maxInflight = rng.pick([1, 2, 4, 256]);
    this.#compactEvery = rng.int(5, 40);
    this.#dropRate = rng.pick([0, 0.02, 0.1, 0.25]);
    this.#dupRate = rng.pick([0, 0.02, 0.1]);
    this.#maxDelay = rng.pick([2, 5, 15, 30]);
    this.#spikeRate = rng.pick([0, 0.01, 0.05]);
    this.#faultRate = rng.pick([0.3, 1, 2]);
    this.#restartRate = rng.pick([0.02, 0.1, 0.3]);
    this.#newLeaderCrashRate = rng.pick([0, 0.1, 0.3, 0.6]);
    const ids = Array.from({ length: this.#nodes }, (_, i) => `n${i + 1}`);
    this.#nextNodeId = this.#nodes + 1;
    for (const id of ids) this.#addHost(id, true);
    for (const h of this.#hosts.values()) this.#start(h);
  }

  run(): SimResult {
    try {
      this.#queue.push(0, { kind: 'control' });
      const end = (this.#chaosTicks + this.#livenessTicks) * TICK;
      for (;;) {
        const t = this.#queue.peekTime();
        if (t === undefined || t > end) break;
        const ev = this.#queue.pop()!;
        this.#now = t;
        this.#events++;
        if (this.#handle(ev)) break;
      }
      if (!this.#livenessDone) {
        this.#fail(
          'liveness',
          `no leader committed a new proposal on all live members within ${this.#livenessTicks} ticks of healing (${this.#livenessState()})`,
        );
      }
    } catch (err) {
      if (err instanceof SimFailure) throw err;
      const e = err as Error;
      this.#fail('exception', `${e.message}\n${e.stack ?? ''}`);
    }
    return {
      seed: this.#seed,
      nodes: this.#nodes,
      ticks: Math.floor(this.#now / TICK),
      events: this.#events,
      applied: this.#maxApplied,
      elections: this.#elections,
      confChanges: this.#confChanges,
      snapshotsSent: this.#snapshotsSent,
      crashes: this.#crashes,
      recoveryTicks: Math.floor(this.#now / TICK) - this.#chaosTicks,
    };
  }

  // ---------------------------------------------------------------- hosts

  #addHost(id: string, initial: boolean): Host {
    const h: Host = {
      id,
      initial,
      storage: this.#storageFault === undefined ? new MemoryRaftStorage() : new FaultyStorage(this.#storageFault),
      sm: { applied: 0, digest: 0, conf: { voters: [], learners: [] } },
      node: undefined,
      incarnation: 0,
      role: 'follower',
      term: 0,
      removed: false,
      removedAt: 0,
      crashAt: undefined,
      crashAtTick: -1,
      phase: this.#rng.int(0, TICK - 1),
    };
    this.#hosts.set(id, h);
    return h;
  }

  #start(h: Host): void {
    const snap = h.storage.snapshot();
    if (snap.metadata.index > h.sm.applied) {
      // Crashed between persisting a received snapshot and restoring the state machine from it.
      this.#restoreSm(h, snap);
    }
    const initialVoters = h.initial ? Array.from({ length: this.#nodes }, (_, i) => `n${i + 1}`) : [];
    h.incarnation++;
    const random = this.#rng.fork();
    h.node = new RaftNode({
      id: h.id,
      voters: initialVoters,
      electionTick: this.#electionTick,
      heartbeatTick: this.#heartbeatTick,
      preVote: true,
      checkQuorum: this.#checkQuorum,
      maxSizePerMsg: this.#maxSizePerMsg,
      maxInflightMsgs: this.#maxInflight,
      random: () => random.next(),
      storage: h.storage,
      applied: h.sm.applied,
    });
    h.role = 'follower';
    h.term = h.storage.hardState().term;
    h.crashAt = undefined;
    h.crashAtTick = -1;
    this.#queue.push(this.#nextTickTime(h), { kind: 'tick', host: h, incarnation: h.incarnation });
    this.#log(`start ${h.id} (applied ${h.sm.applied}, last ${h.storage.lastIndex()}, term ${h.term})`);
    this.#drain(h);
  }

  #crash(h: Host, why: string): void {
    h.node = undefined;
    h.crashAt = undefined;
    h.role = 'follower';
    this.#crashes++;
    this.#log(`crash ${h.id} ${why}`);
  }

  #nextTickTime(h: Host): number {
    return (Math.floor(this.#now / TICK) + 1) * TICK + h.phase;
  }

  #live(): Host[] {
    const out: Host[] = [];
    for (const h of this.#hosts.values()) if (h.node !== undefined) out.push(h);
    return out;
  }

  #leaders(): Host[] {
    const out: Host[] = [];
    for (const h of this.#hosts.values()) if (h.node !== undefined && h.role === 'leader') out.push(h);
    return out;
  }

  // ---------------------------------------------------------------- events

  /** Returns true when the run is complete. */
  #handle(ev: Event): boolean {
    switch (ev.kind) {
      case 'tick': {
        const h = ev.host;
        if (h.node === undefined || h.incarnation !== ev.incarnation) return false;
        h.node.tick();
        this.#queue.push(this.#now + TICK, ev);
        this.#drain(h);
        return false;
      }
      case 'deliver': {
        const m = ev.msg;
        const h = this.#hosts.get(m.to);
        if (h?.node === undefined || this.#blocked.has(`${m.from}>${m.to}`)) return false;
        // A crash loses some of what the process had queued but not yet put on the wire.
        const s = ev.sender;
        if ((s.node === undefined || s.incarnation !== ev.senderIncarnation) && this.#rng.chance(0.5)) return false;
        this.#log(`deliver ${describe(m)}`);
        h.node.step(m);
        this.#drain(h);
        return false;
      }
      case 'control':
        this.#queue.push(this.#now + TICK, ev);
        return this.#control();
    }
  }

  #send(h: Host, m: Message): void {
    if (this.#blocked.has(`${m.from}>${m.to}`)) return;
    const rng = this.#rng;
    if (rng.chance(this.#dropRate)) return;
    const copies = rng.chance(this.#dupRate) ? 2 : 1;
    for (let i = 0; i < copies; i++) {
      let delay = rng.int(1, this.#maxDelay);
      if (rng.chance(this.#spikeRate)) delay += rng.int(20, 200);
      this.#queue.push(this.#now + delay, { kind: 'deliver', msg: m, sender: h, senderIncarnation: h.incarnation });
    }
    if (m.type === 'snapshot') this.#snapshotsSent++;
  }

  /** Runs the Ready loop the way a real host must: persist, then send, then apply, then advance. */
  #drain(h: Host): void {
    for (let guard = 0; h.node?.hasReady(); guard++) {
      if (guard > 1000) throw new Error(`${h.id}: Ready loop does not settle`);
      const node = h.node;
      const rd = node.ready();
      if (h.crashAt === 'beforePersist') {
        this.#crash(h, 'before persisting a Ready');
        return;
      }
      this.#persist(h, rd);
      if (h.crashAt === 'beforeSend') {
        this.#crash(h, 'after persisting, before sending');
        return;
      }
      for (const m of rd.messages) this.#send(h, m);
      if (h.crashAt === 'beforeApply') {
        this.#crash(h, 'after sending, before applying');
        return;
      }
      this.#apply(h, node, rd);
      node.advance();
      if (rd.committedEntries.length > 0) {
        this.#maybeCompact(h, node);
        if (h.crashAt === 'afterCommit') {
          this.#crash(h, 'after applying');
          return;
        }
      }
      if (rd.softState !== undefined) this.#onSoftState(h, node, rd.softState.role);
    }
  }

  #persist(h: Host, rd: Ready): void {
    const st = h.storage;
    if (rd.snapshot !== undefined) st.applySnapshot(rd.snapshot);
    if (rd.entries.length > 0) {
      const first = rd.entries[0]!;
      let prevTerm = first.index - 1 >= st.firstIndex() - 1 ? st.term(first.index - 1) : undefined;
      for (const e of rd.entries) {
        this.#checkEntry(h, e, prevTerm);
        prevTerm = e.term;
      }
      st.append(rd.entries);
    }
    if (rd.hardState !== undefined) {
      const old = st.hardState();
      if (rd.hardState.commit < old.commit) {
        this.#fail('commit-monotonic', `${h.id} persisted commit ${rd.hardState.commit} after ${old.commit}`);
      }
      if (rd.hardState.term < old.term) {
        this.#fail('election-safety', `${h.id} persisted term ${rd.hardState.term} after ${old.term}`);
      }
      st.setHardState(rd.hardState);
      h.term = rd.hardState.term;
    }
  }

  /** Log matching: one (index, term) names one entry, and always the same predecessor term. */
  #checkEntry(h: Host, e: Entry, prevTerm: number | undefined): void {
    const k = e.index * 1_000_000 + e.term;
    const key = dataKey(e);
    const seen = this.#entries.get(k);
    if (seen === undefined) {
      this.#entries.set(k, { key, prevTerm });
      return;
    }
    if (seen.key !== key) {
      this.#fail('log-matching', `${h.id} persisted a different entry at index ${e.index} term ${e.term}`);
    }
    if (seen.prevTerm !== undefined && prevTerm !== undefined && seen.prevTerm !== prevTerm) {
      this.#fail(
        'log-matching',
        `${h.id}: entry ${e.index}/${e.term} follows term ${prevTerm}, elsewhere term ${seen.prevTerm}`,
      );
    }
    if (seen.prevTerm === undefined && prevTerm !== undefined) seen.prevTerm = prevTerm;
  }

  #restoreSm(h: Host, snap: Snapshot): void {
    const { applied, digest } = decodeSm(snap.data);
    const idx = snap.metadata.index;
    if (applied !== idx) this.#fail('state-machine-safety', `${h.id}: snapshot ${idx} holds state at ${applied}`);
    const known = this.#applied.get(idx);
    if (known !== undefined && known.digest !== digest) {
      this.#fail('state-machine-safety', `${h.id}: snapshot at ${idx} disagrees with the state others applied`);
    }
    h.sm.applied = idx;
    h.sm.digest = digest;
    h.sm.conf = snap.metadata.confState;
    this.#log(`${h.id} restored snapshot ${idx}`);
  }

  #apply(h: Host, node: RaftNode, rd: Ready): void {
    if (rd.snapshot !== undefined) this.#restoreSm(h, rd.snapshot);
    const sm = h.sm;
    for (const e of rd.committedEntries) {
      if (e.index !== sm.applied + 1) {
        this.#fail('gapless-apply', `${h.id} applied ${e.index} after ${sm.applied}`);
      }
      const digest = digestEntry(sm.digest, e);
      const key = dataKey(e);
      const seen = this.#applied.get(e.index);
      if (seen === undefined) {
        this.#applied.set(e.index, { term: e.term, key, digest, observedTerm: h.term });
        if (e.type === 'confChange' && e.term > 1) this.#confChanges++;
        if (e.index > this.#maxApplied) this.#maxApplied = e.index;
      } else {
        if (seen.term !== e.term || seen.key !== key) {
          this.#fail(
            'state-machine-safety',
            `${h.id} applied entry ${e.index}/${e.term} where another node applied ${e.index}/${seen.term}`,
          );
        }
        if (seen.digest !== digest) this.#fail('state-machine-safety', `${h.id} state diverged at ${e.index}`);
        if (h.term < seen.observedTerm) seen.observedTerm = h.term;
      }
      sm.applied = e.index;
      sm.digest = digest;
      if (e.type === 'confChange') {
        const cc = decodeConfChange(e.data);
        sm.conf = node.applyConfChange(cc);
        if (cc.type === 'remove') this.#onRemoved(cc.nodeId);
      }
      if (e.data.length > 0 && this.#livenessValue !== undefined && key === this.#livenessValue) {
        this.#livenessAppliedBy.add(h.id);
      }
      this.#checkLeadersHave(e.index, e.term, h.term);
    }
  }

  #onRemoved(id: string): void {
    const r = this.#hosts.get(id);
    if (r === undefined || r.removed) return;
    r.removed = true;
    r.removedAt = Math.floor(this.#now / TICK);
  }

  #maybeCompact(h: Host, node: RaftNode): void {
    const sm = h.sm;
    const snapIndex = h.storage.snapshot().metadata.index;
    if (sm.applied - snapIndex < this.#compactEvery) return;
    const rng = this.#rng;
    let snap: Snapshot;
    if (rng.chance(0.5)) {
      snap = node.compact(sm.applied, encodeSm(sm.applied, sm.digest), sm.conf);
    } else {
      // Keep a few entries so lagging followers can catch up from the log.
      const idx = Math.max(snapIndex + 1, sm.applied - rng.int(0, 5));
      const known = this.#applied.get(idx)!;
      snap = node.compact(idx, encodeSm(idx, known.digest));
    }
    h.storage.compact(snap);
  }

  #onSoftState(h: Host, node: RaftNode, role: Role): void {
    h.role = role;
    if (role !== 'leader') return;
    const term = node.status().term;
    h.term = term;
    this.#elections++;
    this.#log(`${h.id} leader of term ${term}`);
    const prev = this.#leaderOfTerm.get(term);
    if (prev !== undefined && prev !== h.id) {
      this.#fail('election-safety', `${h.id} and ${prev} both leaders of term ${term}`);
    }
    this.#leaderOfTerm.set(term, h.id);
    if (!this.#healed && this.#rng.chance(this.#newLeaderCrashRate)) {
      // Crash a fresh leader within a few ticks: mid-way through re-replicating older entries.
      if (this.#rng.chance(0.5)) h.crashAtTick = Math.floor(this.#now / TICK) + this.#rng.int(0, 3);
      else h.crashAt = 'afterCommit';
    }
    // Leader completeness: every entry applied anywhere by a node at term ≤ ours is in our log.
    for (let i = this.#maxApplied; i >= 1; i--) {
      const a = this.#applied.get(i)!;
      if (a.observedTerm > term) continue;
      const t = node.termAt(i);
      if (t === undefined) {
        if (i >= node.status().firstIndex) this.#fail('leader-completeness', `leader ${h.id} lacks ${i}`);
        break; // compacted: covered by state-machine safety
      }
      if (t !== a.term) {
        this.#fail('leader-completeness', `leader ${h.id} of term ${term} has ${i}/${t}, committed ${i}/${a.term}`);
      }
    }
  }

  #checkLeadersHave(index: number, term: number, observedTerm: number): void {
    for (const l of this.#hosts.values()) {
      if (l.node === undefined || l.role !== 'leader' || l.term < observedTerm) continue;
      const t = l.node.termAt(index);
      if (t !== undefined && t !== term) {
        this.#fail(
          'leader-completeness',
          `leader ${l.id} (term ${l.term}) has ${index}/${t}, applied ${index}/${term}`,
        );
      }
    }
  }

  // ---------------------------------------------------------------- faults and workload

  #livenessValue: string | undefined;
  #livenessAppliedBy = new Set<string>();
  #livenessDone = false;

  #control(): boolean {
    const tick = Math.floor(this.#now / TICK);
    // A removed node keeps running a while (it may not know yet), then is shut down for good.
    for (const h of this.#hosts.values()) {
      if (h.removed && h.node !== undefined && tick - h.removedAt >= 20) {
        h.node = undefined;
        this.#log(`stop ${h.id} (removed)`);
      }
    }
    if (tick < this.#chaosTicks) {
      this.#chaos();
      return false;
    }
    if (!this.#healed) this.#heal();
    return this.#checkLiveness();
  }

  #chaos(): void {
    const rng = this.#rng;
    const f = this.#faultRate;
    // Proposals all along, to whoever is leader.
    if (rng.chance(0.6)) this.#propose();
    if (rng.chance(0.012 * f)) {
      const live = this.#live();
      if (live.length > 0) {
        const h = rng.pick(live);
        if (rng.chance(0.5)) this.#crash(h, 'at once');
        else h.crashAt = rng.pick(['beforePersist', 'beforeSend', 'beforeApply'] as const);
      }
    }
    for (const h of this.#hosts.values()) {
      if (h.node === undefined) {
        if (!h.removed && rng.chance(this.#restartRate)) this.#start(h);
      } else if (h.crashAtTick >= 0 && h.crashAtTick <= Math.floor(this.#now / TICK)) {
        h.crashAtTick = -1;
        this.#crash(h, 'fresh leader');
      }
    }
    // Leaders crashing soon after election is what exposes commit-rule bugs (Raft figure 8).
    if (rng.chance(0.01 * f)) {
      const leader = this.#leaders()[0];
      if (leader !== undefined) {
        if (rng.chance(0.5)) this.#crash(leader, 'leader');
        else leader.crashAt = rng.pick(['beforePersist', 'beforeSend', 'beforeApply'] as const);
      }
    }
    if (rng.chance(0.01 * f)) this.#partition();
    if (this.#blocked.size > 0 && rng.chance(0.03)) {
      this.#blocked.clear();
      this.#log('partition healed');
    }
    if (rng.chance(0.015 * f)) this.#changeMembership();
    if (rng.chance(0.006 * f)) {
      const leader = this.#leaders()[0];
      if (leader?.node !== undefined) {
        const voters = leader.node.status().confState.voters.filter((v) => v !== leader.id);
        if (voters.length > 0) {
          const to = rng.pick(voters);
          this.#log(`transfer ${leader.id} -> ${to}`);
          this.#guard(() => leader.node?.transferLeadership(to));
          this.#drain(leader);
        }
      }
    }
  }

  #partition(): void {
    const rng = this.#rng;
    const ids = [...this.#hosts.values()].filter((h) => !h.removed).map((h) => h.id);
    this.#blocked.clear();
    if (rng.chance(0.5)) {
      const side = new Set(ids.filter(() => rng.chance(0.5)));
      for (const a of ids) for (const b of ids) if (side.has(a) !== side.has(b)) this.#blocked.add(`${a}>${b}`);
      this.#log(`partition {${[...side].join(',')}} | rest`);
    } else {
      for (const a of ids) for (const b of ids) if (a !== b && rng.chance(0.25)) this.#blocked.add(`${a}>${b}`);
      this.#log(`asymmetric partition ${[...this.#blocked].join(' ')}`);
    }
  }

  #propose(): boolean {
    const leaders = this.#leaders();
    if (leaders.length === 0) return false;
    const l = this.#rng.pick(leaders);
    const value = `v${this.#nextValue++}`;
    const ok = this.#guard(() => l.node!.propose(textEncoder.encode(value)));
    this.#drain(l);
    return ok;
  }

  #changeMembership(): void {
    const leader = this.#leaders()[0];
    if (leader?.node === undefined) return;
    const rng = this.#rng;
    const { voters, learners } = leader.node.status().confState;
    const options: (() => void)[] = [];
    if (voters.length + learners.length < 7) {
      options.push(() => {
        const id = `n${this.#nextNodeId++}`;
        this.#log(`propose addLearner ${id} at ${leader.id}`);
        if (this.#guard(() => leader.node!.proposeConfChange({ type: 'addLearner', nodeId: id }))) {
          this.#start(this.#addHost(id, false));
        }
      });
    }
    if (learners.length > 0 && voters.length < 5) {
      const id = rng.pick(learners);
      options.push(() => {
        this.#log(`propose promote ${id} at ${leader.id}`);
        this.#guard(() => leader.node!.proposeConfChange({ type: 'promote', nodeId: id }));
      });
    }
    if (voters.length > 3 || learners.length > 0) {
      const id = rng.pick(voters.length > 3 ? [...voters, ...learners] : learners);
      options.push(() => {
        this.#log(`propose remove ${id} at ${leader.id}`);
        this.#guard(() => leader.node!.proposeConfChange({ type: 'remove', nodeId: id }));
      });
    }
    if (options.length === 0) return;
    rng.pick(options)();
    if (leader.node !== undefined) this.#drain(leader);
  }

  /** Runs a proposal; the expected refusals (not leader, change pending) are part of the workload. */
  #guard(f: () => unknown): boolean {
    try {
      f();
      return true;
    } catch (err) {
      if (err instanceof RaftError && err.code !== 'INVALID_ARGUMENT' && err.code !== 'COMPACTED') return false;
      throw err;
    }
  }

  #heal(): void {
    this.#healed = true;
    this.#blocked.clear();
    this.#dropRate = 0;
    this.#dupRate = 0;
    this.#spikeRate = 0;
    this.#maxDelay = Math.min(this.#maxDelay, 5);
    for (const h of this.#hosts.values()) {
      h.crashAt = undefined;
      h.crashAtTick = -1;
      if (h.node === undefined && !h.removed) this.#start(h);
    }
    this.#log('healed: no more faults');
  }

  /** After healing: some leader gets a fresh value applied on every live member of its configuration. */
  #checkLiveness(): boolean {
    const leaders = this.#leaders();
    const leader = leaders.length === 1 ? leaders[0] : leaders.sort((a, b) => b.term - a.term)[0];
    if (leader?.node === undefined) return false;
    if (this.#livenessValue === undefined) {
      const value = `live${this.#nextValue++}`;
      if (this.#guard(() => leader.node!.propose(textEncoder.encode(value)))) {
        this.#livenessValue = `n${value}`;
        this.#livenessAppliedBy.clear();
        this.#log(`liveness probe ${value} at ${leader.id}`);
      }
      this.#drain(leader);
      return false;
    }
    const { voters, learners } = leader.node.status().confState;
    const members = [...voters, ...learners];
    if (members.every((id) => this.#livenessAppliedBy.has(id))) {
      this.#livenessDone = true;
      return true;
    }
    // The probe may have been lost with a deposed leader: propose it again every 50 ticks.
    const tick = Math.floor(this.#now / TICK);
    if ((tick - this.#chaosTicks) % 50 === 49) this.#livenessValue = undefined;
    return false;
  }

  #livenessState(): string {
    return [...this.#hosts.values()]
      .filter((h) => !h.removed)
      .map((h) => {
        if (h.node === undefined) return `${h.id}:down`;
        const s = h.node.status();
        return `${h.id}:${s.role}/t${s.term}/c${s.commit}/a${s.applied}/last${s.lastIndex}/lead=${s.leader}/conf=${s.confState.voters.join('+')};${s.confState.learners.join('+')}`;
      })
      .join(' ');
  }

  // ---------------------------------------------------------------- trace

  #log(line: string): void {
    this.#trace[this.#traceAt] = `t${(this.#now / TICK).toFixed(1)} ${line}`;
    this.#traceAt = (this.#traceAt + 1) % TRACE_LEN;
  }

  #fail(invariant: Invariant, detail: string): never {
    const n = this.#trace.length;
    const tail: string[] = [];
    for (let i = 0; i < n; i++) {
      const line = this.#trace[(this.#traceAt + i) % n];
      if (line !== undefined) tail.push(line);
    }
    throw new SimFailure(this.#seed, invariant, detail, tail);
  }
}

function describe(m: Message): string {
  const head = `${m.type} ${m.from}->${m.to} t${m.term}`;
  switch (m.type) {
    case 'app':
      return `${head} prev=${m.prevIndex}/${m.prevTerm} n=${m.entries.length} commit=${m.commit}`;
    case 'appResp':
      return `${head} index=${m.index}${m.reject ? ` reject hint=${m.rejectHint}/${m.hintTerm}` : ''}`;
    case 'preVote':
    case 'vote':
      return `${head} last=${m.lastLogIndex}/${m.lastLogTerm}${m.transfer ? ' transfer' : ''}`;
    case 'preVoteResp':
    case 'voteResp':
      return `${head}${m.reject ? ' reject' : ' grant'}`;
    case 'heartbeat':
      return `${head} commit=${m.commit}`;
    case 'snapshot':
      return `${head} index=${m.snapshot.metadata.index}`;
    default:
      return head;
  }
}
