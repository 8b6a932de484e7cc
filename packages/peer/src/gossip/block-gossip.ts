/**
 * Block dissemination within an org over the gossip node, per channel:
 *
 * - Heartbeats (`loom/alive/1`) every `heartbeatMs` to the channel's member peers: height, leadership
 *   setting, whether pulling from the orderers.
 * - Election (election.ts) among the alive peers of this peer's org: only the leader pulls blocks from
 *   the orderers (the deliver client) and pushes every block it commits (`loom/block-push/1`) to its
 *   org's peers. Followers commit pushed blocks in order (the ledger checks orderer signatures and the
 *   hash chain), buffer a few that arrive early, and pull from the orderers themselves when no
 *   candidate is alive.
 * - State transfer (state-transfer.ts, `loom/block-range/1`): a follower behind an org peer's announced
 *   height pulls the missing blocks in ranges of at most `batchSize`.
 * - Private data: before committing a block received by gossip (state transfer or push) that carries
 *   private writes this peer should hold but does not have (`privateData.receiver.wants`), a follower
 *   asks the peer that sent the block for that block's private data (`loom/state-privdata/1`),
 *   answered by the sender's `privateData.provider` (only collections the asker's org is a member
 *   of), and hands it to the receiver, which has the ledger check it against the block's hashes and
 *   write it in the block's batch. A failed or empty answer does not hold up the block: what is
 *   missing is recorded at commit and reconciled later. Both default to none (no private data
 *   travels by gossip).
 */
import type { Bytes, ChannelConfig, Logger } from '@loom/common';
import { Counter, Gauge, type Registry } from 'prom-client';
import { blockNumberOf } from '../committer/ledger.js';
import { electLeader, type Leadership } from './election.js';
import type { GossipContext, GossipMembership, GossipNode, RemotePeer } from './node.js';
import { catchUp } from './state-transfer.js';
import {
  ALIVE_PROTOCOL,
  BLOCK_PUSH_PROTOCOL,
  BLOCK_RANGE_PROTOCOL,
  decodeAlive,
  decodePrivateDataRequest,
  decodePrivateDataResponse,
  decodeRangeRequest,
  decodeRangeResponse,
  encodeAlive,
  encodePrivateDataRequest,
  encodePrivateDataResponse,
  encodeRangeRequest,
  encodeRangeResponse,
  PRIVDATA_PROTOCOL,
} from './wire.js';

/**
 * Serves a block's private data to a peer catching up. `requester` is the authenticated identity
 * asking (already a member peer of the channel): answer only what its org may hold (collection
 * membership), undefined for nothing.
 */
export interface PrivateDataProvider {
  forBlock(channel: string, blockNumber: number, requester: RemotePeer): Promise<Bytes | undefined>;
}

/**
 * Receives a block's private data from the peer that sent the block, before the block is committed
 * (so the private store can commit it with the block).
 */
export interface PrivateDataReceiver {
  /**
   * Whether this block (received, not yet committed) carries private data this peer lacks: neither
   * in its transient store nor received for the block so far.
   */
  wants(channel: string, blockNumber: number, block: Bytes): Promise<boolean>;
  /** The private data `from` answered for the block (added to what other peers sent for it). */
  receive(channel: string, blockNumber: number, data: Bytes, from: RemotePeer): Promise<void>;
}

/** What block gossip needs of a channel ledger. */
export interface GossipLedger {
  height(): number;
  config(): ChannelConfig | undefined;
  getBlockBytes(blockNum: number): Promise<Bytes | undefined>;
  onCommit(listener: (b: { blockNum: number; bytes: Bytes }) => void): () => void;
}

/** Orderer delivery, started and stopped by the election. */
export interface OrdererDelivery {
  start(): void;
  stop(): Promise<void>;
}

export interface BlockGossipOptions {
  readonly node: GossipNode;
  readonly membership: GossipMembership;
  readonly self: { readonly nodeId: string; readonly mspId: string };
  readonly leadership: Leadership;
  readonly heartbeatMs?: number;
  /** A peer without a heartbeat for this long is dead (default 5 heartbeats). */
  readonly aliveMs?: number;
  /** Blocks per state-transfer range (default 50). */
  readonly batchSize?: number;
  /** Commits a block received by gossip (the same path as delivery: checks, validation, metrics). */
  readonly commit: (channel: string, block: Bytes) => Promise<unknown>;
  readonly privateData?: { provider?: PrivateDataProvider; receiver?: PrivateDataReceiver } | undefined;
  readonly logger: Logger;
  readonly registry?: Registry | undefined;
  readonly clock?: () => number;
}

export interface BlockGossipChannelStatus {
  readonly leader: string | undefined;
  readonly pulling: boolean;
  readonly alivePeers: readonly string[];
  readonly blocksFromPush: number;
  readonly blocksFromStateTransfer: number;
}

export interface BlockGossip {
  /** Starts gossip for a channel; `delivery` pulls from the orderers when this peer should. */
  addChannel(channel: string, ledger: GossipLedger, delivery: OrdererDelivery | undefined): void;
  status(channel: string): BlockGossipChannelStatus | undefined;
  stop(): Promise<void>;
}

interface PeerState {
  remote: RemotePeer;
  height: number;
  leadership: Leadership;
  pulling: boolean;
  lastSeen: number;
}

interface ChannelState {
  readonly channel: string;
  readonly ledger: GossipLedger;
  readonly delivery: OrdererDelivery | undefined;
  readonly peers: Map<string, PeerState>;
  readonly early: Map<number, { block: Bytes; from: RemotePeer }>;
  readonly since: number;
  pulling: boolean;
  leader: string | undefined;
  transferring: boolean;
  queue: Promise<unknown>;
  fromPush: number;
  fromTransfer: number;
  unsubscribe: () => void;
}

const MAX_EARLY_BLOCKS = 200;
const MAX_RANGE_BYTES = 32 * 1024 * 1024;
/** A block's private data is worth a short wait only: reconciliation fetches what does not come. */
const PRIVDATA_TIMEOUT_MS = 10_000;
/** Peers asked for one block's private data before the block commits without it. */
const PRIVDATA_SOURCES = 3;

export function createBlockGossip(o: BlockGossipOptions): BlockGossip {
  const heartbeatMs = o.heartbeatMs ?? 1_000;
  const aliveMs = o.aliveMs ?? heartbeatMs * 5;
  const batchSize = o.batchSize ?? 50;
  const clock = o.clock ?? Date.now;
  const log = o.logger;
  const channels = new Map<string, ChannelState>();
  const registers = o.registry ? [o.registry] : [];
  const received = new Counter({
    name: 'gossip_blocks_received_total',
    help: 'Blocks committed from gossip, by source (push from the org leader, or state transfer).',
    labelNames: ['channel', 'source'],
    registers,
  });
  const pushed = new Counter({
    name: 'gossip_blocks_pushed_total',
    help: 'Blocks this peer pushed to its org peers as leader.',
    labelNames: ['channel'],
    registers,
  });
  const pullingGauge = new Gauge({
    name: 'gossip_orderer_delivery_active',
    help: '1 while this peer pulls blocks from the orderers (org leader, or fallback), else 0.',
    labelNames: ['channel'],
    registers,
  });
  const leaderGauge = new Gauge({
    name: 'gossip_leader',
    help: '1 while this peer is the elected leader of its org on the channel.',
    labelNames: ['channel'],
    registers,
  });
  const aliveGauge = new Gauge({
    name: 'gossip_alive_peers',
    help: 'Alive peers of this peer’s org on the channel (not counting itself).',
    labelNames: ['channel'],
    registers,
  });
  const privRequests = new Counter({
    name: 'gossip_private_data_requests_total',
    help: 'Requests for a block’s private data sent to the peer the block came from.',
    labelNames: ['channel'],
    registers,
  });
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;

  const sameOrg = (r: RemotePeer) => r.mspId === o.self.mspId;
  const memberPeers = (channel: string) => o.node.peers().filter((r) => o.membership.isMember(channel, r));

  /** Runs gossip commits of a channel one at a time. */
  const serial = <T>(ch: ChannelState, f: () => Promise<T>): Promise<T> => {
    const p = ch.queue.then(f, f);
    ch.queue = p.catch(() => undefined);
    return p;
  };

  /**
   * Best effort: without an answer the block commits anyway, its private data recorded missing (and
   * reconciled later). Asks the peer the block came from first, then other peers of the channel (its
   * own org's first, at most PRIVDATA_SOURCES in all) while part of the block's private data is still
   * lacking: a block can come from a peer that holds none of it (a peer of a non-member org, which
   * state transfer falls back to while no peer of its own org is heard), or from one that lacks part.
   */
  const fetchPrivateData = async (ch: ChannelState, block: Bytes, n: number, from: RemotePeer) => {
    const receiver = o.privateData?.receiver;
    if (!receiver) return;
    const now = clock();
    const others = [...ch.peers.values()]
      .filter((p) => p.remote.peerId !== from.peerId && p.height > n && now - p.lastSeen <= aliveMs)
      .map((p) => p.remote)
      .sort((a, b) => Number(!sameOrg(a)) - Number(!sameOrg(b)));
    const errors: string[] = [];
    for (const source of [from, ...others].slice(0, PRIVDATA_SOURCES)) {
      try {
        if (!(await receiver.wants(ch.channel, n, block))) return;
        privRequests.inc({ channel: ch.channel });
        const data = decodePrivateDataResponse(
          await o.node.request(source.peerId, ch.channel, PRIVDATA_PROTOCOL, encodePrivateDataRequest(n), {
            timeoutMs: PRIVDATA_TIMEOUT_MS,
          }),
        );
        if (data) await receiver.receive(ch.channel, n, data, source);
      } catch (e) {
        errors.push(`${source.nodeId}: ${(e as Error).message}`);
      }
    }
    try {
      if (!(await receiver.wants(ch.channel, n, block))) return;
    } catch {
      return;
    }
    log.warn(
      { channel: ch.channel, block: n, from: from.nodeId, errors },
      'private data of the block not received by gossip: it will be reconciled',
    );
  };

  const commitFromGossip = async (ch: ChannelState, block: Bytes, n: number, from: RemotePeer, source: string) => {
    if (ch.ledger.height() !== n) return false;
    await fetchPrivateData(ch, block, n, from);
    await o.commit(ch.channel, block);
    received.inc({ channel: ch.channel, source });
    if (source === 'push') ch.fromPush++;
    else ch.fromTransfer++;
    return true;
  };

  /** Commits buffered early blocks that now continue the ledger. */
  const drainEarly = async (ch: ChannelState) => {
    for (;;) {
      const h = ch.ledger.height();
      for (const k of ch.early.keys()) if (k < h) ch.early.delete(k);
      const next = ch.early.get(h);
      if (!next) return;
      ch.early.delete(h);
      await commitFromGossip(ch, next.block, h, next.from, 'push');
    }
  };

  const onPush = async (ctx: GossipContext) => {
    const ch = channels.get(ctx.channel);
    if (!ch || ch.pulling || !sameOrg(ctx.from)) return;
    let n: number;
    try {
      n = blockNumberOf(ctx.data);
    } catch {
      log.warn({ channel: ctx.channel, from: ctx.from.nodeId }, 'pushed block does not decode: dropped');
      return;
    }
    const h = ch.ledger.height();
    if (n < h) return;
    if (n > h) {
      if (n < h + MAX_EARLY_BLOCKS) ch.early.set(n, { block: ctx.data, from: ctx.from });
      const p = ch.peers.get(ctx.from.peerId);
      if (p && p.height < n + 1) p.height = n + 1;
      void transfer(ch);
      return;
    }
    await serial(ch, async () => {
      try {
        await commitFromGossip(ch, ctx.data, n, ctx.from, 'push');
        await drainEarly(ch);
      } catch (e) {
        log.warn(
          { channel: ch.channel, block: n, from: ctx.from.nodeId, err: (e as Error).message },
          'pushed block rejected',
        );
      }
    });
  };

  const transfer = async (ch: ChannelState) => {
    if (ch.transferring || ch.pulling || stopped) return;
    ch.transferring = true;
    try {
      const r = await catchUp({
        height: () => ch.ledger.height(),
        sources: () => {
          const now = clock();
          const alive = [...ch.peers.values()].filter((p) => now - p.lastSeen <= aliveMs);
          const org = alive.filter((p) => sameOrg(p.remote));
          return (org.length > 0 ? org : alive).map((p) => ({ peer: p.remote.peerId, height: p.height }));
        },
        fetchRange: async (peer, from, count) =>
          decodeRangeResponse(
            await o.node.request(peer, ch.channel, BLOCK_RANGE_PROTOCOL, encodeRangeRequest({ from, count })),
          ),
        commit: async (block, n, peer) => {
          const from = ch.peers.get(peer)?.remote;
          if (!from) throw new Error('source gone');
          await serial(ch, async () => {
            if (ch.ledger.height() !== n) return;
            await commitFromGossip(ch, block, n, from, 'state_transfer');
          });
        },
        batchSize,
        maxRounds: 10_000,
      });
      if (r.committed > 0 || r.failed.length > 0) {
        log.info(
          {
            channel: ch.channel,
            committed: r.committed,
            rounds: r.rounds,
            failed: r.failed,
            height: ch.ledger.height(),
          },
          'state transfer',
        );
      }
      await serial(ch, () => drainEarly(ch));
    } catch (e) {
      log.warn({ channel: ch.channel, err: (e as Error).message }, 'state transfer failed');
    } finally {
      ch.transferring = false;
    }
  };

  o.node.handlePush(ALIVE_PROTOCOL, (ctx) => {
    const ch = channels.get(ctx.channel);
    if (!ch) return;
    const a = decodeAlive(ctx.data);
    ch.peers.set(ctx.from.peerId, {
      remote: ctx.from,
      height: a.height,
      leadership: a.leadership,
      pulling: a.pulling,
      lastSeen: clock(),
    });
  });
  o.node.handlePush(BLOCK_PUSH_PROTOCOL, onPush);
  o.node.handleRequest(BLOCK_RANGE_PROTOCOL, async (ctx) => {
    const ch = channels.get(ctx.channel);
    if (!ch) throw new Error(`channel ${ctx.channel} not joined here`);
    const { from, count } = decodeRangeRequest(ctx.data);
    const blocks: Bytes[] = [];
    let bytes = 0;
    const end = Math.min(ch.ledger.height(), from + Math.min(count, batchSize * 4));
    for (let n = from; n < end && bytes < MAX_RANGE_BYTES; n++) {
      const b = await ch.ledger.getBlockBytes(n);
      if (!b) break;
      blocks.push(b);
      bytes += b.length;
    }
    return encodeRangeResponse({ height: ch.ledger.height(), blocks });
  });
  o.node.handleRequest(PRIVDATA_PROTOCOL, async (ctx) => {
    const n = decodePrivateDataRequest(ctx.data);
    const provider = o.privateData?.provider;
    return encodePrivateDataResponse(provider ? await provider.forBlock(ctx.channel, n, ctx.from) : undefined);
  });

  const tick = async () => {
    const now = clock();
    for (const ch of channels.values()) {
      for (const [id, p] of ch.peers) if (now - p.lastSeen > aliveMs * 10) ch.peers.delete(id);
      const members = memberPeers(ch.channel);
      const alive = encodeAlive({ height: ch.ledger.height(), leadership: o.leadership, pulling: ch.pulling });
      for (const r of members) {
        o.node.push(r.peerId, ch.channel, ALIVE_PROTOCOL, alive).catch(() => undefined);
      }
      const orgPeers = [...ch.peers.values()].filter((p) => sameOrg(p.remote));
      const e = electLeader({
        self: { nodeId: o.self.nodeId, leadership: o.leadership },
        peers: orgPeers.map((p) => ({ nodeId: p.remote.nodeId, leadership: p.leadership, lastSeen: p.lastSeen })),
        now,
        aliveMs,
      });
      aliveGauge.set({ channel: ch.channel }, e.alive.length);
      leaderGauge.set({ channel: ch.channel }, e.leader === o.self.nodeId ? 1 : 0);
      if (e.leader !== ch.leader) {
        log.info({ channel: ch.channel, leader: e.leader ?? null, reason: e.reason, alive: e.alive }, 'org leader');
        ch.leader = e.leader;
      }
      // Listen for a while after start before deciding: a peer that just came up has heard nobody yet
      // (its hellos may even have been refused until it joined the channel). An `auto` peer decides
      // after one heartbeat (pulling a little while a leader exists costs only orderer bandwidth); a
      // `false` peer waits two alive periods before it falls back to the orderers.
      const age = now - ch.since;
      const settled = o.leadership === 'true' || (o.leadership === 'auto' && age >= heartbeatMs) || age >= 2 * aliveMs;
      const pull = settled && e.pull && ch.delivery !== undefined;
      if (pull && !ch.pulling) {
        ch.pulling = true;
        ch.delivery!.start();
        log.info({ channel: ch.channel, reason: e.reason }, 'pulling blocks from the orderers');
      } else if (!pull && ch.pulling && settled) {
        ch.pulling = false;
        await ch.delivery!.stop();
        log.info(
          { channel: ch.channel, leader: e.leader },
          'stopped pulling from the orderers: following the org leader',
        );
      }
      pullingGauge.set({ channel: ch.channel }, ch.pulling ? 1 : 0);
      if (!ch.pulling) {
        const h = ch.ledger.height();
        if ([...ch.peers.values()].some((p) => p.height > h && now - p.lastSeen <= aliveMs)) void transfer(ch);
      }
    }
  };

  const loop = () => {
    if (stopped) return;
    tick()
      .catch((e: Error) => log.warn({ err: e.message }, 'gossip tick failed'))
      .finally(() => {
        if (stopped) return;
        timer = setTimeout(loop, heartbeatMs);
        timer.unref();
      });
  };
  loop();

  return {
    addChannel(channel, ledger, delivery) {
      if (channels.has(channel)) return;
      const ch: ChannelState = {
        channel,
        ledger,
        delivery,
        peers: new Map(),
        early: new Map(),
        since: clock(),
        pulling: false,
        leader: undefined,
        transferring: false,
        queue: Promise.resolve(),
        fromPush: 0,
        fromTransfer: 0,
        unsubscribe: () => undefined,
      };
      // The leader spreads every block it commits to its org's peers.
      ch.unsubscribe = ledger.onCommit((b) => {
        if (!ch.pulling) return;
        const targets = memberPeers(channel).filter(sameOrg);
        for (const r of targets) {
          o.node
            .push(r.peerId, channel, BLOCK_PUSH_PROTOCOL, b.bytes)
            .then(() => pushed.inc({ channel }))
            .catch((e: Error) => log.debug({ channel, to: r.nodeId, err: e.message }, 'block push failed'));
        }
      });
      channels.set(channel, ch);
      o.node.redial();
      pullingGauge.set({ channel }, 0);
      leaderGauge.set({ channel }, 0);
      log.info({ channel, leadership: o.leadership }, 'gossip started for channel');
    },
    status(channel) {
      const ch = channels.get(channel);
      if (!ch) return undefined;
      const now = clock();
      return {
        leader: ch.leader,
        pulling: ch.pulling,
        alivePeers: [...ch.peers.values()].filter((p) => now - p.lastSeen <= aliveMs).map((p) => p.remote.nodeId),
        blocksFromPush: ch.fromPush,
        blocksFromStateTransfer: ch.fromTransfer,
      };
    },
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      for (const ch of channels.values()) {
        ch.unsubscribe();
        if (ch.pulling) await ch.delivery?.stop();
        ch.pulling = false;
      }
    },
  };
}
