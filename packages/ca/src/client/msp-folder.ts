/**
 * Writes an enrollment as a Fabric-layout MSP folder that `loadMspFromDir` (common) reads:
 * `signcerts/cert.pem`, `keystore/key.pem` (0600), `cacerts/`, `tlscacerts/`, `crls/` and
 * `config.yaml` with NodeOUs in Fabric's format. The CA folders and config.yaml come from common's
 * `writeMspDir`, so both writers agree on names.
 */
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { MspConfig } from '@loom/common/msp/types';
import { writeMspDir } from '@loom/common/msp/msp-dir';

export interface MspFolderContents {
  readonly certPem: string;
  readonly keyPem: string;
  readonly caCertPem: string;
  readonly tlsCaCertPem?: string;
  readonly crlPem?: string;
  /** Write config.yaml with NodeOUs enabled (client, peer, orderer, admin). Default true. */
  readonly nodeOUs?: boolean;
}

export async function writeMspFolder(dir: string, c: MspFolderContents): Promise<void> {
  const config: MspConfig = {
    // writeMspDir writes no MSP ID: Fabric keeps it outside the folder.
    mspId: 'unused',
    rootCerts: [c.caCertPem],
    ...(c.tlsCaCertPem ? { tlsRootCerts: [c.tlsCaCertPem] } : {}),
    ...(c.crlPem ? { revocationList: [c.crlPem] } : {}),
    ...(c.nodeOUs === false ? {} : { nodeOUs: { enable: true } }),
  };
  await writeMspDir(dir, config);
  await mkdir(join(dir, 'signcerts'), { recursive: true });
  await mkdir(join(dir, 'keystore'), { recursive: true, mode: 0o700 });
  await writeFile(join(dir, 'signcerts', 'cert.pem'), c.certPem);
  const keyFile = join(dir, 'keystore', 'key.pem');
  await writeFile(keyFile, c.keyPem, { mode: 0o600 });
  // writeFile's mode applies only to new files; an overwritten key keeps whatever mode it had.
  await chmod(keyFile, 0o600);
}
