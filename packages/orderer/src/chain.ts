/**
 * One channel's ordering: a Raft group of the channel's consenters around the block cutter.
 *
 * - The leader cuts batches and proposes each as ONE encoded block per Raft entry (header
 *   {number, previousHash, dataHash}, consenter metadata {lastConfig, raftIndex}).
 * - Every orderer, on applying a committed entry, checks that the block continues its chain, signs
 *   it with its own identity and appends it to its block store. So each orderer's copy has the same
 *   header and data; the signature metadata is that orderer's own.
 * - A new leader cuts nothing until it has applied its whole log, so block numbers never fork.
 * - Followers forward envelopes to the leader; whoever received an envelope from a client answers
 *   only when it has applied the block holding it (so an acknowledged envelope is never lost).
 * - Snapshots are `[lastBlockNumber, lastBlockHash]`; a node that installs one pulls the missing
 *   blocks from another consenter and verifies they chain to that hash.
 * - Config blocks carry a new consenter set; the leader turns the difference into Raft membership
 *   changes, one at a time (add as learner, promote when caught up, remove).
 *
 * The node loop follows the Raft contract: persist a Ready, then send its messages, then hand its
 * committed entries to the apply queue, then `advance()`. The apply queue applies blocks (and
 * snapshot installs, which may pull blocks for seconds) in order without holding up the loop, so a
 * node catching up still votes and acknowledges appends; membership changes apply in the loop.
 */
import { randomBytes } from 'node:crypto';
import {
  type Block,
  buildBlock,
  blockSignedBytes,
  bytesEqual,
  type ChannelConfig,
  computeDataHash,
  decodeBlock,
  decodeBlockHeader,
  decodeChannelHeader,
  decodeConfigUpdate,
  decodeConfigUpdateEnvelope,
  decodeEnvelope,
  decodeHeader,
  decodePayload,
  decodeValue,
  encodeBlock,
  encodeChannelHeader,
  encodeChannelConfig,
  encodeConfigEnvelope,
  encodeConsenterMetadata,
  encodeEnvelope,
  encodeHeader,
  encodePayload,
  encodeSignatureHeader,
  encodeValue,
  HeaderType,
  LoomError,
  MspManager,
  mspConfigsOf,
  readBytes,
  readList,
  readTuple,
  readUint,
  type Signer,
  validateConfigUpdateEnvelope,
} from '@loom/common';
import { sha256, sha256Hex } from '@loom/common/crypto/hash';
import type { Logger } from '@loom/common/logging';
import { type BlockCutter, createBlockCutter } from './blockcutter.js';
import {
  type ChannelResources,
  channelResources,
  clusterMembers,
  configOfBlock,
  consenterMetadataOf,
  envelopeHeaderType,
} from './channel-resources.js';
import { decodeMessage, encodeMessage } from './raft/codec.js';
import { RaftNode } from './raft/raft-node.js';
import { decodeConfChange, type Entry, RaftError, type Snapshot, type SoftState } from './raft/types.js';
import type { BlockStore } from './storage/block-store.js';
import type { DurableRaftStorage } from './storage/raft-log.js';
import type { ClusterTransport } from './transport/types.js';

export const OrdererErrorCode = {
  BAD_ENVELOPE: 'ORDERER_BAD_ENVELOPE',
  ENVELOPE_TOO_LARGE: 'ORDERER_ENVELOPE_TOO_LARGE',
  NO_LEADER: 'ORDERER_NO_LEADER',
  SUBMIT_TIMEOUT: 'ORDERER_SUBMIT_TIMEOUT',
  CHANNEL_NOT_FOUND: 'CHANNEL_NOT_FOUND',
  CHANNEL_EXISTS: 'ORDERER_CHANNEL_EXISTS',
  BAD_CONFIG_BLOCK: 'ORDERER_BAD_CONFIG_BLOCK',
  STOPPED: 'ORDERER_CHAIN_STOPPED',
  BLOCK_NOT_FOUND: 'ORDERER_BLOCK_NOT_FOUND',
  CONFIG_SEQUENCE: 'ORDERER_CONFIG_SEQUENCE_MISMATCH',
  BUSY: 'ORDERER_BUSY',
} as const;

/** Where an envelope landed. */
export interface OrderedAt {
  readonly blockNumber: number;
  readonly txIndex: number;
}

export interface ChainIdentity {
  /** Encoded SerializedIdentity of this orderer. */
  readonly creator: Uint8Array;
  readonly signer: Signer;
}

export interface ChainOptions {
  readonly channel: string;
  /** This orderer's consenter id on the channel. */
  readonly self: string;
  readonly blocks: BlockStore;
  readonly raftStorage: DurableRaftStorage;
  readonly transport: ClusterTransport;
  readonly identity: ChainIdentity;
  readonly logger: Logger;
  /** Initial voters when this node bootstraps a new Raft group from the genesis block. */
  readonly bootstrapVoters?: readonly string[];
  readonly clock?: () => number;
  readonly random?: () => number;
  /** Raft tick period. Default 50 ms. */
  readonly tickMs?: number;
  /** Election timeout in ticks, randomized up to twice that. Default 12 (0.6–1.2 s at 50 ms). */
  readonly electionTick?: number;
  /** Default 1. */
  readonly heartbeatTick?: number;
  /** Take a Raft snapshot (and drop the log it covers) every this many applied entries. */
  readonly snapshotIntervalEntries?: number;
  /** How long a broadcast waits for its block before answering 503. */
  readonly submitTimeoutMs?: number;
  /**
   * Admission control: envelopes this node's clients may have waiting for their block at once
   * (default 2,000). Beyond it, or while the oldest waiting one has waited more than half of
   * `submitTimeoutMs`, new broadcasts are refused at once with 503 ORDERER_BUSY (Retry-After)
   * before any check, rather than accepted, verified and forwarded only to time out.
   */
  readonly maxPendingEnvelopes?: number;
  /** Called after each block is appended (metrics). */
  readonly onBlock?: (channel: string, number: number, txCount: number) => void;
}

export interface ChainStatus {
  readonly channel: string;
  readonly self: string;
  readonly role: string;
  readonly leader: string;
  readonly term: number;
  readonly commit: number;
  readonly applied: number;
  readonly height: number;
  readonly voters: readonly string[];
  readonly learners: readonly string[];
}

// Frames between the chains of one channel (CBOR arrays; the first field is the kind).
const FRAME_RAFT = 0;
const FRAME_SUBMIT = 1;
const FRAME_PULL = 2;
const FRAME_BLOCKS = 3;
const MAX_FORWARD_HOPS = 2;
const PULL_MAX_BLOCKS = 64;
/** A pull answer stops after the block that crosses this: small answers arrive in time on a loaded machine. */
const PULL_MAX_BYTES = 2 * 1024 * 1024;
/** First pull timeout; doubled after each timeout in a row (up to PULL_TIMEOUT_MAX_MS), reset by an answer. */
const PULL_TIMEOUT_MS = 5_000;
const PULL_TIMEOUT_MAX_MS = 60_000;
/** Catch-up gives up (and the chain halts) after this long without a single block of progress. */
const CATCH_UP_STALL_MS = 300_000;
const RECENT_LIMIT = 200_000;

interface Waiter {
  readonly envelope: Uint8Array;
  readonly key: string;
  /** When the client's broadcast arrived (clock ms): admission control looks at the oldest. */
  readonly since: number;
  readonly isConfig: boolean;
  readonly resolve: (at: OrderedAt) => void;
  readonly reject: (e: Error) => void;
  readonly timer: NodeJS.Timeout;
}

interface Head {
  number: number;
  hash: Uint8Array;
  lastConfig: number;
  configSequence: number;
  /** The config in force once every block proposed so far is applied (config updates are checked against it). */
  config: ChannelConfig;
}

/** An envelope's key for waiters, duplicate suppression and #recent: its SHA-256, hex (native, one call). */
const hashKey = (b: Uint8Array) => sha256Hex(b);

export class Chain {
  readonly channel: string;
  readonly self: string;
  readonly blocks: BlockStore;
  readonly #raft: RaftNode;
  readonly #storage: DurableRaftStorage;
  readonly #transport: ClusterTransport;
  readonly #identity: ChainIdentity;
  readonly #log: Logger;
  readonly #clock: () => number;
  readonly #opts: ChainOptions;
  #resources: ChannelResources;
  #lastConfig: number;
  readonly #cutter: BlockCutter;

  #leader = '';
  #role: SoftState['role'] = 'follower';
  #term = 0;
  /** Last Raft index the apply queue has applied (blocks stored), and the chain as of it. */
  #applied = 0;
  #appliedMark: { index: number; lastBlock: number; lastHash: Uint8Array } | undefined;
  #applyTail: Promise<void> = Promise.resolve();
  /** Leader only: cutting starts once everything up to this index is applied. */
  #leaderGate = Number.POSITIVE_INFINITY;
  /** Leader only: the head the next proposed block chains onto; undefined until the gate opens. */
  #head: Head | undefined;
  /** Leader only: envelopes received before the gate opened. */
  #queue: Array<{ env: Uint8Array; isConfig: boolean }> = [];
  /** Leader only: envelopes cut or proposed but not yet applied (duplicate suppression). */
  #inflight = new Set<string>();
  #batchTimer: NodeJS.Timeout | undefined;

  /** Envelopes of recent blocks → where they are (answers retries, suppresses duplicates). */
  readonly #recent = new Map<string, OrderedAt>();
  readonly #waiters = new Map<string, Waiter[]>();
  /** Waiters in arrival order from #arrivalsHead on (answered ones are skipped lazily by admit()). */
  #arrivals: Waiter[] = [];
  #arrivalsHead = 0;

  #tickTimer: NodeJS.Timeout | undefined;
  #ticks = 0;
  #processing = false;
  #kicked = false;
  #stopped = false;
  #failed: Error | undefined;

  #pullSeq = 0;
  readonly #pulls = new Map<number, (r: { blocks: Uint8Array[]; height: number }) => void>();

  private constructor(opts: ChainOptions, resources: ChannelResources, lastConfig: number) {
    this.#opts = opts;
    this.channel = opts.channel;
    this.self = opts.self;
    this.blocks = opts.blocks;
    this.#storage = opts.raftStorage;
    this.#transport = opts.transport;
    this.#identity = opts.identity;
    this.#log = opts.logger;
    this.#clock = opts.clock ?? Date.now;
    this.#resources = resources;
    this.#lastConfig = lastConfig;
    this.#cutter = createBlockCutter(resources.limits, this.#clock);
    this.#applied = opts.raftStorage.snapshot().metadata.index;
    this.#raft = new RaftNode({
      id: opts.self,
      voters: opts.bootstrapVoters ?? [],
      electionTick: opts.electionTick ?? 12,
      heartbeatTick: opts.heartbeatTick ?? 1,
      preVote: true,
      checkQuorum: true,
      random: opts.random ?? Math.random,
      storage: opts.raftStorage,
    });
  }

  /** Builds a chain from its stores: the config in force is read from the last config block. */
  static async open(opts: ChainOptions, joinConfig?: ChannelConfig): Promise<Chain> {
    const last = opts.blocks.lastBlock;
    if (!last) {
      // Onboarding with a later config block: blocks arrive through Raft and catch-up.
      if (!joinConfig) throw new LoomError(OrdererErrorCode.BAD_CONFIG_BLOCK, `channel ${opts.channel} has no blocks`);
      return new Chain(opts, channelResources(joinConfig), 0);
    }
    const height = opts.blocks.height;
    const { lastConfig } = consenterMetadataOf(last, height - 1);
    const configBytes = await opts.blocks.get(lastConfig);
    const cfg = configBytes ? configOfBlock(decodeBlock(configBytes)) : undefined;
    if (!cfg)
      throw new LoomError(
        OrdererErrorCode.BAD_CONFIG_BLOCK,
        `block ${lastConfig} of ${opts.channel} is not a config block`,
      );
    const chain = new Chain(opts, channelResources(cfg.config), lastConfig);
    await chain.#loadRecent(Math.max(0, height - 200), height);
    return chain;
  }

  get resources(): ChannelResources {
    return this.#resources;
  }

  get config(): ChannelConfig {
    return this.#resources.config;
  }

  get leader(): string {
    return this.#leader;
  }

  get failure(): Error | undefined {
    return this.#failed;
  }

  get isConsenter(): boolean {
    return this.#resources.consenters.some((c) => c.id === this.self);
  }

  status(): ChainStatus {
    const s = this.#raft.status();
    return {
      channel: this.channel,
      self: this.self,
      role: s.role,
      leader: s.leader,
      term: s.term,
      commit: s.commit,
      applied: this.#applied,
      height: this.blocks.height,
      voters: s.confState.voters,
      learners: s.confState.learners,
    };
  }

  start(): void {
    this.#transport.join(this.channel, this.self, clusterMembers(this.#resources.consenters), (from, data) =>
      this.#onFrame(from, data),
    );
    const tickMs = this.#opts.tickMs ?? 50;
    this.#tickTimer = setInterval(() => this.#tick(), tickMs);
    this.#kick();
  }

  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    if (this.#tickTimer) clearInterval(this.#tickTimer);
    if (this.#batchTimer) clearTimeout(this.#batchTimer);
    this.#transport.leave(this.channel);
    const stopped = new LoomError(OrdererErrorCode.STOPPED, `channel ${this.channel} is stopping`, { httpStatus: 503 });
    for (const list of this.#waiters.values()) {
      for (const w of list) {
        clearTimeout(w.timer);
        w.reject(stopped);
      }
    }
    this.#waiters.clear();
    this.#arrivals = [];
    this.#arrivalsHead = 0;
    // Let an in-progress Ready finish its writes before the store closes.
    for (let i = 0; i < 200 && this.#processing; i++) await new Promise((r) => setTimeout(r, 10));
    // And the apply queue its current block (it stops between entries once stopped).
    await Promise.race([this.#applyTail, new Promise((r) => setTimeout(r, 2_000).unref())]);
  }

  // ------------------------------------------------------------------ broadcast

  /** Envelopes of this node's clients waiting for their block. */
  get pendingEnvelopes(): number {
    return this.#waiters.size;
  }

  /**
   * Admission control, before any check of `count` new envelopes: throws 503 ORDERER_BUSY when
   * this node already has `maxPendingEnvelopes` waiting, or when the oldest waiting one (or the
   * request, received at `arrivedAt` on this node's clock) has waited more than half of the submit
   * timeout: ordering lags, and what is admitted now would time out after costing its verification,
   * forwarding and ordering — a collapse under overload, not a queue.
   */
  admit(count: number, arrivedAt?: number): void {
    const max = this.#opts.maxPendingEnvelopes ?? 2_000;
    const pending = this.#waiters.size;
    const oldest = this.#oldestWaiter();
    const now = this.#clock();
    // The request itself may have queued behind others before its handler ran.
    const oldestMs = Math.max(oldest ? now - oldest.since : 0, arrivedAt === undefined ? 0 : now - arrivedAt);
    const lagLimit = (this.#opts.submitTimeoutMs ?? 10_000) / 2;
    // A request larger than the limit is admitted when nothing waits (else it never could be).
    const full = pending > 0 && pending + count > max;
    if (!full && oldestMs <= lagLimit) return;
    throw new LoomError(
      OrdererErrorCode.BUSY,
      full
        ? `${pending} envelopes are already waiting to be ordered here (at most ${max}); retry`
        : `ordering lags: waiting envelopes or this request have waited ${oldestMs} ms; retry`,
      { httpStatus: 503, details: { retryAfterSeconds: 1, pending, maxPending: max, oldestWaitMs: oldestMs } },
    );
  }

  /**
   * Orders an envelope that passed the broadcast checks; resolves once the block holding it is
   * applied here (committed by the Raft group).
   */
  submit(envelope: Uint8Array, isConfigUpdate: boolean): Promise<OrderedAt> {
    if (this.#stopped)
      return Promise.reject(
        new LoomError(OrdererErrorCode.STOPPED, `channel ${this.channel} is stopping`, { httpStatus: 503 }),
      );
    const key = hashKey(envelope);
    const done = this.#recent.get(key);
    if (done) return Promise.resolve(done);
    if (this.#leader === '') return Promise.reject(this.#noLeader());
    if (isConfigUpdate) {
      // Fail fast on a stale update; the leader checks again against configs still in flight.
      let base: number;
      try {
        base = configUpdateBase(envelope);
      } catch (e) {
        return Promise.reject(e);
      }
      if (base !== this.config.sequence) {
        return Promise.reject(
          new LoomError(
            OrdererErrorCode.CONFIG_SEQUENCE,
            `config update is based on sequence ${base}, the channel is at ${this.config.sequence}`,
            {
              httpStatus: 409,
              details: { baseSequence: base, sequence: this.config.sequence },
            },
          ),
        );
      }
    }
    const promise = new Promise<OrderedAt>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#dropWaiter(key, waiter);
        reject(
          this.#leader === ''
            ? this.#noLeader()
            : new LoomError(OrdererErrorCode.SUBMIT_TIMEOUT, 'the envelope was not ordered in time; retry', {
                httpStatus: 503,
                details: { retryAfterSeconds: 1 },
              }),
        );
      }, this.#opts.submitTimeoutMs ?? 10_000);
      const waiter: Waiter = { envelope, key, since: this.#clock(), isConfig: isConfigUpdate, resolve, reject, timer };
      const list = this.#waiters.get(key);
      if (list) list.push(waiter);
      else this.#waiters.set(key, [waiter]);
      this.#arrivals.push(waiter);
      // Every waiter is answered within the submit timeout, so this stays bounded without admit().
      if (this.#arrivals.length - this.#arrivalsHead > 2 * this.#waiters.size + 1024) this.#oldestWaiter();
    });
    this.#route(envelope, isConfigUpdate, 0, key);
    return promise;
  }

  /** The longest-waiting live waiter; answered ones are dropped from the front of #arrivals lazily. */
  #oldestWaiter(): Waiter | undefined {
    const q = this.#arrivals;
    while (q.length > this.#arrivalsHead) {
      const w = q[this.#arrivalsHead]!;
      if (this.#waiters.get(w.key)?.includes(w)) break;
      q[this.#arrivalsHead++] = undefined as unknown as Waiter;
    }
    if (this.#arrivalsHead > 1024 && this.#arrivalsHead * 2 > q.length) {
      this.#arrivals = q.slice(this.#arrivalsHead);
      this.#arrivalsHead = 0;
    }
    return this.#arrivals[this.#arrivalsHead];
  }

  #noLeader(): LoomError {
    return new LoomError(OrdererErrorCode.NO_LEADER, `channel ${this.channel} has no Raft leader at the moment`, {
      httpStatus: 503,
      details: { retryAfterSeconds: 1 },
    });
  }

  #dropWaiter(key: string, w: Waiter): void {
    const list = this.#waiters.get(key);
    if (!list) return;
    const i = list.indexOf(w);
    if (i >= 0) list.splice(i, 1);
    if (list.length === 0) this.#waiters.delete(key);
  }

  /** `key`: hashKey(envelope) when the caller has it (spares the leader hashing its own clients' envelopes again). */
  #route(envelope: Uint8Array, isConfigUpdate: boolean, hops: number, key?: string): void {
    if (this.#leader === this.self && this.#role === 'leader') this.#order(envelope, isConfigUpdate, key);
    else if (this.#leader !== '' && hops < MAX_FORWARD_HOPS) {
      // The sender says whether it is a config update (it checked the envelope; the leader trusts a
      // consenter's forward as it trusts the consenter), sparing the leader four decodes per envelope.
      this.#transport.send(this.channel, this.#leader, encodeValue([FRAME_SUBMIT, envelope, hops + 1, isConfigUpdate]));
    }
  }

  /** Leader: one envelope into the cutter (or the queue while the gate is closed). */
  #order(envelope: Uint8Array, isConfigUpdate: boolean, known?: string): void {
    const key = known ?? hashKey(envelope);
    if (this.#recent.has(key) || this.#inflight.has(key)) return;
    if (!this.#head) {
      if (this.#queue.length < 100_000) this.#queue.push({ env: envelope, isConfig: isConfigUpdate });
      return;
    }
    let env = envelope;
    if (isConfigUpdate) {
      const made = this.#configEnvelopeFor(envelope);
      if (!made) return;
      env = made;
    }
    this.#inflight.add(key);
    const r = this.#cutter.ordered(env, isConfigUpdate);
    for (const batch of r.batches) this.#propose(batch);
    // The leader alone cuts: new batch settings hold from the block after the config block.
    if (isConfigUpdate && this.#head) this.#cutter.setLimits({ ...this.#head.config.orderer.batch });
    this.#armBatchTimer();
  }

  #armBatchTimer(): void {
    const since = this.#cutter.pendingSince();
    if (since === undefined) {
      if (this.#batchTimer) clearTimeout(this.#batchTimer);
      this.#batchTimer = undefined;
      return;
    }
    if (this.#batchTimer) return;
    const wait = Math.max(0, since + this.#cutter.limits.batchTimeoutMs - this.#clock());
    this.#batchTimer = setTimeout(() => {
      this.#batchTimer = undefined;
      if (!this.#head || this.#role !== 'leader') return;
      const batch = this.#cutter.cut();
      if (batch.length > 0) this.#propose(batch);
    }, wait);
  }

  /**
   * Turns an admin-signed CONFIG_UPDATE into the CONFIG envelope of a config block, signed by this
   * orderer. Checked again here, against the config in force after every block already proposed
   * (validateConfigUpdateEnvelope: sequence, versions, modification policies over the signatures).
   */
  #configEnvelopeFor(updateEnvelope: Uint8Array): Uint8Array | undefined {
    try {
      const payload = decodePayload(decodeEnvelope(updateEnvelope).payload);
      const cue = decodeConfigUpdateEnvelope(payload.data);
      const head = this.#head!;
      const msps =
        head.config === this.#resources.config ? this.#resources.msps : new MspManager(mspConfigsOf(head.config));
      const { config } = validateConfigUpdateEnvelope(head.config, cue, msps);
      head.configSequence = config.sequence;
      head.config = config;
      const channelHeader = encodeChannelHeader({
        type: HeaderType.CONFIG,
        version: 1,
        channelId: this.channel,
        txId: '',
        timestamp: this.#clock(),
        extension: new Uint8Array(),
      });
      const signatureHeader = encodeSignatureHeader({ creator: this.#identity.creator, nonce: randomBytes(24) });
      const body = encodePayload({
        header: encodeHeader({ channelHeader, signatureHeader }),
        data: encodeConfigEnvelope({ config: encodeChannelConfig(config), lastUpdate: updateEnvelope }),
      });
      const sig = this.#identity.signer.sign(body);
      if (sig instanceof Promise) throw new Error('asynchronous signers are not supported for config envelopes');
      return encodeEnvelope({ payload: body, signature: sig });
    } catch (e) {
      this.#log.warn({ channel: this.channel, err: (e as Error).message }, 'config update rejected at ordering');
      this.#failWaiters(
        hashKey(updateEnvelope),
        e instanceof LoomError
          ? e
          : new LoomError(OrdererErrorCode.BAD_ENVELOPE, `config update rejected: ${(e as Error).message}`, {
              httpStatus: 400,
            }),
      );
      return undefined;
    }
  }

  #failWaiters(key: string, err: Error): void {
    const list = this.#waiters.get(key);
    if (!list) return;
    this.#waiters.delete(key);
    for (const w of list) {
      clearTimeout(w.timer);
      w.reject(err);
    }
  }

  /** Leader: one batch → one block → one Raft entry. */
  #propose(batch: Uint8Array[]): void {
    const head = this.#head;
    if (!head || batch.length === 0) return;
    const first = batch[0]!;
    const isConfig = batch.length === 1 && envelopeHeaderType(first) === HeaderType.CONFIG;
    const raftIndex = this.#raft.status().lastIndex + 1;
    const lastConfig = isConfig ? head.number : head.lastConfig;
    const block = buildBlock(head.number, head.hash, batch, encodeConsenterMetadata({ lastConfig, raftIndex }), sha256);
    try {
      const index = this.#raft.propose(encodeBlock(block));
      if (index !== raftIndex) throw new Error(`block ${head.number} landed at index ${index}, expected ${raftIndex}`);
    } catch (e) {
      // Lost leadership (or a transfer is running): waiters re-forward to the next leader.
      this.#log.warn({ channel: this.channel, err: (e as Error).message }, 'block proposal failed');
      this.#loseLeadership();
      return;
    }
    head.number += 1;
    head.hash = sha256(block.header);
    head.lastConfig = lastConfig;
    this.#kick();
  }

  // ------------------------------------------------------------------ frames

  #onFrame(from: string, data: Uint8Array): void {
    if (this.#stopped) return;
    let t: unknown[];
    try {
      const v = decodeValue(data, 'ClusterFrame');
      if (!Array.isArray(v) || v.length < 2) throw new Error('bad frame');
      t = v;
    } catch (e) {
      this.#log.debug({ channel: this.channel, from, err: (e as Error).message }, 'bad cluster frame');
      return;
    }
    try {
      switch (t[0]) {
        case FRAME_RAFT: {
          const m = decodeMessage(readBytes(t[1], 'raft'));
          if (m.from !== from) return; // A consenter speaks only for itself.
          this.#raft.step(m);
          this.#kick();
          break;
        }
        case FRAME_SUBMIT: {
          const env = readBytes(t[1], 'envelope');
          const hops = readUint(t[2], 'hops');
          let isConfig = false;
          if (typeof t[3] === 'boolean') isConfig = t[3];
          else {
            // A sender that does not say (older frame layout): look.
            try {
              isConfig = envelopeHeaderType(env) === HeaderType.CONFIG_UPDATE;
            } catch {
              return;
            }
          }
          this.#route(env, isConfig, hops);
          break;
        }
        case FRAME_PULL: {
          void this.#servePull(from, t);
          break;
        }
        case FRAME_BLOCKS: {
          const id = readUint(t[1], 'id');
          const blocks = readList(t[2], 'blocks', readBytes);
          const height = readUint(t[3], 'height');
          this.#pulls.get(id)?.({ blocks, height });
          break;
        }
      }
    } catch (e) {
      this.#log.debug({ channel: this.channel, from, err: (e as Error).message }, 'cluster frame rejected');
    }
  }

  async #servePull(from: string, t: unknown[]): Promise<void> {
    const [, idV, startV, endV] = readTuple(t, 4, 'pull');
    const id = readUint(idV, 'id');
    const start = readUint(startV, 'start');
    const end = readUint(endV, 'end');
    const blocks: Uint8Array[] = [];
    let bytes = 0;
    for (let n = start; n <= end && n < this.blocks.height && blocks.length < PULL_MAX_BLOCKS; n++) {
      const b = await this.blocks.get(n);
      if (!b) break;
      blocks.push(b);
      bytes += b.length;
      if (bytes > PULL_MAX_BYTES) break;
    }
    this.#transport.send(this.channel, from, encodeValue([FRAME_BLOCKS, id, blocks, this.blocks.height]));
  }

  #pull(
    from: string,
    start: number,
    end: number,
    timeoutMs: number,
  ): Promise<{ blocks: Uint8Array[]; height: number }> {
    const id = ++this.#pullSeq;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pulls.delete(id);
        reject(new Error(`pull from ${from} timed out`));
      }, timeoutMs);
      this.#pulls.set(id, (r) => {
        clearTimeout(timer);
        this.#pulls.delete(id);
        resolve(r);
      });
      this.#transport.send(this.channel, from, encodeValue([FRAME_PULL, id, start, end]));
    });
  }

  /**
   * Pulls blocks up to `target` (inclusive) from other consenters. They are held until the last one
   * hashes to `targetHash` (each checked for chaining and dataHash on the way), then appended.
   */
  async #catchUp(target: number, targetHash: Uint8Array): Promise<void> {
    let deadline = this.#clock() + CATCH_UP_STALL_MS;
    let attempt = 0;
    let timeoutMs = PULL_TIMEOUT_MS;
    // Blocks verified so far (each chains onto the one before and matches its dataHash). They are
    // kept across attempts and sources: the hash chain ending at `targetHash` authenticates every
    // one of them, whoever sent it; a chain that does not end there is dropped whole.
    let pending: Array<{ bytes: Uint8Array; block: Block }> = [];
    let prevHash = this.blocks.lastHash;
    let next = this.blocks.height;
    const restart = () => {
      pending = [];
      prevHash = this.blocks.lastHash;
      next = this.blocks.height;
    };
    while (this.blocks.height <= target) {
      if (this.#stopped) throw new LoomError(OrdererErrorCode.STOPPED, 'stopping');
      if (this.#clock() > deadline) throw new Error(`could not catch up to block ${target}`);
      const others = this.#resources.consenters.map((c) => c.id).filter((id) => id !== this.self);
      const ordered =
        this.#leader && this.#leader !== this.self
          ? [this.#leader, ...others.filter((o) => o !== this.#leader)]
          : others;
      const source = ordered[attempt++ % Math.max(1, ordered.length)];
      if (!source) throw new Error('no consenter to pull blocks from');
      try {
        while (next <= target) {
          let r: { blocks: Uint8Array[]; height: number };
          try {
            r = await this.#pull(source, next, target, timeoutMs);
          } catch (e) {
            // A loaded machine can take longer than the timeout to read, send and decode an answer.
            timeoutMs = Math.min(PULL_TIMEOUT_MAX_MS, timeoutMs * 2);
            throw e;
          }
          timeoutMs = PULL_TIMEOUT_MS;
          if (r.blocks.length === 0) throw new Error(`${source} has no block ${next} (height ${r.height})`);
          for (const bytes of r.blocks) {
            const block = decodeBlock(bytes);
            const h = decodeBlockHeader(block.header);
            // Blocks that disagree with what is held: start again from our own last block (the held
            // prefix may be the one that is wrong; only the hash at the target can tell).
            if (h.number !== next || !bytesEqual(h.previousHash, prevHash)) {
              restart();
              throw new Error(`block ${h.number} from ${source} does not chain`);
            }
            if (!bytesEqual(computeDataHash(block.data, sha256), h.dataHash)) {
              restart();
              throw new Error(`block ${h.number} from ${source}: bad dataHash`);
            }
            pending.push({ bytes, block });
            prevHash = sha256(block.header);
            next += 1;
            deadline = this.#clock() + CATCH_UP_STALL_MS;
            if (next > target) break;
          }
        }
        if (!bytesEqual(prevHash, targetHash)) {
          restart();
          throw new Error(`blocks from ${source} do not end at the committed hash`);
        }
      } catch (e) {
        this.#log.warn(
          { channel: this.channel, source, next, target, err: (e as Error).message },
          'block catch-up attempt failed',
        );
        await new Promise((r) => setTimeout(r, 200));
        continue;
      }
      for (const p of pending) await this.#appendSigned(p.block, 'pulled');
      pending = [];
      this.#log.info(
        { channel: this.channel, height: this.blocks.height, source },
        'caught up blocks from a consenter',
      );
    }
  }

  // ------------------------------------------------------------------ node loop

  #tick(): void {
    if (this.#stopped || this.#failed) return;
    this.#raft.tick();
    this.#ticks++;
    if (this.#ticks % 10 === 0 && this.#role === 'leader') this.#reconcileMembership();
    this.#kick();
  }

  #kick(): void {
    if (this.#kicked || this.#stopped) return;
    this.#kicked = true;
    setImmediate(() => {
      this.#kicked = false;
      void this.#processReady();
    });
  }

  /**
   * The Raft loop: persist a Ready, send its messages, hand its committed entries to the apply
   * queue, `advance()`. Membership changes take effect in Raft at once; blocks and snapshot installs
   * are applied in order by the apply queue (#enqueueApply), because applying can take seconds (a
   * node that installs a snapshot pulls the missing blocks from another consenter) and a node busy
   * applying must still vote and acknowledge: a restarted node catching up behind a leader that was
   * just killed once held up the next election for the 5 s of its pull timeout.
   */
  async #processReady(): Promise<void> {
    if (this.#processing || this.#stopped || this.#failed) return;
    this.#processing = true;
    try {
      for (let rounds = 0; rounds < 1000 && this.#raft.hasReady() && !this.#stopped; rounds++) {
        const rd = this.#raft.ready();
        if (rd.softState) this.#onSoftState(rd.softState);
        await this.#storage.persist({ hardState: rd.hardState, entries: rd.entries, snapshot: rd.snapshot });
        if (rd.hardState) this.#term = rd.hardState.term;
        for (const m of rd.messages)
          this.#transport.send(this.channel, m.to, encodeValue([FRAME_RAFT, encodeMessage(m)]));
        for (const e of rd.committedEntries) {
          if (e.type === 'confChange') this.#applyConfChange(e);
        }
        this.#enqueueApply(rd.snapshot, rd.committedEntries);
        this.#raft.advance();
        this.#maybeOpenGate();
      }
      await this.#maybeSnapshot();
    } catch (e) {
      this.#halt(e);
    } finally {
      this.#processing = false;
    }
    if (!this.#stopped && !this.#failed && this.#raft.hasReady()) this.#kick();
  }

  #halt(e: unknown): void {
    if (this.#stopped || this.#failed) return;
    this.#failed = e as Error;
    this.#log.error({ channel: this.channel, err: (e as Error).message, stack: (e as Error).stack }, 'chain halted');
  }

  /** Applies a snapshot and committed entries after everything handed over before them. */
  #enqueueApply(snapshot: Snapshot | undefined, entries: readonly Entry[]): void {
    if (!snapshot && entries.length === 0) return;
    this.#applyTail = this.#applyTail.then(async () => {
      try {
        if (this.#stopped || this.#failed) return;
        if (snapshot) await this.#installSnapshot(snapshot);
        for (const e of entries) {
          if (this.#stopped || this.#failed) return;
          await this.#apply(e);
        }
      } catch (e) {
        this.#halt(e);
      }
      this.#maybeOpenGate();
      // Compaction runs in the Raft loop (it writes Raft storage): nudge it.
      this.#kick();
    });
  }

  #onSoftState(ss: SoftState): void {
    const wasLeader = this.#role === 'leader';
    const oldLeader = this.#leader;
    this.#leader = ss.leader;
    this.#role = ss.role;
    if (ss.role === 'leader' && !wasLeader) {
      this.#leaderGate = this.#raft.status().lastIndex;
      this.#head = undefined;
      this.#log.info({ channel: this.channel, term: this.#raft.status().term }, 'became Raft leader');
    } else if (ss.role !== 'leader' && wasLeader) {
      this.#loseLeadership();
    }
    if (ss.leader !== oldLeader) {
      this.#log.info({ channel: this.channel, leader: ss.leader || '(none)' }, 'Raft leader changed');
      if (ss.leader !== '' && ss.leader !== this.self) this.#reforwardWaiters();
    }
  }

  #loseLeadership(): void {
    this.#head = undefined;
    this.#leaderGate = Number.POSITIVE_INFINITY;
    this.#cutter.cut();
    this.#inflight.clear();
    if (this.#batchTimer) clearTimeout(this.#batchTimer);
    this.#batchTimer = undefined;
    // Envelopes held for other nodes are re-sent by those nodes' waiters when they see the new
    // leader; this node's own waiters are re-routed the same way (#reforwardWaiters).
    this.#queue = [];
  }

  /** After a leader change, resend what local clients still wait for (duplicates are suppressed). */
  #reforwardWaiters(): void {
    for (const list of this.#waiters.values()) {
      const w = list[0];
      if (w) this.#route(w.envelope, w.isConfig, 0, w.key);
    }
  }

  #maybeOpenGate(): void {
    if (this.#role !== 'leader' || this.#head || this.#applied < this.#leaderGate || this.#stopped) return;
    this.#head = {
      number: this.blocks.height,
      hash: this.blocks.lastHash,
      lastConfig: this.#lastConfig,
      configSequence: this.#resources.config.sequence,
      config: this.#resources.config,
    };
    const queued = this.#queue;
    this.#queue = [];
    for (const q of queued) this.#order(q.env, q.isConfig);
    // Our own clients' envelopes may have been dropped by the previous leader.
    for (const list of this.#waiters.values()) {
      const w = list[0];
      if (!w) continue;
      try {
        this.#order(w.envelope, w.isConfig, w.key);
      } catch {}
    }
  }

  #applyConfChange(e: Entry): void {
    const cc = decodeConfChange(e.data);
    const cs = this.#raft.applyConfChange(cc);
    this.#log.info(
      { channel: this.channel, change: cc, voters: cs.voters, learners: cs.learners },
      'membership change applied',
    );
  }

  async #apply(e: Entry): Promise<void> {
    if (e.type !== 'confChange' && e.data.length > 0) await this.#applyBlock(e.data, e.index);
    this.#applied = e.index;
    this.#appliedMark = { index: e.index, lastBlock: this.blocks.height - 1, lastHash: this.blocks.lastHash };
  }

  async #applyBlock(data: Uint8Array, index: number): Promise<void> {
    const block = decodeBlock(data);
    const header = decodeBlockHeader(block.header);
    if (header.number < this.blocks.height) return; // Re-applied after a restart: already stored.
    if (header.number > this.blocks.height) {
      // Entries we hold only after a snapshot: fetch the gap from a consenter first.
      await this.#catchUp(header.number - 1, header.previousHash);
    }
    if (!bytesEqual(header.previousHash, this.blocks.lastHash)) {
      throw new Error(
        `committed block ${header.number} at index ${index} does not chain onto block ${header.number - 1}`,
      );
    }
    await this.#appendSigned(block, 'raft');
  }

  /** Signs a block with this orderer's identity and appends it; handles config blocks and waiters. */
  async #appendSigned(block: Block, via: 'raft' | 'pulled'): Promise<void> {
    const header = decodeBlockHeader(block.header);
    const signatureHeader = encodeSignatureHeader({ creator: this.#identity.creator, nonce: randomBytes(24) });
    const signature = await this.#identity.signer.sign(
      blockSignedBytes(block.header, signatureHeader, block.metadata.consenterMetadata),
    );
    const signed: Block = {
      header: block.header,
      data: block.data,
      metadata: {
        signatures: [{ signatureHeader, signature }],
        consenterMetadata: block.metadata.consenterMetadata,
        txValidationCodes: new Uint8Array(0),
      },
    };
    await this.blocks.append(encodeBlock(signed), signed);
    const cfg = configOfBlock(block);
    if (cfg) this.#installConfig(cfg.config, header.number);
    this.#noteBlock(block, header.number, cfg?.lastUpdate ?? null);
    this.#opts.onBlock?.(this.channel, header.number, block.data.length);
    if (via === 'pulled') this.#log.debug({ channel: this.channel, number: header.number }, 'pulled block appended');
  }

  #installConfig(config: ChannelConfig, number: number): void {
    this.#resources = channelResources(config);
    this.#lastConfig = number;
    this.#cutter.setLimits(this.#resources.limits);
    this.#transport.updateMembers(this.channel, clusterMembers(this.#resources.consenters));
    this.#log.info({ channel: this.channel, block: number, sequence: config.sequence }, 'channel config updated');
  }

  #noteBlock(block: Block, number: number, lastUpdate: Uint8Array | null): void {
    const hit = (key: string, at: OrderedAt) => {
      this.#remember(key, at);
      this.#inflight.delete(key);
      const list = this.#waiters.get(key);
      if (!list) return;
      this.#waiters.delete(key);
      for (const w of list) {
        clearTimeout(w.timer);
        w.resolve(at);
      }
    };
    for (const [txIndex, env] of block.data.entries()) hit(hashKey(env), { blockNumber: number, txIndex });
    if (lastUpdate) hit(hashKey(lastUpdate), { blockNumber: number, txIndex: 0 });
  }

  #remember(key: string, at: OrderedAt): void {
    this.#recent.set(key, at);
    if (this.#recent.size > RECENT_LIMIT) {
      const oldest = this.#recent.keys().next();
      if (!oldest.done) this.#recent.delete(oldest.value);
    }
  }

  async #loadRecent(from: number, to: number): Promise<void> {
    for (let n = from; n < to; n++) {
      const b = await this.blocks.get(n);
      if (!b) continue;
      const block = decodeBlock(b);
      for (const [txIndex, env] of block.data.entries()) this.#remember(hashKey(env), { blockNumber: n, txIndex });
      const cfg = configOfBlock(block);
      if (cfg?.lastUpdate) this.#remember(hashKey(cfg.lastUpdate), { blockNumber: n, txIndex: 0 });
    }
  }

  // ------------------------------------------------------------------ snapshots

  async #installSnapshot(snap: Snapshot): Promise<void> {
    const [number, hash] = decodeSnapshotData(snap.data);
    if (number >= this.blocks.height) {
      this.#log.info({ channel: this.channel, index: snap.metadata.index, block: number }, 'installing Raft snapshot');
      await this.#catchUp(number, hash);
    }
    if (snap.metadata.index > this.#applied) {
      this.#applied = snap.metadata.index;
      this.#appliedMark = {
        index: snap.metadata.index,
        lastBlock: this.blocks.height - 1,
        lastHash: this.blocks.lastHash,
      };
    }
  }

  async #maybeSnapshot(): Promise<void> {
    const every = this.#opts.snapshotIntervalEntries ?? 1000;
    const snapIndex = this.#storage.snapshot().metadata.index;
    // What the apply queue has applied (Raft has handed over more), with the blocks as of that index.
    const mark = this.#appliedMark;
    if (!mark || mark.index - snapIndex < every || mark.lastBlock < 0) return;
    const applied = mark.index;
    try {
      const snap = this.#raft.compact(applied, encodeSnapshotData(mark.lastBlock, mark.lastHash));
      await this.#storage.persistCompaction(snap);
      this.#log.debug({ channel: this.channel, index: applied }, 'Raft log compacted');
    } catch (e) {
      if (!(e instanceof RaftError)) throw e;
    }
  }

  // ------------------------------------------------------------------ membership

  /** Leader: moves the Raft membership one step towards the config's consenter set. */
  #reconcileMembership(): void {
    const s = this.#raft.status();
    if (this.#head === undefined) return;
    const want = new Set(this.#resources.consenters.map((c) => c.id));
    const voters = new Set(s.confState.voters);
    const learners = new Set(s.confState.learners);
    let change: { type: 'addLearner' | 'promote' | 'remove'; nodeId: string } | undefined;
    for (const id of want) {
      if (!voters.has(id) && !learners.has(id)) {
        change = { type: 'addLearner', nodeId: id };
        break;
      }
    }
    if (!change) {
      for (const id of learners) {
        const pr = s.progress?.[id];
        if (want.has(id) && pr && pr.match >= s.commit) {
          change = { type: 'promote', nodeId: id };
          break;
        }
      }
    }
    if (!change) {
      for (const id of [...voters, ...learners]) {
        if (!want.has(id) && id !== this.self) {
          change = { type: 'remove', nodeId: id };
          break;
        }
      }
    }
    if (!change && !want.has(this.self) && voters.has(this.self) && voters.size > 1)
      change = { type: 'remove', nodeId: this.self };
    if (!change) return;
    try {
      this.#raft.proposeConfChange(change);
      this.#log.info({ channel: this.channel, change }, 'proposed membership change');
      this.#kick();
    } catch (e) {
      if (!(e instanceof RaftError)) throw e;
    }
  }
}

export function encodeSnapshotData(lastBlock: number, lastHash: Uint8Array): Uint8Array {
  return encodeValue([lastBlock, lastHash]);
}

export function decodeSnapshotData(b: Uint8Array): [number, Uint8Array] {
  const t = readTuple(decodeValue(b, 'SnapshotData'), 2, 'SnapshotData');
  return [readUint(t[0], 'SnapshotData.lastBlock'), readBytes(t[1], 'SnapshotData.lastHash')];
}

/** The base sequence of a CONFIG_UPDATE envelope (throws ORDERER_BAD_ENVELOPE when it does not decode). */
export function configUpdateBase(envelope: Uint8Array): number {
  try {
    const payload = decodePayload(decodeEnvelope(envelope).payload);
    return decodeConfigUpdate(decodeConfigUpdateEnvelope(payload.data).configUpdate).baseSequence;
  } catch (e) {
    throw new LoomError(OrdererErrorCode.BAD_ENVELOPE, `malformed config update: ${(e as Error).message}`, {
      httpStatus: 400,
      cause: e,
    });
  }
}

/** Header fields of an envelope the broadcast checks need. */
export function envelopeChannelHeader(envelope: Uint8Array) {
  const env = decodeEnvelope(envelope);
  const payload = decodePayload(env.payload);
  const header = decodeHeader(payload.header);
  return { env, payload, header, channelHeader: decodeChannelHeader(header.channelHeader) };
}
