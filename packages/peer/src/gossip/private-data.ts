/**
 * Private data over gossip: the `PrivateDataProvider`/`PrivateDataReceiver` pair of block-gossip.ts
 * on top of the peer's private data service (privdata/service.ts).
 *
 * - Provider (source side): answers a block's private writes to an authenticated member peer of the
 *   channel (gossip's hello bound its libp2p id to an MSP peer identity), only for collections that
 *   both the requester's org and this peer's org are members of.
 * - Receiver (catching-up side): asks only for blocks carrying private writes of its org's
 *   collections that its transient store lacks (and no peer has sent yet: block gossip asks up to
 *   three peers, its source first); what arrives is held until the block commits, then
 *   checked against the block's hashes and written in the block's atomic batch. Anything missing is
 *   recorded at commit and reconciled later (HTTPS pull from member peers).
 */
import type { Bytes } from '@loom/common';
import { Counter, type Registry } from 'prom-client';
import type { PrivateDataService } from '../privdata/service.js';
import type { PrivateDataProvider, PrivateDataReceiver } from './block-gossip.js';

/** What gossip needs of the private data service. */
export type GossipPrivateDataStore = Pick<
  PrivateDataService,
  'blockPrivateData' | 'needsPrivateData' | 'stageBlockPrivateData'
>;

export function gossipPrivateData(
  store: GossipPrivateDataStore,
  registry?: Registry,
): { provider: PrivateDataProvider; receiver: PrivateDataReceiver } {
  const registers = registry ? [registry] : [];
  const served = new Counter({
    name: 'gossip_private_data_served_total',
    help: 'Blocks whose private data this peer sent to a member peer catching up by gossip.',
    labelNames: ['channel'],
    registers,
  });
  const committed = new Counter({
    name: 'gossip_private_data_committed_total',
    help: 'Private collection writes received by gossip and committed with their block (hashes checked).',
    labelNames: ['channel'],
    registers,
  });
  return {
    provider: {
      async forBlock(channel, blockNumber, requester) {
        const data = await store.blockPrivateData(channel, blockNumber, requester.mspId);
        if (data) served.inc({ channel });
        return data;
      },
    },
    receiver: {
      wants: (channel: string, n: number, block: Bytes) => store.needsPrivateData(channel, block, n),
      async receive(channel, blockNumber, data) {
        store.stageBlockPrivateData(channel, blockNumber, data, (written) => {
          if (written > 0) committed.inc({ channel }, written);
        });
      },
    },
  };
}
