/**
 * The containerized network, from the host: run by `npm run test:compose`
 * (scripts/docker/test-compose.sh), which builds the image and brings the generated
 * docker-compose.yml up first, and takes it down after.
 *
 * A client on the host, holding the User1@org1 identity the setup container enrolled, broadcasts
 * signed transactions to the orderers' published ports and reads them back through deliver with
 * hash-chain, orderer-signature and Merkle checks; then the Raft leader's container is stopped
 * (transactions still commit) and started again (it catches up to the others' height).
 *
 * The peers run in containers too, with `basic` deployed by the compose file's deploy service
 * (installed by each peer container on loopback, approved by both orgs, committed): the client SDK
 * on the host submits through Org1's peer (published port) and reads on Org2's; then Org2's peer
 * container is killed and started again: its ledger and installed chaincode are on its volume,
 * and it catches up with what was committed meanwhile.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { connect, type Gateway, signers } from '@loom/client';
import { loadMspFromDir, loadNetworkConfig, type NetworkConfig } from '@loom/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { caService, deployService, setupService } from '../../packages/cli/src/network/compose.js';
import { loadIdentity } from '../../packages/cli/src/network/gateway.js';
import { allOrgs, layout } from '../../packages/cli/src/network/layout.js';
import {
  broadcast,
  type Client,
  deliver,
  docker,
  eventually,
  type Orderer,
  raftView,
  transaction,
  verifyChain,
} from './helpers.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const configFile = resolve(root, process.env.LOOM_COMPOSE_CONFIG ?? 'network-config/default.yaml');
const work = mkdtempSync(join(tmpdir(), 'loom-compose-'));

let net: NetworkConfig;
let channel: string;
let client: Client;
let orderers: readonly Orderer[];
let stopped: Orderer | undefined;
let stoppedPeer: string | undefined;
let local: NetworkConfig;
const gateways: Gateway[] = [];
const dec = new TextDecoder();

/** A client SDK gateway as User1 of organization `i`, on its first peer's published port. */
async function gatewayOf(i: number): Promise<Gateway> {
  const org = local.organizations[i]!;
  const id = await loadIdentity(local, org, 'User1');
  const g = connect({
    endpoint: `${local.tls.enabled ? 'https' : 'http'}://127.0.0.1:${org.peers[0]!.port}`,
    identity: { mspId: id.mspId, credentials: new TextEncoder().encode(id.certPem) },
    signer: signers.newPrivateKeySigner(id.keyPem),
    ...(local.tls.enabled ? { tls: { rootCerts: client.tlsRoots } } : {}),
    commitStatusOptions: { timeoutMs: 90_000 },
    endorseOptions: { timeoutMs: 90_000 },
    evaluateOptions: { timeoutMs: 60_000 },
    submitOptions: { timeoutMs: 60_000 },
  });
  gateways.push(g);
  return g;
}
const basic = (g: Gateway) => g.getNetwork(channel).getContract('basic');

async function leaderOf(among: readonly Orderer[]): Promise<Orderer> {
  return eventually(
    `a single Raft leader for ${channel} among ${among.map((o) => o.fqdn).join(', ')}`,
    60_000,
    async () => {
      const views = await Promise.all(among.map((o) => raftView(o, channel)));
      const leaders = among.filter((_, i) => views[i]?.leader);
      return leaders.length === 1 ? leaders[0] : undefined;
    },
  );
}

beforeAll(async () => {
  net = await loadNetworkConfig(configFile);
  channel = net.channels[0]!.name;
  orderers = net.ordererOrganization.orderers;
  // The crypto material lives in the network's data volume; the setup container (exited) still
  // has it mounted, so copy it out of there.
  const data = join(work, 'data');
  docker(['cp', `${net.name}-${setupService}:/var/loom/data`, data]);
  local = { ...net, dataDir: data };
  const org1 = net.organizations[0]!;
  const msp = await loadMspFromDir(join(layout.userDir(local, org1, 'User1'), 'msp'), org1.mspId);
  if (!msp.signingIdentity) throw new Error('User1 MSP folder from the setup container holds no signing identity');
  client = {
    mspId: org1.mspId,
    certPem: msp.signingIdentity.certPem,
    privateKey: msp.signingIdentity.privateKey,
    tlsRoots: allOrgs(local).map((o) => readFileSync(join(layout.caDir(local, o), 'data', 'tlsca-cert.pem'), 'utf8')),
  };
});

afterAll(() => {
  for (const g of gateways) g.close();
  // Leave the network as we found it for the script's `down`, even when a test failed midway.
  if (stoppedPeer) {
    try {
      docker(['start', stoppedPeer]);
    } catch {
      // the script tears everything down anyway
    }
  }
  if (stopped) {
    try {
      docker(['start', stopped.fqdn]);
    } catch {
      // the script tears everything down anyway
    }
  }
  rmSync(work, { recursive: true, force: true });
});

describe('containerized network (docker compose)', () => {
  it('every CA and orderer container is running and healthy', () => {
    for (const name of [...allOrgs(net).map(caService), ...orderers.map((o) => o.fqdn)]) {
      const state = docker(['inspect', '--format', '{{.State.Status}} {{.State.Health.Status}}', name]).trim();
      expect(state, name).toBe('running healthy');
    }
  });

  it('orders a signed transaction and reads it back via deliver from another orderer, verified', async () => {
    const via = orderers[1] ?? orderers[0]!;
    const from = orderers[2] ?? orderers[0]!;
    const tx = transaction(client, channel, 'compose-asset-1');
    const ack = await broadcast(net, via, channel, tx.envelope, client.tlsRoots);
    expect(ack.blockNumber).toBeGreaterThan(0);
    const blocks = await deliver(net, from, channel, client, 0, ack.blockNumber);
    expect(blocks).toHaveLength(ack.blockNumber + 1);
    const signers = await verifyChain(blocks, net.ordererOrganization.mspId, tx.envelope, ack.blockNumber);
    expect(signers.length).toBeGreaterThan(0);
  });

  it('keeps committing after the Raft leader container is stopped', async () => {
    const leader = await leaderOf(orderers);
    docker(['stop', '--time', '10', leader.fqdn]);
    stopped = leader;
    const rest = orderers.filter((o) => o !== leader);
    if (rest.length === 0) return; // a single orderer cannot survive its own loss
    const newLeader = await leaderOf(rest);
    expect(newLeader).not.toBe(leader);
    const via = rest[0]!;
    const from = rest[rest.length - 1]!;
    for (let i = 0; i < 3; i++) {
      const tx = transaction(client, channel, `after-leader-stop-${i}`);
      const ack = await broadcast(net, via, channel, tx.envelope, client.tlsRoots, 90_000);
      const blocks = await deliver(net, from, channel, client, 0, ack.blockNumber);
      await verifyChain(blocks, net.ordererOrganization.mspId, tx.envelope, ack.blockNumber);
    }
  });

  it('the restarted orderer catches up to the same height and the same blocks', async () => {
    if (!stopped) throw new Error('no orderer was stopped by the previous test');
    const back = stopped;
    docker(['start', back.fqdn]);
    stopped = undefined;
    await eventually(`${back.fqdn} healthy again`, 90_000, async () => {
      const s = docker(['inspect', '--format', '{{.State.Health.Status}}', back.fqdn]).trim();
      return s === 'healthy' ? true : undefined;
    });
    // One more transaction with everyone up, then all heights must agree.
    const tx = transaction(client, channel, 'after-restart');
    const ack = await broadcast(net, back, channel, tx.envelope, client.tlsRoots, 90_000);
    const height = await eventually('every orderer at the same height', 90_000, async () => {
      const views = await Promise.all(orderers.map((o) => raftView(o, channel)));
      const hs = views.map((v) => v?.height);
      return hs.every((h) => h !== undefined && h === hs[0] && h > ack.blockNumber) ? hs[0] : undefined;
    });
    const mine = await deliver(net, back, channel, client, 0, height - 1);
    const other = await deliver(net, orderers.find((o) => o !== back) ?? back, channel, client, 0, height - 1);
    expect(mine).toHaveLength(height);
    await verifyChain(mine, net.ordererOrganization.mspId, tx.envelope, ack.blockNumber);
    expect(mine.map((b) => Buffer.from(b.header).toString('hex'))).toEqual(
      other.map((b) => Buffer.from(b.header).toString('hex')),
    );
  });

  it('every peer container is healthy and the deploy service committed basic', () => {
    for (const p of net.organizations.flatMap((o) => o.peers)) {
      const state = docker(['inspect', '--format', '{{.State.Status}} {{.State.Health.Status}}', p.fqdn]).trim();
      expect(state, p.fqdn).toBe('running healthy');
    }
    const deploy = docker([
      'inspect',
      '--format',
      '{{.State.Status}} {{.State.ExitCode}}',
      `${net.name}-${deployService}`,
    ]);
    expect(deploy.trim()).toBe('exited 0');
    const logs = docker(['logs', `${net.name}-${deployService}`]);
    expect(logs).toMatch(/chaincode basic: definition 1\.0 sequence 1 committed on mychannel/);
  });

  it('the client SDK on the host submits through Org1 peer container and reads on Org2', async () => {
    const org1 = await gatewayOf(0);
    const org2 = await gatewayOf(1);
    const commit = await basic(org1).submitAsync('CreateAsset', {
      arguments: ['docker-asset-1', 'teal', '3', 'Ines', '700'],
    });
    const status = await commit.getStatus();
    expect(status).toMatchObject({ successful: true, codeName: 'VALID' });
    const asset = await eventually('docker-asset-1 readable on Org2 peer', 60_000, async () => {
      try {
        return JSON.parse(dec.decode(await basic(org2).evaluateTransaction('ReadAsset', 'docker-asset-1')));
      } catch {
        return undefined;
      }
    });
    expect(asset).toMatchObject({ ID: 'docker-asset-1', Color: 'teal', Size: 3, Owner: 'Ines', AppraisedValue: 700 });
    // A chaincode error reaches the host client with its code.
    await expect(basic(org1).evaluateTransaction('ReadAsset', 'no-such-asset')).rejects.toMatchObject({
      code: 'CHAINCODE_ERROR',
    });
  });

  it('a killed peer container comes back with its ledger and chaincode, and catches up', async () => {
    const org1 = await gatewayOf(0);
    const peer = net.organizations[1]!.peers[0]!.fqdn;
    const heightBefore = Number((await (await gatewayOf(1)).getNetwork(channel).getLedgerDigest()).digest.height);
    expect(heightBefore).toBeGreaterThan(1);
    const since = Math.floor(Date.now() / 1000) - 1;
    docker(['kill', peer]);
    stoppedPeer = peer;
    // While Org2 is down the channel's MAJORITY endorsement cannot be met: the client is told so.
    await expect(
      basic(org1).submitTransaction('CreateAsset', 'docker-asset-while-down', 'red', '1', 'Ines', '1'),
    ).rejects.toMatchObject({ code: expect.stringMatching(/ENDORSE|PLAN|UNAVAILABLE|PEER/) });
    docker(['start', peer]);
    stoppedPeer = undefined;
    await eventually(`${peer} healthy again`, 120_000, async () => {
      const s = docker(['inspect', '--format', '{{.State.Health.Status}}', peer]).trim();
      return s === 'healthy' ? true : undefined;
    });
    // The chaincode package was still installed: it is on the peer's volume, with its ledger.
    const logs = docker(['logs', '--since', String(since), peer]);
    expect(logs).toMatch(/already installed basic_1\.0:/);
    const org2 = await gatewayOf(1);
    const heightAfter = Number((await org2.getNetwork(channel).getLedgerDigest()).digest.height);
    expect(heightAfter).toBeGreaterThanOrEqual(heightBefore);
    expect(JSON.parse(dec.decode(await basic(org2).evaluateTransaction('ReadAsset', 'docker-asset-1')))).toMatchObject({
      Owner: 'Ines',
    });
    // Commits again with both orgs, and the restarted peer sees the new transaction.
    await basic(org1).submitTransaction('TransferAsset', 'docker-asset-1', 'Noor');
    const owner = await eventually('the transfer on the restarted peer', 60_000, async () => {
      const a = JSON.parse(dec.decode(await basic(org2).evaluateTransaction('ReadAsset', 'docker-asset-1'))) as {
        Owner: string;
      };
      return a.Owner === 'Noor' ? a.Owner : undefined;
    });
    expect(owner).toBe('Noor');
  });
});
