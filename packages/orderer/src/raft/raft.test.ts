import { describe, expect, it } from 'vitest';
import {
  decodeEntry,
  decodeHardState,
  decodeMessage,
  decodeSnapshot,
  encodeEntry,
  encodeHardState,
  encodeMessage,
  encodeSnapshot,
} from './codec.js';
import { TestCluster } from './sim/test-cluster.js';
import { MemoryRaftStorage } from './storage.js';
import { type Entry, type Message, RaftError, type Snapshot } from './types.js';

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);
const values = (entries: readonly Entry[]) =>
  entries.filter((e) => e.type === 'normal' && e.data.length > 0).map((e) => dec(e.data));

/** Storage holding a snapshot of the given membership at index 1, then `terms[i]` at index i + 2. */
function seededStorage(voters: string[], terms: number[], term: number): MemoryRaftStorage {
  const st = new MemoryRaftStorage();
  st.applySnapshot({ metadata: { index: 1, term: 1, confState: { voters, learners: [] } }, data: new Uint8Array() });
  st.append(terms.map((t, i): Entry => ({ term: t, index: i + 2, type: 'normal', data: enc(`e${i + 2}t${t}`) })));
  st.setHardState({ term, vote: '', commit: 1 });
  return st;
}

function threeNodes(): TestCluster {
  const c = new TestCluster();
  const ids = ['n1', 'n2', 'n3'];
  c.add('n1', { voters: ids, random: () => 0 });
  c.add('n2', { voters: ids });
  c.add('n3', { voters: ids });
  return c;
}

describe('RaftNode election', () => {
  it('elects the first node to time out and everyone follows it', () => {
    const c = threeNodes();
    c.tick('n1', 9);
    expect(c.node('n1').status().role).toBe('follower');
    c.tick('n1');
    expect(c.node('n1').status().role).toBe('preCandidate');
    expect(c.outbox.map((m) => m.type)).toEqual(['preVote', 'preVote']);
    c.deliverAll();
    const s = c.node('n1').status();
    expect(s.role).toBe('leader');
    expect(s.term).toBe(2); // bootstrap entries are term 1
    c.settle();
    for (const id of ['n2', 'n3']) {
      expect(c.node(id).status()).toMatchObject({ role: 'follower', leader: 'n1', term: 2 });
    }
    // The leader's empty entry commits everywhere.
    for (const id of ['n1', 'n2', 'n3']) expect(c.node(id).status().commit).toBe(4);
  });

  it('randomizes the election timeout within [electionTick, 2 * electionTick)', () => {
    for (const r of [0, 0.5, 0.999]) {
      const c = new TestCluster();
      c.add('a', { voters: ['a', 'b', 'c'], random: () => r });
      let ticks = 0;
      while (c.node('a').status().role === 'follower') {
        c.tick('a');
        ticks++;
      }
      expect(ticks).toBe(10 + Math.floor(r * 10));
    }
  });

  it('a lone voter elects itself', () => {
    const c = new TestCluster(['solo'], { random: () => 0 });
    c.elect('solo');
    const i = c.node('solo').propose(enc('x'));
    c.process('solo');
    expect(c.node('solo').status().commit).toBe(i);
  });

  it('pre-vote keeps a partitioned node from disrupting the cluster when it rejoins', () => {
    const c = threeNodes();
    c.elect('n1');
    c.settle();
    const term = c.node('n1').status().term;
    // n3 is cut off and times out many times over.
    c.drop = (m) => m.from === 'n3' || m.to === 'n3';
    for (let i = 0; i < 100; i++) {
      c.tickAll();
      c.deliverAll();
    }
    expect(c.node('n3').status().term).toBe(term); // pre-vote never won, term never bumped
    expect(c.node('n3').status().role).toBe('preCandidate');
    // n3 rejoins: its pre-votes are ignored by nodes that hear from the leader.
    c.drop = () => false;
    for (let i = 0; i < 30; i++) {
      c.tickAll();
      c.deliverAll();
    }
    expect(c.node('n1').status()).toMatchObject({ role: 'leader', term });
    expect(c.node('n3').status()).toMatchObject({ role: 'follower', leader: 'n1', term });
  });

  it('with check-quorum, a leader cut off from its quorum steps down', () => {
    const ids = ['n1', 'n2', 'n3'];
    const c = new TestCluster();
    c.add('n1', { voters: ids, random: () => 0, checkQuorum: true });
    c.add('n2', { voters: ids, checkQuorum: true });
    c.add('n3', { voters: ids, checkQuorum: true });
    c.elect('n1');
    c.settle();
    c.drop = (m) => m.from === 'n1' || m.to === 'n1';
    for (let i = 0; i < 10; i++) {
      c.tick('n1');
      c.deliverAll();
    }
    expect(c.node('n1').status().role).toBe('leader'); // the first round still counts the old acks
    for (let i = 0; i < 10; i++) {
      c.tick('n1');
      c.deliverAll();
    }
    expect(c.node('n1').status()).toMatchObject({ role: 'follower', leader: '' });
  });

  it('without pre-vote the same partition would have inflated the term', () => {
    const ids = ['n1', 'n2', 'n3'];
    const c = new TestCluster();
    c.add('n1', { voters: ids, random: () => 0, preVote: false });
    c.add('n2', { voters: ids, preVote: false });
    c.add('n3', { voters: ids, preVote: false });
    c.elect('n1');
    c.drop = (m) => m.from === 'n3' || m.to === 'n3';
    for (let i = 0; i < 60; i++) c.tick('n3');
    expect(c.node('n3').status().term).toBeGreaterThan(c.node('n1').status().term);
  });
});

describe('RaftNode commit rule', () => {
  it('never commits an entry of an earlier term by counting replicas (Raft figure 8)', () => {
    // Figure 8 (c): s1 (term-2 entry at index 2, also on s2) becomes leader of term 4; s5 holds a
    // conflicting uncommitted term-3 entry at index 2.
    const voters = ['s1', 's2', 's3', 's4', 's5'];
    const c = new TestCluster();
    c.add('s1', { storage: seededStorage(voters, [2], 3), random: () => 0, maxSizePerMsg: 1 });
    c.add('s2', { storage: seededStorage(voters, [2], 3) });
    c.add('s3', { storage: seededStorage(voters, [], 3) });
    c.add('s4', { storage: seededStorage(voters, [], 3) });
    c.add('s5', { storage: seededStorage(voters, [3], 3) });
    c.tick('s1', 10);
    c.deliverAll((m) => m.type !== 'app' && m.type !== 'appResp');
    expect(c.node('s1').status()).toMatchObject({ role: 'leader', term: 4, lastIndex: 3 });
    // s2 acknowledges everything; s3 is probed back to index 2 and acknowledges only the term-2 entry.
    c.deliverAll((m) => m.to === 's2' || m.from === 's2');
    const toS3 = c.take((m) => m.to === 's3');
    for (const m of toS3) c.deliverOne(m); // rejected: s3 lacks index 2
    c.deliverOne(c.take((m) => m.from === 's3')[0]!);
    const retry = c.take((m) => m.to === 's3' && m.type === 'app');
    expect(retry).toHaveLength(1);
    expect(retry[0]).toMatchObject({ type: 'app', prevIndex: 1, entries: [{ index: 2, term: 2 }] });
    c.deliverOne(retry[0]!);
    c.deliverOne(c.take((m) => m.from === 's3')[0]!);
    // s1, s2, s3 (a majority) hold index 2, but it is from term 2: not committed.
    expect(c.node('s1').status().progress?.s3?.match).toBe(2);
    expect(c.node('s1').status().commit).toBe(1);
    // Once the term-4 entry is on a majority, both commit.
    c.deliverAll((m) => m.to === 's3' || m.from === 's3');
    expect(c.node('s1').status().commit).toBe(3);
    expect(c.get('s1').applied.map((e) => e.index)).toEqual([2, 3]);
  });
});

describe('RaftNode log replication', () => {
  it('backtracks over a long divergent suffix in one round trip', () => {
    const voters = ['s1', 's2', 's3'];
    const leaderLog = Array.from({ length: 20 }, () => 2);
    const divergent = [...Array.from({ length: 4 }, () => 2), ...Array.from({ length: 25 }, () => 3)];
    const c = new TestCluster();
    c.add('s1', { storage: seededStorage(voters, leaderLog, 4), random: () => 0 });
    c.add('s2', { storage: seededStorage(voters, leaderLog, 4) });
    c.add('s3', { storage: seededStorage(voters, divergent, 4) });
    c.tick('s1', 10);
    c.deliverAll((m) => m.to !== 's3' && m.from !== 's3');
    expect(c.node('s1').status().role).toBe('leader');
    c.deliverAll();
    const rejects = c.delivered.filter((m) => m.type === 'appResp' && m.from === 's3' && m.reject);
    expect(rejects).toHaveLength(1);
    c.settle(2);
    const s3 = c.get('s3');
    expect(c.node('s3').status().lastIndex).toBe(22);
    expect(s3.storage.term(5)).toBe(2);
    expect(s3.storage.term(6)).toBe(2);
    expect(s3.storage.term(22)).toBe(5);
    expect(values(s3.applied)).toEqual(values(c.get('s1').applied));
  });

  it('sends a snapshot to a follower that needs compacted entries', () => {
    const c = threeNodes();
    c.elect('n1');
    c.settle();
    c.drop = (m) => m.to === 'n3' || m.from === 'n3';
    for (let i = 0; i < 20; i++) c.node('n1').propose(enc(`v${i}`));
    c.process('n1');
    c.deliverAll();
    const leader = c.get('n1');
    const applied = leader.node.status().applied;
    expect(applied).toBe(24);
    const snap = leader.node.compact(applied, enc('state@24'));
    leader.storage.compact(snap);
    expect(leader.node.status().firstIndex).toBe(25);
    c.drop = () => false;
    c.settle(3);
    const snaps = c.delivered.filter((m) => m.type === 'snapshot');
    expect(snaps).toHaveLength(1);
    const n3 = c.get('n3');
    expect(n3.storage.snapshot().metadata).toMatchObject({ index: 24, term: 2 });
    expect(dec(n3.storage.snapshot().data)).toBe('state@24');
    expect(n3.conf).toEqual({ voters: ['n1', 'n2', 'n3'], learners: [] });
    // Replication resumes from the log after the snapshot.
    c.node('n1').propose(enc('after'));
    c.process('n1');
    c.settle(2);
    expect(n3.node.status()).toMatchObject({ applied: 25, commit: 25 });
    expect(values(n3.applied)).toEqual(['after']);
  });

  it('keeps at most maxInflightMsgs appends in flight to a follower', () => {
    const ids = ['n1', 'n2'];
    const c = new TestCluster();
    c.add('n1', { voters: ids, random: () => 0, maxInflightMsgs: 2, maxSizePerMsg: 1 });
    c.add('n2', { voters: ids });
    c.elect('n1');
    c.settle();
    expect(c.node('n1').status().progress?.n2?.state).toBe('replicate');
    for (let i = 0; i < 10; i++) c.node('n1').propose(enc(`v${i}`));
    c.process('n1');
    let apps = c.take((m) => m.type === 'app');
    expect(apps).toHaveLength(2);
    expect(c.node('n1').status().progress?.n2?.inflight).toBe(2);
    // Each acknowledgement opens the window again.
    c.deliverOne(apps[0]!);
    c.deliverOne(c.take((m) => m.type === 'appResp')[0]!);
    apps = [...apps.slice(1), ...c.take((m) => m.type === 'app')];
    expect(apps).toHaveLength(2);
    c.outbox.push(...apps);
    c.deliverAll();
    expect(c.node('n2').status().commit).toBe(c.node('n1').status().lastIndex);
  });

  it('rejects proposals on a follower, naming the leader', () => {
    const c = threeNodes();
    c.elect('n1');
    c.settle();
    try {
      c.node('n2').propose(enc('x'));
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(RaftError);
      expect(err).toMatchObject({ code: 'NOT_LEADER', leader: 'n1' });
    }
  });
});

describe('RaftNode membership', () => {
  it('adds a learner, promotes it, and removes a voter', () => {
    const c = threeNodes();
    c.elect('n1');
    c.settle();
    const leader = c.node('n1');
    leader.proposeConfChange({ type: 'addLearner', nodeId: 'n4' });
    expect(() => leader.proposeConfChange({ type: 'remove', nodeId: 'n2' })).toThrow(
      expect.objectContaining({ code: 'CONF_CHANGE_PENDING' }),
    );
    c.process('n1');
    c.add('n4'); // joins with no configuration: learns everything from the leader
    c.settle(4);
    expect(c.get('n1').conf).toEqual({ voters: ['n1', 'n2', 'n3'], learners: ['n4'] });
    expect(c.get('n4').conf).toEqual({ voters: ['n1', 'n2', 'n3'], learners: ['n4'] });
    for (let i = 0; i < 5; i++) leader.propose(enc(`v${i}`));
    c.process('n1');
    c.settle(2);
    expect(values(c.get('n4').applied)).toEqual(['v0', 'v1', 'v2', 'v3', 'v4']);
    // A learner never campaigns, however long it goes without a leader.
    c.drop = (m) => m.to === 'n4' || m.from === 'n4';
    c.tick('n4', 100);
    expect(c.node('n4').status().role).toBe('follower');
    expect(c.take((m) => m.from === 'n4')).toHaveLength(0);
    c.drop = () => false;

    leader.proposeConfChange({ type: 'promote', nodeId: 'n4' });
    c.process('n1');
    c.settle(3);
    expect(c.get('n4').conf).toEqual({ voters: ['n1', 'n2', 'n3', 'n4'], learners: [] });
    expect(leader.status().progress?.n4?.isLearner).toBe(false);

    leader.proposeConfChange({ type: 'remove', nodeId: 'n2' });
    c.process('n1');
    c.settle(3);
    expect(c.get('n1').conf).toEqual({ voters: ['n1', 'n3', 'n4'], learners: [] });
    expect(leader.status().progress?.n2).toBeUndefined();
    // With n2 gone, n1 + n3 + n4 form the quorum: commits need two of them.
    c.members.get('n3')!.down = true;
    leader.propose(enc('needs-n4'));
    c.process('n1');
    c.settle(2);
    expect(values(c.get('n1').applied)).toContain('needs-n4');
  });

  it('rejects invalid membership changes', () => {
    const c = threeNodes();
    c.elect('n1');
    c.settle();
    const leader = c.node('n1');
    expect(() => leader.proposeConfChange({ type: 'addLearner', nodeId: 'n2' })).toThrow(
      expect.objectContaining({ code: 'INVALID_CONF_CHANGE' }),
    );
    expect(() => leader.proposeConfChange({ type: 'promote', nodeId: 'n9' })).toThrow(
      expect.objectContaining({ code: 'INVALID_CONF_CHANGE' }),
    );
    expect(() => leader.proposeConfChange({ type: 'remove', nodeId: 'n9' })).toThrow(
      expect.objectContaining({ code: 'INVALID_CONF_CHANGE' }),
    );
  });

  it('a removed leader steps down and hands over leadership', () => {
    const c = threeNodes();
    c.elect('n1');
    c.settle();
    c.node('n1').proposeConfChange({ type: 'remove', nodeId: 'n1' });
    c.process('n1');
    c.deliverAll();
    c.settle(2);
    expect(c.node('n1').status().role).toBe('follower');
    const leaders = ['n2', 'n3'].filter((id) => c.node(id).status().role === 'leader');
    expect(leaders).toHaveLength(1);
    const newLeader = c.node(leaders[0]!);
    expect(newLeader.status().confState).toEqual({ voters: ['n2', 'n3'], learners: [] });
    // n1 is not a voter any more: it never campaigns.
    c.members.get(leaders[0]!)!.down = true;
    c.tick('n1', 50);
    expect(c.node('n1').status().role).toBe('follower');
  });
});

describe('RaftNode leader transfer', () => {
  it('moves leadership to a caught-up voter with TimeoutNow', () => {
    const c = threeNodes();
    c.elect('n1');
    c.settle();
    const term = c.node('n1').status().term;
    c.node('n1').transferLeadership('n3');
    c.process('n1');
    expect(c.outbox.map((m) => m.type)).toEqual(['timeoutNow']);
    expect(() => c.node('n1').propose(enc('x'))).toThrow(
      expect.objectContaining({ code: 'LEADER_TRANSFER_IN_PROGRESS' }),
    );
    c.deliverAll();
    expect(c.node('n3').status()).toMatchObject({ role: 'leader', term: term + 1 });
    expect(c.node('n1').status()).toMatchObject({ role: 'follower', leader: 'n3' });
  });

  it('catches a lagging target up first', () => {
    const c = threeNodes();
    c.elect('n1');
    c.settle();
    c.drop = (m) => m.to === 'n3';
    c.node('n1').propose(enc('x'));
    c.process('n1');
    c.deliverAll();
    c.drop = () => false;
    c.node('n1').transferLeadership('n3');
    c.process('n1');
    expect(c.outbox.map((m) => m.type)).toEqual(['app']);
    c.deliverAll();
    expect(c.node('n3').status().role).toBe('leader');
  });

  it('gives up after an election timeout if the target does not respond', () => {
    const c = threeNodes();
    c.elect('n1');
    c.settle();
    c.members.get('n3')!.down = true;
    c.node('n1').transferLeadership('n3');
    c.tick('n1', 10);
    expect(c.node('n1').status().leadTransferee).toBe('');
    expect(() => c.node('n1').propose(enc('ok'))).not.toThrow();
  });
});

describe('RaftNode restart', () => {
  it('recovers term, vote, log and membership from storage only', () => {
    const c = threeNodes();
    c.elect('n1');
    c.settle();
    for (let i = 0; i < 3; i++) c.node('n1').propose(enc(`v${i}`));
    c.process('n1');
    c.settle();
    const n2 = c.get('n2');
    const before = n2.node.status();
    c.members.delete('n2');
    const again = c.add('n2', { storage: n2.storage, applied: before.applied, voters: ['ignored'] });
    expect(again.node.status()).toMatchObject({
      term: before.term,
      commit: before.commit,
      applied: before.applied,
      lastIndex: before.lastIndex,
      confState: { voters: ['n1', 'n2', 'n3'], learners: [] },
    });
    expect(again.applied).toHaveLength(0); // nothing re-applied beyond `applied`
  });
});

describe('raft codec', () => {
  const entry: Entry = { term: 3, index: 7, type: 'confChange', data: enc('addLearner:n4') };
  const snapshot: Snapshot = {
    metadata: { index: 9, term: 3, confState: { voters: ['a', 'b'], learners: ['c'] } },
    data: enc('state'),
  };
  const messages: Message[] = [
    { type: 'preVote', from: 'a', to: 'b', term: 4, lastLogIndex: 9, lastLogTerm: 3 },
    { type: 'vote', from: 'a', to: 'b', term: 4, lastLogIndex: 9, lastLogTerm: 3, transfer: true },
    { type: 'preVoteResp', from: 'b', to: 'a', term: 4, reject: false },
    { type: 'voteResp', from: 'b', to: 'a', term: 4, reject: true },
    { type: 'app', from: 'a', to: 'b', term: 4, prevIndex: 6, prevTerm: 3, entries: [entry], commit: 6 },
    { type: 'appResp', from: 'b', to: 'a', term: 4, index: 6, reject: true, rejectHint: 5, hintTerm: 2 },
    { type: 'heartbeat', from: 'a', to: 'b', term: 4, commit: 6 },
    { type: 'heartbeatResp', from: 'b', to: 'a', term: 4 },
    { type: 'snapshot', from: 'a', to: 'b', term: 4, snapshot },
    { type: 'timeoutNow', from: 'a', to: 'b', term: 4 },
  ];

  it('round-trips every message type, deterministically', () => {
    for (const m of messages) {
      const bytes = encodeMessage(m);
      expect(decodeMessage(bytes)).toEqual(m);
      expect(encodeMessage(decodeMessage(bytes))).toEqual(bytes);
    }
  });

  it('round-trips entries, hard state and snapshots', () => {
    expect(decodeEntry(encodeEntry(entry))).toEqual(entry);
    expect(decodeHardState(encodeHardState({ term: 5, vote: 'b', commit: 8 }))).toEqual({
      term: 5,
      vote: 'b',
      commit: 8,
    });
    expect(decodeSnapshot(encodeSnapshot(snapshot))).toEqual(snapshot);
  });

  it('rejects malformed input with a RaftError', () => {
    expect(() => decodeMessage(encodeHardState({ term: 1, vote: '', commit: 0 }))).toThrow(RaftError);
    expect(() => decodeEntry(encodeMessage(messages[0]!))).toThrow(RaftError);
  });
});
