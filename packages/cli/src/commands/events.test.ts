import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadNetworkConfig, TxValidationCode } from '@loom/common';
import { createTestOrg } from '@loom/common/testing/index';
import type { Command } from 'commander';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { parse as parseYaml, stringify as toYaml } from 'yaml';
import { buildCli } from '../index.js';
import { layout } from '../network/layout.js';
import { chaincodeRecord, parseEventsArgs } from './events.js';

const defaultConfig = fileURLToPath(new URL('../../../../network-config/default.yaml', import.meta.url));
const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

async function loom(args: string[]): Promise<{ out: string; error?: { code?: string; message: string } }> {
  let out = '';
  const spy = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    out += typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString();
    return true;
  });
  const err = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
  try {
    const cli = buildCli();
    const override = (c: Command): void => {
      c.exitOverride();
      for (const sub of c.commands) override(sub);
    };
    override(cli);
    await cli.parseAsync(['node', 'loom', ...args]);
    return { out };
  } catch (e) {
    return { out, error: { code: (e as { code?: string }).code, message: (e as Error).message } };
  } finally {
    spy.mockRestore();
    err.mockRestore();
  }
}

describe('loom events', async () => {
  const root = await mkdtemp(join(tmpdir(), 'loom-events-'));
  dirs.push(root);
  const doc = parseYaml(await readFile(defaultConfig, 'utf8')) as Record<string, unknown>;
  doc.dataDir = join(root, 'data');
  doc.tls = { enabled: false, clientAuthRequired: false };
  const cfgFile = join(root, 'network.yaml');
  await writeFile(cfgFile, toYaml(doc));

  it('registers blocks and chaincode', () => {
    const events = buildCli().commands.find((c) => c.name() === 'events')!;
    expect(events.commands.map((c) => c.name()).sort()).toEqual(['blocks', 'chaincode']);
  });

  it('validates --start-block, --count and --peer', () => {
    expect(parseEventsArgs({ startBlock: '0', count: '3', peer: 'https://localhost:7051' })).toEqual({
      startBlock: 0,
      count: 3,
      peer: { host: 'localhost', port: 7051 },
    });
    expect(() => parseEventsArgs({ count: '0' })).toThrow(/--count must be an integer ≥ 1/);
    expect(() => parseEventsArgs({ count: 'many' })).toThrow(/--count/);
    expect(() => parseEventsArgs({ startBlock: '-1' })).toThrow(/--start-block must be an integer ≥ 0/);
    expect(() => parseEventsArgs({ startBlock: '1.5' })).toThrow(/--start-block/);
    expect(() => parseEventsArgs({ peer: 'nope' })).toThrow(/--peer must be a URL/);
  });

  it('prints a chaincode event payload as text, or base64 when it is not UTF-8', () => {
    const e = { blockNumber: 4, transactionId: 'tx1', chaincodeName: 'basic', eventName: 'Created' };
    expect(chaincodeRecord({ ...e, payload: new TextEncoder().encode('{"id":"a1"}') })).toMatchObject({
      type: 'chaincode',
      blockNumber: 4,
      payload: '{"id":"a1"}',
    });
    expect(chaincodeRecord({ ...e, payload: new Uint8Array([0xff, 0xfe]) })).toMatchObject({ payloadBase64: '//4=' });
    expect(TxValidationCode.VALID).toBe(0);
  });

  it('refuses bad flags with a code, as JSON with --json', async () => {
    const count = await loom(['--json', 'events', 'blocks', '--config', cfgFile, '--count', '0']);
    expect(count.error?.code).toBe('INVALID_ARGUMENT');
    expect(JSON.parse(count.out).error.code).toBe('INVALID_ARGUMENT');
    const noName = await loom(['events', 'chaincode', '--config', cfgFile]);
    expect(noName.error?.code).toBe('commander.missingMandatoryOptionValue');
    const channel = await loom(['events', 'blocks', '--config', cfgFile, '-C', 'nochannel']);
    expect(channel.error?.code).toBe('CHANNEL_NOT_FOUND');
    expect(channel.error?.message).toContain('mychannel');
    const noNetwork = await loom(['events', 'blocks', '--config', cfgFile]);
    expect(noNetwork.error?.code).toBe('NETWORK_NOT_FOUND');
  });

  it('refuses a checkpoint file that is not one', async () => {
    const cp = join(root, 'bad-checkpoint.json');
    await writeFile(cp, '{not json');
    const r = await loom(['events', 'blocks', '--config', cfgFile, '--checkpoint', cp]);
    expect(r.error?.code).toBe('CHECKPOINT_FILE_INVALID');
    expect(r.error?.message).toContain(cp);
  });

  it('says PEER_UNAVAILABLE when the gateway peer does not answer', async () => {
    // TLS on (the SDK's node transport is only loaded with TLS options); nobody listens on port 1.
    const tlsFile = join(root, 'network-tls.yaml');
    await writeFile(
      tlsFile,
      toYaml({ ...doc, dataDir: join(root, 'data-tls'), tls: { enabled: true, clientAuthRequired: false } }),
    );
    const net = await loadNetworkConfig(tlsFile);
    const org1 = await createTestOrg('Org1MSP');
    const org = net.organizations[0]!;
    const msp = join(layout.userDir(net, org, 'User1'), 'msp');
    await mkdir(join(msp, 'signcerts'), { recursive: true });
    await mkdir(join(msp, 'keystore'), { recursive: true });
    await writeFile(join(msp, 'signcerts', 'cert.pem'), org1.client.certPem);
    await writeFile(join(msp, 'keystore', 'key.pem'), org1.client.keyPem);
    await writeFile(join(net.dataDir, 'pids.json'), '[]');
    await mkdir(join(layout.caDir(net, org), 'data'), { recursive: true });
    await writeFile(join(layout.caDir(net, org), 'data', 'tlsca-cert.pem'), org1.ca.certPem);
    const r = await loom([
      '--json',
      'events',
      'blocks',
      '--config',
      tlsFile,
      '--peer',
      'https://127.0.0.1:1',
      '--count',
      '1',
    ]);
    expect(r.error?.code).toBe('PEER_UNAVAILABLE');
    expect(JSON.parse(r.out).error.code).toBe('PEER_UNAVAILABLE');
  }, 60_000);
});
