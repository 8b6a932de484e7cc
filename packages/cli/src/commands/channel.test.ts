import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { channelConfigFromNetwork, decodeConfigUpdate, loadNetworkConfig } from '@loom/common';
import { createTestOrg } from '@loom/common/testing/index';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { parse as parseYaml, stringify as toYaml } from 'yaml';
import { buildCli } from '../index.js';

const defaultConfig = fileURLToPath(new URL('../../../../network-config/default.yaml', import.meta.url));
const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

/** Runs `loom <args>` in-process; returns what it printed. */
async function loom(args: string[]): Promise<string> {
  let out = '';
  const spy = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    out += typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString();
    return true;
  });
  try {
    await buildCli()
      .exitOverride()
      .parseAsync(['node', 'loom', ...args]);
  } finally {
    spy.mockRestore();
  }
  return out;
}

describe('loom channel config (offline parts)', async () => {
  const net = await loadNetworkConfig(defaultConfig);
  const [org1, org2, ord] = await Promise.all([
    createTestOrg('Org1MSP'),
    createTestOrg('Org2MSP'),
    createTestOrg('OrdererMSP'),
  ]);
  const material = (o: typeof org1) => ({ rootCerts: [o.ca.certPem], tlsRootCerts: [o.ca.certPem] });
  const config = channelConfigFromNetwork(
    net,
    'mychannel',
    { Org1MSP: material(org1), Org2MSP: material(org2), OrdererMSP: material(ord) },
    Object.fromEntries(
      net.ordererOrganization.orderers.map((o) => [
        o.name,
        { identityCert: ord.orderer.certPem, tlsCert: ord.orderer.certPem },
      ]),
    ),
  );

  it('registers fetch, diff, compute-update, sign and update', () => {
    const channel = buildCli().commands.find((c) => c.name() === 'channel')!;
    const cfg = channel.commands.find((c) => c.name() === 'config')!;
    expect(cfg.commands.map((c) => c.name()).sort()).toEqual(['compute-update', 'diff', 'fetch', 'sign', 'update']);
  });

  it('diff names the changed elements; compute-update writes a readable update file with bumped versions', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'loom-cli-channel-'));
    dirs.push(dir);
    const orig = join(dir, 'config.yaml');
    const edited = join(dir, 'new.json');
    await writeFile(orig, toYaml(config));
    const changed = structuredClone(config);
    changed.orderer.batch.maxMessageCount = 10;
    delete changed.orgs.Org2MSP;
    await writeFile(edited, JSON.stringify(changed));

    const diff = await loom(['channel', 'config', 'diff', orig, edited]);
    expect(diff).toContain(
      'modified orderer (v0 → v0, needs /Channel/Orderer/Admins): batch.maxMessageCount: 500 → 10',
    );
    expect(diff).toContain('modified channel (v0 → v0, needs /Channel/Admins): orgs: - "Org2MSP"');
    expect(diff).toContain('removed orgs.Org2MSP');

    const file = join(dir, 'update.yaml');
    await loom(['channel', 'config', 'compute-update', orig, edited, '-o', file]);
    const text = await readFile(file, 'utf8');
    const u = parseYaml(text) as {
      channelId: string;
      baseSequence: number;
      changes: string[];
      config: typeof config;
      configUpdate: string;
      signatures: unknown[];
    };
    expect(u).toMatchObject({ channelId: 'mychannel', baseSequence: 0, signatures: [] });
    expect(u.config.orderer.version).toBe(1);
    expect(u.config.version).toBe(1);
    expect(u.changes).toContain(
      'modified orderer (v0 → v1, needs /Channel/Orderer/Admins): batch.maxMessageCount: 500 → 10',
    );
    expect(text).toContain('-----BEGIN CERTIFICATE-----');
    // configUpdate is exactly the encoding of the readable part.
    const decoded = decodeConfigUpdate(new Uint8Array(Buffer.from(u.configUpdate, 'base64')));
    expect(decoded.config.orderer.batch.maxMessageCount).toBe(10);

    // Nothing changed: a clear error, no file.
    await expect(
      loom(['channel', 'config', 'compute-update', orig, orig, '-o', join(dir, 'none.yaml')]),
    ).rejects.toMatchObject({
      code: 'CONFIG_UPDATE_EMPTY',
    });

    // Edited after someone signed: refused before any identity or network is needed.
    u.signatures = [{ signer: 'someone', signatureHeader: 'AAAA', signature: 'AAAA' }];
    u.config.orderer.batch.maxMessageCount = 11;
    await writeFile(file, toYaml(u));
    await expect(loom(['channel', 'config', 'sign', file])).rejects.toMatchObject({ code: 'CONFIG_FILE_EDITED' });
    await expect(loom(['channel', 'config', 'update', file])).rejects.toMatchObject({ code: 'CONFIG_FILE_EDITED' });
  });

  it('refuses broken files with their name and the problem', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'loom-cli-channel-'));
    dirs.push(dir);
    const bad = join(dir, 'bad.yaml');
    await writeFile(bad, 'channelId: [unclosed');
    await expect(loom(['channel', 'config', 'diff', bad, bad])).rejects.toMatchObject({ code: 'CONFIG_FILE_INVALID' });
    const wrong = join(dir, 'wrong.yaml');
    await writeFile(wrong, toYaml({ ...config, orderer: { ...config.orderer, consenters: [] } }));
    await expect(loom(['channel', 'config', 'diff', wrong, wrong])).rejects.toMatchObject({
      code: 'ENCODING_WRONG_SHAPE',
      message: expect.stringContaining('orderer.consenters'),
    });
    await expect(loom(['channel', 'config', 'sign', wrong])).rejects.toMatchObject({ code: 'CONFIG_FILE_INVALID' });
  });
});
