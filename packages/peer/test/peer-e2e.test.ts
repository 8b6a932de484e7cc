/**
 * End to end with REAL processes: three orderers (packages/orderer/dist/main.js, Raft) and two peers
 * (packages/peer/dist/main.js, Org1 and Org2) on one channel joined from its genesis block, driven by
 * the client SDK: package chaincode/basic, install it on both peers (admin route), approve it as each
 * org's admin, check commit readiness, commit, then submit/evaluate across the two gateways, chaincode
 * events, an MVCC conflict, a commit refused for lack of approvals, and an upgrade.
 *
 * Needs the built dist (`npx tsc -b`); skipped with a message when it is missing.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream, existsSync } from 'node:fs';
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChannelConfig, OrgConfig } from '@loom/common';
import { fromUtf8, utf8 } from '@loom/common';
import type { GatewayTransport } from '@loom/common/gateway/index';
import type { MspConfig } from '@loom/common/msp/types';
import { createTestOrg, type TestIdentity, type TestOrg, writeMspDir } from '@loom/common/testing/index';
import { createHttpsClient } from '@loom/common/tls/index';
import { createTestTlsCa, writeTlsFiles } from '@loom/common/tls/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CommitError, connect, type Gateway, signers } from '@loom/client';
import { createNetwork, genesisBlock, type Network } from '../../orderer/test/fixtures.js';
import { freePort, joinChannel, type OrdererProcess, prepareCluster, until } from '../../orderer/test/harness.js';
import { createPackage } from '../src/chaincode/package/index.js';
import { createPlainHttpTransport } from '../src/node/peer-services.js';
import { compileBasic, repoRoot } from './chaincode-harness.js';

const PEER_BIN = join(repoRoot, 'packages/peer/dist/main.js');
const ORDERER_BIN = join(repoRoot, 'packages/orderer/dist/main.js');
const SDK_BIN = join(repoRoot, 'packages/chaincode-sdk/dist/bin/start-chaincode.js');
const built = existsSync(PEER_BIN) && existsSync(ORDERER_BIN) && existsSync(SDK_BIN);
if (!built) {
  console.warn(`peer-e2e: skipped, dist missing (${PEER_BIN}, ${ORDERER_BIN}, ${SDK_BIN}); run \`npx tsc -b\``);
}

const CHANNEL = 'mychannel';

interface PeerProcess {
  readonly org: TestOrg;
  readonly url: string;
  readonly dir: string;
  child: ChildProcess | undefined;
}

const gateways: Gateway[] = [];
const plainTransport: GatewayTransport = createPlainHttpTransport(60_000);

const pd = (rule: string) => ({ rule, version: 0, modPolicy: 'Admins' });

function orgConfig(msp: MspConfig, policies: Record<string, string>, anchorPort?: number, tlsRoot?: string): OrgConfig {
  return {
    mspId: msp.mspId,
    msp: {
      rootCerts: [...msp.rootCerts],
      intermediateCerts: [...(msp.intermediateCerts ?? [])],
      admins: [...(msp.admins ?? [])],
      crls: [...(msp.revocationList ?? [])],
      tlsRootCerts: tlsRoot ? [tlsRoot] : [...(msp.tlsRootCerts ?? [])],
      tlsIntermediateCerts: [...(msp.tlsIntermediateCerts ?? [])],
      nodeOUs: msp.nodeOUs?.enable ?? true,
    },
    anchorPeers: anchorPort ? [{ host: '127.0.0.1', port: anchorPort }] : [],
    policies: Object.fromEntries(Object.entries(policies).map(([k, v]) => [k, pd(v)])),
    version: 0,
    modPolicy: 'Admins',
  };
}

const peerOrgPolicies = (m: string) => ({
  Readers: `OR('${m}.admin', '${m}.peer', '${m}.client')`,
  Writers: `OR('${m}.admin', '${m}.client')`,
  Admins: `OR('${m}.admin')`,
  Endorsement: `OR('${m}.peer')`,
});

function channelConfig(
  n: Network,
  orgs: readonly { org: TestOrg; port: number; tlsRoot: string | undefined }[],
  procs: readonly OrdererProcess[],
): ChannelConfig {
  const o = n.ordererMspId;
  return {
    channelId: CHANNEL,
    sequence: 0,
    version: 0,
    modPolicy: 'Admins',
    capabilities: ['V2_0'],
    orgs: Object.fromEntries(
      orgs.map(({ org, port, tlsRoot }) => [
        org.mspId,
        orgConfig(org.mspConfig(), peerOrgPolicies(org.mspId), port, tlsRoot),
      ]),
    ),
    policies: {
      Readers: pd('ANY Readers'),
      Writers: pd('ANY Writers'),
      Admins: pd('MAJORITY Admins'),
      Endorsement: pd('MAJORITY Endorsement'),
      LifecycleEndorsement: pd('MAJORITY Endorsement'),
    },
    orderer: {
      version: 0,
      modPolicy: 'Admins',
      orgs: {
        [o]: orgConfig(n.ordererOrgMsp, {
          Readers: `OR('${o}.member')`,
          Writers: `OR('${o}.member')`,
          Admins: `OR('${o}.admin')`,
        }),
      },
      policies: {
        Readers: pd('ANY Readers'),
        Writers: pd('ANY Writers'),
        Admins: pd('MAJORITY Admins'),
        BlockValidation: pd('ANY Writers'),
      },
      batch: { batchTimeoutMs: 150, maxMessageCount: 50, absoluteMaxBytes: 1024 * 1024, preferredMaxBytes: 512 * 1024 },
      consenters: n.orderers.map((id, i) => ({
        id: id.consenterId,
        mspId: o,
        host: '127.0.0.1',
        port: procs[i]!.port,
        raftPort: procs[i]!.raftPort,
        identityCert: id.certPem,
        tlsCert: '',
      })),
    },
  };
}

async function startPeerProcess(p: PeerProcess, tlsRoot: string | undefined): Promise<void> {
  const log = createWriteStream(join(p.dir, 'peer.log'), { flags: 'a' });
  const child = spawn(process.execPath, [PEER_BIN, '--config', join(p.dir, 'peer.yaml')], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout?.pipe(log);
  child.stderr?.pipe(log);
  p.child = child;
  await until(
    `${p.org.mspId} peer to serve the channel`,
    async () => {
      if (child.exitCode !== null) throw new Error(`peer exited with ${child.exitCode} (see ${p.dir}/peer.log)`);
      const t = tlsRoot ? createHttpsClient({ ca: tlsRoot }) : plainTransport;
      try {
        const r = await t.request({
          method: 'GET',
          url: `${p.url}/v1/channels/${CHANNEL}/height`,
          headers: {},
          timeoutMs: 2000,
        });
        return r.status === 200;
      } finally {
        if (tlsRoot) t.close();
      }
    },
    60_000,
    100,
  );
}

function gatewayFor(p: PeerProcess, who: TestIdentity, tlsRoot?: string): Gateway {
  const g = connect({
    endpoint: p.url,
    identity: { mspId: who.mspId, credentials: utf8(who.certPem) },
    signer: signers.newPrivateKeySigner(who.keyPem),
    ...(tlsRoot ? { tls: { rootCerts: tlsRoot } } : { transport: plainTransport }),
    commitStatusOptions: { timeoutMs: 30_000 },
    endorseOptions: { timeoutMs: 60_000 },
    evaluateOptions: { timeoutMs: 60_000 },
  });
  gateways.push(g);
  return g;
}

/** GET/POST on a peer's admin route (http, or https trusting `tlsRoot`). */
async function adminCall(
  url: string,
  tlsRoot: string | undefined,
  method: 'GET' | 'POST',
  body?: Uint8Array,
): Promise<{ status: number; json: unknown }> {
  const t = tlsRoot ? createHttpsClient({ ca: tlsRoot }) : plainTransport;
  try {
    const r = await t.request({
      method,
      url,
      headers: body ? { 'content-type': 'application/octet-stream' } : {},
      ...(body ? { body } : {}),
      timeoutMs: 120_000,
    });
    return { status: r.status, json: JSON.parse(fromUtf8(r.body)) };
  } finally {
    t.close();
  }
}

for (const tls of [false, true]) {
  describe.skipIf(!built)(
    `peer end to end over ${tls ? 'HTTPS' : 'HTTP'} (3 orderers, 2 peers, real processes)`,
    () => {
      let root: string;
      let net: Network;
      let org2: TestOrg;
      let orderers: OrdererProcess[] = [];
      const peers: PeerProcess[] = [];
      const tlsRoots = new Map<string, string>();
      const gw = (p: PeerProcess, who: TestIdentity) => gatewayFor(p, who, tlsRoots.get(p.org.mspId));

      async function install(p: PeerProcess, pkg: Uint8Array): Promise<{ packageId: string; label: string }> {
        const r = await adminCall(`${p.url}/v1/admin/chaincodes`, tlsRoots.get(p.org.mspId), 'POST', pkg);
        if (r.status >= 300) throw new Error(`install on ${p.org.mspId}: ${r.status} ${JSON.stringify(r.json)}`);
        return r.json as { packageId: string; label: string };
      }

      /** Approves `def` as each org's admin through its own peer's gateway. */
      async function approve(
        orgIdx: readonly number[],
        def: Record<string, unknown>,
        packageId: string,
      ): Promise<void> {
        for (const i of orgIdx) {
          const p = peers[i]!;
          const lc = gw(p, p.org.admin).getNetwork(CHANNEL).getContract('_lifecycle');
          await lc.submitTransaction('ApproveChaincodeDefinitionForMyOrg', JSON.stringify({ ...def, packageId }));
        }
        await syncPeers();
      }

      /** Waits until every peer has committed as many blocks as the furthest one (each pulls on its own). */
      async function syncPeers(): Promise<void> {
        const heights = async () =>
          Promise.all(
            peers.map(
              async (p) =>
                (
                  (await adminCall(`${p.url}/v1/channels/${CHANNEL}/height`, tlsRoots.get(p.org.mspId), 'GET'))
                    .json as {
                    height: number;
                  }
                ).height,
            ),
          );
        const target = Math.max(...(await heights()));
        await until(
          'every peer to reach the same height',
          async () => (await heights()).every((h) => h >= target),
          20_000,
          50,
        );
      }

      beforeAll(async () => {
        if (!built) return;
        root = await mkdtemp(join(tmpdir(), 'loom-peer-e2e-'));
        net = await createNetwork(3, CHANNEL);
        org2 = await createTestOrg('Org2MSP');
        const cluster = await prepareCluster(net, { root: join(root, 'orderers') });
        orderers = cluster.procs;
        await Promise.all(orderers.map((o) => o.start()));

        const peerPorts = [await freePort(), await freePort()];
        const orgs = [net.org1, org2];
        const tlsCas = tls ? await Promise.all(orgs.map((o) => createTestTlsCa(o.mspId))) : [];
        for (const [i, ca] of tlsCas.entries()) tlsRoots.set(orgs[i]!.mspId, ca.certPem);
        const config = channelConfig(
          net,
          orgs.map((org, i) => ({ org, port: peerPorts[i]!, tlsRoot: tlsCas[i]?.certPem })),
          orderers,
        );
        const genesis = genesisBlock(net, config).bytes;
        for (const o of orderers) {
          const r = await joinChannel(o, genesis);
          expect(r.status).toBeLessThan(300);
        }

        for (const [i, org] of orgs.entries()) {
          const dir = join(root, `peer0.${org.mspId}`);
          await mkdir(dir, { recursive: true });
          await writeMspDir(join(dir, 'msp'), org.mspConfig(), org.peer);
          await writeFile(join(dir, 'genesis.block'), genesis);
          const tlsLines: string[] = [];
          if (tlsCas[i]) {
            const pair = await tlsCas[i].issue({
              cn: `peer0.${org.mspId.toLowerCase()}`,
              hosts: ['localhost', '127.0.0.1'],
            });
            const files = await writeTlsFiles(join(dir, 'tls'), { ...pair, caPem: tlsCas[i].certPem });
            tlsLines.push('tls:', `  certFile: ${files.certFile}`, `  keyFile: ${files.keyFile}`);
          }
          await writeFile(
            join(dir, 'peer.yaml'),
            [
              `id: peer0.${org.mspId.toLowerCase()}`,
              `mspId: ${org.mspId}`,
              'mspDir: ./msp',
              'dataDir: ./data',
              `listen: { host: 127.0.0.1, port: ${peerPorts[i]} }`,
              'operations: { host: 127.0.0.1, port: 0 }',
              'orderers:',
              ...orderers.map((o) => `  - ${o.publicUrl}`),
              'channels:',
              `  - { name: ${CHANNEL}, genesisBlock: ./genesis.block }`,
              'chaincodeExecuteTimeoutMs: 30000',
              'logLevel: info',
              ...tlsLines,
              '',
            ].join('\n'),
          );
          peers.push({ org, url: `${tls ? 'https' : 'http'}://127.0.0.1:${peerPorts[i]}`, dir, child: undefined });
        }
        await Promise.all(peers.map((p) => startPeerProcess(p, tlsRoots.get(p.org.mspId))));
      }, 150_000);

      afterAll(async () => {
        for (const g of gateways.splice(0)) g.close();
        const exits = peers.map(async (p) => {
          const c = p.child;
          if (!c || c.exitCode !== null) return;
          const exited = new Promise<void>((r) => c.once('exit', () => r()));
          c.kill('SIGTERM');
          await Promise.race([exited, new Promise((r) => setTimeout(r, 8000))]);
          if (c.exitCode === null) c.kill('SIGKILL');
        });
        await Promise.all(exits);
        await Promise.all(orderers.map((o) => o.kill('SIGKILL')));
        if (root && !process.env.LOOM_KEEP_E2E) await rm(root, { recursive: true, force: true });
      }, 30_000);

      const def1 = { name: 'basic', version: '1.0', sequence: 1 };
      let basicV2Dir: string;

      it('installs chaincode/basic on both peers, approves as both orgs, commits, and runs it', async () => {
        const dir = compileBasic(join(root, 'cc', 'basic-v1'));
        // The sample's rich-query index ships in META-INF and is created when the definition commits.
        await cp(join(repoRoot, 'chaincode/basic/META-INF'), join(dir, 'META-INF'), { recursive: true });
        const pkg = await createPackage(dir, 'basic_1.0');
        const [i1, i2] = await Promise.all(peers.map((p) => install(p, pkg)));
        expect(i1!.packageId).toMatch(/^basic_1\.0:[0-9a-f]{64}$/);
        expect(i2!.packageId).toBe(i1!.packageId);
        const listed = (await adminCall(`${peers[0]!.url}/v1/admin/chaincodes`, tlsRoots.get('Org1MSP'), 'GET'))
          .json as { installed: { packageId: string; label: string }[] };
        expect(listed.installed.map((x) => x.packageId)).toContain(i1!.packageId);

        await approve([0, 1], def1, i1!.packageId);
        const admin1 = gw(peers[0]!, net.org1.admin).getNetwork(CHANNEL).getContract('_lifecycle');
        const readiness = JSON.parse(
          fromUtf8(await admin1.evaluateTransaction('CheckCommitReadiness', JSON.stringify(def1))),
        ) as { approvals: Record<string, boolean> };
        expect(readiness.approvals).toEqual({ Org1MSP: true, Org2MSP: true });
        await admin1.submitTransaction('CommitChaincodeDefinition', JSON.stringify(def1));
        await syncPeers();

        const client1 = gw(peers[0]!, net.org1.client).getNetwork(CHANNEL).getContract('basic');
        const client2 = gw(peers[1]!, org2.client).getNetwork(CHANNEL).getContract('basic');
        // The registry reloads right after the commit block; both peers see the definition.
        const submitted = await client1.submitAsync('CreateAsset', {
          arguments: ['asset1', 'blue', '5', 'Tomoko', '300'],
        });
        const status = await submitted.getStatus();
        expect(status).toMatchObject({ successful: true, codeName: 'VALID' });
        // Commit status comes from Org1's peer; Org2's peer pulls the block on its own.
        await syncPeers();

        const read = JSON.parse(fromUtf8(await client2.evaluateTransaction('ReadAsset', 'asset1'))) as Record<
          string,
          unknown
        >;
        expect(read).toMatchObject({ ID: 'asset1', Color: 'blue', Owner: 'Tomoko' });
        const byOwner = JSON.parse(fromUtf8(await client2.evaluateTransaction('QueryAssetsByOwner', 'Tomoko'))) as {
          ID: string;
        }[];
        expect(byOwner.map((a) => a.ID)).toEqual(['asset1']);
        for (const p of peers) {
          await until(
            `${p.org.mspId} peer to create the indexOwner index`,
            async () => (await readFile(join(p.dir, 'peer.log'), 'utf8')).includes('index created'),
            10_000,
            100,
          );
        }
      }, 120_000);

      it('delivers the TransferAsset chaincode event', async () => {
        const network = gw(peers[1]!, org2.client).getNetwork(CHANNEL);
        const contract = gw(peers[0]!, net.org1.client).getNetwork(CHANNEL).getContract('basic');
        const events = await network.getChaincodeEvents('basic');
        try {
          const tx = await contract.submitAsync('TransferAsset', { arguments: ['asset1', 'Max'] });
          expect((await tx.getStatus()).successful).toBe(true);
          const it = events[Symbol.asyncIterator]();
          const next = await Promise.race([
            it.next(),
            new Promise<never>((_, rej) => setTimeout(() => rej(new Error('no chaincode event in 20 s')), 20_000)),
          ]);
          const e = next.value!;
          expect(e.eventName).toBe('TransferAsset');
          expect(e.transactionId).toBe(tx.getTransactionId());
          expect(JSON.parse(fromUtf8(e.payload))).toMatchObject({ ID: 'asset1', Owner: 'Max' });
        } finally {
          events.close();
        }
      }, 60_000);

      it('surfaces an MVCC conflict as CommitError MVCC_READ_CONFLICT', async () => {
        const c1 = gw(peers[0]!, net.org1.client).getNetwork(CHANNEL).getContract('basic');
        const c2 = gw(peers[1]!, org2.client).getNetwork(CHANNEL).getContract('basic');
        // Both endorsed against the same version of asset1, before either commits.
        const [a, b] = await Promise.all([
          c1.newProposal('TransferAsset', { arguments: ['asset1', 'Alice'] }).endorse(),
          c2.newProposal('TransferAsset', { arguments: ['asset1', 'Bob'] }).endorse(),
        ]);
        const first = await (await a.submit()).getStatus();
        expect(first.successful).toBe(true);
        const second = await (await b.submit()).getStatus();
        expect(second).toMatchObject({ successful: false, codeName: 'MVCC_READ_CONFLICT' });
        // Through submitTransaction the same conflict is a CommitError.
        const results = await Promise.allSettled([
          c1.submitTransaction('TransferAsset', 'asset1', 'Carol'),
          c2.submitTransaction('TransferAsset', 'asset1', 'Dave'),
        ]);
        const rejected = results.filter((r) => r.status === 'rejected') as PromiseRejectedResult[];
        expect(rejected).toHaveLength(1);
        expect(rejected[0]!.reason).toBeInstanceOf(CommitError);
        expect(rejected[0]!.reason).toMatchObject({ code: 'MVCC_READ_CONFLICT' });
      }, 60_000);

      it('refuses a commit approved by 1 of 2 orgs (MAJORITY), naming the missing org', async () => {
        const def = { name: 'lonely', version: '1.0', sequence: 1 };
        await approve([0], def, '');
        const admin1 = gw(peers[0]!, net.org1.admin).getNetwork(CHANNEL).getContract('_lifecycle');
        const readiness = JSON.parse(
          fromUtf8(await admin1.evaluateTransaction('CheckCommitReadiness', JSON.stringify(def))),
        ) as { approvals: Record<string, boolean> };
        expect(readiness.approvals).toEqual({ Org1MSP: true, Org2MSP: false });
        const err = await admin1
          .submitTransaction('CommitChaincodeDefinition', JSON.stringify(def))
          .catch((e: unknown) => e as Error);
        expect(err).toBeInstanceOf(Error);
        expect(String((err as Error).message)).toMatch(/Org2MSP/);
        expect(String((err as Error).message)).toMatch(/LIFECYCLE_NOT_ENOUGH_APPROVALS|LIFECYCLE_NOT_AGREED_BY_ORG/);
      }, 60_000);

      it('upgrades to sequence 2 with a new package, which changes behaviour', async () => {
        const c2 = gw(peers[1]!, org2.client).getNetwork(CHANNEL).getContract('basic');
        const before = await c2.evaluateTransaction('ReadAsset', 'nope').catch((e: unknown) => e as Error);
        expect(String((before as Error).message)).toMatch(/does not exist/);

        basicV2Dir = compileBasic(join(root, 'cc', 'basic-v2'));
        const file = join(basicV2Dir, 'assetTransfer.js');
        await writeFile(file, (await readFile(file, 'utf8')).replaceAll('does not exist', 'is unknown to v2'));
        const pkg = await createPackage(basicV2Dir, 'basic_2.0');
        const [i1] = await Promise.all(peers.map((p) => install(p, pkg)));
        const def2 = { name: 'basic', version: '2.0', sequence: 2 };
        await approve([0, 1], def2, i1!.packageId);
        const admin2 = gw(peers[1]!, org2.admin).getNetwork(CHANNEL).getContract('_lifecycle');
        await admin2.submitTransaction('CommitChaincodeDefinition', JSON.stringify(def2));
        await syncPeers();

        await until(
          'the upgraded chaincode to answer',
          async () => {
            const e = await c2.evaluateTransaction('ReadAsset', 'nope').catch((x: unknown) => x as Error);
            return /is unknown to v2/.test(String((e as Error).message));
          },
          30_000,
          250,
        );
        const def = JSON.parse(
          fromUtf8(
            await gw(peers[0]!, net.org1.admin)
              .getNetwork(CHANNEL)
              .getContract('_lifecycle')
              .evaluateTransaction('QueryChaincodeDefinition', JSON.stringify({ name: 'basic' })),
          ),
        ) as { sequence: number; version: string };
        expect(def).toMatchObject({ sequence: 2, version: '2.0' });
        // State written under sequence 1 is still there.
        const c1 = gw(peers[0]!, net.org1.client).getNetwork(CHANNEL).getContract('basic');
        expect(JSON.parse(fromUtf8(await c1.evaluateTransaction('ReadAsset', 'asset1')))).toMatchObject({
          ID: 'asset1',
        });
      }, 120_000);
    },
  );
}
