/**
 * The containerized network, from the host: run by `npm run test:compose`
 * (scripts/docker/test-compose.sh), which builds the image and brings the generated
 * docker-compose.yml up first, and takes it down after.
 *
 * A client on the host, holding the User1@org1 identity the setup container enrolled, broadcasts
 * signed transactions to the orderers' published ports and reads them back through deliver with
 * hash-chain, orderer-signature and Merkle checks; then the Raft leader's container is stopped
 * (transactions still commit) and started again (it catches up to the others' height).
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadMspFromDir, loadNetworkConfig, type NetworkConfig } from '@loom/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { caService, setupService } from '../../packages/cli/src/network/compose.js';
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
  const local = { ...net, dataDir: data };
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
  // Leave the network as we found it for the script's `down`, even when a test failed midway.
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
});
