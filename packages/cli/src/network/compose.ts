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
 *   CAs (healthy) → setup (enroll, configs, genesis; completes) → orderers (healthy) → join (completes)
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join, relative, resolve, sep } from 'node:path';
import type { NetworkConfig } from '@loom/common';
import { stringify as toYaml } from 'yaml';
import { caUrl, enrollOrganization, type OrgCrypto } from './enroll.js';
import { waitForHealthy } from './http.js';
import { type AnyOrg, allOrgs, layout } from './layout.js';
import { joinOrdererToChannels, makeGenesisBlocks, type Progress } from './up.js';

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
} as const;

export const DEFAULT_IMAGE = 'loom:latest';

export const caService = (org: AnyOrg): string => `ca.${org.domain}`;
export const setupService = 'setup';
export const joinService = 'join';

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
}

const HEALTH = { interval: '2s', timeout: '5s', retries: 60, start_period: '3s' };
const ports = (...ps: (number | undefined)[]) =>
  ps.filter((p): p is number => p !== undefined).map((p) => `127.0.0.1:${p}:${p}`);

/** The docker-compose file for `net` (compose file format 3.8 keys; docker-compose ≥ 1.29 or v2). */
export function composeFile(net: NetworkConfig, options: ComposeOptions): string {
  const c = composeNetwork(net);
  const image = `\${LOOM_IMAGE:-${options.image ?? DEFAULT_IMAGE}}`;
  const dataVolume = `${net.name}-data`;
  const sharedMount = `${dataVolume}:${CONTAINER.data}`;
  const configMount = `${options.configMount}:${CONTAINER.config}:ro`;
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
    volumes: [configMount, sharedMount],
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

  // Peers run the peer node (packages/peer); they are behind the `peers` profile until `loom
  // network setup` writes peer configs (see docs/docker.md).
  for (const org of c.organizations) {
    for (const p of org.peers) {
      const ledger = `${p.fqdn}-ledger`;
      volumes[ledger] = {};
      services[p.fqdn] = {
        ...base(p.fqdn),
        profiles: ['peers'],
        command: ['node', CONTAINER.peer, '--config', join(layout.nodeDir(c, org, 'peers', p.fqdn), 'peer.yaml')],
        ...health(`http://127.0.0.1:${p.operationsPort}/healthz`),
        ports: ports(p.port, p.operationsPort),
        volumes: [sharedMount, `${ledger}:${CONTAINER.node}`],
        depends_on: { [joinService]: { condition: 'service_completed_successfully' } },
        restart: 'unless-stopped',
      };
    }
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
  return crypto;
}

/** Stage `join`: once the orderers answer, join each to the channels it is a consenter of. */
export async function setupJoin(c: NetworkConfig, progress: Progress, timeoutMs = 120_000): Promise<void> {
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
