/**
 * Crypto material for a local network, all issued by the organizations' own CAs: the bootstrap
 * registrar enrolls, registers every identity the network-config implies (an org admin, a client
 * user, each peer or orderer), and each enrolls with a key made here and never sent (plus a TLS
 * certificate from the TLS CA for nodes). Written as Fabric-layout MSP folders.
 *
 * With TLS on, users also get a TLS client certificate from their org's TLS CA in
 * `users/<name>/tls/{client.crt,client.key,ca.crt}` (Fabric's layout): what they present to
 * mutual-TLS listeners (`tls.clientAuthRequired`). Nodes present their own `tls/server.crt`, which
 * the TLS CA issues for both server and client authentication.
 */
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CaClient, type CaIdentity, writeMspFolder } from '@loom/ca';
import type { NetworkConfig } from '@loom/common';
import { type AnyOrg, layout } from './layout.js';

export interface OrgCrypto {
  mspId: string;
  caRootPem: string;
  tlsRootPem: string;
  adminMspDir: string;
  clientMspDir: string;
  /** The admin's TLS client pair folder (`client.crt`, `client.key`), when TLS is enabled. */
  adminTlsDir?: string;
  nodes: Record<string, { mspDir: string; tlsDir: string; certPem: string; tlsCertPem: string }>;
}

export function caUrl(net: NetworkConfig, org: AnyOrg): string {
  return `${net.tls.enabled ? 'https' : 'http'}://${org.ca.host}:${org.ca.port}`;
}

async function enrollInto(
  ca: CaClient,
  registrar: CaIdentity,
  id: string,
  type: 'admin' | 'client' | 'peer' | 'orderer',
  dir: string,
  roots: { caRootPem: string; tlsRootPem: string },
  tlsHosts?: string[],
  clientTls = false,
): Promise<{ certPem: string; tlsCertPem?: string }> {
  const mspDir = join(dir, 'msp');
  const certFile = join(mspDir, 'signcerts', 'cert.pem');
  if (existsSync(certFile)) {
    if (clientTls && !existsSync(join(dir, 'tls', 'client.crt'))) {
      // A data directory enrolled before TLS client certificates: reenroll for one.
      const keys = (await readdir(join(mspDir, 'keystore'))).sort();
      const identity = {
        certPem: await readFile(certFile, 'utf8'),
        keyPem: await readFile(join(mspDir, 'keystore', keys[0] ?? 'missing'), 'utf8'),
      };
      const t = await ca.reenroll(identity, { profile: 'tls', csrOptions: { cn: id } });
      await writeTlsPair(join(dir, 'tls'), 'client', t, roots.tlsRootPem);
    }
    // Already enrolled by an earlier `network up` on this data directory.
    const tlsCert = join(dir, 'tls', 'server.crt');
    return {
      certPem: await readFile(certFile, 'utf8'),
      ...(existsSync(tlsCert) ? { tlsCertPem: await readFile(tlsCert, 'utf8') } : {}),
    };
  }
  const secret = `${id}-pw-${Math.random().toString(36).slice(2, 10)}`;
  await ca.register(registrar, { id, type, secret, maxEnrollments: -1 });
  const e = await ca.enroll({ id, secret, csrOptions: { cn: id } });
  await writeMspFolder(mspDir, {
    certPem: e.certPem,
    keyPem: e.keyPem,
    caCertPem: roots.caRootPem,
    tlsCaCertPem: roots.tlsRootPem,
  });
  if (!tlsHosts) {
    if (clientTls) {
      const t = await ca.enroll({ id, secret, profile: 'tls', csrOptions: { cn: id } });
      await writeTlsPair(join(dir, 'tls'), 'client', t, roots.tlsRootPem);
    }
    return { certPem: e.certPem };
  }
  const t = await ca.enroll({ id, secret, profile: 'tls', csrOptions: { cn: id, hosts: tlsHosts } });
  await writeTlsPair(join(dir, 'tls'), 'server', t, roots.tlsRootPem);
  return { certPem: e.certPem, tlsCertPem: t.certPem };
}

async function writeTlsPair(
  tlsDir: string,
  name: 'server' | 'client',
  pair: { certPem: string; keyPem: string },
  tlsRootPem: string,
): Promise<void> {
  await mkdir(tlsDir, { recursive: true });
  await writeFile(join(tlsDir, `${name}.crt`), pair.certPem);
  await writeFile(join(tlsDir, `${name}.key`), pair.keyPem, { mode: 0o600 });
  await writeFile(join(tlsDir, 'ca.crt'), tlsRootPem);
}

/** Enrolls every identity of one organization through its running CA. Idempotent per data dir. */
export async function enrollOrganization(net: NetworkConfig, org: AnyOrg): Promise<OrgCrypto> {
  const caDir = layout.caDir(net, org);
  const tlsRootPem = await readFile(join(caDir, 'data', 'tlsca-cert.pem'), 'utf8');
  const ca = new CaClient({ url: caUrl(net, org), tlsRootPem });
  const info = await ca.cainfo();
  const roots = { caRootPem: info.caChainPem, tlsRootPem: info.tlsCaChainPem };

  const registrarDir = join(caDir, 'registrar');
  let registrar: CaIdentity;
  if (existsSync(join(registrarDir, 'cert.pem'))) {
    registrar = {
      certPem: await readFile(join(registrarDir, 'cert.pem'), 'utf8'),
      keyPem: await readFile(join(registrarDir, 'key.pem'), 'utf8'),
    };
  } else {
    const e = await ca.enroll({ id: org.ca.admin.user, secret: org.ca.admin.secret });
    await mkdir(registrarDir, { recursive: true });
    await writeFile(join(registrarDir, 'cert.pem'), e.certPem);
    await writeFile(join(registrarDir, 'key.pem'), e.keyPem, { mode: 0o600 });
    registrar = e;
  }

  const adminDir = layout.userDir(net, org, 'Admin');
  const clientDir = layout.userDir(net, org, 'User1');
  const clientTls = net.tls.enabled;
  await enrollInto(ca, registrar, `Admin@${org.domain}`, 'admin', adminDir, roots, undefined, clientTls);
  await enrollInto(ca, registrar, `User1@${org.domain}`, 'client', clientDir, roots, undefined, clientTls);

  const nodes: OrgCrypto['nodes'] = {};
  const members =
    'peers' in org
      ? org.peers.map((p) => ({ ...p, kind: 'peers' as const }))
      : org.orderers.map((o) => ({ ...o, kind: 'orderers' as const }));
  for (const n of members) {
    const dir = layout.nodeDir(net, org, n.kind, n.fqdn);
    const got = await enrollInto(ca, registrar, n.fqdn, n.kind === 'peers' ? 'peer' : 'orderer', dir, roots, [
      n.host,
      n.fqdn,
      'localhost',
      '127.0.0.1',
    ]);
    nodes[n.name] = {
      mspDir: join(dir, 'msp'),
      tlsDir: join(dir, 'tls'),
      certPem: got.certPem,
      tlsCertPem: got.tlsCertPem ?? '',
    };
  }
  return {
    mspId: org.mspId,
    caRootPem: roots.caRootPem,
    tlsRootPem: roots.tlsRootPem,
    adminMspDir: join(adminDir, 'msp'),
    clientMspDir: join(clientDir, 'msp'),
    ...(clientTls ? { adminTlsDir: join(adminDir, 'tls') } : {}),
    nodes,
  };
}
