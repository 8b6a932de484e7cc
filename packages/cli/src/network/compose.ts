/**
 * The containerized network: `loom network compose` turns a network-config into a docker-compose
 * file, and `loom network setup` / `loom network serve-ca` are what its containers run.
 *
 * Inside the compose network every node is reached by its service name, which is also its
 * hostname and the name in its TLS certificate: `ca.<domain>` for CAs and `<node>.<domain>` for
 * orderers and peers. Nodes listen on 0.0.0.0 inside their container; the ports are published on
 * 127.0.0.1 on the host, under the same numbers as in the network-config.
 *
 * Volumes:
 *
 *   <net>-data      → /var/loom/data   shared: CA configs and databases, MSP folders, TLS pairs,
 *                                      node config files, genesis blocks (the local launcher's
 *                                      layout, see layout.ts)
 *   <fqdn>-ledger   → /var/loom/node   one per orderer and peer: its ledger and Raft state
 *
 * Start order (all expressed with `depends_on` conditions):
 *
 *   CAs (healthy) → setup (enroll, node configs, genesis blocks, chaincode packages; completes)
 *     → orderers (healthy) → join (completes) → peers (healthy) → deploy (approve + commit; completes)
 *
 * A peer container runs `loom network serve-peer`: it starts the peer node (which joins its
 * channels from the genesis blocks at start and launches chaincode processes inside the same
 * container), then installs the network's chaincode packages through the peer's admin route on
 * loopback (install is accepted from localhost only) and only then reports healthy. The `deploy`
 * service approves the definitions as every organization's admin and commits them.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, join, relative, resolve, sep } from 'node:path';
import type { NetworkConfig } from '@loom/common';
import { createPackage } from '@loom/peer/chaincode/package/index';
import { stringify as toYaml } from 'yaml';
import { deployChaincodes, installOnPeer } from './deploy.js';
import { caUrl, enrollOrganization, type OrgCrypto } from './enroll.js';
import { waitForHealthy } from './http.js';
import { type AnyOrg, allOrgs, layout } from './layout.js';
import { joinOrdererToChannels, makeGenesisBlocks, type Progress, useNetworkAdminTls } from './up.js';

/** Fixed paths inside the containers. */
export const CONTAINER = {
  root: '/opt/loom',
  config: '/etc/loom/network.yaml',
  data: '/var/loom/data',
  node: '/var/loom/node',
  healthcheck: '/opt/loom/scripts/docker/healthcheck.cjs',
  loom: '/opt/loom/packages/cli/dist/bin/loom.js',
  orderer: '/opt/loom/packages/orderer/dist/main.js',
  peer: '/opt/loom/packages/peer/dist/main.js',
  /** Chaincode source directories (bind-mounted into the setup and deploy services). */
  chaincode: '/etc/loom/chaincode',
  /** Written by `serve-peer` once the peer is up and its chaincode installed (see healthcheck.cjs). */
  peerReady: '/tmp/loom-peer-ready',
} as const;

export const DEFAULT_IMAGE = 'loom:latest';

export const caService = (org: AnyOrg): string => `ca.${org.domain}`;
export const setupService = 'setup';
export const joinService = 'join';
export const deployService = 'deploy';

/** Where `setup` writes each chaincode's package in the shared volume (`serve-peer` installs it). */
export const chaincodePackageFile = (c: NetworkConfig, name: string) => join(c.dataDir, 'chaincodes', `${name}.tar.gz`);

/**
 * The network as seen from inside the compose network: every host is the node's service name,
 * and the data directory is the shared volume.
 */
export function composeNetwork(net: NetworkConfig, dataDir: string = CONTAINER.data): NetworkConfig {
  const ca = <T extends AnyOrg>(org: T): T => ({ ...org, ca: { ...org.ca, host: caService(org) } });
  return {
    ...net,
    dataDir,
    organizations: net.organizations.map((org) => ({
      ...ca(org),
      peers: org.peers.map((p) => ({ ...p, host: p.fqdn })),
    })),
    ordererOrganization: {
      ...ca(net.ordererOrganization),
      orderers: net.ordererOrganization.orderers.map((o) => ({ ...o, host: o.fqdn })),
    },
    chaincodes: net.chaincodes.map((cc) => ({ ...cc, path: `${CONTAINER.chaincode}/${cc.name}` })),
  };
}

const scheme = (net: NetworkConfig) => (net.tls.enabled ? 'https' : 'http');

// ---------------------------------------------------------------------------------------------
// The compose file
// ---------------------------------------------------------------------------------------------

export interface ComposeOptions {
  /** The network-config as the compose file should bind-mount it, relative to the compose file. */
  configMount: string;
  /** Image reference; the generated file reads `${LOOM_IMAGE:-<image>}`. */
  image?: string;
  /** The command that generated the file, for the header comment. */
  generatedBy?: string;
  /** Directory of the compose file, for the chaincode bind mounts; default the working directory. */
  composeDir?: string;
}

// A generous timeout: Docker does not kill a check that overruns it, so short timeouts pile up
// healthcheck processes on a loaded machine.
const HEALTH = { interval: '3s', timeout: '15s', retries: 60, start_period: '3s' };
const ports = (...ps: (number | undefined)[]) =>
  ps.filter((p): p is number => p !== undefined).map((p) => `127.0.0.1:${p}:${p}`);

/** The docker-compose file for `net` (compose file format 3.8 keys; docker-compose ≥ 1.29 or v2). */
export function composeFile(net: NetworkConfig, options: ComposeOptions): string {
  const c = composeNetwork(net);
  const image = `\${LOOM_IMAGE:-${options.image ?? DEFAULT_IMAGE}}`;
  const dataVolume = `${net.name}-data`;
  const sharedMount = `${dataVolume}:${CONTAINER.data}`;
  const configMount = `${options.configMount}:${CONTAINER.config}:ro`;
  // The chaincode sources, for packaging (setup) and the package ids of the definitions (deploy).
  const chaincodeMounts = net.chaincodes.map(
    (cc) => `${mountPath(options.composeDir ?? process.cwd(), cc.path)}:${CONTAINER.chaincode}/${cc.name}:ro`,
  );
  const tlsScheme = scheme(net);
  const base = (name: string) => ({
    image,
    container_name: name,
    hostname: name,
  });
  const health = (url: string) => ({
    environment: { LOOM_HEALTHCHECK_URL: url },
    healthcheck: { test: ['CMD', 'node', CONTAINER.healthcheck], ...HEALTH },
  });

  const services: Record<string, unknown> = {};
  const volumes: Record<string, Record<string, never>> = { [dataVolume]: {} };

  for (const org of allOrgs(c)) {
    const name = caService(org);
    services[name] = {
      ...base(name),
      command: ['node', CONTAINER.loom, 'network', 'serve-ca', '--config', CONTAINER.config, '--org', org.mspId],
      ...health(`${tlsScheme}://127.0.0.1:${org.ca.port}/healthz`),
      ports: ports(org.ca.port),
      volumes: [configMount, sharedMount],
      restart: 'unless-stopped',
    };
  }

  services[setupService] = {
    image,
    container_name: `${net.name}-${setupService}`,
    command: ['node', CONTAINER.loom, 'network', 'setup', '--config', CONTAINER.config, '--stage', 'crypto'],
    healthcheck: { disable: true },
    volumes: [configMount, sharedMount, ...chaincodeMounts],
    depends_on: Object.fromEntries(allOrgs(c).map((org) => [caService(org), { condition: 'service_healthy' }])),
  };

  const oo = c.ordererOrganization;
  for (const o of oo.orderers) {
    const ledger = `${o.fqdn}-ledger`;
    volumes[ledger] = {};
    services[o.fqdn] = {
      ...base(o.fqdn),
      command: ['node', CONTAINER.orderer, '--config', join(layout.nodeDir(c, oo, 'orderers', o.fqdn), 'orderer.yaml')],
      ...health(`http://127.0.0.1:${o.operationsPort}/healthz`),
      ports: ports(o.port, o.adminPort, o.operationsPort),
      volumes: [sharedMount, `${ledger}:${CONTAINER.node}`],
      depends_on: { [setupService]: { condition: 'service_completed_successfully' } },
      restart: 'unless-stopped',
    };
  }

  services[joinService] = {
    image,
    container_name: `${net.name}-${joinService}`,
    command: ['node', CONTAINER.loom, 'network', 'setup', '--config', CONTAINER.config, '--stage', 'join'],
    healthcheck: { disable: true },
    volumes: [configMount, sharedMount],
    depends_on: Object.fromEntries(oo.orderers.map((o) => [o.fqdn, { condition: 'service_healthy' }])),
  };

  // Peers: `serve-peer` runs the peer node and installs the chaincode packages on loopback; healthy
  // once both are done. Chaincode processes are children of the peer, inside its container.
  const peers = c.organizations.flatMap((org) => org.peers);
  for (const p of peers) {
    const ledger = `${p.fqdn}-ledger`;
    volumes[ledger] = {};
    const h = health(`http://127.0.0.1:${p.operationsPort}/healthz`);
    services[p.fqdn] = {
      ...base(p.fqdn),
      command: ['node', CONTAINER.loom, 'network', 'serve-peer', '--config', CONTAINER.config, '--peer', p.fqdn],
      environment: { ...h.environment, LOOM_READY_FILE: CONTAINER.peerReady },
      healthcheck: h.healthcheck,
      ports: ports(p.port, p.operationsPort),
      volumes: [configMount, sharedMount, `${ledger}:${CONTAINER.node}`],
      depends_on: { [joinService]: { condition: 'service_completed_successfully' } },
      restart: 'unless-stopped',
    };
  }

  if (net.chaincodes.length > 0 && peers.length > 0) {
    services[deployService] = {
      image,
      container_name: `${net.name}-${deployService}`,
      command: ['node', CONTAINER.loom, 'network', 'setup', '--config', CONTAINER.config, '--stage', 'deploy'],
      healthcheck: { disable: true },
      volumes: [configMount, sharedMount, ...chaincodeMounts],
      depends_on: Object.fromEntries(peers.map((p) => [p.fqdn, { condition: 'service_healthy' }])),
    };
  }

  const header = [
    `# The Loom network '${net.name}' in containers. Generated by:`,
    `#   ${options.generatedBy ?? 'loom network compose'}`,
    '# Do not edit by hand: change the network-config and generate again. See docs/docker.md.',
    '# Build the image first (docker build -t loom .), then: docker compose up -d',
    '',
  ].join('\n');
  return header + toYaml({ version: '3.8', services, volumes }, { lineWidth: 0 });
}

/** `path` as a compose bind-mount source relative to `composeDir` (always `./…` or `../…`). */
export function mountPath(composeDir: string, path: string): string {
  const rel = relative(resolve(composeDir), resolve(path)).split(sep).join('/');
  return rel.startsWith('.') ? rel : `./${rel}`;
}

export async function writeComposeFile(
  net: NetworkConfig,
  configFile: string,
  outFile: string,
  image?: string,
): Promise<string> {
  const mount = mountPath(dirname(resolve(outFile)), configFile);
  const text = composeFile(net, {
    configMount: mount,
    composeDir: dirname(resolve(outFile)),
    ...(image ? { image } : {}),
    generatedBy: [
      'loom network compose --config',
      relative(process.cwd(), resolve(configFile)) || configFile,
      '-o',
      relative(process.cwd(), resolve(outFile)) || outFile,
      ...(image && image !== DEFAULT_IMAGE ? ['--image', image] : []),
    ].join(' '),
  });
  await mkdir(dirname(resolve(outFile)), { recursive: true });
  await writeFile(outFile, text);
  return text;
}

// ---------------------------------------------------------------------------------------------
// What the containers run
// ---------------------------------------------------------------------------------------------

/** The CA config file `serve-ca` writes for `org` (listening on every interface of its container). */
export async function writeCaConfig(c: NetworkConfig, org: AnyOrg): Promise<string> {
  const dir = layout.caDir(c, org);
  await mkdir(dir, { recursive: true });
  const file = join(dir, 'ca.yaml');
  await writeFile(
    file,
    toYaml({
      name: org.ca.name,
      mspId: org.mspId,
      listen: { host: '0.0.0.0', port: org.ca.port },
      dataDir: './data',
      bootstrap: { id: org.ca.admin.user, secret: org.ca.admin.secret },
      csr: { cn: org.ca.name, names: [{ O: org.domain }] },
      tls: { enabled: c.tls.enabled, hosts: [caService(org), 'localhost', '127.0.0.1'] },
    }),
  );
  return file;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function retry<T>(what: string, timeoutMs: number, fn: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (e) {
      if (Date.now() > deadline) throw new Error(`${what}: gave up after ${attempt} attempts: ${(e as Error).message}`);
      await sleep(Math.min(500 * attempt, 3000));
    }
  }
}

async function tlsRootOf(c: NetworkConfig, org: AnyOrg, timeoutMs: number): Promise<string | undefined> {
  if (!c.tls.enabled) return undefined;
  const file = join(layout.caDir(c, org), 'data', 'tlsca-cert.pem');
  const deadline = Date.now() + timeoutMs;
  while (!existsSync(file)) {
    if (Date.now() > deadline) throw new Error(`${caService(org)} did not write its TLS root ${file}`);
    await sleep(200);
  }
  return readFile(file, 'utf8');
}

/**
 * Stage `crypto`: with the CAs up, enroll every identity, write the orderer config files and the
 * genesis blocks into the shared volume. Idempotent: a second run reuses what is there.
 */
export async function setupCrypto(
  c: NetworkConfig,
  progress: Progress,
  timeoutMs = 120_000,
): Promise<Record<string, OrgCrypto>> {
  const crypto: Record<string, OrgCrypto> = {};
  for (const org of allOrgs(c)) {
    const root = await tlsRootOf(c, org, timeoutMs);
    await waitForHealthy(`${caUrl(c, org)}/healthz`, root ? [root] : undefined, timeoutMs);
    crypto[org.mspId] = await retry(`enrolling ${org.mspId} through ${caService(org)}`, 30_000, () =>
      enrollOrganization(c, org),
    );
    progress.step(`enrolled ${org.mspId}'s admin, client and nodes through ${caUrl(c, org)}`);
  }
  await makeGenesisBlocks(c, crypto);
  progress.step(`genesis blocks for ${c.channels.map((ch) => ch.name).join(', ')} in ${join(c.dataDir, 'channels')}`);

  const oo = c.ordererOrganization;
  for (const o of oo.orderers) {
    const dir = layout.nodeDir(c, oo, 'orderers', o.fqdn);
    const m = crypto[oo.mspId]!.nodes[o.name]!;
    const file = join(dir, 'orderer.yaml');
    await writeFile(
      file,
      toYaml({
        id: o.name,
        mspId: oo.mspId,
        mspDir: m.mspDir,
        dataDir: CONTAINER.node,
        host: '0.0.0.0',
        port: o.port,
        adminPort: o.adminPort,
        raftPort: o.raftPort,
        operationsPort: o.operationsPort,
        ...(c.tls.enabled
          ? { tls: { certFile: join(m.tlsDir, 'server.crt'), keyFile: join(m.tlsDir, 'server.key') } }
          : {}),
      }),
    );
    progress.step(`wrote ${file}`);
  }

  const urlOf = (p: { host: string; port: number }) => `${scheme(c)}://${p.host}:${p.port}`;
  const allPeers = c.organizations.flatMap((org) => org.peers.map((p) => ({ org, p })));
  for (const { org, p } of allPeers) {
    const dir = layout.nodeDir(c, org, 'peers', p.fqdn);
    const m = crypto[org.mspId]!.nodes[p.name]!;
    const file = join(dir, 'peer.yaml');
    await writeFile(
      file,
      toYaml({
        id: p.fqdn,
        mspId: org.mspId,
        mspDir: m.mspDir,
        dataDir: CONTAINER.node,
        listen: { host: '0.0.0.0', port: p.port },
        operations: { host: '0.0.0.0', port: p.operationsPort },
        chaincodePort: p.chaincodePort,
        orderers: oo.orderers.map((o) => urlOf(o)),
        // Joined at start from the genesis blocks in the shared volume (a ledger on disk is reopened).
        channels: c.channels
          .filter((ch) => ch.organizations.includes(org.mspId))
          .map((ch) => ({ name: ch.name, genesisBlock: layout.genesisBlock(c, ch.name) })),
        ...(c.tls.enabled
          ? { tls: { certFile: join(m.tlsDir, 'server.crt'), keyFile: join(m.tlsDir, 'server.key') } }
          : {}),
        peers: allPeers.filter((x) => x.p !== p).map((x) => ({ mspId: x.org.mspId, url: urlOf(x.p) })),
        logLevel: 'info',
      }),
    );
    progress.step(`wrote ${file}`);
  }

  for (const cc of c.chaincodes) {
    const file = chaincodePackageFile(c, cc.name);
    const pkg = await createPackage(cc.path, `${cc.name}_${cc.version}`);
    await mkdir(dirname(file), { recursive: true });
    await writeFile(file, pkg);
    progress.step(`packaged chaincode ${cc.name} ${cc.version} from ${cc.path} into ${file}`);
  }
  return crypto;
}

/** Stage `join`: once the orderers answer, join each to the channels it is a consenter of. */
export async function setupJoin(c: NetworkConfig, progress: Progress, timeoutMs = 120_000): Promise<void> {
  // Mutual-TLS listeners want a client certificate: the orderer org admin's, when it has one.
  await useNetworkAdminTls(c);
  const roots: string[] = [];
  for (const org of allOrgs(c)) {
    const r = await tlsRootOf(c, org, timeoutMs);
    if (r) roots.push(r);
  }
  const genesis = new Map<string, Uint8Array>();
  for (const ch of c.channels) {
    const file = layout.genesisBlock(c, ch.name);
    if (!existsSync(file)) throw new Error(`no genesis block ${file}: run 'loom network setup --stage crypto' first`);
    genesis.set(ch.name, new Uint8Array(await readFile(file)));
  }
  await Promise.all(
    c.ordererOrganization.orderers.map(async (o) => {
      await waitForHealthy(`http://${o.host}:${o.operationsPort}/healthz`, undefined, timeoutMs);
      const joined = await retry(`joining ${o.fqdn}`, 60_000, () => joinOrdererToChannels(c, o, genesis, roots));
      progress.step(
        joined.length > 0 ? `joined ${o.fqdn} to ${joined.join(', ')}` : `${o.fqdn} already had its channels`,
      );
    }),
  );
}

const peerOf = (c: NetworkConfig, fqdn: string) => {
  for (const org of c.organizations) {
    const p = org.peers.find((x) => x.fqdn === fqdn || x.name === fqdn);
    if (p) return { org, p };
  }
  throw new Error(
    `no peer ${fqdn} in the network-config; peers: ${c.organizations.flatMap((o) => o.peers.map((p) => p.fqdn)).join(', ')}`,
  );
};

/**
 * What a peer container runs: the peer node as a child process (its config written by `setup`),
 * then, on loopback (the install route is localhost-only), the installation of every chaincode
 * package of the peer's channels; then the ready file the healthcheck waits for. Signals are
 * passed to the peer; resolves with the peer's exit code.
 */
export async function servePeer(
  c: NetworkConfig,
  fqdn: string,
  progress: Progress,
  options: { readyFile?: string; timeoutMs?: number } = {},
): Promise<number> {
  const { org, p } = peerOf(c, fqdn);
  const readyFile = options.readyFile ?? CONTAINER.peerReady;
  const timeoutMs = options.timeoutMs ?? 300_000;
  await rm(readyFile, { force: true });
  const config = join(layout.nodeDir(c, org, 'peers', p.fqdn), 'peer.yaml');
  if (!existsSync(config)) throw new Error(`no ${config}: the setup service writes it ('loom network setup')`);
  const child = spawn(process.execPath, [CONTAINER.peer, '--config', config], { stdio: 'inherit' });
  const exited = new Promise<number>((done) => child.once('exit', (code, signal) => done(code ?? (signal ? 1 : 0))));
  let alive = true;
  void exited.then(() => {
    alive = false;
  });
  const forward = (sig: NodeJS.Signals) => () => child.kill(sig);
  process.on('SIGTERM', forward('SIGTERM'));
  process.on('SIGINT', forward('SIGINT'));
  try {
    await waitForHealthy(`http://127.0.0.1:${p.operationsPort}/healthz`, undefined, timeoutMs, () => alive);
    const roots: string[] = [];
    for (const o of allOrgs(c)) {
      const r = await tlsRootOf(c, o, timeoutMs);
      if (r) roots.push(r);
    }
    await useNetworkAdminTls(c);
    const channels = c.channels.filter((ch) => ch.organizations.includes(org.mspId)).map((ch) => ch.name);
    for (const cc of c.chaincodes.filter((x) => channels.includes(x.channel))) {
      const file = chaincodePackageFile(c, cc.name);
      if (!existsSync(file)) throw new Error(`no chaincode package ${file}: the setup service writes it`);
      const pkg = new Uint8Array(await readFile(file));
      const r = await retry(`installing ${cc.name} on ${p.fqdn}`, timeoutMs, () =>
        installOnPeer(`${scheme(c)}://127.0.0.1:${p.port}`, pkg, roots),
      );
      progress.step(`${r.alreadyInstalled ? 'already installed' : 'installed'} ${r.packageId} on ${p.fqdn}`);
    }
    await writeFile(readyFile, `${Date.now()}\n`);
    progress.step(`${p.fqdn} (${org.mspId}) ready`);
  } catch (e) {
    if (alive) child.kill('SIGTERM');
    await exited;
    throw e;
  }
  return exited;
}

/** Stage `deploy`: once the peers are healthy (packages installed), approve and commit every chaincode. */
export async function setupDeploy(c: NetworkConfig, progress: Progress): Promise<void> {
  await retry('deploying the chaincodes', 120_000, () => deployChaincodes(c, progress, undefined, { install: false }));
}
