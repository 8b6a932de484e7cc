/**
 * `loom chaincode deploy` and the last step of `loom network up`: for every chaincode of the
 * network-config, package it, install it on every peer of every organization, approve its
 * definition as every organization's admin, and commit it. Each step is skipped when already done
 * (installed package, existing approval, committed sequence), so it is idempotent on restart.
 */
import { readFile } from 'node:fs/promises';
import { type Gateway, GatewayError } from '@loom/client';
import { LoomError, type NetworkChaincode, type NetworkConfig } from '@loom/common';
import { createPackage, packageIdOf } from '@loom/peer/chaincode/package/index';
import { parse as parseYaml } from 'yaml';
import { gatewayFor, networkTlsRoots, peerUrl } from './gateway.js';
import { httpRequest } from './http.js';
import { useNetworkAdminTls } from './up.js';
import type { Progress } from './up.js';

export interface InstallResult {
  readonly packageId: string;
  readonly label: string;
  readonly alreadyInstalled?: boolean;
}

const dec = new TextDecoder();

function httpError(what: string, status: number, body: Buffer): LoomError {
  let code = 'PEER_REQUEST_FAILED';
  let message = body.toString();
  try {
    const j = JSON.parse(message) as { code?: string; message?: string };
    if (j.code) code = j.code;
    if (j.message) message = j.message;
  } catch {
    // not JSON
  }
  if (status === 404 && code === 'PEER_REQUEST_FAILED') {
    return new LoomError('PEER_ROUTE_MISSING', `${what}: this peer does not serve the route (HTTP 404)`);
  }
  return new LoomError(code, `${what}: HTTP ${status} ${message}`);
}

/** Installs a package on a peer through its admin route (localhost only). */
export async function installOnPeer(url: string, pkg: Uint8Array, tlsRoots: string[]): Promise<InstallResult> {
  const r = await httpRequest(`${url}/v1/admin/chaincodes`, {
    method: 'POST',
    body: pkg,
    headers: { 'content-type': 'application/octet-stream' },
    ca: tlsRoots,
    timeoutMs: 180_000,
  });
  if (r.status >= 300) throw httpError(`install on ${url}`, r.status, r.body);
  return JSON.parse(r.body.toString()) as InstallResult;
}

export async function queryInstalled(
  url: string,
  tlsRoots: string[],
): Promise<{ packageId: string; label: string; references?: unknown[] }[]> {
  const r = await httpRequest(`${url}/v1/admin/chaincodes`, { ca: tlsRoots, timeoutMs: 15_000 });
  if (r.status >= 300) throw httpError(`queryinstalled on ${url}`, r.status, r.body);
  return (JSON.parse(r.body.toString()) as { installed: { packageId: string; label: string }[] }).installed;
}

/** Whether the peer serves the chaincode admin routes (and so the gateway). */
export async function peerServesChaincode(url: string, tlsRoots: string[]): Promise<boolean> {
  try {
    const r = await httpRequest(`${url}/v1/admin/chaincodes`, { ca: tlsRoots, timeoutMs: 5_000 });
    return r.status === 200;
  } catch {
    return false;
  }
}

export interface DefinitionInput {
  name: string;
  version: string;
  sequence: number;
  endorsementPolicy?: string;
  collections?: unknown;
  initRequired?: boolean;
}

export async function definitionOf(cc: NetworkChaincode): Promise<DefinitionInput> {
  const def: DefinitionInput = { name: cc.name, version: cc.version, sequence: cc.sequence };
  if (cc.endorsementPolicy) def.endorsementPolicy = cc.endorsementPolicy;
  if (cc.collections) {
    const text = await readFile(cc.collections, 'utf8');
    def.collections = cc.collections.endsWith('.json') ? text : parseYaml(text);
  }
  return def;
}

const lifecycle = (g: Gateway, channel: string) => g.getNetwork(channel).getContract('_lifecycle');

export async function queryCommitted(g: Gateway, channel: string, name: string): Promise<{ sequence: number } | null> {
  try {
    return JSON.parse(
      dec.decode(await lifecycle(g, channel).evaluateTransaction('QueryChaincodeDefinition', JSON.stringify({ name }))),
    ) as { sequence: number };
  } catch (e) {
    if (e instanceof GatewayError && /NOT_FOUND|not defined/.test(`${e.code} ${e.message}`)) return null;
    throw e;
  }
}

async function hasApproved(g: Gateway, channel: string, name: string, sequence: number): Promise<boolean> {
  try {
    await lifecycle(g, channel).evaluateTransaction(
      'QueryApprovedChaincodeDefinition',
      JSON.stringify({ name, sequence }),
    );
    return true;
  } catch {
    return false;
  }
}

export async function deployChaincode(
  net: NetworkConfig,
  cc: NetworkChaincode,
  progress: Progress,
  /** `install: false`: the packages are installed already (e.g. by the peers' containers). */
  options: { install?: boolean } = {},
): Promise<void> {
  await useNetworkAdminTls(net);
  const tlsRoots = await networkTlsRoots(net);
  const channel = cc.channel;
  const orgs = net.organizations.filter((o) =>
    net.channels.find((c) => c.name === channel)?.organizations.includes(o.mspId),
  );
  const label = `${cc.name}_${cc.version}`;
  const t0 = Date.now();
  const pkg = await createPackage(cc.path, label);
  const packageId = packageIdOf(label, pkg);
  progress.step(
    `chaincode ${cc.name}: packaged ${label} (${pkg.length} bytes) as ${packageId.slice(0, label.length + 13)}…`,
  );

  const admins = new Map<string, Gateway>();
  try {
    for (const org of orgs) admins.set(org.mspId, await gatewayFor(net, org, 'Admin', { tlsRoots }));
    const first = admins.get(orgs[0]!.mspId)!;
    const committed = await queryCommitted(first, channel, cc.name);
    const peers = orgs.flatMap((o) => o.peers.map((p) => ({ org: o, p })));
    await Promise.all(
      (options.install === false ? [] : peers).map(async ({ org, p }) => {
        const r = await installOnPeer(peerUrl(net, p), pkg, tlsRoots);
        if (r.packageId !== packageId)
          throw new LoomError(
            'CHAINCODE_INSTALL_FAILED',
            `${p.fqdn} answered package id ${r.packageId}, expected ${packageId}`,
          );
        progress.step(
          `chaincode ${cc.name}: ${r.alreadyInstalled ? 'already installed' : 'installed'} on ${p.fqdn} (${org.mspId})`,
        );
      }),
    );
    if (committed && committed.sequence >= cc.sequence) {
      progress.step(`chaincode ${cc.name}: sequence ${committed.sequence} already committed on ${channel}`);
      return;
    }
    const def = await definitionOf(cc);
    for (const org of orgs) {
      const g = admins.get(org.mspId)!;
      if (await hasApproved(g, channel, cc.name, cc.sequence)) {
        progress.step(`chaincode ${cc.name}: Admin@${org.domain} already approved sequence ${cc.sequence}`);
        continue;
      }
      // Endorsed by the approving org's own peer alone, as in Fabric.
      await lifecycle(g, channel).submit('ApproveChaincodeDefinitionForMyOrg', {
        arguments: [JSON.stringify({ ...def, packageId })],
        endorsingOrganizations: [org.mspId],
      });
      progress.step(`chaincode ${cc.name}: approved by Admin@${org.domain}`);
    }
    const readiness = JSON.parse(
      dec.decode(await lifecycle(first, channel).evaluateTransaction('CheckCommitReadiness', JSON.stringify(def))),
    ) as { approvals: Record<string, boolean> };
    progress.step(
      `chaincode ${cc.name}: commit readiness ${Object.entries(readiness.approvals)
        .map(([k, v]) => `${k}=${v}`)
        .join(', ')}`,
    );
    await lifecycle(first, channel).submitTransaction('CommitChaincodeDefinition', JSON.stringify(def));
    progress.step(
      `chaincode ${cc.name}: definition ${cc.version} sequence ${cc.sequence} committed on ${channel} (${Date.now() - t0} ms)`,
    );
  } finally {
    for (const g of admins.values()) g.close();
  }
}

/** Deploys every chaincode of the network-config (or only `name`). */
export async function deployChaincodes(
  net: NetworkConfig,
  progress: Progress,
  name?: string,
  options: { install?: boolean } = {},
): Promise<string[]> {
  const list = net.chaincodes.filter((c) => !name || c.name === name);
  if (name && list.length === 0) {
    throw new LoomError('CHAINCODE_NOT_FOUND', `no chaincode ${name} in ${net.source}`);
  }
  for (const cc of list) await deployChaincode(net, cc, progress, options);
  return list.map((c) => c.name);
}
