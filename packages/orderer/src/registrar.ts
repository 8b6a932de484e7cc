/**
 * The channels this orderer takes part in (channel participation, like Fabric's osnadmin): join
 * with a genesis (or later config) block, list, inspect, remove. Each joined channel is one Chain
 * with its own block store and Raft storage in the orderer's KvStore.
 *
 * Key layout: `c/<channel>` → CBOR [selfId, joinBlock] (joinBlock: the config block joined with).
 */
import {
  type ChannelConfig,
  decodeBlock,
  decodeBlockHeader,
  decodeValue,
  encodeValue,
  LoomError,
  readBytes,
  readText,
  readTuple,
} from '@loom/common';
import type { Logger } from '@loom/common/logging';
import { Chain, type ChainIdentity, type ChainOptions, OrdererErrorCode } from './chain.js';
import { configOfBlock, consenterFor } from './channel-resources.js';
import { destroyBlockStore, openBlockStore } from './storage/block-store.js';
import type { KvStore } from './storage/kv.js';
import { DurableRaftStorage } from './storage/raft-log.js';
import type { ClusterTransport } from './transport/types.js';

export interface ChannelInfo {
  readonly name: string;
  /** `active`: ordering; `onboarding`: catching up blocks; `failed`: halted (see logs). */
  readonly status: 'active' | 'onboarding' | 'failed';
  readonly consensusRelation: 'consenter' | 'follower';
  readonly height: number;
  readonly leader: string;
  readonly term: number;
  readonly self: string;
}

export type ChainTuning = Pick<
  ChainOptions,
  | 'tickMs'
  | 'electionTick'
  | 'heartbeatTick'
  | 'snapshotIntervalEntries'
  | 'submitTimeoutMs'
  | 'maxPendingEnvelopes'
  | 'clock'
  | 'random'
  | 'onBlock'
>;

export interface RegistrarOptions {
  readonly kv: KvStore;
  readonly transport: ClusterTransport;
  readonly identity: ChainIdentity & { readonly certPem: string };
  readonly logger: Logger;
  readonly tuning?: ChainTuning;
}

const recordKey = (channel: string) => `c/${channel}`;
const CHANNEL_NAME = /^[a-z][a-z0-9.-]{0,248}$/;

export class Registrar {
  readonly #opts: RegistrarOptions;
  readonly #chains = new Map<string, Chain>();
  readonly #joining = new Set<string>();

  private constructor(opts: RegistrarOptions) {
    this.#opts = opts;
  }

  /** Opens and starts every channel recorded in the store. */
  static async open(opts: RegistrarOptions): Promise<Registrar> {
    const r = new Registrar(opts);
    for await (const [key, value] of opts.kv.range('c/', 'c0')) {
      const channel = key.slice(2);
      const t = readTuple(decodeValue(value, 'ChannelRecord'), 2, 'ChannelRecord');
      const self = readText(t[0], 'ChannelRecord.self');
      const joinBlock = readBytes(t[1], 'ChannelRecord.joinBlock');
      const block = decodeBlock(joinBlock);
      const cfg = configOfBlock(block);
      // A crash between recording the join and persisting Raft's bootstrap entries: bootstrap again.
      const voters =
        decodeBlockHeader(block.header).number === 0 ? cfg?.config.orderer.consenters.map((c) => c.id) : [];
      await r.#start(channel, self, voters, cfg?.config);
    }
    return r;
  }

  get(channel: string): Chain | undefined {
    return this.#chains.get(channel);
  }

  /** The chain, or CHANNEL_NOT_FOUND (404). */
  require(channel: string): Chain {
    const c = this.#chains.get(channel);
    if (!c) {
      throw new LoomError(OrdererErrorCode.CHANNEL_NOT_FOUND, `this orderer is not a member of channel '${channel}'`, {
        httpStatus: 404,
        details: { channel },
      });
    }
    return c;
  }

  get channels(): Chain[] {
    return [...this.#chains.values()];
  }

  info(channel: string): ChannelInfo {
    const c = this.require(channel);
    const s = c.status();
    return {
      name: channel,
      status: c.failure ? 'failed' : c.blocks.height === 0 ? 'onboarding' : 'active',
      consensusRelation: c.isConsenter ? 'consenter' : 'follower',
      height: c.blocks.height,
      leader: s.leader,
      term: s.term,
      self: c.self,
    };
  }

  list(): ChannelInfo[] {
    return [...this.#chains.keys()].sort().map((n) => this.info(n));
  }

  /** Joins the channel a config block describes; block 0 bootstraps a new Raft group. */
  async join(blockBytes: Uint8Array): Promise<ChannelInfo> {
    let number: number;
    let config: ChannelConfig;
    try {
      const block = decodeBlock(blockBytes);
      number = decodeBlockHeader(block.header).number;
      const cfg = configOfBlock(block);
      if (!cfg) throw new Error('the block is not a config block');
      config = cfg.config;
    } catch (e) {
      throw new LoomError(OrdererErrorCode.BAD_CONFIG_BLOCK, `cannot join: ${(e as Error).message}`, {
        httpStatus: 400,
        cause: e,
      });
    }
    const channel = config.channelId;
    if (!CHANNEL_NAME.test(channel))
      throw new LoomError(OrdererErrorCode.BAD_CONFIG_BLOCK, `bad channel name ${channel}`, { httpStatus: 400 });
    if (this.#chains.has(channel) || this.#joining.has(channel)) {
      throw new LoomError(OrdererErrorCode.CHANNEL_EXISTS, `already a member of channel '${channel}'`, {
        httpStatus: 405,
        details: { channel },
      });
    }
    const me = consenterFor(config, this.#opts.identity.certPem);
    if (!me) {
      throw new LoomError(
        'ORDERER_NOT_A_CONSENTER',
        `this orderer's certificate is not in the consenter set of '${channel}'`,
        {
          httpStatus: 403,
          details: { channel },
        },
      );
    }
    this.#joining.add(channel);
    try {
      const kv = this.#opts.kv;
      const blocks = await openBlockStore(kv, channel);
      if (number === 0 && blocks.height === 0) await blocks.append(blockBytes);
      await kv.batch([{ type: 'put', key: recordKey(channel), value: encodeValue([me.id, blockBytes]) }]);
      const voters = number === 0 ? config.orderer.consenters.map((c) => c.id) : [];
      await this.#start(channel, me.id, voters, config);
    } finally {
      this.#joining.delete(channel);
    }
    return this.info(channel);
  }

  async #start(
    channel: string,
    self: string,
    bootstrapVoters: readonly string[] | undefined,
    joinConfig: ChannelConfig | undefined,
  ): Promise<void> {
    const kv = this.#opts.kv;
    const blocks = await openBlockStore(kv, channel);
    const raftStorage = await DurableRaftStorage.open(kv, channel);
    const chain = await Chain.open(
      {
        ...this.#opts.tuning,
        channel,
        self,
        blocks,
        raftStorage,
        transport: this.#opts.transport,
        identity: this.#opts.identity,
        logger: this.#opts.logger,
        bootstrapVoters: raftStorage.isEmpty ? bootstrapVoters : undefined,
      },
      joinConfig,
    );
    this.#chains.set(channel, chain);
    chain.start();
    this.#opts.logger.info({ channel, self, height: blocks.height }, 'channel started');
  }

  /** Leaves a channel and deletes its blocks and Raft state. */
  async remove(channel: string): Promise<void> {
    const chain = this.require(channel);
    this.#chains.delete(channel);
    await chain.stop();
    const kv = this.#opts.kv;
    await kv.batch([{ type: 'del', key: recordKey(channel) }]);
    await destroyBlockStore(kv, channel);
    await DurableRaftStorage.destroy(kv, channel);
    this.#opts.logger.info({ channel }, 'channel removed');
  }

  async stop(): Promise<void> {
    await Promise.all([...this.#chains.values()].map((c) => c.stop()));
  }
}
