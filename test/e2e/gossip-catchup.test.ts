/**
 * A late Org1 peer catches up the whole ledger AND its private data from its org peer by gossip, on
 * real processes: `loom network up --detach` with 3 Raft orderers, Org1 (peer0, peer1), Org2 and Org3
 * (Org3 not in the `private` sample's collections), TLS and gossip on (the launcher's defaults), the
 * channel cutting one transaction per block (maxMessageCount 1, batchTimeout 10ms). Every port is the
 * default network-config's + 23000.
 *
 * 1. Right after `network up`, Org1's peer1 is stopped and its ledger and transient store deleted
 *    (its installed chaincode stays); its peer.yaml is rewritten to join the channel from the genesis
 *    block at its next start, with `orgLeader: false` (it never pulls from the orderers while its
 *    org's leader is alive).
 * 2. 1,000 transactions are submitted, pipelined, through Org1/Org2/Org3 gateways: one in eight a
 *    private write (`CreateAsset` into assetCollection, Org1 + Org2), the rest public `Tick`s. Their
 *    private data reached peer0 of Org1 and Org2 when endorsed; peer1 was down.
 * 3. peer1 starts. It must reach peer0's height, with byte-identical blocks (sha256 of every block as
 *    served by each peer), the same ledger digest (block and state accumulators), and every private
 *    value readable by an evaluate on peer1.
 * 4. How it got there: every block after its genesis block was committed from gossip (the gossip
 *    counters add up to its height - 1, so none came from an orderer deliver stream; its gossip log
 *    never says it pulled from the orderers); every private write was committed with its block from
 *    data received by gossip (`gossip_private_data_committed_total` = the writes, nothing reconciled
 *    after a commit), and peer0 served private data by gossip.
 *
 * LOOM_CATCHUP_BLOCKS overrides the 1,000 transactions.
 */
import type { ChildProcess } from 'node:child_process';
import { createHash, randomInt } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Gateway } from '@loom/client';
import { loadNetworkConfig, type NetworkConfig } from '@loom/common';
import { parse as parseYaml, stringify as toYaml } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findOrg, networkTlsRoots } from '../../packages/cli/src/network/gateway.js';
import { layout } from '../../packages/cli/src/network/layout.js';
import {
  Gateways,
  getOk as get,
  LaunchedNetwork,
  LOOM,
  PRIVATE_CHAINCODE,
  peerHeight,
  recordedPid,
  startPeer,
  stopPid,
  stopStarted,
  sumMetric,
  waitFor,
  withThreeOrgs,
  writeNetworkConfig,
} from './helpers.js';

const work = mkdtempSync(join(tmpdir(), 'loom-catchup-'));
const OFFSET = 23000;
const CHANNEL = 'mychannel';
const CC = 'private';
const TXS = Number(process.env.LOOM_CATCHUP_BLOCKS ?? 1000);
const PRIVATE_EVERY = 8;
const CONCURRENCY = 24;

/** The default network-config + Org1 peer1 + Org3, one transaction per block, every port + OFFSET. */
const launched = new LaunchedNetwork(
  writeNetworkConfig(join(work, 'network.yaml'), {
    offset: OFFSET,
    dataDir: join(work, 'data'),
    name: 'loomcatchup',
    edit: (text) =>
      withThreeOrgs(text)
        .replace('batchTimeout: 250ms', 'batchTimeout: 10ms')
        .replace('maxMessageCount: 500', 'maxMessageCount: 1'),
    chaincodes: [{ ...PRIVATE_CHAINCODE, channel: CHANNEL }],
  }),
  join(work, 'data'),
);

const dec = new TextDecoder();
const sha256Hex = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

const until = <T>(what: string, f: () => Promise<T | undefined>, timeoutMs: number): Promise<T> =>
  waitFor(what, f, { timeoutMs, intervalMs: 500 });

let net: NetworkConfig;
let tlsRoots: string[];
const gateways = new Gateways();
const started: ChildProcess[] = [];

const peerOf = (mspId: string, name: string) => findOrg(net, mspId).peers.find((p) => p.name === name)!;
const peerDir = (mspId: string, name: string) =>
  layout.nodeDir(net, findOrg(net, mspId), 'peers', peerOf(mspId, name).fqdn);
const apiUrl = (mspId: string, name: string) => `https://127.0.0.1:${peerOf(mspId, name).port}`;
const opsUrl = (mspId: string, name: string) => `https://127.0.0.1:${peerOf(mspId, name).operationsPort}`;

const getOk = (url: string) => get(url, tlsRoots);

async function height(mspId: string, name: string): Promise<number> {
  const h = await peerHeight(apiUrl(mspId, name), tlsRoots, { channel: CHANNEL, timeoutMs: 30_000 });
  if (h === undefined) throw new Error(`${name} of ${mspId}: no height for ${CHANNEL}`);
  return h;
}

const metric = async (mspId: string, name: string, metricName: string, labels: Record<string, string> = {}) =>
  sumMetric((await getOk(`${opsUrl(mspId, name)}/metrics`)).toString(), metricName, labels);

const pidOf = (name: string) => recordedPid(net.dataDir, name);

const gw = (mspId: string, peer = 'peer0'): Promise<Gateway> => gateways.of(net, mspId, { peer });

const contract = (g: Gateway) => g.getNetwork(CHANNEL).getContract(CC);

beforeAll(async () => {
  net = await loadNetworkConfig(launched.configFile);
  await launched.up(600_000);
  tlsRoots = await networkTlsRoots(net);
}, 660_000);

afterAll(async () => {
  gateways.closeAll();
  await stopStarted(started);
  await launched.down(60_000);
  if (process.env.LOOM_KEEP_E2E !== '1') rmSync(work, { recursive: true, force: true });
  else console.log(`kept ${work}`);
}, 120_000);

describe.skipIf(!existsSync(LOOM))('gossip catch-up with private data on a 3-org Raft network', () => {
  it(`a second Org1 peer started after ${TXS} blocks catches up the ledger and its private data from its org peer`, async () => {
    // 1. Org1 peer1 leaves, with nothing of the channel left on disk.
    const fqdn1 = peerOf('Org1MSP', 'peer1').fqdn;
    const dir1 = peerDir('Org1MSP', 'peer1');
    const pid = pidOf(fqdn1);
    expect(pid).toBeDefined();
    await stopPid(pid!);
    rmSync(join(dir1, 'data', 'ledgers'), { recursive: true, force: true });
    rmSync(join(dir1, 'data', 'transientstore'), { recursive: true, force: true });
    const yamlFile = join(dir1, 'peer.yaml');
    const cfg = parseYaml(readFileSync(yamlFile, 'utf8')) as Record<string, unknown> & {
      gossip: Record<string, unknown>;
    };
    cfg.gossip.orgLeader = false;
    cfg.channels = [{ name: CHANNEL, genesisBlock: layout.genesisBlock(net, CHANNEL) }];
    writeFileSync(yamlFile, toYaml(cfg));

    // 2. TXS blocks, one in PRIVATE_EVERY a private write, pipelined.
    const org1 = contract(await gw('Org1MSP'));
    const org2 = contract(await gw('Org2MSP'));
    const org3 = contract(await gw('Org3MSP'));
    // `network up` returns once the definition committed on one peer; wait for every gateway's peer.
    for (const c of [org1, org2, org3]) {
      await until(
        'the chaincode definition on every gateway peer',
        async () => (await c.evaluate('GetAssetDetailsHash', { arguments: ['assetCollection', 'none'] })) && true,
        120_000,
      );
    }
    const start = await height('Org1MSP', 'peer0');
    const base = `a${randomInt(1e9)}`;
    const written = new Map<string, string>();
    let next = 0;
    const t0 = Date.now();
    const worker = async () => {
      for (;;) {
        const i = next++;
        if (i >= TXS) return;
        if (i % PRIVATE_EVERY === 0) {
          const id = `${base}-${i}`;
          const value = 1_000_000 + i;
          await (i % (2 * PRIVATE_EVERY) === 0 ? org1 : org2).submit('CreateAsset', {
            arguments: ['assetCollection'],
            transientData: {
              asset_properties: JSON.stringify({ ID: id, Color: 'red', Size: 1, AppraisedValue: value }),
            },
          });
          written.set(id, `{"AppraisedValue":${value},"ID":"${id}"}`);
        } else {
          await [org1, org2, org3][i % 3]!.submit('Tick', { arguments: [`${base}-${i}`] });
        }
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
    // A submit returns once its gateway's peer committed; Org1's peer0 may commit the last block a
    // moment later. Wait for it (bounded); a block really missing still fails below.
    await waitFor('Org1 peer0 to commit every block', async () => (await height('Org1MSP', 'peer0')) - start >= TXS, {
      timeoutMs: 30_000,
      intervalMs: 200,
    }).catch(() => undefined);
    const h0 = await height('Org1MSP', 'peer0');
    console.log(`${TXS} transactions in ${Date.now() - t0} ms: peer0 height ${start} -> ${h0}`);
    expect(h0 - start).toBeGreaterThanOrEqual(TXS);
    expect(written.size).toBe(Math.ceil(TXS / PRIVATE_EVERY));

    // 3. peer1 starts and catches up.
    const log1 = join(work, `${fqdn1}.late.log`);
    started.push(startPeer(yamlFile, fqdn1, log1));
    const t1 = Date.now();
    const tail = () => readFileSync(log1, 'utf8').split('\n').slice(-60).join('\n');
    try {
      await until(
        'peer1 to reach peer0 height',
        async () => ((await height('Org1MSP', 'peer1')) >= h0 ? true : undefined),
        300_000,
      );
    } catch (e) {
      console.log(tail());
      throw e;
    }
    console.log(`peer1 caught up ${h0} blocks in ${Date.now() - t1} ms`);
    const h1 = await height('Org1MSP', 'peer1');
    expect(h1).toBe(await height('Org1MSP', 'peer0'));

    for (let n = 0; n < h1; n++) {
      const [a, b] = await Promise.all([
        getOk(`${apiUrl('Org1MSP', 'peer0')}/v1/channels/${CHANNEL}/blocks/${n}`),
        getOk(`${apiUrl('Org1MSP', 'peer1')}/v1/channels/${CHANNEL}/blocks/${n}`),
      ]);
      if (sha256Hex(a) !== sha256Hex(b)) expect.fail(`block ${n} differs between peer0 and peer1`);
    }
    const digestOf = async (peer: string) =>
      (
        JSON.parse((await getOk(`${apiUrl('Org1MSP', peer)}/v1/channels/${CHANNEL}/digest`)).toString()) as {
          digest: unknown;
        }
      ).digest;
    expect(await digestOf('peer1')).toEqual(await digestOf('peer0'));

    const late = contract(await gw('Org1MSP', 'peer1'));
    for (const [id, want] of written) {
      expect(dec.decode(await late.evaluate('ReadAssetDetails', { arguments: ['assetCollection', id] }))).toBe(want);
    }

    // 4. All of it by gossip from its org peer.
    const fromPush = await metric('Org1MSP', 'peer1', 'gossip_blocks_received_total', { source: 'push' });
    const fromTransfer = await metric('Org1MSP', 'peer1', 'gossip_blocks_received_total', {
      source: 'state_transfer',
    });
    console.log(`peer1: ${fromTransfer} blocks by state transfer, ${fromPush} by push`);
    expect(fromTransfer).toBeGreaterThanOrEqual(TXS);
    expect(fromPush + fromTransfer, 'every block but the genesis block came by gossip').toBe(h1 - 1);
    expect(await metric('Org1MSP', 'peer1', 'gossip_orderer_delivery_active')).toBe(0);
    const text = readFileSync(log1, 'utf8');
    expect(text).not.toMatch(/pulling blocks from the orderers/);
    // Every private write came with its block from gossip: from the peer that sent the block or,
    // when that one holds none of it (state transfer falls back to another org's peer while no peer
    // of its own org is heard), from another peer asked before the commit. Nothing was reconciled.
    const byGossip = await metric('Org1MSP', 'peer1', 'gossip_private_data_committed_total');
    const reconciled = (text.match(/private data missing at commit/g) ?? []).length;
    // Why a block's private data did not come by gossip, should it happen.
    for (const line of text
      .split('\n')
      .filter((l) => /not received by gossip|missing at commit/.test(l))
      .slice(0, 5)) {
      console.log(`peer1: ${line}`);
    }
    console.log(
      `peer1: ${byGossip} of ${written.size} private writes with their blocks by gossip; ${reconciled} blocks reconciled`,
    );
    expect(byGossip, 'private writes committed with their blocks from gossip').toBe(written.size);
    expect(reconciled).toBe(0);
    expect(await metric('Org1MSP', 'peer0', 'gossip_private_data_served_total')).toBeGreaterThan(0);
    // Org3 is no member of the collection: it never served (nor could it) any of it.
    expect(await metric('Org3MSP', 'peer0', 'gossip_private_data_served_total')).toBe(0);
  }, 900_000);
});
