/**
 * Three orderers in one process over the in-memory transport and in-memory stores: ordering,
 * forwarding, identical chains, duplicate suppression, restart and snapshot catch-up.
 */
import {
  bytesEqual,
  decodeBlock,
  decodeBlockHeader,
  decodeValue,
  encodeSerializedIdentity,
  isLoomError,
  toHex,
} from '@loom/common';
import { sha256 } from '@loom/common/crypto/hash';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { Registrar } from '../src/registrar.js';
import { MemoryKv } from '../src/storage/kv.js';
import { MemoryHub } from '../src/transport/memory.js';
import {
  channelConfig,
  configUpdateEnvelope,
  createNetwork,
  genesisBlock,
  type Network,
  txEnvelope,
} from './fixtures.js';

const logger = pino({ level: process.env.LOOM_TEST_LOG ?? 'silent' });

interface Node {
  name: string;
  kv: MemoryKv;
  registrar: Registrar;
}

async function startNode(
  net: Network,
  hub: MemoryHub,
  i: number,
  kv = new MemoryKv(),
  snapshotIntervalEntries = 1000,
  maxPendingEnvelopes?: number,
): Promise<Node> {
  const o = net.orderers[i]!;
  const registrar = await Registrar.open({
    kv,
    transport: hub.transport(o.consenterId),
    identity: { creator: encodeSerializedIdentity(o.serialized), signer: o.signer, certPem: o.certPem },
    logger,
    tuning: {
      tickMs: 20,
      electionTick: 10,
      heartbeatTick: 1,
      snapshotIntervalEntries,
      submitTimeoutMs: 5000,
      ...(maxPendingEnvelopes ? { maxPendingEnvelopes } : {}),
    },
  });
  return { name: o.consenterId, kv, registrar };
}

async function until(what: string, cond: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`timed out waiting for ${what}`);
}

async function allBlocks(node: Node, channel: string): Promise<Uint8Array[]> {
  const chain = node.registrar.require(channel);
  const out: Uint8Array[] = [];
  for (let n = 0; n < chain.blocks.height; n++) out.push((await chain.blocks.get(n))!);
  return out;
}

let nodes: Node[] = [];
afterEach(async () => {
  await Promise.all(nodes.map((n) => n.registrar.stop()));
  nodes = [];
});

describe('Raft chain (in-memory transport)', () => {
  it('orders envelopes from every node into identical chains, each envelope exactly once', async () => {
    const net = await createNetwork(3);
    const config = channelConfig(net, [], { maxMessageCount: 10, batchTimeoutMs: 30 });
    const genesis = genesisBlock(net, config);
    const hub = new MemoryHub();
    nodes = await Promise.all([0, 1, 2].map((i) => startNode(net, hub, i)));
    for (const n of nodes) await n.registrar.join(genesis.bytes);
    const ch = net.channel;
    await until('a leader', () => nodes.every((n) => n.registrar.require(ch).leader !== ''));

    const envs = Array.from({ length: 60 }, () => txEnvelope(net.org1.client, ch));
    const results = await Promise.all(envs.map((e, i) => nodes[i % 3]!.registrar.require(ch).submit(e, false)));
    // Submitting an ordered envelope again answers with where it already is.
    const again = await nodes[1]!.registrar.require(ch).submit(envs[7]!, false);
    expect(again).toEqual(results[7]);

    const height = Math.max(...nodes.map((n) => n.registrar.require(ch).blocks.height));
    await until('all nodes at the same height', () =>
      nodes.every((n) => n.registrar.require(ch).blocks.height === height),
    );
    const chains = await Promise.all(nodes.map((n) => allBlocks(n, ch)));
    const seen = new Map<string, number>();
    for (const [n, bytes] of chains[0]!.entries()) {
      const b = decodeBlock(bytes);
      for (const other of chains.slice(1)) {
        const o = decodeBlock(other[n]!);
        expect(bytesEqual(o.header, b.header)).toBe(true);
        expect(o.data).toEqual(b.data);
      }
      expect(decodeBlockHeader(b.header).number).toBe(n);
      if (n > 0) {
        expect(b.metadata.signatures).toHaveLength(1);
        for (const env of b.data) seen.set(toHex(sha256(env)), (seen.get(toHex(sha256(env))) ?? 0) + 1);
      }
    }
    for (const [i, e] of envs.entries()) {
      expect(seen.get(toHex(sha256(e)))).toBe(1);
      const r = results[i]!;
      const block = decodeBlock(chains[0]![r.blockNumber]!);
      expect(bytesEqual(block.data[r.txIndex]!, e)).toBe(true);
    }
  });

  it('a restarted node recovers its state and catches up, through a snapshot when the log was compacted', async () => {
    const net = await createNetwork(3);
    const config = channelConfig(net, [], { maxMessageCount: 5, batchTimeoutMs: 20 });
    const genesis = genesisBlock(net, config);
    const hub = new MemoryHub();
    nodes = await Promise.all([0, 1, 2].map((i) => startNode(net, hub, i, new MemoryKv(), 10)));
    for (const n of nodes) await n.registrar.join(genesis.bytes);
    const ch = net.channel;
    await until('a leader', () => nodes.every((n) => n.registrar.require(ch).leader !== ''));

    // Stop a follower; the others go on and compact their logs past it.
    const leader = nodes[0]!.registrar.require(ch).leader;
    const victim = nodes.find((n) => n.name !== leader)!;
    await victim.registrar.stop();
    const live = nodes.filter((n) => n !== victim);
    const envs = Array.from({ length: 80 }, () => txEnvelope(net.org1.client, ch));
    await Promise.all(envs.map((e, i) => live[i % 2]!.registrar.require(ch).submit(e, false)));

    const idx = nodes.indexOf(victim);
    const restarted = await startNode(net, hub, idx, victim.kv, 10);
    nodes[idx] = restarted;
    const target = live[0]!.registrar.require(ch).blocks.height;
    await until(
      'the restarted node to catch up',
      () => restarted.registrar.require(ch).blocks.height >= target,
      15_000,
    );
    const a = await allBlocks(live[0]!, ch);
    const b = await allBlocks(restarted, ch);
    for (let n = 0; n < target; n++)
      expect(bytesEqual(decodeBlock(a[n]!).header, decodeBlock(b[n]!).header)).toBe(true);
    // And it takes part in ordering again.
    const at = await restarted.registrar.require(ch).submit(txEnvelope(net.org1.client, ch), false);
    expect(at.blockNumber).toBeGreaterThanOrEqual(target);
  });
});

describe('admission control', () => {
  it('refuses new envelopes with 503 ORDERER_BUSY while too many wait or ordering lags, and admits again after', async () => {
    const net = await createNetwork(3);
    const config = channelConfig(net, [], { maxMessageCount: 10, batchTimeoutMs: 30 });
    const genesis = genesisBlock(net, config);
    const hub = new MemoryHub();
    nodes = await Promise.all([0, 1, 2].map((i) => startNode(net, hub, i, new MemoryKv(), 1000, 8)));
    for (const n of nodes) await n.registrar.join(genesis.bytes);
    const ch = net.channel;
    await until('a leader', () => nodes.every((n) => n.registrar.require(ch).leader !== ''));
    const chain = nodes[1]!.registrar.require(ch);
    const busy = (e: unknown) => isLoomError(e) && e.code === 'ORDERER_BUSY' && e.httpStatus === 503;

    chain.admit(8);
    // With nothing waiting, even a request larger than the limit is admitted (else it never could be).
    chain.admit(9);
    // A request that queued longer than half the submit timeout (5 s here) before its handler ran.
    expect(() => chain.admit(1, Date.now() - 3_000)).toThrow(expect.objectContaining({ code: 'ORDERER_BUSY' }));
    chain.admit(1, Date.now() - 1_000);

    const envs = Array.from({ length: 6 }, () => txEnvelope(net.org1.client, ch));
    const ordered = Promise.all(envs.map((e) => chain.submit(e, false)));
    expect(chain.pendingEnvelopes).toBe(6);
    chain.admit(2);
    let refused: unknown;
    try {
      chain.admit(3);
    } catch (e) {
      refused = e;
    }
    expect(busy(refused)).toBe(true);
    expect((refused as { details: Record<string, unknown> }).details).toMatchObject({ pending: 6, maxPending: 8 });
    await ordered;
    expect(chain.pendingEnvelopes).toBe(0);
    chain.admit(8);
  });
});

describe('block catch-up', () => {
  it('keeps the blocks it verified when pull answers are lost, and catches up', async () => {
    const net = await createNetwork(3);
    // One envelope per block: 150 blocks behind is three pull answers (64 blocks each at most).
    const config = channelConfig(net, [], { maxMessageCount: 1, batchTimeoutMs: 20 });
    const genesis = genesisBlock(net, config);
    const hub = new MemoryHub();
    nodes = await Promise.all([0, 1, 2].map((i) => startNode(net, hub, i, new MemoryKv(), 10)));
    for (const n of nodes) await n.registrar.join(genesis.bytes);
    const ch = net.channel;
    await until('a leader', () => nodes.every((n) => n.registrar.require(ch).leader !== ''));
    const leader = nodes[0]!.registrar.require(ch).leader;
    const victim = nodes.find((n) => n.name !== leader)!;
    await victim.registrar.stop();
    const live = nodes.filter((n) => n !== victim);
    const envs = Array.from({ length: 150 }, () => txEnvelope(net.org1.client, ch));
    await Promise.all(envs.map((e, i) => live[i % 2]!.registrar.require(ch).submit(e, false)));

    // Every second block answer to the restarted node is lost: it must resume from what it holds
    // (starting over each time would never get two answers in a row).
    let answers = 0;
    hub.dropIf((_c, _from, to, data) => {
      if (to !== victim.name) return false;
      const kind = (decodeValue(data, 'frame') as unknown[])[0];
      return kind === 3 && answers++ % 2 === 1;
    });
    const idx = nodes.indexOf(victim);
    const restarted = await startNode(net, hub, idx, victim.kv, 10);
    nodes[idx] = restarted;
    const target = live[0]!.registrar.require(ch).blocks.height;
    expect(target).toBeGreaterThan(140);
    await until(
      'the restarted node to catch up',
      () => restarted.registrar.require(ch).blocks.height >= target,
      60_000,
    );
    hub.dropIf(undefined);
    expect(answers).toBeGreaterThanOrEqual(4);
    const a = await allBlocks(live[0]!, ch);
    const b = await allBlocks(restarted, ch);
    for (let n = 0; n < target; n++)
      expect(bytesEqual(decodeBlock(a[n]!).header, decodeBlock(b[n]!).header)).toBe(true);
  }, 90_000);
});

describe('consenter set changes through config blocks', () => {
  it('adds a consenter as learner then voter, and removes one, one change at a time', async () => {
    const net = await createNetwork(4);
    const full = channelConfig(net, [], { maxMessageCount: 10, batchTimeoutMs: 20 });
    const initial = { ...full, orderer: { ...full.orderer, consenters: full.orderer.consenters.slice(0, 3) } };
    const genesis = genesisBlock(net, initial);
    const hub = new MemoryHub();
    nodes = await Promise.all([0, 1, 2, 3].map((i) => startNode(net, hub, i)));
    const ch = net.channel;
    for (const n of nodes.slice(0, 3)) await n.registrar.join(genesis.bytes);
    // orderer3 is not a consenter of the genesis config.
    await expect(nodes[3]!.registrar.join(genesis.bytes)).rejects.toSatisfy((e) =>
      isLoomError(e, 'ORDERER_NOT_A_CONSENTER'),
    );
    await until('a leader', () => nodes.slice(0, 3).every((n) => n.registrar.require(ch).leader !== ''));
    await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        nodes[i % 3]!.registrar.require(ch).submit(txEnvelope(net.org1.client, ch), false),
      ),
    );

    // Config update adding orderer3: the orderer section's Admins (the orderer org's admin) must sign.
    const unsigned = configUpdateEnvelope(net.org1.admin, 0, full, { current: initial, signers: [net.org1.admin] });
    // Submitted at the leader, which checks it when ordering (a follower's waiter would only time out).
    const leaderNow = nodes.find((n) => n.name === nodes[0]!.registrar.require(ch).leader)!;
    await expect(leaderNow.registrar.require(ch).submit(unsigned, true)).rejects.toSatisfy((e) =>
      isLoomError(e, 'CONFIG_POLICY_UNSATISFIED'),
    );
    const add = configUpdateEnvelope(net.org1.admin, 0, full, { current: initial, signers: [net.ordererAdmin] });
    const at = await nodes[1]!.registrar.require(ch).submit(add, true);
    const configBlock = (await nodes[1]!.registrar.require(ch).blocks.get(at.blockNumber))!;
    expect(decodeBlock(configBlock).data).toHaveLength(1);
    for (const n of nodes.slice(0, 3)) {
      await until('config applied everywhere', () => n.registrar.require(ch).config.sequence === 1);
    }
    // The new consenter joins with the latest config block and onboards from the others.
    const info = await nodes[3]!.registrar.join(configBlock);
    expect(info.consensusRelation).toBe('consenter');
    const leaderChain = () =>
      nodes.find((n) => n.name === nodes[0]!.registrar.require(ch).leader)!.registrar.require(ch);
    await until('orderer3 to become a voter', () => leaderChain().status().voters.includes('orderer3'), 15_000);
    const height = leaderChain().blocks.height;
    await until('orderer3 to catch up', () => nodes[3]!.registrar.require(ch).blocks.height >= height, 15_000);
    const a = await allBlocks(nodes[0]!, ch);
    const b = await allBlocks(nodes[3]!, ch);
    for (let i = 0; i < height; i++)
      expect(bytesEqual(decodeBlock(a[i]!).header, decodeBlock(b[i]!).header)).toBe(true);

    // Remove orderer0.
    const inForce = nodes[3]!.registrar.require(ch).config;
    const without = { ...inForce, orderer: { ...inForce.orderer, consenters: inForce.orderer.consenters.slice(1) } };
    await nodes[3]!.registrar
      .require(ch)
      .submit(
        configUpdateEnvelope(net.org1.admin, 1, without, { current: inForce, signers: [net.ordererAdmin] }),
        true,
      );
    const remaining = nodes.slice(1);
    await until(
      'orderer0 removed from the Raft group',
      () =>
        remaining.every((n) => {
          const s = n.registrar.require(ch).status();
          return s.leader !== '' && !s.voters.includes('orderer0');
        }),
      15_000,
    );
    // The remaining three keep ordering.
    const r = await remaining[0]!.registrar.require(ch).submit(txEnvelope(net.org1.client, ch), false);
    expect(r.blockNumber).toBeGreaterThan(at.blockNumber);
    // A stale config update (old base sequence) is refused.
    await expect(
      remaining[1]!.registrar.require(ch).submit(configUpdateEnvelope(net.org1.admin, 0, full), true),
    ).rejects.toSatisfy((e) => isLoomError(e, 'ORDERER_CONFIG_SEQUENCE_MISMATCH'));
  }, 60_000);
});
