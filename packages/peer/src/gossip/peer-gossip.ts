/** Assembles a peer's gossip: the libp2p node, channel membership and block dissemination. */
import type { Bytes, ChannelConfig, Logger } from '@loom/common';
import type { Registry } from 'prom-client';
import { type AnchorDiscovery, startAnchorDiscovery } from './anchors.js';
import { type BlockGossip, createBlockGossip } from './block-gossip.js';
import type { GossipConfig } from './config.js';
import { createChannelMembership } from './membership.js';
import { createGossipNode, type GossipNode, loadOrCreateGossipKey } from './node.js';
import { type GossipPrivateDataStore, gossipPrivateData } from './private-data.js';

export interface StartGossipOptions {
  readonly config: GossipConfig;
  readonly nodeId: string;
  readonly mspId: string;
  readonly certPem: string;
  readonly signer: { sign(m: Bytes): Bytes | Promise<Bytes> };
  /** Where the libp2p key is kept (created on first start). */
  readonly keyFile: string;
  readonly channels: () => readonly string[];
  readonly channelConfig: (channel: string) => ChannelConfig | undefined;
  readonly commit: (channel: string, block: Bytes) => Promise<unknown>;
  /** Scheme of the peer APIs, and a JSON GET over the peer's transport: other orgs' anchor peers. */
  readonly scheme: 'http' | 'https';
  readonly getJson: (url: string) => Promise<unknown>;
  /**
   * The peer's private data service: blocks received by gossip bring their private data from the
   * sending peer (private-data.ts). None: no private data travels by gossip.
   */
  readonly privateData?: GossipPrivateDataStore | undefined;
  readonly logger: Logger;
  readonly registry?: Registry;
}

export interface PeerGossip {
  readonly node: GossipNode;
  readonly blocks: BlockGossip;
  readonly anchors: AnchorDiscovery;
  /** What `GET /v1/gossip/endpoint` answers. */
  endpoint(): { peerId: string; addr: string };
  stop(): Promise<void>;
}

export async function startGossip(o: StartGossipOptions): Promise<PeerGossip> {
  const membership = createChannelMembership({ channels: o.channels, config: o.channelConfig });
  const node = await createGossipNode({
    host: o.config.listen.host,
    port: o.config.listen.port,
    advertiseHost: o.config.advertiseHost,
    privateKey: await loadOrCreateGossipKey(o.keyFile),
    nodeId: o.nodeId,
    mspId: o.mspId,
    certPem: o.certPem,
    signer: o.signer,
    bootstrap: o.config.bootstrap,
    membership,
    logger: o.logger,
    registry: o.registry,
    maintenanceMs: o.config.heartbeatMs,
  });
  const blocks = createBlockGossip({
    node,
    membership,
    self: { nodeId: o.nodeId, mspId: o.mspId },
    leadership: o.config.orgLeader,
    heartbeatMs: o.config.heartbeatMs,
    batchSize: o.config.stateTransferBatch,
    commit: o.commit,
    privateData: o.privateData ? gossipPrivateData(o.privateData, o.registry) : undefined,
    logger: o.logger,
    registry: o.registry,
  });
  const anchors = startAnchorDiscovery({
    selfMspId: o.mspId,
    scheme: o.scheme,
    channels: o.channels,
    config: o.channelConfig,
    getJson: o.getJson,
    node,
    logger: o.logger,
  });
  o.logger.info(
    { peerId: node.peerId, listen: node.listenAddr, bootstrap: o.config.bootstrap, orgLeader: o.config.orgLeader },
    'gossip started',
  );
  return {
    node,
    blocks,
    anchors,
    endpoint: () => ({ peerId: node.peerId, addr: node.listenAddr }),
    async stop() {
      anchors.stop();
      await blocks.stop();
      await node.stop();
    },
  };
}
