/**
 * Client-side access to a local network's peers: identities from the data directory's MSP folders,
 * TLS roots from the CAs' data, and `@loom/client` gateways on an organization's peer.
 */
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { connect, type Gateway, signers } from '@loom/client';
import { LoomError, type NetworkConfig, type NetworkPeerOrganization } from '@loom/common';
import { useClientTls } from './http.js';
import { allOrgs, layout } from './layout.js';

export type UserName = 'Admin' | 'User1' | (string & {});

export interface LocalIdentity {
  readonly mspId: string;
  readonly certPem: string;
  readonly keyPem: string;
}

const scheme = (net: NetworkConfig) => (net.tls.enabled ? 'https' : 'http');

/** The gateway URL of a peer. */
export function peerUrl(net: NetworkConfig, p: { host: string; port: number }): string {
  return `${scheme(net)}://${p.host}:${p.port}`;
}

/** Refuses a data directory no `loom network up` has populated, saying what to do. */
export function requireNetworkData(net: NetworkConfig): void {
  if (!existsSync(join(net.dataDir, 'pids.json')) && !existsSync(join(net.dataDir, 'channels'))) {
    throw new LoomError('NETWORK_NOT_FOUND', `no network at ${net.dataDir}: run \`loom network up\` first`, {
      details: { dataDir: net.dataDir },
    });
  }
}

export function findOrg(net: NetworkConfig, mspId: string): NetworkPeerOrganization {
  const org = net.organizations.find((o) => o.mspId === mspId || o.name === mspId || o.domain === mspId);
  if (!org) {
    throw new LoomError(
      'ORG_NOT_FOUND',
      `no organization ${mspId} in ${net.source}; known: ${net.organizations.map((o) => o.mspId).join(', ')}`,
    );
  }
  return org;
}

/** An enrolled user (`Admin`, `User1`) of an organization, read from its MSP folder. */
export async function loadIdentity(
  net: NetworkConfig,
  org: NetworkPeerOrganization,
  user: UserName,
): Promise<LocalIdentity> {
  const msp = join(layout.userDir(net, org, user), 'msp');
  const certFile = join(msp, 'signcerts', 'cert.pem');
  if (!existsSync(certFile)) {
    requireNetworkData(net);
    throw new LoomError(
      'IDENTITY_NOT_FOUND',
      `no identity ${user}@${org.domain} in ${msp}: use --user Admin or User1, or run \`loom network up\``,
    );
  }
  const keys = (await readdir(join(msp, 'keystore'))).sort();
  if (keys.length === 0) throw new LoomError('IDENTITY_NOT_FOUND', `no private key in ${join(msp, 'keystore')}`);
  return {
    mspId: org.mspId,
    certPem: await readFile(certFile, 'utf8'),
    keyPem: await readFile(join(msp, 'keystore', keys[0]!), 'utf8'),
  };
}

/**
 * A user's TLS client pair (`users/<name>/tls/client.{crt,key}`), presented to mutual-TLS peers;
 * undefined when the network enrolled none (TLS off).
 */
export async function loadClientTls(
  net: NetworkConfig,
  org: NetworkPeerOrganization | NetworkConfig['ordererOrganization'],
  user: UserName,
): Promise<{ cert: string; key: string } | undefined> {
  const dir = join(layout.userDir(net, org, user), 'tls');
  if (!existsSync(join(dir, 'client.crt')) || !existsSync(join(dir, 'client.key'))) return undefined;
  return {
    cert: await readFile(join(dir, 'client.crt'), 'utf8'),
    key: await readFile(join(dir, 'client.key'), 'utf8'),
  };
}

/**
 * PEMs of every TLS CA root of the network (as each CA wrote it). Every CLI command that talks to
 * the nodes directly asks for these first, so this is also where the command starts presenting the
 * orderer org admin's TLS client certificate on its `httpRequest`s (mutual-TLS listeners require one).
 */
export async function networkTlsRoots(net: NetworkConfig): Promise<string[]> {
  if (net.tls.enabled) useClientTls(await loadClientTls(net, net.ordererOrganization, 'Admin'));
  const out: string[] = [];
  for (const org of allOrgs(net)) {
    const f = join(layout.caDir(net, org), 'data', 'tlsca-cert.pem');
    if (existsSync(f)) out.push(await readFile(f, 'utf8'));
  }
  return out;
}

/** A gateway connection as `user` of `org` on `peer` (default: the org's first peer). */
export async function gatewayFor(
  net: NetworkConfig,
  org: NetworkPeerOrganization,
  user: UserName,
  options: { peer?: { host: string; port: number }; tlsRoots?: string[] } = {},
): Promise<Gateway> {
  const id = await loadIdentity(net, org, user);
  const peer = options.peer ?? org.peers[0];
  if (!peer) throw new LoomError('PEER_NOT_FOUND', `${org.mspId} has no peer in ${net.source}`);
  const roots = options.tlsRoots ?? (await networkTlsRoots(net));
  const clientTls = net.tls.enabled ? await loadClientTls(net, org, user) : undefined;
  if (net.tls.clientAuthRequired && !clientTls) {
    throw new LoomError(
      'TLS_CLIENT_CERT_MISSING',
      `the peers require TLS client certificates (tls.clientAuthRequired) but ${user}@${org.domain} has none in ${join(layout.userDir(net, org, user), 'tls')}: run \`loom network up\` again to enroll one`,
    );
  }
  return connect({
    endpoint: peerUrl(net, peer),
    identity: { mspId: id.mspId, credentials: new TextEncoder().encode(id.certPem) },
    signer: signers.newPrivateKeySigner(id.keyPem),
    ...(net.tls.enabled
      ? { tls: { rootCerts: roots, ...(clientTls ? { clientCert: clientTls.cert, clientKey: clientTls.key } : {}) } }
      : {}),
    commitStatusOptions: { timeoutMs: 60_000 },
    endorseOptions: { timeoutMs: 60_000 },
    evaluateOptions: { timeoutMs: 60_000 },
    submitOptions: { timeoutMs: 30_000 },
  });
}
