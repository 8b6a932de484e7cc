import { RaftLog } from './log.js';
import { Progress } from './progress.js';
import type { RaftStorage } from './storage.js';
import {
  type AppendRequest,
  type AppendResponse,
  type ConfChange,
  type ConfState,
  decodeConfChange,
  type Entry,
  encodeConfChange,
  type HardState,
  type Heartbeat,
  type InstallSnapshot,
  type Message,
  type ProgressStatus,
  RaftError,
  type RaftStatus,
  type Ready,
  type Role,
  type Snapshot,
  type SoftState,
  type VoteRequest,
} from './types.js';

export interface RaftNodeConfig {
  readonly id: string;
  /**
   * Initial voters of a new cluster. Used only when `storage` is empty: the node then writes one
   * bootstrap conf-change entry per member (identical on every initial member) and commits them.
   * A node joining an existing cluster starts with none and learns the membership from the leader.
   */
  readonly voters?: readonly string[];
  /** Alias of `voters`. */
  readonly peers?: readonly string[];
  readonly learners?: readonly string[];
  /** Followers start an election after a random timeout in [electionTick, 2 * electionTick) ticks. */
  readonly electionTick: number;
  readonly heartbeatTick: number;
  /** Run a pre-vote round before incrementing the term (default true). */
  readonly preVote?: boolean;
  /** A leader that has not heard from a quorum within an election timeout steps down (default false). */
  readonly checkQuorum?: boolean;
  /** Bytes of entry data per append message (at least one entry is always sent). Default 1 MiB. */
  readonly maxSizePerMsg?: number;
  /** Append messages in flight to one follower in replicate state. Default 256. */
  readonly maxInflightMsgs?: number;
  /** Uniform in [0, 1); the only source of randomness (election timeouts). */
  readonly random: () => number;
  readonly storage: RaftStorage;
  /** Last index the caller's state machine has applied (survives restarts when the state is durable). */
  readonly applied?: number;
}

interface PendingReady {
  readonly lastIndex: number;
  readonly lastTerm: number;
  readonly snapshotIndex: number;
  readonly applyingTo: number;
}

type WithoutFrom<M> = M extends Message ? Omit<M, 'from'> : never;
type Outgoing = WithoutFrom<Message>;

type MutableConf = { voters: Set<string>; learners: Set<string> };

function foldConfChange(conf: MutableConf, cc: ConfChange): void {
  switch (cc.type) {
    case 'addVoter':
      conf.learners.delete(cc.nodeId);
      conf.voters.add(cc.nodeId);
      break;
    case 'addLearner':
      if (!conf.voters.has(cc.nodeId)) conf.learners.add(cc.nodeId);
      break;
    case 'promote':
      if (conf.learners.delete(cc.nodeId)) conf.voters.add(cc.nodeId);
      break;
    case 'remove':
      conf.voters.delete(cc.nodeId);
      conf.learners.delete(cc.nodeId);
      break;
  }
}

function toConfState(conf: MutableConf): ConfState {
  return { voters: [...conf.voters].sort(), learners: [...conf.learners].sort() };
}

function fromConfState(cs: ConfState): MutableConf {
  return { voters: new Set(cs.voters), learners: new Set(cs.learners) };
}

function sameConf(a: ConfState, b: ConfState): boolean {
  const key = (c: ConfState) => `${[...c.voters].sort().join(',')}|${[...c.learners].sort().join(',')}`;
  return key(a) === key(b);
}

/**
 * A Raft participant as a pure state machine (etcd-raft style). Drive it with `tick()` and
 * `step()`, submit with `propose*()`, and loop: `ready()` → persist entries, hard state and
 * snapshot → send messages → apply committed entries → `advance()`.
 *
 * Membership follows the Raft thesis' single-server changes: a conf-change entry takes effect in
 * the node's configuration as soon as it is in its log (and is undone if the entry is truncated);
 * at most one is uncommitted at a time, and a new leader proposes none until it has applied
 * everything up to its first entry.
 */
export class RaftNode {
  readonly #id: string;
  readonly #electionTick: number;
  readonly #heartbeatTick: number;
  readonly #preVote: boolean;
  readonly #checkQuorum: boolean;
  readonly #maxSizePerMsg: number;
  readonly #maxInflight: number;
  readonly #random: () => number;
  readonly #log: RaftLog;

  #term = 0;
  #vote = '';
  #lead = '';
  #role: Role = 'follower';
  #electionElapsed = 0;
  #heartbeatElapsed = 0;
  #randomizedElectionTimeout = 0;
  #votes = new Map<string, boolean>();
  #progress = new Map<string, Progress>();
  #msgs: Message[] = [];
  #pendingConfIndex = 0;
  #leadTransferee = '';

  /** Membership as of the latest snapshot, plus the conf changes in the log after it. */
  #confBase: ConfState;
  #confEntries: { index: number; cc: ConfChange }[] = [];
  #conf: MutableConf;
  #appliedConf: MutableConf;

  #prevHard: HardState;
  #prevSoft: SoftState = { leader: '', role: 'follower' };
  #applying: number;
  #pendingReady: PendingReady | undefined;

  constructor(config: RaftNodeConfig) {
    if (config.electionTick <= config.heartbeatTick) {
      throw new RaftError('INVALID_ARGUMENT', 'electionTick must be greater than heartbeatTick');
    }
    this.#id = config.id;
    this.#electionTick = config.electionTick;
    this.#heartbeatTick = config.heartbeatTick;
    this.#preVote = config.preVote ?? true;
    this.#checkQuorum = config.checkQuorum ?? false;
    this.#maxSizePerMsg = config.maxSizePerMsg ?? 1024 * 1024;
    this.#maxInflight = Math.max(1, config.maxInflightMsgs ?? 256);
    this.#random = config.random;
    const storage = config.storage;
    this.#log = new RaftLog(storage, config.applied ?? 0);
    const hs = storage.hardState();
    this.#prevHard = hs;
    this.#term = hs.term;
    this.#vote = hs.vote;

    const snap = storage.snapshot();
    this.#confBase = snap.metadata.confState;
    const stored = this.#log.slice(this.#log.firstIndex(), this.#log.lastIndex() + 1) ?? [];
    for (const e of stored)
      if (e.type === 'confChange') this.#confEntries.push({ index: e.index, cc: decodeConfChange(e.data) });
    this.#conf = this.#confAt(Number.POSITIVE_INFINITY);
    this.#appliedConf = this.#confAt(this.#log.applied);

    const voters = config.voters ?? config.peers ?? [];
    const empty = storage.lastIndex() === 0 && hs.term === 0 && snap.metadata.index === 0;
    if (empty && voters.length > 0) this.#bootstrap(voters, config.learners ?? []);
    this.#applying = this.#log.applied;
    this.#becomeFollower(this.#term, '');
  }

  /** Every initial member writes the same entries, so their logs agree from the start. */
  #bootstrap(voters: readonly string[], learners: readonly string[]): void {
    // Sorted, so members configured with the same set in a different order still agree.
    const ccs: ConfChange[] = [
      ...[...new Set(voters)].sort().map((nodeId): ConfChange => ({ type: 'addVoter', nodeId })),
      ...[...new Set(learners)].sort().map((nodeId): ConfChange => ({ type: 'addLearner', nodeId })),
    ];
    const entries = ccs.map(
      (cc, i): Entry => ({ term: 1, index: i + 1, type: 'confChange', data: encodeConfChange(cc) }),
    );
    this.#term = 1;
    this.#appendToLog(entries);
    this.#log.commitTo(entries.length);
  }

  // ---------------------------------------------------------------- inputs

  tick(): void {
    if (this.#role === 'leader') this.#tickLeader();
    else this.#tickElection();
  }

  /** Appends `data` to the log; returns its index. Throws NOT_LEADER on a non-leader. */
  propose(data: Uint8Array): number {
    this.#checkCanPropose();
    return this.#appendNew('normal', data);
  }

  proposeConfChange(cc: { type: 'addLearner' | 'promote' | 'remove'; nodeId: string }): number {
    this.#checkCanPropose();
    if (this.#pendingConfIndex > this.#log.applied) {
      throw new RaftError('CONF_CHANGE_PENDING', 'a configuration change is still being applied', this.#lead);
    }
    const { voters, learners } = this.#conf;
    const id = cc.nodeId;
    const invalid = (why: string) => new RaftError('INVALID_CONF_CHANGE', `${cc.type} ${id}: ${why}`, this.#lead);
    switch (cc.type) {
      case 'addLearner':
        if (voters.has(id) || learners.has(id)) throw invalid('already a member');
        break;
      case 'promote':
        if (!learners.has(id)) throw invalid('not a learner');
        break;
      case 'remove':
        if (!voters.has(id) && !learners.has(id)) throw invalid('not a member');
        if (voters.has(id) && voters.size === 1) throw invalid('cannot remove the last voter');
        break;
      default:
        throw invalid('unknown type');
    }
    if (id === '' || id.includes(':')) throw invalid('bad node id');
    const index = this.#appendNew('confChange', encodeConfChange({ type: cc.type, nodeId: id }));
    this.#pendingConfIndex = index;
    return index;
  }

  /** Hands leadership to voter `to` once its log is caught up (it then campaigns at once). */
  transferLeadership(to: string): void {
    if (this.#role !== 'leader') throw new RaftError('NOT_LEADER', 'not the leader', this.#lead);
    if (to === this.#id) return;
    if (!this.#conf.voters.has(to)) throw new RaftError('INVALID_ARGUMENT', `${to} is not a voter`, this.#lead);
    if (this.#leadTransferee === to) return;
    this.#leadTransferee = to;
    this.#electionElapsed = 0;
    const pr = this.#progress.get(to);
    if (pr !== undefined && pr.match === this.#log.lastIndex())
      this.#send({ type: 'timeoutNow', to, term: this.#term });
    else this.#sendAppend(to, true);
  }

  /** The caller applied a conf-change entry; returns the membership as of that entry. */
  applyConfChange(cc: ConfChange): ConfState {
    foldConfChange(this.#appliedConf, cc);
    if (cc.type === 'remove' && cc.nodeId === this.#id && this.#role === 'leader') {
      // The removal is committed: hand over to the most caught-up voter rather than wait for a timeout.
      let best = '';
      let bestMatch = -1;
      for (const v of this.#conf.voters) {
        const m = this.#progress.get(v)?.match ?? -1;
        if (m > bestMatch) [best, bestMatch] = [v, m];
      }
      const term = this.#term;
      this.#becomeFollower(term, '');
      if (best !== '' && bestMatch === this.#log.lastIndex()) this.#send({ type: 'timeoutNow', to: best, term });
    }
    return toConfState(this.#appliedConf);
  }

  /**
   * Makes a snapshot at `index` (≤ applied) holding the caller's state-machine `data`. The caller
   * persists it and then discards the log it covers (`MemoryRaftStorage.compact`).
   */
  compact(index: number, data: Uint8Array, confState?: ConfState): Snapshot {
    if (index > this.#log.applied) {
      throw new RaftError('INVALID_ARGUMENT', `cannot compact to ${index}: applied is ${this.#log.applied}`);
    }
    const term = this.#log.term(index);
    if (term === undefined || index < this.#log.firstIndex() - 1) {
      throw new RaftError('COMPACTED', `index ${index} is already compacted`);
    }
    const cs = toConfState(this.#confAt(index));
    if (confState !== undefined && !sameConf(cs, confState)) {
      throw new RaftError('INVALID_ARGUMENT', `confState does not match the membership at ${index}`);
    }
    this.#confBase = cs;
    this.#confEntries = this.#confEntries.filter((c) => c.index > index);
    return { metadata: { index, term, confState: cs }, data };
  }

  step(m: Message): void {
    if (m.to !== this.#id) return;
    if (m.term > this.#term) {
      if (m.type === 'preVote' || m.type === 'vote') {
        // A voter that hears from a live leader ignores campaigns (pre-votes always, votes under
        // check-quorum) so a node rejoining a healthy cluster cannot depose its leader.
        const force = m.type === 'vote' && m.transfer === true;
        const inLease =
          this.#lead !== '' &&
          this.#electionElapsed < this.#electionTick &&
          (m.type === 'preVote' || this.#checkQuorum);
        if (!force && inLease) return;
      }
      if (m.type === 'preVote') {
        // A pre-vote never changes our term.
      } else if (m.type === 'preVoteResp' && !m.reject) {
        // Granted pre-votes carry the term of the election to come.
      } else {
        const lead = m.type === 'app' || m.type === 'heartbeat' || m.type === 'snapshot' ? m.from : '';
        this.#becomeFollower(m.term, lead);
      }
    } else if (m.term < this.#term) {
      if ((this.#checkQuorum || this.#preVote) && (m.type === 'app' || m.type === 'heartbeat')) {
        // Tell a stale leader about the newer term so it steps down.
        this.#send({
          type: 'appResp',
          to: m.from,
          term: this.#term,
          index: 0,
          reject: true,
          rejectHint: 0,
          hintTerm: 0,
        });
      } else if (m.type === 'preVote') {
        this.#send({ type: 'preVoteResp', to: m.from, term: this.#term, reject: true });
      }
      return;
    }

    if (m.type === 'preVote' || m.type === 'vote') {
      this.#handleVoteRequest(m);
      return;
    }
    switch (this.#role) {
      case 'leader':
        this.#stepLeader(m);
        break;
      case 'candidate':
      case 'preCandidate':
        this.#stepCandidate(m);
        break;
      case 'follower':
        this.#stepFollower(m);
        break;
    }
  }

  // ---------------------------------------------------------------- outputs

  hasReady(): boolean {
    if (this.#msgs.length > 0) return true;
    if (this.#log.unstableEntries().length > 0 || this.#log.unstableSnapshot() !== undefined) return true;
    const hs = this.#prevHard;
    if (hs.term !== this.#term || hs.vote !== this.#vote || hs.commit !== this.#log.committed) return true;
    if (this.#prevSoft.leader !== this.#lead || this.#prevSoft.role !== this.#role) return true;
    return this.#log.hasNextCommitted(this.#applying);
  }

  ready(): Ready {
    const log = this.#log;
    const entries = log.unstableEntries().slice();
    const snapshot = log.unstableSnapshot();
    const committedEntries = log.nextCommitted(this.#applying);
    const messages = this.#msgs;
    this.#msgs = [];
    let hardState: HardState | undefined;
    const hs = this.#prevHard;
    if (hs.term !== this.#term || hs.vote !== this.#vote || hs.commit !== log.committed) {
      hardState = { term: this.#term, vote: this.#vote, commit: log.committed };
      this.#prevHard = hardState;
    }
    let softState: SoftState | undefined;
    if (this.#prevSoft.leader !== this.#lead || this.#prevSoft.role !== this.#role) {
      softState = { leader: this.#lead, role: this.#role };
      this.#prevSoft = softState;
    }
    const lastEntry = entries[entries.length - 1];
    const applyingTo =
      committedEntries[committedEntries.length - 1]?.index ?? snapshot?.metadata.index ?? this.#applying;
    this.#applying = Math.max(this.#applying, applyingTo);
    this.#pendingReady = {
      lastIndex: lastEntry?.index ?? 0,
      lastTerm: lastEntry?.term ?? 0,
      snapshotIndex: snapshot?.metadata.index ?? 0,
      applyingTo: this.#applying,
    };
    const ready: {
      -readonly [K in keyof Ready]: Ready[K];
    } = { entries, messages, committedEntries };
    if (softState !== undefined) ready.softState = softState;
    if (hardState !== undefined) ready.hardState = hardState;
    if (snapshot !== undefined) ready.snapshot = snapshot;
    return ready;
  }

  /** The last Ready was persisted, sent and applied. */
  advance(): void {
    const pending = this.#pendingReady;
    if (pending === undefined) return;
    this.#pendingReady = undefined;
    if (pending.snapshotIndex > 0) {
      this.#log.stableSnapshotTo(pending.snapshotIndex);
      this.#appliedConf = fromConfState(this.#confBase);
    }
    if (pending.lastIndex > 0) this.#log.stableTo(pending.lastIndex, pending.lastTerm);
    if (pending.applyingTo > this.#log.applied) this.#log.applied = pending.applyingTo;
  }

  status(): RaftStatus {
    let progress: Record<string, ProgressStatus> | undefined;
    if (this.#role === 'leader') {
      progress = {};
      for (const [id, pr] of this.#progress) {
        progress[id] = {
          match: pr.match,
          next: pr.next,
          state: pr.state,
          isLearner: pr.isLearner,
          inflight: pr.inflights.count,
        };
      }
    }
    const base = {
      id: this.#id,
      term: this.#term,
      vote: this.#vote,
      commit: this.#log.committed,
      applied: this.#log.applied,
      leader: this.#lead,
      role: this.#role,
      firstIndex: this.#log.firstIndex(),
      lastIndex: this.#log.lastIndex(),
      confState: toConfState(this.#conf),
      leadTransferee: this.#leadTransferee,
    };
    return progress === undefined ? base : { ...base, progress };
  }

  /** Term of the entry at `index` in this node's log, if held (for tests and simulators). */
  termAt(index: number): number | undefined {
    return this.#log.term(index);
  }

  // ---------------------------------------------------------------- roles

  #reset(term: number): void {
    if (this.#term !== term) {
      this.#term = term;
      this.#vote = '';
    }
    this.#lead = '';
    this.#electionElapsed = 0;
    this.#heartbeatElapsed = 0;
    this.#randomizedElectionTimeout =
      this.#electionTick + Math.min(this.#electionTick - 1, Math.floor(this.#random() * this.#electionTick));
    this.#votes.clear();
    this.#progress.clear();
    this.#leadTransferee = '';
  }

  #becomeFollower(term: number, lead: string): void {
    this.#reset(term);
    this.#role = 'follower';
    this.#lead = lead;
  }

  #becomePreCandidate(): void {
    // No term change, no vote: the pre-vote round only asks whether an election could be won.
    this.#votes.clear();
    this.#lead = '';
    this.#role = 'preCandidate';
    this.#randomizedElectionTimeout =
      this.#electionTick + Math.min(this.#electionTick - 1, Math.floor(this.#random() * this.#electionTick));
  }

  #becomeCandidate(): void {
    this.#reset(this.#term + 1);
    this.#vote = this.#id;
    this.#role = 'candidate';
  }

  #becomeLeader(): void {
    this.#reset(this.#term);
    this.#role = 'leader';
    this.#lead = this.#id;
    this.#syncProgress();
    for (const pr of this.#progress.values()) pr.recentActive = true;
    // No conf change until everything up to our first entry is applied (Raft thesis §4.1 fix).
    this.#pendingConfIndex = this.#log.lastIndex();
    // Entries of earlier terms commit only through an entry of our own term (Raft §5.4.2).
    this.#appendNew('normal', new Uint8Array());
  }

  #promotable(): boolean {
    return this.#conf.voters.has(this.#id) && this.#log.unstableSnapshot() === undefined;
  }

  #tickElection(): void {
    this.#electionElapsed++;
    if (this.#promotable() && this.#electionElapsed >= this.#randomizedElectionTimeout) {
      this.#electionElapsed = 0;
      this.#campaign(this.#preVote ? 'pre' : 'election', false);
    }
  }

  #tickLeader(): void {
    this.#heartbeatElapsed++;
    this.#electionElapsed++;
    if (this.#electionElapsed >= this.#electionTick) {
      this.#electionElapsed = 0;
      if (this.#checkQuorum && !this.#quorumActive()) {
        this.#becomeFollower(this.#term, '');
        return;
      }
      for (const pr of this.#progress.values()) pr.recentActive = false;
      this.#leadTransferee = '';
    }
    for (const pr of this.#progress.values()) {
      if (pr.state === 'snapshot' && ++pr.snapshotTicks > 2 * this.#electionTick) pr.snapshotFailed();
    }
    if (this.#heartbeatElapsed >= this.#heartbeatTick) {
      this.#heartbeatElapsed = 0;
      for (const [to, pr] of this.#progress) {
        this.#send({ type: 'heartbeat', to, term: this.#term, commit: Math.min(pr.match, this.#log.committed) });
      }
    }
  }

  #quorumActive(): boolean {
    let active = 0;
    for (const v of this.#conf.voters) {
      if (v === this.#id || this.#progress.get(v)?.recentActive) active++;
    }
    return active >= Math.floor(this.#conf.voters.size / 2) + 1;
  }

  #campaign(kind: 'pre' | 'election', transfer: boolean): void {
    let voteTerm: number;
    if (kind === 'pre') {
      this.#becomePreCandidate();
      voteTerm = this.#term + 1;
    } else {
      this.#becomeCandidate();
      voteTerm = this.#term;
    }
    if (this.#poll(this.#id, true) === 'won') {
      if (kind === 'pre') this.#campaign('election', transfer);
      else this.#becomeLeader();
      return;
    }
    const lastLogIndex = this.#log.lastIndex();
    const lastLogTerm = this.#log.lastTerm();
    const type = kind === 'pre' ? 'preVote' : 'vote';
    for (const to of this.#conf.voters) {
      if (to === this.#id) continue;
      const m: VoteRequest = transfer
        ? { type, to, from: this.#id, term: voteTerm, lastLogIndex, lastLogTerm, transfer: true }
        : { type, to, from: this.#id, term: voteTerm, lastLogIndex, lastLogTerm };
      this.#msgs.push(m);
    }
  }

  #poll(from: string, granted: boolean): 'won' | 'lost' | 'pending' {
    if (!this.#votes.has(from)) this.#votes.set(from, granted);
    let yes = 0;
    let no = 0;
    for (const v of this.#conf.voters) {
      const g = this.#votes.get(v);
      if (g === true) yes++;
      else if (g === false) no++;
    }
    const quorum = Math.floor(this.#conf.voters.size / 2) + 1;
    if (yes >= quorum) return 'won';
    if (no >= quorum || no > this.#conf.voters.size - quorum) return 'lost';
    return 'pending';
  }

  #handleVoteRequest(m: VoteRequest): void {
    const pre = m.type === 'preVote';
    const canVote = this.#vote === m.from || (this.#vote === '' && this.#lead === '') || (pre && m.term > this.#term);
    const respType = pre ? 'preVoteResp' : 'voteResp';
    if (canVote && this.#log.isUpToDate(m.lastLogIndex, m.lastLogTerm)) {
      // The grant carries the candidate's term: for a pre-vote ours has not changed.
      this.#send({ type: respType, to: m.from, term: m.term, reject: false });
      if (!pre) {
        this.#electionElapsed = 0;
        this.#vote = m.from;
      }
    } else {
      this.#send({ type: respType, to: m.from, term: this.#term, reject: true });
    }
  }

  #stepFollower(m: Message): void {
    switch (m.type) {
      case 'app':
        this.#electionElapsed = 0;
        this.#lead = m.from;
        this.#handleAppend(m);
        break;
      case 'heartbeat':
        this.#electionElapsed = 0;
        this.#lead = m.from;
        this.#handleHeartbeat(m);
        break;
      case 'snapshot':
        this.#electionElapsed = 0;
        this.#lead = m.from;
        this.#handleSnapshot(m);
        break;
      case 'timeoutNow':
        if (this.#promotable()) this.#campaign('election', true);
        break;
      default:
        break;
    }
  }

  #stepCandidate(m: Message): void {
    switch (m.type) {
      case 'app':
        this.#becomeFollower(m.term, m.from);
        this.#handleAppend(m);
        break;
      case 'heartbeat':
        this.#becomeFollower(m.term, m.from);
        this.#handleHeartbeat(m);
        break;
      case 'snapshot':
        this.#becomeFollower(m.term, m.from);
        this.#handleSnapshot(m);
        break;
      case 'preVoteResp':
      case 'voteResp': {
        if ((m.type === 'preVoteResp') !== (this.#role === 'preCandidate')) break;
        const result = this.#poll(m.from, !m.reject);
        if (result === 'won') {
          if (this.#role === 'preCandidate') this.#campaign('election', false);
          else this.#becomeLeader();
        } else if (result === 'lost') {
          this.#becomeFollower(this.#term, '');
        }
        break;
      }
      default:
        break;
    }
  }

  #stepLeader(m: Message): void {
    const pr = this.#progress.get(m.from);
    if (pr === undefined) return;
    switch (m.type) {
      case 'appResp':
        pr.recentActive = true;
        this.#handleAppendResponse(m, pr);
        break;
      case 'heartbeatResp':
        pr.recentActive = true;
        pr.probeSent = false;
        if (pr.state === 'replicate' && pr.inflights.full()) pr.inflights.freeFirstOne();
        if (pr.match < this.#log.lastIndex()) this.#sendAppend(m.from, true);
        break;
      default:
        break;
    }
  }

  // ---------------------------------------------------------------- replication (follower)

  #handleAppend(m: AppendRequest): void {
    const log = this.#log;
    if (m.prevIndex < log.committed) {
      this.#reply(m, log.committed, false, 0, 0);
      return;
    }
    const result = log.maybeAppend(m.prevIndex, m.prevTerm, m.commit, m.entries);
    if (result !== undefined) {
      if (result.appended.length > 0) this.#trackConf(result.appended);
      this.#reply(m, result.lastNew, false, 0, 0);
      return;
    }
    // Fast backtracking: point the leader at the last index whose term could still match.
    const hint = log.findConflictByTerm(Math.min(m.prevIndex, log.lastIndex()), m.prevTerm);
    this.#reply(m, m.prevIndex, true, hint.index, hint.term);
  }

  #reply(m: Message, index: number, reject: boolean, rejectHint: number, hintTerm: number): void {
    this.#send({ type: 'appResp', to: m.from, term: this.#term, index, reject, rejectHint, hintTerm });
  }

  #handleHeartbeat(m: Heartbeat): void {
    this.#log.commitTo(Math.min(m.commit, this.#log.lastIndex()));
    this.#send({ type: 'heartbeatResp', to: m.from, term: this.#term });
  }

  #handleSnapshot(m: InstallSnapshot): void {
    const meta = m.snapshot.metadata;
    const log = this.#log;
    if (meta.index <= log.committed) {
      this.#reply(m, log.committed, false, 0, 0);
      return;
    }
    if (log.matchTerm(meta.index, meta.term)) {
      // We already hold the snapshot's last entry: just learn that it is committed.
      log.commitTo(meta.index);
      this.#reply(m, log.committed, false, 0, 0);
      return;
    }
    log.restore(m.snapshot);
    this.#confBase = meta.confState;
    this.#confEntries = [];
    this.#conf = fromConfState(meta.confState);
    this.#applying = Math.max(this.#applying, meta.index);
    this.#reply(m, meta.index, false, 0, 0);
  }

  // ---------------------------------------------------------------- replication (leader)

  #checkCanPropose(): void {
    if (this.#role !== 'leader') throw new RaftError('NOT_LEADER', 'not the leader', this.#lead);
    if (this.#leadTransferee !== '') {
      throw new RaftError('LEADER_TRANSFER_IN_PROGRESS', `leadership is moving to ${this.#leadTransferee}`, this.#lead);
    }
  }

  #appendNew(type: Entry['type'], data: Uint8Array): number {
    const index = this.#log.lastIndex() + 1;
    this.#appendToLog([{ term: this.#term, index, type, data }]);
    this.#maybeCommit();
    this.#bcastAppend();
    return index;
  }

  #appendToLog(entries: Entry[]): void {
    this.#log.append(entries);
    this.#trackConf(entries);
  }

  #handleAppendResponse(m: AppendResponse, pr: Progress): void {
    if (m.reject) {
      let nextProbe = m.rejectHint;
      if (m.hintTerm > 0) nextProbe = this.#log.findConflictByTerm(m.rejectHint, m.hintTerm).index;
      if (pr.maybeDecrTo(m.index, nextProbe)) {
        if (pr.state === 'replicate') pr.becomeProbe();
        this.#sendAppend(m.from, true);
      }
      return;
    }
    if (pr.maybeUpdate(m.index) || (pr.match === m.index && pr.state === 'probe')) {
      if (pr.state === 'probe') pr.becomeReplicate();
      else if (pr.state === 'snapshot' && pr.match + 1 >= this.#log.firstIndex()) {
        pr.becomeProbe();
        pr.becomeReplicate();
      } else if (pr.state === 'replicate') pr.inflights.freeLE(m.index);
      if (this.#maybeCommit()) this.#bcastAppend();
      while (this.#sendAppend(m.from, false)) {}
      if (m.from === this.#leadTransferee && pr.match === this.#log.lastIndex()) {
        this.#send({ type: 'timeoutNow', to: m.from, term: this.#term });
      }
    }
  }

  /** Raft §5.3/§5.4.2: commit the quorum's match index, but only if it is an entry of our term. */
  #maybeCommit(): boolean {
    const voters = this.#conf.voters;
    if (voters.size === 0) return false;
    const matches: number[] = [];
    for (const v of voters) matches.push(v === this.#id ? this.#log.lastIndex() : (this.#progress.get(v)?.match ?? 0));
    matches.sort((a, b) => b - a);
    const q = matches[Math.floor(voters.size / 2)]!;
    if (q > this.#log.committed && this.#log.term(q) === this.#term) {
      this.#log.commitTo(q);
      return true;
    }
    return false;
  }

  #bcastAppend(): void {
    for (const to of this.#progress.keys()) this.#sendAppend(to, true);
  }

  #sendAppend(to: string, sendIfEmpty: boolean): boolean {
    const pr = this.#progress.get(to);
    if (pr === undefined || pr.isPaused()) return false;
    const log = this.#log;
    const last = log.lastIndex();
    if (pr.next > last + 1) pr.next = last + 1;
    const prevIndex = pr.next - 1;
    const prevTerm = log.term(prevIndex);
    const entries = prevTerm === undefined ? undefined : log.slice(pr.next, last + 1, this.#maxSizePerMsg);
    if (prevTerm === undefined || entries === undefined) {
      // The follower needs entries we compacted away: send our latest snapshot instead.
      const snapshot = log.snapshot();
      pr.becomeSnapshot(snapshot.metadata.index);
      this.#send({ type: 'snapshot', to, term: this.#term, snapshot });
      return true;
    }
    if (entries.length === 0 && !sendIfEmpty) return false;
    this.#send({ type: 'app', to, term: this.#term, prevIndex, prevTerm, entries, commit: log.committed });
    const lastSent = entries[entries.length - 1];
    if (pr.state === 'replicate') {
      if (lastSent !== undefined) {
        pr.next = lastSent.index + 1;
        pr.inflights.add(lastSent.index);
      }
    } else {
      pr.probeSent = true;
    }
    return true;
  }

  // ---------------------------------------------------------------- membership

  #confAt(index: number): MutableConf {
    const conf = fromConfState(this.#confBase);
    for (const c of this.#confEntries) {
      if (c.index > index) break;
      foldConfChange(conf, c.cc);
    }
    return conf;
  }

  /** Entries were written from `entries[0].index` on: the log's membership follows them. */
  #trackConf(entries: readonly Entry[]): void {
    const from = entries[0]!.index;
    const last = this.#confEntries[this.#confEntries.length - 1];
    const truncated = last !== undefined && last.index >= from;
    if (truncated) this.#confEntries = this.#confEntries.filter((c) => c.index < from);
    let changed = truncated;
    for (const e of entries) {
      if (e.type === 'confChange') {
        this.#confEntries.push({ index: e.index, cc: decodeConfChange(e.data) });
        changed = true;
      }
    }
    if (!changed) return;
    this.#conf = this.#confAt(Number.POSITIVE_INFINITY);
    if (this.#role === 'leader') {
      this.#syncProgress();
      if (!this.#conf.voters.has(this.#leadTransferee)) this.#leadTransferee = '';
    }
  }

  /** The leader tracks every member of its configuration but itself. */
  #syncProgress(): void {
    const { voters, learners } = this.#conf;
    for (const id of this.#progress.keys()) if (!voters.has(id) && !learners.has(id)) this.#progress.delete(id);
    const next = this.#log.lastIndex() + 1;
    for (const [set, isLearner] of [
      [voters, false],
      [learners, true],
    ] as const) {
      for (const id of set) {
        if (id === this.#id) continue;
        const pr = this.#progress.get(id);
        if (pr === undefined) this.#progress.set(id, new Progress(next, this.#maxInflight, isLearner));
        else pr.isLearner = isLearner;
      }
    }
  }

  #send(m: Outgoing): void {
    this.#msgs.push({ ...m, from: this.#id } as Message);
  }
}
