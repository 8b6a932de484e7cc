/**
 * Private data collections on real processes: `loom network up --detach` with three organizations
 * (Org1 with two peers, Org2, Org3; the `private` sample chaincode whose collections hold Org1 and
 * Org2 only), TLS on, ports of the default network-config + 3000 plus Org1's second peer and Org3.
 *
 * - a private value written by Org1 is nowhere in the Org3 peer's data directory (raw level files
 *   grepped) while Org3's ledger holds its hash; an Org3 client reading the collection gets an access
 *   error; Org2 reads it;
 * - an Org2 peer down during the commit reconciles the value after its restart;
 * - `blockToLive: 3` data is gone after the 4th block after its own, on every member, history included;
 *   `purgePrivateData` likewise;
 * - an endorsement whose collection's `requiredPeerCount` cannot be met fails with
 *   PRIVDATA_DISSEMINATION_FAILED naming the counts.
 */
import type { ChildProcess } from 'node:child_process';
import { createHash, randomInt } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Gateway } from '@loom/client';
import { loadNetworkConfig, type NetworkConfig } from '@loom/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findOrg } from '../../packages/cli/src/network/gateway.js';
import { layout } from '../../packages/cli/src/network/layout.js';
import { channelLedgerPath } from '../../packages/peer/src/committer/ledger.js';
import { openLedgerKV, openLedgerStores } from '../../packages/peer/src/ledger/ledger-stores.js';
import { PrivateDataStore } from '../../packages/peer/src/privdata/private-store.js';
import {
  Gateways,
  gatewayHeight,
  LaunchedNetwork,
  LOOM,
  PRIVATE_CHAINCODE,
  recordedPid,
  startPeer,
  stopPid,
  stopStarted,
  waitFor,
  waitForHeight,
  withThreeOrgs,
  writeNetworkConfig,
} from './helpers.js';

const work = mkdtempSync(join(tmpdir(), 'loom-pvt-'));
const OFFSET = 3000;
const CHANNEL = 'mychannel';
const CC = 'private';

/** The default network-config + Org1 peer1 + Org3 (not in the collections), every port + OFFSET. */
const launched = new LaunchedNetwork(
  writeNetworkConfig(join(work, 'network.yaml'), {
    offset: OFFSET,
    dataDir: join(work, 'data'),
    name: 'loompvt',
    edit: withThreeOrgs,
    // Only the private sample chaincode, any single org's peer endorses; the collections say who stores.
    chaincodes: [{ ...PRIVATE_CHAINCODE, channel: CHANNEL }],
  }),
  join(work, 'data'),
);

const dec = new TextDecoder();

/** Every file under `dir` whose raw bytes contain `needle`. */
function filesContaining(dir: string, needle: string): string[] {
  const out: string[] = [];
  const n = Buffer.from(needle);
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      const st = statSync(p, { throwIfNoEntry: false });
      if (!st) continue;
      if (st.isDirectory()) walk(p);
      else if (st.isFile() && readFileSync(p).includes(n)) out.push(p);
    }
  };
  walk(dir);
  return out;
}

const until = <T>(what: string, f: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> =>
  waitFor(what, f, { timeoutMs, intervalMs: 500 });

let net: NetworkConfig;
const gateways = new Gateways();
const restarted: ChildProcess[] = [];

const peerDir = (mspId: string, peer: string) => {
  const org = findOrg(net, mspId);
  const p = org.peers.find((x) => x.name === peer)!;
  return layout.nodeDir(net, org, 'peers', p.fqdn);
};

const gw = (mspId: string, peer = 'peer0'): Promise<Gateway> => gateways.of(net, mspId, { peer });

const contract = (g: Gateway) => g.getNetwork(CHANNEL).getContract(CC);

/** Waits until the peer behind `g` has committed as many blocks as the one behind `ahead` has now. */
async function caughtUp(g: Gateway, ahead: Gateway, what: string): Promise<void> {
  await waitForHeight(what, () => gatewayHeight(g, CHANNEL), await gatewayHeight(ahead, CHANNEL));
}

function assetProps(id: string, value: number) {
  return { asset_properties: JSON.stringify({ ID: id, Color: 'blue', Size: 3, AppraisedValue: value }) };
}

const details = (id: string, value: number) => `{"AppraisedValue":${value},"ID":"${id}"}`;
const sha256Hex = (s: string) => createHash('sha256').update(s).digest('hex');

async function readDetails(g: Gateway, coll: string, id: string): Promise<string> {
  return dec.decode(await contract(g).evaluate('ReadAssetDetails', { arguments: [coll, id] }));
}

async function errorOf(p: Promise<unknown>): Promise<{ code: string; message: string; all: string }> {
  try {
    await p;
  } catch (e) {
    const err = e as { code?: string; message: string; details?: unknown };
    return {
      code: err.code ?? '',
      message: err.message,
      all: `${err.code} ${err.message} ${JSON.stringify(err.details ?? {})}`,
    };
  }
  throw new Error('expected an error');
}

const pidOf = (name: string) => recordedPid(net.dataDir, name);

/** A peer started from its launcher-written peer.yaml, in its own process group. */
function startPeerProcess(dir: string, name: string): ChildProcess {
  const child = startPeer(join(dir, 'peer.yaml'), name, join(work, `${name}.restarted.log`));
  restarted.push(child);
  return child;
}

beforeAll(async () => {
  net = await loadNetworkConfig(launched.configFile);
  await launched.up(600_000, [CC]);
}, 660_000);

afterAll(async () => {
  gateways.closeAll();
  // A clean stop ends the peer's chaincode processes too; then the whole group, to be sure.
  await stopStarted(restarted);
  await launched.down(60_000);
  rmSync(work, { recursive: true, force: true });
}, 120_000);

describe.skipIf(!existsSync(LOOM))('private data on a 3-org network (Org3 not in the collection)', () => {
  const id = `asset-${randomInt(1e9)}`;
  const value = 700_000_000 + randomInt(99_999_999);

  it('members store the value, Org3 only its hash; Org3 is refused the value', async () => {
    const org1 = await gw('Org1MSP');
    await contract(org1).submit('CreateAsset', {
      arguments: ['assetCollection'],
      transientData: assetProps(id, value),
    });

    const org2 = await gw('Org2MSP');
    expect(await until('Org2 reads the details', () => readDetails(org2, 'assetCollection', id))).toBe(
      details(id, value),
    );
    const org1b = await gw('Org1MSP', 'peer1');
    expect(await until('Org1 peer1 reads the details', () => readDetails(org1b, 'assetCollection', id))).toBe(
      details(id, value),
    );

    const org3 = await gw('Org3MSP');
    const hash = await until('Org3 has the hash', async () => {
      const h = dec.decode(
        await contract(org3).evaluate('GetAssetDetailsHash', { arguments: ['assetCollection', id] }),
      );
      return h === '' ? undefined : h;
    });
    expect(hash).toBe(sha256Hex(details(id, value)));

    const denied = await errorOf(readDetails(org3, 'assetCollection', id));
    expect(denied.all).toMatch(/PRIVDATA_ACCESS_DENIED|PRIVDATA_NOT_A_MEMBER/);

    // The plaintext is on the members' disks (positive control for the search) and nowhere on Org3's.
    expect(filesContaining(join(peerDir('Org1MSP', 'peer0'), 'data'), String(value)).length).toBeGreaterThan(0);
    expect(filesContaining(join(peerDir('Org3MSP', 'peer0'), 'data'), String(value))).toEqual([]);
  });

  it('an Org2 peer down during the commit reconciles the value after its restart', async () => {
    const pid = pidOf('peer0.org2.example.com');
    expect(pid).toBeDefined();
    await stopPid(pid!);
    const id2 = `${id}-late`;
    const value2 = value + 1;
    const org1 = await gw('Org1MSP');
    await contract(org1).submit('CreateAsset', {
      arguments: ['assetCollection'],
      transientData: assetProps(id2, value2),
    });
    startPeerProcess(peerDir('Org2MSP', 'peer0'), 'peer0.org2.example.com');
    const org2 = await gw('Org2MSP');
    expect(await until('Org2 reconciles', () => readDetails(org2, 'assetCollection', id2), 120_000)).toBe(
      details(id2, value2),
    );
  });

  it('blockToLive 3: gone after its 4th following block on every member, history included; purge likewise', async () => {
    const org1 = await gw('Org1MSP');
    const org2 = await gw('Org2MSP');
    const c1 = contract(org1);
    const idS = `${id}-short`;
    const valueS = value + 2;
    await c1.submit('CreateAsset', { arguments: ['shortLivedCollection'], transientData: assetProps(idS, valueS) });
    await c1.submit('UpdateAssetDetails', {
      arguments: ['shortLivedCollection'],
      transientData: assetProps(idS, valueS + 1),
    });
    // Written at blocks N and N+1; N+1's value lives through N+4 and is purged when N+5 commits.
    // Org2's peer may commit the update a moment after Org1's (the submit waited on Org1's peer).
    const wantS = details(idS, valueS + 1);
    expect(
      await until('Org2 has the short-lived value', async () => {
        const v = await readDetails(org2, 'shortLivedCollection', idS);
        return v === wantS ? v : undefined;
      }),
    ).toBe(wantS);
    for (let i = 0; i < 3; i++) await c1.submit('Tick', { arguments: [`${idS}-${i}`] });
    // Three blocks after the last write: still there.
    expect(await readDetails(org1, 'shortLivedCollection', idS)).toBe(details(idS, valueS + 1));
    await c1.submit('Tick', { arguments: [`${idS}-3`] });
    for (const g of [org1, org2, await gw('Org1MSP', 'peer1')]) {
      await until('expired on every member', async () => {
        const e = await errorOf(readDetails(g, 'shortLivedCollection', idS));
        return /no private details/.test(e.all) ? true : undefined;
      });
    }
    const org3 = await gw('Org3MSP');
    // Org3's peer commits on its own: the hash is gone once it has the blocks Org1's peer has.
    await caughtUp(org3, org1, 'Org3 at the height of Org1');
    expect(
      dec.decode(await contract(org3).evaluate('GetAssetDetailsHash', { arguments: ['shortLivedCollection', idS] })),
    ).toBe('');

    // purgePrivateData: current value and history removed on every member.
    const idP = `${id}-purge`;
    const valueP = value + 10;
    await c1.submit('CreateAsset', { arguments: ['assetCollection'], transientData: assetProps(idP, valueP) });
    await c1.submit('UpdateAssetDetails', {
      arguments: ['assetCollection'],
      transientData: assetProps(idP, valueP + 1),
    });
    const wantP = details(idP, valueP + 1);
    expect(
      await until('Org2 has the value to purge', async () => {
        const v = await readDetails(org2, 'assetCollection', idP);
        return v === wantP ? v : undefined;
      }),
    ).toBe(wantP);
    await c1.submit('PurgeAssetDetails', { arguments: ['assetCollection', idP] });
    // Every member, Org1's peer1 too: its store on disk is inspected below.
    for (const g of [org1, org2, await gw('Org1MSP', 'peer1')]) {
      await until('purged on every member', async () => {
        const e = await errorOf(readDetails(g, 'assetCollection', idP));
        return /no private details/.test(e.all) ? true : undefined;
      });
    }

    // History: stop the members and look into their private stores and state on disk.
    const members: [string, string, string][] = [
      ['Org1MSP', 'peer0', 'peer0.org1.example.com'],
      ['Org1MSP', 'peer1', 'peer1.org1.example.com'],
    ];
    for (const [mspId, peer, name] of members) {
      const pid = pidOf(name);
      if (pid) await stopPid(pid);
      const kv = await openLedgerKV(channelLedgerPath(join(peerDir(mspId, peer), 'data'), CHANNEL));
      try {
        const stores = await openLedgerStores(kv);
        const store = new PrivateDataStore(kv.sublevel('pvt'), stores.state);
        expect(await store.history(CC, 'shortLivedCollection', idS)).toEqual([]);
        expect(await store.history(CC, 'assetCollection', idP)).toEqual([]);
        // The long-lived value is still there, with its history (the store really keeps history).
        expect((await store.history(CC, 'assetCollection', id)).length).toBe(1);
        const live: string[] = [];
        for await (const [, v] of kv.iterate()) {
          const s = Buffer.from(v).toString('latin1');
          for (const x of [valueS, valueS + 1, valueP, valueP + 1]) if (s.includes(String(x))) live.push(String(x));
        }
        expect(live).toEqual([]);
      } finally {
        await kv.close();
      }
    }
  });

  it('an endorsement whose requiredPeerCount cannot be met fails with PRIVDATA_DISSEMINATION_FAILED', async () => {
    const org2 = await gw('Org2MSP');
    const e = await errorOf(
      contract(org2).submit('CreateAsset', {
        arguments: ['unreachableCollection'],
        transientData: assetProps(`${id}-nope`, value + 20),
      }),
    );
    expect(e.all).toMatch(/PRIVDATA_DISSEMINATION_FAILED/);
    expect(e.all).toMatch(/required 9/);
  });
});
