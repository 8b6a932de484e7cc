/**
 * Kill loop: a real peer process (LOOM_PEER_BIN, default packages/peer/dist/main.js) pulls a
 * stream of signed blocks from a deliver-compatible block server and is killed with SIGKILL at
 * random moments, at least 20 times. After every kill its ledger on disk verifies (hash chain,
 * data hashes, orderer signatures, accumulator), its state savepoint equals its block height (the
 * single-batch commit), and the height never goes back. After the last restart it catches up, and
 * its state, block store and accumulator equal those of a clean in-process replay of the same blocks.
 *
 * Seeded: set LOOM_KILL_SEED to replay a failing schedule (the seed is printed).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, openSync, closeSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Bytes, encodeBlock, toHex, type Version } from '@loom/common';
import { writeMspDir } from '@loom/common/testing/index';
import { afterAll, describe, expect, it } from 'vitest';
import { channelLedgerPath, openChannelLedger } from '../../packages/peer/src/committer/ledger.js';
import { verifyLedger } from '../../packages/peer/src/committer/verify.js';
import { openLedgerKV, openLedgerStores } from '../../packages/peer/src/ledger/ledger-stores.js';
import { startBlockServer } from '../../packages/peer/test/block-server.js';
import { createTestNetwork, del, endorserTx, put, TestChain } from '../../packages/peer/test/fixtures.js';
import { freePort } from '../../packages/orderer/test/harness.js';
import { PEER_MAIN, sleep } from './helpers.js';

const PEER_BIN = process.env.LOOM_PEER_BIN ?? PEER_MAIN;
const BLOCKS = Number(process.env.LOOM_KILL_BLOCKS ?? 400);
const KILLS = Number(process.env.LOOM_KILL_COUNT ?? 22);
const TXS_PER_BLOCK = 10;
const KEYS = 100;

/** mulberry32: a small seeded PRNG so a schedule can be replayed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Height, savepoint and verification of a stopped peer's ledger, read straight from disk. */
async function inspect(dataDir: string, channelId: string) {
  const kv = await openLedgerKV(channelLedgerPath(dataDir, channelId));
  const stores = await openLedgerStores(kv);
  const height = await stores.blocks.height();
  const savepoint = await stores.state.height();
  await kv.close();
  const verification = await verifyLedger(dataDir, channelId);
  return { height, savepoint, verification };
}

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

describe('peer kill -9 loop', () => {
  it(`survives ${KILLS} SIGKILLs while committing ${BLOCKS} blocks and ends equal to a clean replay`, async () => {
    expect(existsSync(PEER_BIN), `peer binary ${PEER_BIN} (build it, or set LOOM_PEER_BIN)`).toBe(true);
    const seed = Number(process.env.LOOM_KILL_SEED ?? Math.floor(Math.random() * 2 ** 31));
    console.log(`peer-kill seed: ${seed} (LOOM_KILL_SEED=${seed} replays the schedule)`);
    const rand = prng(seed);

    // The blocks: each transaction reads its key at the version current when it was built and
    // writes it; each block also carries a stale read (MVCC conflict) and, every 7th, a delete.
    const net = await createTestNetwork('killchannel');
    const chain = new TestChain(net);
    const versions = new Map<string, Version | null>();
    const endorsers = [net.org1.peer, net.org2.peer];
    for (let b = 1; b <= BLOCKS; b++) {
      const envs: Bytes[] = [];
      const first = `k${(b * TXS_PER_BLOCK) % KEYS}`;
      const staleRead = versions.get(first) ?? null;
      for (let i = 0; i < TXS_PER_BLOCK; i++) {
        const key = `k${(b * TXS_PER_BLOCK + i) % KEYS}`;
        const isDelete = b % 7 === 0 && i === TXS_PER_BLOCK - 1;
        const tx = await endorserTx(net, {
          creator: i % 2 ? net.org1.client : net.org2.client,
          endorsers,
          reads: [{ key, version: versions.get(key) ?? null }],
          writes: [isDelete ? del(key) : put(key, `${b}-${i}`)],
        });
        envs.push(tx.envelope);
        versions.set(key, isDelete ? null : { blockNum: b, txNum: i });
      }
      const stale = await endorserTx(net, {
        creator: net.org1.client,
        endorsers,
        reads: [{ key: first, version: staleRead }],
        writes: [put(first, 'stale')],
      });
      envs.push(stale.envelope);
      await chain.cut(envs);
    }
    const total = chain.height;

    const dir = await mkdtemp(join(tmpdir(), 'loom-peer-kill-'));
    dirs.push(dir);
    const server = await startBlockServer({ channelId: net.channelId, blocks: chain.blocks, delayMs: 40 });
    try {
      await writeMspDir(join(dir, 'msp'), net.org1.ca, net.org1.peer);
      await writeFile(join(dir, 'genesis.block'), encodeBlock(net.genesis));
      const port = await freePort();
      const dataDir = join(dir, 'data');
      const configFile = join(dir, 'peer.yaml');
      await writeFile(
        configFile,
        JSON.stringify({
          id: 'peer0.org1',
          mspId: 'Org1MSP',
          mspDir: './msp',
          dataDir: './data',
          listen: { host: '127.0.0.1', port },
          operations: { host: '127.0.0.1', port: 0 },
          orderers: [server.url],
          channels: [{ name: net.channelId, genesisBlock: './genesis.block' }],
          logLevel: 'warn',
          verifyWorkers: 1,
          // Hand-made transactions of a chaincode with no _lifecycle definition, as the replay validates them.
          undefinedChaincodesUseChannelEndorsement: true,
        }),
      );
      const logFile = join(dir, 'peer.log');
      const startProcess = (): ChildProcess => {
        const fd = openSync(logFile, 'a');
        const child = spawn(process.execPath, [PEER_BIN, '--config', configFile], { stdio: ['ignore', fd, fd] });
        closeSync(fd);
        return child;
      };
      const exited = (child: ChildProcess) =>
        new Promise<void>((r) =>
          child.exitCode !== null || child.signalCode !== null ? r() : child.once('exit', () => r()),
        );

      const heightNow = async (): Promise<number | undefined> => {
        try {
          const r = await fetch(`http://127.0.0.1:${port}/v1/channels/${net.channelId}/height`);
          return r.ok ? ((await r.json()) as { height: number }).height : undefined;
        } catch {
          return undefined;
        }
      };
      const untilReady = async (child: ChildProcess) => {
        const end = Date.now() + 30_000;
        while (Date.now() < end && child.exitCode === null && (await heightNow()) === undefined) await sleep(25);
      };

      let lastHeight = 0;
      let midStreamKills = 0;
      const heights: number[] = [];
      for (let k = 0; k < KILLS; k++) {
        const child = startProcess();
        // Random moment: one kill in four lands during start-up (opening, recovery); the others a
        // random time after the peer answers, while it is pulling and committing blocks. The server
        // sends at most 25 blocks/s, so a life commits at most ~40 blocks however fast the machine:
        // 22 lives cannot finish the 400 blocks, and most kills land mid-stream.
        if (rand() < 0.25) await sleep(Math.floor(rand() * 1500));
        else {
          await untilReady(child);
          await sleep(Math.floor(rand() * 1500));
        }
        child.kill('SIGKILL');
        await exited(child);
        const { height, savepoint, verification } = await inspect(dataDir, net.channelId);
        heights.push(height);
        if (!verification.ok)
          console.log(`after kill ${k}:`, verification, await readFile(logFile, 'utf8').catch(() => ''));
        expect(verification.ok, `ledger verifies after kill ${k}`).toBe(true);
        expect(savepoint, `state at a block boundary after kill ${k}`).toBe(height);
        expect(height).toBeGreaterThanOrEqual(lastHeight);
        if (height < total) midStreamKills++;
        lastHeight = height;
      }
      console.log(
        `heights after each kill: ${heights.join(' ')} (of ${total}); kills before the end: ${midStreamKills}`,
      );
      expect(midStreamKills, 'kills must land while blocks were still streaming').toBeGreaterThanOrEqual(
        Math.min(10, KILLS),
      );

      // The last life: catch up fully, then stop cleanly.
      const child = startProcess();
      const catchUpFrom = Date.now();
      const deadline = Date.now() + 300_000;
      let height = 0;
      while (Date.now() < deadline) {
        height = (await heightNow()) ?? height;
        if (height === total) break;
        await sleep(200);
      }
      console.log(`last life: height ${lastHeight} → ${height} in ${((Date.now() - catchUpFrom) / 1000).toFixed(1)} s`);
      child.kill('SIGTERM');
      await exited(child);
      expect(height).toBe(total);

      // A clean replay of the same blocks, in process.
      const replayDir = join(dir, 'replay');
      const replay = await openChannelLedger({ dataDir: replayDir, channelId: net.channelId });
      for (const b of chain.blocks) await replay.commitBlock(b);
      const expected = {
        state: toHex(await replay.stateHash()),
        root: toHex(replay.digest().root),
        height: replay.height(),
      };
      await replay.close();
      const killed = await openChannelLedger({ dataDir, channelId: net.channelId });
      const actual = {
        state: toHex(await killed.stateHash()),
        root: toHex(killed.digest().root),
        height: killed.height(),
      };
      await killed.close();
      expect(actual).toEqual(expected);
      expect(await verifyLedger(dataDir, net.channelId)).toMatchObject({ ok: true, height: total });
    } finally {
      await server.close();
    }
  });
});
