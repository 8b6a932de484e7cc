/**
 * Block gossip's private data path, on an in-memory gossip network: a follower catching up by state
 * transfer asks the peer the blocks come from for private data only when its receiver wants it,
 * hands the answer over before the block commits, and commits the block even when the request fails.
 */
import { type Bytes, createLogger, utf8 } from '@loom/common';
import { afterEach, describe, expect, it } from 'vitest';
import { type BlockGossip, createBlockGossip, type GossipLedger } from './block-gossip.js';
import type { GossipNode, PushHandler, RemotePeer, RequestHandler } from './node.js';
import { BLOCK_RANGE_PROTOCOL } from './wire.js';

function memoryNetwork() {
  const nodes = new Map<
    string,
    { remote: RemotePeer; req: Map<string, RequestHandler>; push: Map<string, PushHandler> }
  >();
  /** `refuse`: protocols this node answers with an error. */
  return (remote: RemotePeer, refuse: readonly string[] = []): GossipNode => {
    const me = { remote, req: new Map<string, RequestHandler>(), push: new Map<string, PushHandler>() };
    nodes.set(remote.peerId, me);
    return {
      peerId: remote.peerId,
      listenAddr: '',
      handleRequest: (p, h) =>
        void me.req.set(
          p,
          refuse.includes(p)
            ? async () => {
                throw new Error(`${p} refused`);
              }
            : h,
        ),
      handlePush: (p, h) => void me.push.set(p, h),
      async request(peerId, channel, protocol, data) {
        const h = nodes.get(peerId)?.req.get(protocol);
        if (!h) throw new Error(`no handler for ${protocol}`);
        return h({ channel, from: remote, protocol, data });
      },
      async push(peerId, channel, protocol, data) {
        await nodes.get(peerId)?.push.get(protocol)?.({ channel, from: remote, protocol, data });
      },
      peers: () => [...nodes.values()].filter((n) => n.remote.peerId !== remote.peerId).map((n) => n.remote),
      addAddresses() {},
      redial() {},
      stop: async () => {},
    };
  };
}

function memoryLedger(blocks: Bytes[]): GossipLedger & { blocks: Bytes[] } {
  return {
    blocks,
    height: () => blocks.length,
    config: () => undefined,
    getBlockBytes: async (n) => blocks[n],
    onCommit: () => () => undefined,
  };
}

const remote = (name: string, mspId = 'Org1MSP'): RemotePeer => ({
  peerId: `id-${name}`,
  nodeId: name,
  mspId,
  certPem: '',
  addr: '',
});
const logger = createLogger({ component: 'test', level: 'silent' });
const running: BlockGossip[] = [];
afterEach(async () => {
  for (const g of running.splice(0)) await g.stop();
});

describe('block gossip with private data', () => {
  it('asks the source only for wanted blocks, before committing them; a failed request does not hold up the block', async () => {
    const node = memoryNetwork();
    const chain = [0, 1, 2, 3, 4].map((n) => new Uint8Array([n]));
    const sourceLedger = memoryLedger([...chain]);
    const served: { n: number; requester: string }[] = [];
    const source = createBlockGossip({
      node: node(remote('peer0')),
      membership: { accepts: () => true, isMember: () => true },
      self: { nodeId: 'peer0', mspId: 'Org1MSP' },
      leadership: 'auto',
      heartbeatMs: 50,
      commit: async () => undefined,
      privateData: {
        provider: {
          async forBlock(_ch, n, requester) {
            served.push({ n, requester: `${requester.mspId}/${requester.nodeId}` });
            if (n === 4) throw new Error('store unavailable');
            return utf8(`pvt-${n}`);
          },
        },
      },
      logger,
    });
    running.push(source);
    source.addChannel('ch', sourceLedger, undefined);

    const followerLedger = memoryLedger([chain[0]!]);
    const events: string[] = [];
    const follower = createBlockGossip({
      node: node(remote('peer1')),
      membership: { accepts: () => true, isMember: () => true },
      self: { nodeId: 'peer1', mspId: 'Org1MSP' },
      leadership: 'false',
      heartbeatMs: 50,
      commit: async (_ch, block) => {
        events.push(`commit ${block[0]}`);
        followerLedger.blocks.push(block);
      },
      privateData: {
        receiver: {
          wants: async (_ch, n) => n % 2 === 0,
          async receive(_ch, n, data, from) {
            events.push(`pvt ${n} ${new TextDecoder().decode(data)} from ${from.nodeId}`);
          },
        },
      },
      logger,
    });
    running.push(follower);
    follower.addChannel('ch', followerLedger, undefined);

    const end = Date.now() + 20_000;
    while (followerLedger.height() < 5 && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
    expect(followerLedger.height()).toBe(5);
    expect(events).toEqual(['commit 1', 'pvt 2 pvt-2 from peer0', 'commit 2', 'commit 3', 'commit 4']);
    expect(served).toEqual([
      { n: 2, requester: 'Org1MSP/peer1' },
      { n: 4, requester: 'Org1MSP/peer1' },
    ]);
    expect(follower.status('ch')?.blocksFromStateTransfer).toBe(4);
  });

  it('a block from a peer holding none of its private data: the data is asked of another peer before the commit', async () => {
    const node = memoryNetwork();
    const chain = [0, 1, 2, 3, 4, 5].map((n) => new Uint8Array([n]));
    const asked: string[] = [];
    const serving = (name: string, mspId: string, blocks: Bytes[], holds: boolean, refuse: string[] = []) => {
      const g = createBlockGossip({
        node: node(remote(name, mspId), refuse),
        aliveMs: 60_000,
        membership: { accepts: () => true, isMember: () => true },
        self: { nodeId: name, mspId },
        leadership: 'auto',
        heartbeatMs: 50,
        commit: async () => undefined,
        privateData: {
          provider: {
            async forBlock(_ch, n) {
              asked.push(`${name} ${n}`);
              return holds ? utf8(`pvt-${n}`) : undefined;
            },
          },
        },
        logger,
      });
      running.push(g);
      g.addChannel('ch', memoryLedger(blocks), undefined);
    };
    // Every block comes from a non-member's peer: Org2's peer serves no block ranges (only its
    // private data), so state transfer takes them all from Org3's.
    serving('org3peer', 'Org3MSP', [...chain], false);
    serving('org2peer', 'Org2MSP', chain.slice(0, 5), true, [BLOCK_RANGE_PROTOCOL]);

    const followerLedger = memoryLedger([chain[0]!]);
    const events: string[] = [];
    const have = new Set<number>();
    const follower = createBlockGossip({
      node: node(remote('peer1')),
      membership: { accepts: () => true, isMember: () => true },
      self: { nodeId: 'peer1', mspId: 'Org1MSP' },
      leadership: 'false',
      heartbeatMs: 50,
      aliveMs: 60_000,
      commit: async (_ch, block) => {
        events.push(`commit ${block[0]}`);
        followerLedger.blocks.push(block);
      },
      privateData: {
        receiver: {
          wants: async (_ch, n) => n % 2 === 0 && !have.has(n),
          async receive(_ch, n, data, from) {
            have.add(n);
            events.push(`pvt ${n} ${new TextDecoder().decode(data)} from ${from.nodeId}`);
          },
        },
      },
      logger,
    });
    running.push(follower);
    follower.addChannel('ch', followerLedger, undefined);

    const end = Date.now() + 20_000;
    while (followerLedger.height() < 6 && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
    expect(followerLedger.height()).toBe(6);
    expect(events).toEqual([
      'commit 1',
      'pvt 2 pvt-2 from org2peer',
      'commit 2',
      'commit 3',
      'pvt 4 pvt-4 from org2peer',
      'commit 4',
      'commit 5',
    ]);
    expect(asked).toEqual(['org3peer 2', 'org2peer 2', 'org3peer 4', 'org2peer 4']);
  });
});
