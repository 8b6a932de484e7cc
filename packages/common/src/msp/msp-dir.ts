/**
 * Fabric-layout MSP folders on disk: `cacerts/`, `intermediatecerts/`, `admincerts/`, `crls/`,
 * `tlscacerts/`, `tlsintermediatecerts/`, `signcerts/`, `keystore/` and `config.yaml` with `NodeOUs`.
 * This is the file-system shell around the pure MspConfig.
 */
import { createPublicKey, type KeyObject } from 'node:crypto';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { decodePemBlocks, encodePem } from '../crypto/asn1.js';
import { privateKeyFromPem } from '../crypto/signing.js';
import { LoomError } from '../errors.js';
import { CRL_PEM_LABELS } from './certificate.js';
import { type MspConfig, MspErrorCode, type NodeOUsConfig } from './types.js';

export interface LocalSigningIdentity {
  readonly certPem: string;
  readonly keyPem: string;
  readonly privateKey: KeyObject;
}

export interface LoadedMsp {
  readonly config: MspConfig;
  /** Present when the folder has `signcerts/` and a matching key in `keystore/`. */
  readonly signingIdentity: LocalSigningIdentity | undefined;
}

function dirError(dir: string, reason: string, cause?: unknown): LoomError {
  return new LoomError(MspErrorCode.CONFIG_INVALID, `MSP folder ${dir}: ${reason}`, {
    httpStatus: 400,
    details: { dir, reason },
    cause,
  });
}

async function listFiles(dir: string): Promise<string[]> {
  try {
    const entries = await readdir(dir, { withFileTypes: true });
    return entries
      .filter((e) => e.isFile())
      .map((e) => e.name)
      .sort();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw e;
  }
}

/** Every PEM block with `label` in every file of `dir`, one PEM string each. */
async function readPems(dir: string, labels: readonly string[]): Promise<string[]> {
  const out: string[] = [];
  for (const name of await listFiles(dir)) {
    const text = await readFile(join(dir, name), 'utf8');
    let blocks: ReturnType<typeof decodePemBlocks>;
    try {
      blocks = decodePemBlocks(text);
    } catch (e) {
      throw dirError(dir, `${name}: ${(e as Error).message}`, e);
    }
    if (blocks.length === 0) throw dirError(dir, `${name} holds no PEM block`);
    for (const b of blocks) {
      if (!labels.includes(b.label)) throw dirError(dir, `${name}: unexpected PEM block ${b.label}`);
      // A file holding a single block is kept byte for byte, so serialized identities match the file.
      out.push(blocks.length === 1 ? text : encodePem(b.label, b.der));
    }
  }
  return out;
}

interface FabricOuIdentifier {
  Certificate?: string;
  OrganizationalUnitIdentifier?: string;
}

interface FabricMspYaml {
  NodeOUs?: {
    Enable?: boolean;
    ClientOUIdentifier?: FabricOuIdentifier;
    PeerOUIdentifier?: FabricOuIdentifier;
    AdminOUIdentifier?: FabricOuIdentifier;
    OrdererOUIdentifier?: FabricOuIdentifier;
  };
}

function readNodeOUs(doc: FabricMspYaml | null): NodeOUsConfig | undefined {
  const n = doc?.NodeOUs;
  if (!n) return undefined;
  const ou = (x: FabricOuIdentifier | undefined, dflt: string) => x?.OrganizationalUnitIdentifier ?? dflt;
  return {
    enable: n.Enable === true,
    clientOU: ou(n.ClientOUIdentifier, 'client'),
    peerOU: ou(n.PeerOUIdentifier, 'peer'),
    ordererOU: ou(n.OrdererOUIdentifier, 'orderer'),
    adminOU: ou(n.AdminOUIdentifier, 'admin'),
  };
}

/** Reads a Fabric-style MSP folder. Fabric keeps the MSP ID outside the folder, so the caller names it. */
export async function loadMspFromDir(dir: string, mspId: string): Promise<LoadedMsp> {
  const certLabels = ['CERTIFICATE'];
  const rootCerts = await readPems(join(dir, 'cacerts'), certLabels);
  if (rootCerts.length === 0) throw dirError(dir, 'cacerts/ is empty or missing');
  const intermediateCerts = await readPems(join(dir, 'intermediatecerts'), certLabels);
  const admins = await readPems(join(dir, 'admincerts'), certLabels);
  const revocationList = await readPems(join(dir, 'crls'), CRL_PEM_LABELS);
  const tlsRootCerts = await readPems(join(dir, 'tlscacerts'), certLabels);
  const tlsIntermediateCerts = await readPems(join(dir, 'tlsintermediatecerts'), certLabels);

  let nodeOUs: NodeOUsConfig | undefined;
  try {
    const text = await readFile(join(dir, 'config.yaml'), 'utf8');
    nodeOUs = readNodeOUs(parseYaml(text) as FabricMspYaml | null);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw dirError(dir, `config.yaml: ${(e as Error).message}`, e);
  }

  const config: MspConfig = {
    mspId,
    rootCerts,
    ...(intermediateCerts.length ? { intermediateCerts } : {}),
    ...(admins.length ? { admins } : {}),
    ...(revocationList.length ? { revocationList } : {}),
    ...(nodeOUs ? { nodeOUs } : {}),
    ...(tlsRootCerts.length ? { tlsRootCerts } : {}),
    ...(tlsIntermediateCerts.length ? { tlsIntermediateCerts } : {}),
  };

  const signCerts = await readPems(join(dir, 'signcerts'), certLabels);
  if (signCerts.length === 0) return { config, signingIdentity: undefined };
  if (signCerts.length > 1) throw dirError(dir, 'signcerts/ holds more than one certificate');
  const certPem = signCerts[0]!;
  const certKey = createPublicKey(certPem).export({ type: 'spki', format: 'der' });

  // Fabric names keys after their SKI (`<ski>_sk`) or `priv_sk`; pick the one matching the certificate.
  const keyDir = join(dir, 'keystore');
  for (const name of await listFiles(keyDir)) {
    const keyPem = await readFile(join(keyDir, name), 'utf8');
    let privateKey: KeyObject;
    try {
      privateKey = privateKeyFromPem(keyPem);
    } catch {
      continue;
    }
    const pub = createPublicKey(privateKey).export({ type: 'spki', format: 'der' });
    if (pub.equals(certKey)) return { config, signingIdentity: { certPem, keyPem, privateKey } };
  }
  throw dirError(dir, 'keystore/ has no private key matching signcerts/');
}

/** Anything that can describe its MSP: an MspConfig, or a test CA/org with `mspConfig()`. */
export type MspSource = MspConfig | { mspConfig(): MspConfig };

/** Writes a Fabric-layout MSP folder (with `signcerts/` and `keystore/` when an identity is given). */
export async function writeMspDir(
  dir: string,
  source: MspSource,
  identity?: { readonly certPem: string; readonly keyPem: string },
): Promise<void> {
  const config = 'mspConfig' in source ? source.mspConfig() : source;
  const writeAll = async (sub: string, prefix: string, pems: readonly string[] | undefined) => {
    if (!pems || pems.length === 0) return;
    await mkdir(join(dir, sub), { recursive: true });
    for (const [i, pem] of pems.entries()) await writeFile(join(dir, sub, `${prefix}-${i}.pem`), pem);
  };
  await mkdir(dir, { recursive: true });
  await writeAll('cacerts', 'ca', config.rootCerts);
  await writeAll('intermediatecerts', 'ica', config.intermediateCerts);
  await writeAll('admincerts', 'admin', config.admins);
  await writeAll('crls', 'crl', config.revocationList);
  await writeAll('tlscacerts', 'tlsca', config.tlsRootCerts);
  await writeAll('tlsintermediatecerts', 'tlsica', config.tlsIntermediateCerts);
  if (config.nodeOUs) {
    const n = config.nodeOUs;
    const ou = (id: string) => ({ Certificate: 'cacerts/ca-0.pem', OrganizationalUnitIdentifier: id });
    const doc = {
      NodeOUs: {
        Enable: n.enable,
        ClientOUIdentifier: ou(n.clientOU ?? 'client'),
        PeerOUIdentifier: ou(n.peerOU ?? 'peer'),
        AdminOUIdentifier: ou(n.adminOU ?? 'admin'),
        OrdererOUIdentifier: ou(n.ordererOU ?? 'orderer'),
      },
    };
    await writeFile(join(dir, 'config.yaml'), stringifyYaml(doc));
  }
  if (identity) {
    await mkdir(join(dir, 'signcerts'), { recursive: true });
    await mkdir(join(dir, 'keystore'), { recursive: true });
    await writeFile(join(dir, 'signcerts', 'cert.pem'), identity.certPem);
    await writeFile(join(dir, 'keystore', 'priv_sk'), identity.keyPem, { mode: 0o600 });
  }
}
