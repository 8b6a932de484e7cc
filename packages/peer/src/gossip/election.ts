/**
 * Leader election per (org, channel): which peer pulls blocks from the ordering service. Pure and
 * deterministic: every peer of the org computes the same answer from the same heartbeats.
 *
 * - A peer is alive while its last heartbeat is younger than `aliveMs`.
 * - Candidates are the alive peers (and this one) whose leadership is not `false`; peers with a
 *   static `true` go first. The leader is the candidate with the lowest node id.
 * - This peer pulls from the orderers when it is the leader, when it is a static leader, or when no
 *   candidate is alive at all (a follower falls back rather than let the org stall).
 */

export type Leadership = 'auto' | 'true' | 'false';

export interface OrgPeerView {
  readonly nodeId: string;
  readonly leadership: Leadership;
  /** Clock time of its last heartbeat. */
  readonly lastSeen: number;
}

export interface ElectionInput {
  readonly self: { readonly nodeId: string; readonly leadership: Leadership };
  /** The other peers of this peer's org on the channel. */
  readonly peers: readonly OrgPeerView[];
  readonly now: number;
  readonly aliveMs: number;
}

export interface ElectionResult {
  /** The elected leader's node id, undefined when no candidate is alive. */
  readonly leader: string | undefined;
  /** Whether this peer should pull blocks from the orderers. */
  readonly pull: boolean;
  readonly reason: 'leader' | 'static-leader' | 'follower' | 'no-leader-alive';
  /** Node ids of the alive org peers (not this one). */
  readonly alive: readonly string[];
}

export function electLeader(input: ElectionInput): ElectionResult {
  const alive = input.peers.filter((p) => input.now - p.lastSeen <= input.aliveMs && p.nodeId !== input.self.nodeId);
  const candidates = [...alive, input.self].filter((p) => p.leadership !== 'false');
  const statics = candidates.filter((p) => p.leadership === 'true');
  const pool = statics.length > 0 ? statics : candidates;
  const leader = pool.map((p) => p.nodeId).sort()[0];
  const aliveIds = alive.map((p) => p.nodeId).sort();
  if (input.self.leadership === 'true') return { leader, pull: true, reason: 'static-leader', alive: aliveIds };
  if (leader === undefined) return { leader, pull: true, reason: 'no-leader-alive', alive: aliveIds };
  if (leader === input.self.nodeId) return { leader, pull: true, reason: 'leader', alive: aliveIds };
  return { leader, pull: false, reason: 'follower', alive: aliveIds };
}
