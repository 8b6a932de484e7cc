/**
 * `loom network up`: from a network-config alone, start every CA, enroll every identity, make the
 * genesis blocks, start the orderers, join them to the channels, and report the endpoints.
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  buildGenesisBlock,
  channelConfigFromNetwork,
  type ConsenterMaterial,
  encodeBlock,
  type NetworkConfig,
  type OrgMaterial,
  sha256,
} from '@loom/common';
import { stringify as toYaml } from 'yaml';
import { deployChaincodes, peerServesChaincode } from './deploy.js';
import { caUrl, enrollOrganization, type OrgCrypto } from './enroll.js';
import { loadClientTls } from './gateway.js';
import { httpRequest, useClientTls, waitForHealthy } from './http.js';
import { allOrgs, layout } from './layout.js';
import { type RunningNode, readPids, isPidAlive, spawnNode, stopPids, writePids } from './processes.js';

export interface Progress {
  step(message: string): void;
}

export interface NetworkHandle {
  config: NetworkConfig;
  nodes: RunningNode[];
  crypto: Record<string, OrgCrypto>;
  endpoints: { name: string; kind: string; url: string }[];
  /** PEMs of every TLS CA root of the network, for clients. */
  tlsRoots: string[];
  /** The peers started, with their gateway URLs. */
  peers: { mspId: string; fqdn: string; url: string }[];
  /** Whether the peers serve the gateway and chaincode routes and every chaincode is deployed. */
  chaincodeReady: boolean;
  /** True when the config declares chaincode and deploying it failed (`chaincodeNote` says why). */
  chaincodeFailed: boolean;
  /** Why chaincode is not ready, when it is not. */
  chaincodeNote?: string;
}

const scheme = (net: NetworkConfig) => (net.tls.enabled ? 'https' : 'http');

/**
 * The `tls:` block of a node's YAML: its TLS pair, every org's TLS root as the roots it trusts
 * (the channels' TLS roots are added by the node itself), and mutual TLS when the network-config
 * says `tls.clientAuthRequired`.
 */
export function nodeTlsBlock(net: NetworkConfig, tlsDir: string) {
  return {
    certFile: join(tlsDir, 'server.crt'),
    keyFile: join(tlsDir, 'server.key'),
    caFiles: allOrgs(net).map((o) => join(layout.caDir(net, o), 'data', 'tlsca-cert.pem')),
    clientAuthRequired: net.tls.clientAuthRequired,
  };
}

/**
 * Whether launched nodes serve their operations endpoints (`/healthz`, `/metrics`, `/logspec`) over
 * TLS: network-config `tls.enabled` and `tls.operations` (default true).
 */
export const operationsTlsOn = (net: NetworkConfig): boolean => net.tls.enabled && net.tls.operations;

/** Base URL of a launched node's operations endpoint, e.g. `https://127.0.0.1:9441`. */
export function operationsUrl(net: NetworkConfig, node: { host: string; operationsPort: number }): string {
  return `${operationsTlsOn(net) ? 'https' : 'http'}://${node.host}:${node.operationsPort}`;
}

/**
 * The operations listener's TLS block (peer.yaml `operations.tls`, orderer.yaml `operationsTls`): the
 * node's own TLS server pair, reloaded on renewal like the main listener's. Server-side TLS only, as
 * Fabric's default: probes and scrapers need the network's TLS roots, not a client certificate.
 */
export function operationsTlsBlock(tlsDir: string) {
  return { certFile: join(tlsDir, 'server.crt'), keyFile: join(tlsDir, 'server.key') };
}

/**
 * Makes this process's launcher calls (channel joins, chaincode installs, the demo's broadcast)
 * present the orderer org admin's TLS client certificate, as mutual-TLS listeners require.
 */
export async function useNetworkAdminTls(net: NetworkConfig): Promise<void> {
  if (!net.tls.enabled) return;
  useClientTls(await loadClientTls(net, net.ordererOrganization, 'Admin'));
}

async function startCas(net: NetworkConfig, detach: boolean, progress: Progress): Promise<RunningNode[]> {
  const nodes: RunningNode[] = [];
  for (const org of allOrgs(net)) {
    const dir = layout.caDir(net, org);
    await mkdir(dir, { recursive: true });
    const file = join(dir, 'ca.yaml');
    await writeFile(
      file,
      toYaml({
        name: org.ca.name,
        mspId: org.mspId,
        listen: { host: org.ca.host, port: org.ca.port },
        dataDir: './data',
        bootstrap: { id: org.ca.admin.user, secret: org.ca.admin.secret },
        csr: { cn: org.ca.name, names: [{ O: org.domain }] },
        tls: { enabled: net.tls.enabled, hosts: [org.ca.host, 'localhost', '127.0.0.1'] },
      }),
    );
    nodes.push(spawnNode('ca', org.ca.name, file, net.dataDir, detach));
  }
  await stopAllOnFailure(nodes, () =>
    Promise.all(
      nodes.map(async (n, i) => {
        const org = allOrgs(net)[i]!;
        const tlsRoot = join(layout.caDir(net, org), 'data', 'tlsca-cert.pem');
        // The CA writes its TLS root on start; wait for it before trusting it. Bounds as generous as
        // the orderers' and peers': starting a node takes tens of seconds on a loaded machine.
        const deadline = Date.now() + 120_000;
        while (net.tls.enabled && !existsSync(tlsRoot) && Date.now() < deadline && n.alive())
          await new Promise((r) => setTimeout(r, 100));
        if (net.tls.enabled && !existsSync(tlsRoot)) {
          throw new Error(`CA ${org.ca.name} wrote no TLS root (${tlsRoot}) in 120 s (see its log)`);
        }
        const ca = net.tls.enabled ? [await readFile(tlsRoot, 'utf8')] : undefined;
        await waitForHealthy(`${caUrl(net, org)}/healthz`, ca, 120_000, n.alive);
        progress.step(`CA ${org.ca.name} ready at ${caUrl(net, org)}`);
      }),
    ),
  );
  return nodes;
}

/** Runs `wait`; if it fails, stops the processes just spawned (they are not recorded yet) and rethrows. */
async function stopAllOnFailure<T>(nodes: RunningNode[], wait: () => Promise<T>): Promise<T> {
  try {
    return await wait();
  } catch (e) {
    await stopPids(nodes);
    throw e;
  }
}

/** Admins are recognised by their admin NodeOU, so no admin certificates are listed. */
function materialOf(c: OrgCrypto): OrgMaterial {
  return { rootCerts: [c.caRootPem], tlsRootCerts: [c.tlsRootPem] };
}

/** Genesis block of every channel of the network (made once, then read back from the data dir). */
export async function makeGenesisBlocks(
  net: NetworkConfig,
  crypto: Record<string, OrgCrypto>,
): Promise<Map<string, Uint8Array>> {
  const out = new Map<string, Uint8Array>();
  const orderers = crypto[net.ordererOrganization.mspId]!;
  const consenters: Record<string, ConsenterMaterial> = {};
  for (const o of net.ordererOrganization.orderers) {
    const n = orderers.nodes[o.name]!;
    consenters[o.name] = { identityCert: n.certPem, tlsCert: n.tlsCertPem };
  }
  const material = Object.fromEntries(Object.entries(crypto).map(([k, v]) => [k, materialOf(v)]));
  for (const ch of net.channels) {
    const file = layout.genesisBlock(net, ch.name);
    if (existsSync(file)) {
      out.set(ch.name, new Uint8Array(await readFile(file)));
      continue;
    }
    const config = channelConfigFromNetwork(net, ch.name, material, consenters);
    const bytes = encodeBlock(buildGenesisBlock(config, Date.now(), sha256));
    await mkdir(join(net.dataDir, 'channels'), { recursive: true });
    await writeFile(file, bytes);
    out.set(ch.name, bytes);
  }
  return out;
}

/**
 * Joins one orderer to every channel it is a consenter of, through its channel participation API
 * (skipping channels it already has). `adminUrl` defaults to the orderer's configured host.
 */
export async function joinOrdererToChannels(
  net: NetworkConfig,
  o: NetworkConfig['ordererOrganization']['orderers'][number],
  genesis: Map<string, Uint8Array>,
  tlsRoots: string[],
  adminUrl = `${scheme(net)}://${o.host}:${o.adminPort}`,
): Promise<string[]> {
  const joined: string[] = [];
  for (const ch of net.channels.filter((c) => c.consenters.includes(o.name))) {
    const listed = await httpRequest(`${adminUrl}/participation/v1/channels/${ch.name}`, { ca: tlsRoots });
    if (listed.status === 200) continue;
    const r = await httpRequest(`${adminUrl}/participation/v1/channels`, {
      method: 'POST',
      body: genesis.get(ch.name)!,
      headers: { 'content-type': 'application/octet-stream' },
      ca: tlsRoots,
    });
    if (r.status >= 300)
      throw new Error(`joining ${o.name} to ${ch.name} failed: HTTP ${r.status} ${r.body.toString()}`);
    joined.push(ch.name);
  }
  return joined;
}

async function startOrderers(
  net: NetworkConfig,
  crypto: Record<string, OrgCrypto>,
  genesis: Map<string, Uint8Array>,
  tlsRoots: string[],
  detach: boolean,
  progress: Progress,
): Promise<RunningNode[]> {
  const oo = net.ordererOrganization;
  const nodes: RunningNode[] = [];
  for (const o of oo.orderers) {
    const dir = layout.nodeDir(net, oo, 'orderers', o.fqdn);
    const file = join(dir, 'orderer.yaml');
    const m = crypto[oo.mspId]!.nodes[o.name]!;
    await writeFile(
      file,
      toYaml({
        id: o.name,
        mspId: oo.mspId,
        mspDir: m.mspDir,
        dataDir: join(dir, 'data'),
        host: o.host,
        port: o.port,
        adminPort: o.adminPort,
        raftPort: o.raftPort,
        operationsPort: o.operationsPort,
        ...(net.tls.enabled ? { tls: nodeTlsBlock(net, m.tlsDir) } : {}),
        ...(operationsTlsOn(net) ? { operationsTls: operationsTlsBlock(m.tlsDir) } : {}),
      }),
    );
    nodes.push(spawnNode('orderer', o.fqdn, file, net.dataDir, detach));
  }
  await stopAllOnFailure(nodes, () =>
    Promise.all(
      oo.orderers.map(async (o, i) => {
        await waitForHealthy(`${operationsUrl(net, o)}/healthz`, tlsRoots, 120_000, nodes[i]!.alive);
        await joinOrdererToChannels(net, o, genesis, tlsRoots);
        progress.step(
          `orderer ${o.fqdn} ready at ${scheme(net)}://${o.host}:${o.port}, joined ${net.channels.map((c) => c.name).join(', ')}`,
        );
      }),
    ),
  );
  return nodes;
}

/** Joins one peer to the channels of its organization (skipping channels it already has). */
export async function joinPeerToChannels(
  net: NetworkConfig,
  mspId: string,
  url: string,
  genesis: Map<string, Uint8Array>,
  tlsRoots: string[],
): Promise<string[]> {
  const joined: string[] = [];
  for (const ch of net.channels.filter((c) => c.organizations.includes(mspId))) {
    const h = await httpRequest(`${url}/v1/channels/${ch.name}/height`, { ca: tlsRoots });
    if (h.status === 200) continue;
    const r = await httpRequest(`${url}/v1/channels`, {
      method: 'POST',
      body: genesis.get(ch.name)!,
      headers: { 'content-type': 'application/octet-stream' },
      ca: tlsRoots,
      timeoutMs: 30_000,
    });
    if (r.status >= 300) throw new Error(`joining ${url} to ${ch.name} failed: HTTP ${r.status} ${r.body.toString()}`);
    joined.push(ch.name);
  }
  return joined;
}

/**
 * A peer's gossip section: listen on its p2pPort; bootstrap from the other peers of its org and the
 * anchor peers of the other orgs it shares a channel with; the org's leader is elected (`auto`).
 */
export function gossipConfigOf(
  net: NetworkConfig,
  org: NetworkConfig['organizations'][number],
  p: NetworkConfig['organizations'][number]['peers'][number],
) {
  const partners = net.organizations.filter(
    (o) =>
      o !== org && net.channels.some((c) => c.organizations.includes(o.mspId) && c.organizations.includes(org.mspId)),
  );
  const bootstrap = [
    ...org.peers.filter((x) => x !== p),
    ...partners.flatMap((o) => o.peers.filter((x) => o.anchorPeers.includes(x.name))),
  ].map((x) => `${x.host}:${x.p2pPort}`);
  return { listen: { host: p.host, port: p.p2pPort }, bootstrap, orgLeader: 'auto' };
}

async function startPeers(
  net: NetworkConfig,
  crypto: Record<string, OrgCrypto>,
  genesis: Map<string, Uint8Array>,
  tlsRoots: string[],
  detach: boolean,
  progress: Progress,
): Promise<{ nodes: RunningNode[]; peers: NetworkHandle['peers'] }> {
  const all = net.organizations.flatMap((org) => org.peers.map((p) => ({ org, p })));
  const urlOf = (p: { host: string; port: number }) => `${scheme(net)}://${p.host}:${p.port}`;
  const nodes: RunningNode[] = [];
  for (const { org, p } of all) {
    const dir = layout.nodeDir(net, org, 'peers', p.fqdn);
    const file = join(dir, 'peer.yaml');
    const m = crypto[org.mspId]!.nodes[p.name]!;
    await writeFile(
      file,
      toYaml({
        id: p.fqdn,
        mspId: org.mspId,
        mspDir: m.mspDir,
        dataDir: join(dir, 'data'),
        listen: { host: p.host, port: p.port },
        operations: {
          host: p.host,
          port: p.operationsPort,
          ...(operationsTlsOn(net) ? { tls: operationsTlsBlock(m.tlsDir) } : {}),
        },
        chaincodePort: p.chaincodePort,
        orderers: net.ordererOrganization.orderers.map((o) => `${scheme(net)}://${o.host}:${o.port}`),
        ...(net.tls.enabled ? { tls: nodeTlsBlock(net, m.tlsDir) } : {}),
        peers: all.filter((x) => x.p !== p).map((x) => ({ mspId: x.org.mspId, url: urlOf(x.p) })),
        gossip: gossipConfigOf(net, org, p),
        logLevel: 'info',
      }),
    );
    nodes.push(spawnNode('peer', p.fqdn, file, net.dataDir, detach));
  }
  await stopAllOnFailure(nodes, () =>
    Promise.all(
      all.map(async ({ org, p }, i) => {
        await waitForHealthy(`${operationsUrl(net, p)}/healthz`, tlsRoots, 120_000, nodes[i]!.alive);
        const joined = await joinPeerToChannels(net, org.mspId, urlOf(p), genesis, tlsRoots);
        const channels = net.channels.filter((c) => c.organizations.includes(org.mspId)).map((c) => c.name);
        progress.step(
          `peer ${p.fqdn} (${org.mspId}) ready at ${urlOf(p)}, ${channels.length === 0 ? 'in no channel (join it after its org is added)' : `${joined.length > 0 ? 'joined' : 'already in'} ${channels.join(', ')}`}`,
        );
      }),
    ),
  );
  return { nodes, peers: all.map(({ org, p }) => ({ mspId: org.mspId, fqdn: p.fqdn, url: urlOf(p) })) };
}

export async function networkUp(
  net: NetworkConfig,
  options: { detach: boolean; progress: Progress },
): Promise<NetworkHandle> {
  const { progress } = options;
  const running = readPids(net.dataDir).filter((p) => isPidAlive(p.pid));
  if (running.length > 0) {
    throw Object.assign(
      new Error(
        `a network is already running from ${net.dataDir} (pids ${running.map((p) => p.pid).join(', ')}); run 'loom network down' first`,
      ),
      {
        code: 'NETWORK_ALREADY_UP',
      },
    );
  }
  await mkdir(net.dataDir, { recursive: true });
  const nodes: RunningNode[] = [];
  try {
    progress.step(`starting ${allOrgs(net).length} certificate authorities`);
    nodes.push(...(await startCas(net, options.detach, progress)));
    writePids(net.dataDir, nodes);

    progress.step('enrolling identities (admins, clients, peers, orderers) through the CAs');
    const crypto: Record<string, OrgCrypto> = {};
    for (const org of allOrgs(net)) crypto[org.mspId] = await enrollOrganization(net, org);
    const tlsRoots = Object.values(crypto).map((c) => c.tlsRootPem);
    await useNetworkAdminTls(net);

    progress.step(`creating genesis blocks for ${net.channels.map((c) => c.name).join(', ')}`);
    const genesis = await makeGenesisBlocks(net, crypto);

    progress.step(`starting ${net.ordererOrganization.orderers.length} Raft orderers`);
    nodes.push(...(await startOrderers(net, crypto, genesis, tlsRoots, options.detach, progress)));
    writePids(net.dataDir, nodes);

    const peerCount = net.organizations.reduce((n, o) => n + o.peers.length, 0);
    progress.step(`starting ${peerCount} peers`);
    const started = await startPeers(net, crypto, genesis, tlsRoots, options.detach, progress);
    nodes.push(...started.nodes);
    const peers = started.peers;
    writePids(net.dataDir, nodes);

    let chaincodeReady = false;
    let chaincodeFailed = false;
    let chaincodeNote: string | undefined;
    if (net.chaincodes.length === 0) {
      chaincodeNote = 'the network-config declares no chaincode';
    } else if (!(await Promise.all(peers.map((p) => peerServesChaincode(p.url, tlsRoots)))).every(Boolean)) {
      chaincodeNote =
        'the peers do not serve the chaincode admin routes (POST /v1/admin/chaincodes) in this build, so chaincode deployment is skipped';
      progress.step(`chaincode: ${chaincodeNote}`);
    } else {
      progress.step(`deploying ${net.chaincodes.map((c) => c.name).join(', ')} (package, install, approve, commit)`);
      try {
        await deployChaincodes(net, progress);
        chaincodeReady = true;
      } catch (e) {
        chaincodeFailed = true;
        chaincodeNote = `chaincode deployment failed: ${(e as Error).message}`;
        progress.step(`chaincode: ${chaincodeNote} (logs in ${join(net.dataDir, 'logs')})`);
      }
    }

    const endpoints = [
      ...allOrgs(net).map((o) => ({ name: o.ca.name, kind: 'ca', url: caUrl(net, o) })),
      ...net.ordererOrganization.orderers.map((o) => ({
        name: o.fqdn,
        kind: 'orderer',
        url: `${scheme(net)}://${o.host}:${o.port}`,
      })),
      ...peers.map((p) => ({ name: p.fqdn, kind: 'peer', url: p.url })),
      ...[...net.ordererOrganization.orderers, ...net.organizations.flatMap((o) => o.peers)].map((n) => ({
        name: n.fqdn,
        kind: 'ops',
        url: operationsUrl(net, n),
      })),
    ];
    return {
      config: net,
      nodes,
      crypto,
      endpoints,
      tlsRoots,
      peers,
      chaincodeReady,
      chaincodeFailed,
      ...(chaincodeNote ? { chaincodeNote } : {}),
    };
  } catch (e) {
    await stopPids(nodes);
    throw e;
  }
}
