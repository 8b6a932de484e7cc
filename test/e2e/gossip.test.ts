/**
 * Gossip among real peer processes (packages/peer/dist/main.js) of Org1 on one channel:
 *
 * 1. peer0 (orgLeader auto) pulls 1,000 orderer-signed blocks from a deliver-compatible block source
 *    (the orderer stand-in of peer-kill.test.ts) and is elected leader.
 * 2. peer1 (orgLeader false) starts afterwards, with an orderer source of its own that records every
 *    deliver request: it catches up the whole ledger by state transfer from peer0 while its source
 *    sees no request at all, and its ledger (accumulator digest) equals peer0's.
 * 3. New blocks reach peer0 from the orderer and peer1 by peer0's pushes (still no orderer request).
 * 4. Non-members — a libp2p node with an Org3 peer certificate (an org not in the channel) and one with
 *    an "Org1MSP" peer certificate from an unknown CA — are refused at the hello, cannot read blocks,
 *    and cannot inject an orderer-signed next block into peer1; peer1 counts the rejections.
 * 5. peer0 is killed: peer1 finds no leader alive, falls back to its own orderer source, and the new
 *    blocks still commit on it. Both ledgers verify on disk.
 *
 * Time: about 30 s on a quiet 2-core machine (2,000 block commits in all); at load 40 about 5.5 min,
 * hence the 10-minute test timeout. LOOM_GOSSIP_BLOCKS overrides the 1,000 blocks.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, existsSync, openSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { privateKeyFromProtobuf } from '@libp2p/crypto/keys';
import { peerIdFromPrivateKey } from '@libp2p/peer-id';
import { type Bytes, encodeBlock, LoomError } from '@loom/common';
import { createTestCa, createTestOrg, type TestIdentity, writeMspDir } from '@loom/common/testing/index';
import { afterAll, describe, expect, it } from 'vitest';
import { verifyLedger } from '../../packages/peer/src/committer/verify.js';
import { createGossipNode, type GossipNode, loadOrCreateGossipKey } from '../../packages/peer/src/gossip/node.js';
import { BLOCK_PUSH_PROTOCOL, BLOCK_RANGE_PROTOCOL, encodeRangeRequest } from '../../packages/peer/src/gossip/wire.js';
import { type BlockServer, startBlockServer } from '../../packages/peer/test/block-server.js';
import { createTestNetwork, endorserTx, put, TestChain } from '../../packages/peer/test/fixtures.js';
import { freePort } from '../../packages/orderer/test/harness.js';
import { PEER_MAIN, sleep, sumMetric, waitFor } from './helpers.js';

const PEER_BIN = process.env.LOOM_PEER_BIN ?? PEER_MAIN;
const BLOCKS = Number(process.env.LOOM_GOSSIP_BLOCKS ?? 1000);
const CHANNEL = 'gossipchannel';

interface RunningPeer {
  readonly name: string;
  readonly dir: string;
  readonly port: number;
  readonly opsPort: number;
  readonly gossipPort: number;
  readonly logFile: string;
  child: ChildProcess;
}

const children: ChildProcess[] = [];
const dirs: string[] = [];
const servers: BlockServer[] = [];
const attackers: GossipNode[] = [];
afterAll(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  for (const a of attackers) await a.stop().catch(() => undefined);
  for (const s of servers) await s.close().catch(() => undefined);
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

const until = <T>(what: string, f: () => Promise<T | undefined | false>, timeoutMs: number): Promise<T> =>
  waitFor(what, f, { timeoutMs, intervalMs: 200 });

async function height(p: RunningPeer): Promise<number | undefined> {
  const r = await fetch(`http://127.0.0.1:${p.port}/v1/channels/${CHANNEL}/height`);
  return r.ok ? ((await r.json()) as { height: number }).height : undefined;
}

async function metric(p: RunningPeer, name: string, labels: Record<string, string> = {}): Promise<number> {
  return sumMetric(await (await fetch(`http://127.0.0.1:${p.opsPort}/metrics`)).text(), name, labels);
}

async function digest(p: RunningPeer): Promise<unknown> {
  const r = await fetch(`http://127.0.0.1:${p.port}/v1/channels/${CHANNEL}/digest`);
  return ((await r.json()) as { digest: unknown }).digest;
}

describe('gossip among real peer processes', () => {
  it(`a late org peer catches up ${BLOCKS} blocks from its org peer, follows pushes, refuses non-members, survives the leader's death`, async () => {
    expect(existsSync(PEER_BIN), `peer binary ${PEER_BIN} (build it, or set LOOM_PEER_BIN)`).toBe(true);
    const net = await createTestNetwork(CHANNEL);
    const peer1Identity = await net.org1.ca.issue({ cn: 'peer1.org1.example.com', role: 'peer' });
    const chain = new TestChain(net);
    const cutBlock = async (b: number): Promise<Bytes> => {
      const tx = await endorserTx(net, {
        creator: net.org1.client,
        endorsers: [net.org1.peer, net.org2.peer],
        writes: [put(`k${b % 64}`, `v${b}`)],
      });
      return chain.cut([tx.envelope]);
    };
    for (let b = 1; b <= BLOCKS; b++) await cutBlock(b);

    // Each peer has its own orderer source, so the test sees who asked the orderers for blocks.
    const source0 = await startBlockServer({ channelId: CHANNEL, blocks: chain.blocks });
    const source1 = await startBlockServer({ channelId: CHANNEL, blocks: chain.blocks });
    servers.push(source0, source1);
    const addBlock = (bytes: Bytes) => {
      source0.add(bytes);
      source1.add(bytes);
    };

    const dir = await mkdtemp(join(tmpdir(), 'loom-gossip-'));
    dirs.push(dir);
    await writeFile(join(dir, 'genesis.block'), encodeBlock(net.genesis));
    const gossipPorts = [await freePort(), await freePort()];

    const makePeer = async (
      i: number,
      identity: TestIdentity,
      source: BlockServer,
      orgLeader: 'auto' | 'false',
    ): Promise<RunningPeer> => {
      const name = `peer${i}`;
      const pdir = join(dir, name);
      await writeMspDir(join(pdir, 'msp'), net.org1.ca, identity);
      const port = await freePort();
      const opsPort = await freePort();
      const configFile = join(pdir, 'peer.yaml');
      await writeFile(
        configFile,
        JSON.stringify({
          id: `${name}.org1.example.com`,
          mspId: 'Org1MSP',
          mspDir: './msp',
          dataDir: './data',
          listen: { host: '127.0.0.1', port },
          operations: { host: '127.0.0.1', port: opsPort },
          orderers: [source.url],
          channels: [{ name: CHANNEL, genesisBlock: '../genesis.block' }],
          logLevel: 'info',
          verifyWorkers: 1,
          undefinedChaincodesUseChannelEndorsement: true,
          gossip: {
            listen: { host: '127.0.0.1', port: gossipPorts[i]! },
            bootstrap: gossipPorts.filter((_, k) => k !== i).map((p) => `127.0.0.1:${p}`),
            orgLeader,
            heartbeatMs: 1000,
          },
        }),
      );
      const logFile = join(pdir, 'peer.log');
      const fd = openSync(logFile, 'a');
      const child = spawn(process.execPath, [PEER_BIN, '--config', configFile], { stdio: ['ignore', fd, fd] });
      closeSync(fd);
      children.push(child);
      return { name, dir: pdir, port, opsPort, gossipPort: gossipPorts[i]!, logFile, child };
    };
    const logTail = async (p: RunningPeer) => (await readFile(p.logFile, 'utf8').catch(() => '')).slice(-4000);

    // 1. peer0 pulls the whole chain from the orderers as the org's leader.
    const tPeer0 = Date.now();
    const peer0 = await makePeer(0, net.org1.peer, source0, 'auto');
    try {
      await until('peer0 to commit the chain', async () => (await height(peer0)) === chain.height, 270_000);
    } catch (e) {
      console.log(await logTail(peer0));
      throw e;
    }
    expect(await metric(peer0, 'gossip_orderer_delivery_active')).toBe(1);
    expect(source0.requests.length).toBeGreaterThan(0);
    console.log(`peer0 pulled ${chain.height} blocks from the orderer source in ${Date.now() - tPeer0} ms`);

    // 2. peer1 joins late and catches up from peer0 alone.
    const peer1 = await makePeer(1, peer1Identity, source1, 'false');
    const gossipLines = async (p: RunningPeer) =>
      (await readFile(p.logFile, 'utf8').catch(() => ''))
        .split('\n')
        .filter((l) => /gossip|deliver/.test(l))
        .slice(-40)
        .join('\n');
    let leaderDiedAt = 0;
    try {
      const t0 = Date.now();
      try {
        await until('peer1 to catch up by state transfer', async () => (await height(peer1)) === chain.height, 270_000);
      } catch (e) {
        console.log(await logTail(peer1));
        throw e;
      }
      console.log(`peer1 caught up ${chain.height} blocks from peer0 in ${Date.now() - t0} ms`);
      expect(source1.requests, 'peer1 never asked the orderers for blocks').toEqual([]);
      expect(await metric(peer1, 'gossip_blocks_received_total', { source: 'state_transfer' })).toBeGreaterThanOrEqual(
        BLOCKS - 5,
      );
      expect(await metric(peer1, 'gossip_orderer_delivery_active')).toBe(0);
      expect(await digest(peer1)).toEqual(await digest(peer0));

      // 3. New blocks: peer0 from the orderers, peer1 from peer0's pushes.
      for (let b = BLOCKS + 1; b <= BLOCKS + 10; b++) {
        addBlock(await cutBlock(b));
        await sleep(100);
      }
      await until('peer1 to follow the pushes', async () => (await height(peer1)) === chain.height, 60_000);
      expect(source1.requests, 'still no orderer request from peer1').toEqual([]);
      expect(await metric(peer1, 'gossip_blocks_received_total', { source: 'push' })).toBeGreaterThan(0);
      expect(await metric(peer0, 'gossip_blocks_pushed_total')).toBeGreaterThan(0);
      expect(await digest(peer1)).toEqual(await digest(peer0));

      // 4. Non-members cannot read or inject. The next block is genuine (orderer-signed), not yet served.
      const next = await cutBlock(BLOCKS + 11);
      const h1 = chain.height - 1;
      const org3 = await createTestOrg('Org3MSP');
      const rogueCa = await createTestCa({ mspId: 'Org1MSP', name: 'rogue-ca' });
      const impostor = await rogueCa.issue({ cn: 'peer9.org1.example.com', role: 'peer' });
      const peer1Id = peerIdFromPrivateKey(
        privateKeyFromProtobuf(new Uint8Array(await readFile(join(peer1.dir, 'data', 'gossip', 'libp2p.key')))),
      ).toString();
      const rejectedBefore = await metric(peer1, 'gossip_messages_rejected_total');
      for (const [label, who] of [
        ['Org3 peer (org not in the channel)', org3.peer],
        ['Org1MSP peer certificate from an unknown CA', impostor],
      ] as const) {
        const attacker = await createGossipNode({
          host: '127.0.0.1',
          port: 0,
          privateKey: await loadOrCreateGossipKey(join(dir, `attacker-${who.cn}.key`)),
          nodeId: who.cn,
          mspId: who.mspId,
          certPem: who.certPem,
          signer: who.signer,
          bootstrap: [`127.0.0.1:${peer1.gossipPort}`],
          membership: { accepts: () => true, isMember: () => true },
          logger: (await import('@loom/common')).createLogger({ component: 'attacker', level: 'silent' }),
        });
        attackers.push(attacker);
        await sleep(1500); // its hello is tried (and refused)
        expect(attacker.peers(), `${label}: not authenticated by peer1`).toEqual([]);
        const read = attacker
          .request(peer1Id, CHANNEL, BLOCK_RANGE_PROTOCOL, encodeRangeRequest({ from: 0, count: 10 }), {
            addr: `127.0.0.1:${peer1.gossipPort}`,
            timeoutMs: 10_000,
          })
          .then(
            () => 'answered',
            (e: Error) => (e instanceof LoomError ? e.code : e.message),
          );
        expect(await read, `${label}: cannot read blocks`).not.toBe('answered');
        await attacker
          .push(peer1Id, CHANNEL, BLOCK_PUSH_PROTOCOL, next, { addr: `127.0.0.1:${peer1.gossipPort}` })
          .catch(() => undefined);
      }
      await sleep(2000);
      expect(await height(peer1), 'the injected block was not committed').toBe(h1);
      const rejected = await metric(peer1, 'gossip_messages_rejected_total');
      expect(rejected - rejectedBefore).toBeGreaterThanOrEqual(4);
      expect(await metric(peer1, 'gossip_messages_rejected_total', { reason: 'non_member' })).toBeGreaterThan(0);
      expect(await metric(peer1, 'gossip_messages_rejected_total', { reason: 'unauthenticated' })).toBeGreaterThan(0);
      // The genuine block arrives the normal way.
      addBlock(next);
      await until('peer1 to get the block from its leader', async () => (await height(peer1)) === chain.height, 60_000);
      expect(source1.requests).toEqual([]);

      // 5. The leader dies: peer1 falls back to the orderers and keeps committing.
      peer0.child.kill('SIGKILL');
      await new Promise((r) =>
        peer0.child.exitCode !== null || peer0.child.signalCode !== null ? r(null) : peer0.child.once('exit', r),
      );
      leaderDiedAt = chain.height;
      for (let b = BLOCKS + 12; b <= BLOCKS + 21; b++) {
        addBlock(await cutBlock(b));
        await sleep(100);
      }
      try {
        await until(
          'peer1 to commit after the leader died',
          async () => (await height(peer1)) === chain.height,
          60_000,
        );
      } catch (e) {
        console.log(await logTail(peer1));
        throw e;
      }
      expect(source1.requests.length, 'peer1 now pulls from the orderers itself').toBeGreaterThan(0);
      expect(source1.requests[0]!.start).toBeGreaterThanOrEqual(leaderDiedAt);
      expect(await metric(peer1, 'gossip_orderer_delivery_active')).toBe(1);
    } catch (e) {
      console.log(`peer0:\n${await gossipLines(peer0)}\npeer1:\n${await gossipLines(peer1)}`);
      throw e;
    }

    // Both ledgers verify on disk, and agree on every block peer0 had.
    peer1.child.kill('SIGTERM');
    await new Promise((r) => (peer1.child.exitCode !== null ? r(null) : peer1.child.once('exit', r)));
    const v0 = await verifyLedger(join(peer0.dir, 'data'), CHANNEL);
    const v1 = await verifyLedger(join(peer1.dir, 'data'), CHANNEL);
    expect(v0.ok && v1.ok, JSON.stringify({ v0, v1 })).toBe(true);
    expect(v0.height).toBe(leaderDiedAt);
    expect(v1.height).toBe(chain.height);
  }, 600_000);
});
