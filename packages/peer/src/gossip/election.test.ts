import { describe, expect, it } from 'vitest';
import { electLeader } from './election.js';

const now = 100_000;
const alive = (nodeId: string, leadership: 'auto' | 'true' | 'false' = 'auto', age = 0) => ({
  nodeId,
  leadership,
  lastSeen: now - age,
});

describe('electLeader', () => {
  it('elects the lowest id among alive candidates; only the leader pulls', () => {
    const peers = [alive('peer1'), alive('peer2')];
    const a = electLeader({ self: { nodeId: 'peer0', leadership: 'auto' }, peers, now, aliveMs: 4000 });
    expect(a).toMatchObject({ leader: 'peer0', pull: true, reason: 'leader' });
    const b = electLeader({
      self: { nodeId: 'peer1', leadership: 'auto' },
      peers: [alive('peer0'), alive('peer2')],
      now,
      aliveMs: 4000,
    });
    expect(b).toMatchObject({ leader: 'peer0', pull: false, reason: 'follower' });
  });

  it('a dead leader is replaced by the next lowest alive id', () => {
    const r = electLeader({
      self: { nodeId: 'peer2', leadership: 'auto' },
      peers: [alive('peer0', 'auto', 5000), alive('peer1')],
      now,
      aliveMs: 4000,
    });
    expect(r).toMatchObject({ leader: 'peer1', pull: false, alive: ['peer1'] });
    const alone = electLeader({
      self: { nodeId: 'peer1', leadership: 'auto' },
      peers: [alive('peer0', 'auto', 5000)],
      now,
      aliveMs: 4000,
    });
    expect(alone).toMatchObject({ leader: 'peer1', pull: true });
  });

  it('orgLeader false never leads while a candidate is alive, and falls back when none is', () => {
    const following = electLeader({
      self: { nodeId: 'peer0', leadership: 'false' },
      peers: [alive('peer9')],
      now,
      aliveMs: 4000,
    });
    expect(following).toMatchObject({ leader: 'peer9', pull: false });
    const fallback = electLeader({
      self: { nodeId: 'peer0', leadership: 'false' },
      peers: [alive('peer9', 'auto', 10_000), alive('peer8', 'false')],
      now,
      aliveMs: 4000,
    });
    expect(fallback).toMatchObject({ leader: undefined, pull: true, reason: 'no-leader-alive' });
  });

  it('static leaders go first and always pull', () => {
    const r = electLeader({
      self: { nodeId: 'peer0', leadership: 'auto' },
      peers: [alive('peer5', 'true')],
      now,
      aliveMs: 4000,
    });
    expect(r).toMatchObject({ leader: 'peer5', pull: false });
    const s = electLeader({
      self: { nodeId: 'peer5', leadership: 'true' },
      peers: [alive('peer0')],
      now,
      aliveMs: 4000,
    });
    expect(s).toMatchObject({ leader: 'peer5', pull: true, reason: 'static-leader' });
  });
});
