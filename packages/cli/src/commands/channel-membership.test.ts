import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  buildGenesisBlock,
  channelConfigFromNetwork,
  decodeBlock,
  decodeConfigEnvelopeFromBlock,
  encodeBlock,
  loadNetworkConfig,
  sha256,
  writeMspDir,
} from '@loom/common';
import { createTestOrg } from '@loom/common/testing/index';
import type { Command } from 'commander';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { parse as parseYaml, stringify as toYaml } from 'yaml';
import { buildCli } from '../index.js';
import { layout } from '../network/layout.js';

const defaultConfig = fileURLToPath(new URL('../../../../network-config/default.yaml', import.meta.url));
const dirs: string[] = [];
const servers: Server[] = [];
afterAll(async () => {
  for (const s of servers) s.close();
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

/** Runs `loom <args>` in-process; returns what it printed, or the error it failed with. */
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

interface Seen {
  method: string;
  url: string;
  body: Buffer;
}

/** A loopback HTTP server answering each request with `answer`, recording what it got. */
async function recorder(
  answer: (r: Seen) => { status: number; body: unknown },
): Promise<{ url: string; seen: Seen[] }> {
  const seen: Seen[] = [];
  const s = createServer((req: IncomingMessage, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const r = { method: req.method ?? '', url: req.url ?? '', body: Buffer.concat(chunks) };
      seen.push(r);
      const a = answer(r);
      res.writeHead(a.status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(a.body));
    });
  });
  await new Promise<void>((ok) => s.listen(0, '127.0.0.1', ok));
  servers.push(s);
  return { url: `http://127.0.0.1:${(s.address() as AddressInfo).port}`, seen };
}

describe('loom channel join|list|create', async () => {
  const root = await mkdtemp(join(tmpdir(), 'loom-chmember-'));
  dirs.push(root);
  // The default network-config, without TLS (the recorders speak plain HTTP), data under `root`.
  const doc = parseYaml(await readFile(defaultConfig, 'utf8')) as Record<string, unknown>;
  doc.dataDir = join(root, 'data');
  doc.tls = { enabled: false, clientAuthRequired: false };
  const cfgFile = join(root, 'network.yaml');
  await writeFile(cfgFile, toYaml(doc));
  const net = await loadNetworkConfig(cfgFile);
  const [org1, org2, ord] = await Promise.all([
    createTestOrg('Org1MSP'),
    createTestOrg('Org2MSP'),
    createTestOrg('OrdererMSP'),
  ]);
  const material = (o: typeof org1) => ({ rootCerts: [o.ca.certPem], tlsRootCerts: [o.ca.certPem] });
  const genesis = encodeBlock(
    buildGenesisBlock(
      channelConfigFromNetwork(
        net,
        'mychannel',
        { Org1MSP: material(org1), Org2MSP: material(org2), OrdererMSP: material(ord) },
        Object.fromEntries(
          net.ordererOrganization.orderers.map((o) => [
            o.name,
            { identityCert: ord.orderer.certPem, tlsCert: ord.orderer.certPem },
          ]),
        ),
      ),
      Date.now(),
      sha256,
    ),
  );
  const genesisFile = join(root, 'mychannel.block');
  await writeFile(genesisFile, genesis);

  it('registers join, list and create next to config', () => {
    const channel = buildCli().commands.find((c) => c.name() === 'channel')!;
    expect(channel.commands.map((c) => c.name()).sort()).toEqual(['config', 'create', 'join', 'list']);
  });

  it('join refuses a missing file, a file that is no block, and a URL that is not one', async () => {
    const missing = await loom(['channel', 'join', '-c', cfgFile, '-b', join(root, 'nope.block')]);
    expect(missing.error?.code).toBe('FILE_NOT_FOUND');
    expect(missing.error?.message).toContain('nope.block');
    const junk = join(root, 'junk.block');
    await writeFile(junk, 'not a block at all');
    const bad = await loom(['--json', 'channel', 'join', '-c', cfgFile, '-b', junk]);
    expect(bad.error?.code).toBe('BLOCK_FILE_INVALID');
    expect(JSON.parse(bad.out).error.code).toBe('BLOCK_FILE_INVALID');
    const url = await loom(['channel', 'join', '-c', cfgFile, '-b', genesisFile, '--peer', 'localhost:7051']);
    expect(url.error?.code).toBe('INVALID_ARGUMENT');
    const noBlock = await loom(['channel', 'join', '-c', cfgFile]);
    expect(noBlock.error?.code).toBe('commander.missingMandatoryOptionValue');
  });

  it('join posts the block to a peer and to an orderer participation API, and reports each', async () => {
    const peer = await recorder(() => ({ status: 201, body: { channelId: 'mychannel', height: 1 } }));
    const orderer = await recorder(() => ({ status: 201, body: { name: 'mychannel', height: 1 } }));
    const r = await loom([
      '--json',
      'channel',
      'join',
      '-c',
      cfgFile,
      '-b',
      genesisFile,
      '--peer',
      peer.url,
      '--orderer-admin',
      orderer.url,
    ]);
    expect(r.error).toBeUndefined();
    const j = JSON.parse(r.out) as { channelId: string; results: { kind: string; joined: boolean }[] };
    expect(j.channelId).toBe('mychannel');
    expect(j.results.map((x) => [x.kind, x.joined])).toEqual([
      ['peer', true],
      ['orderer', true],
    ]);
    expect(peer.seen.map((s) => `${s.method} ${s.url}`)).toEqual(['POST /v1/channels']);
    expect(Buffer.compare(peer.seen[0]!.body, Buffer.from(genesis))).toBe(0);
    expect(orderer.seen.map((s) => `${s.method} ${s.url}`)).toEqual(['POST /participation/v1/channels']);
  });

  it("join fails with the node's code when it refuses, and with PEER_UNAVAILABLE when nobody answers", async () => {
    const peer = await recorder(() => ({
      status: 409,
      body: { code: 'CHANNEL_ALREADY_JOINED', message: 'already joined mychannel' },
    }));
    const refused = await loom(['channel', 'join', '-c', cfgFile, '-b', genesisFile, '--peer', peer.url]);
    expect(refused.error?.code).toBe('CHANNEL_ALREADY_JOINED');
    expect(refused.out).toContain('not joined to mychannel');
    const down = await loom([
      '--json',
      'channel',
      'join',
      '-c',
      cfgFile,
      '-b',
      genesisFile,
      '--peer',
      'http://127.0.0.1:1',
    ]);
    expect(down.error?.code).toBe('PEER_UNAVAILABLE');
    expect(JSON.parse(down.out).results[0].error.code).toBe('PEER_UNAVAILABLE');
  });

  it("list prints a peer's and an orderer's channels", async () => {
    const peer = await recorder(() => ({ status: 200, body: { channels: [{ name: 'mychannel', height: 7 }] } }));
    const orderer = await recorder(() => ({
      status: 200,
      body: { channels: [{ name: 'mychannel', url: '/participation/v1/channels/mychannel' }], systemChannel: null },
    }));
    const one = await loom(['--json', 'channel', 'list', '-c', cfgFile, '--peer', peer.url]);
    expect(JSON.parse(one.out)).toMatchObject({ kind: 'peer', channels: [{ name: 'mychannel', height: 7 }] });
    const text = await loom(['channel', 'list', '-c', cfgFile, '--orderer-admin', orderer.url]);
    expect(text.out).toContain('mychannel');
    expect(orderer.seen[0]!.url).toBe('/participation/v1/channels');
    const down = await loom(['channel', 'list', '-c', cfgFile, '--peer', 'http://127.0.0.1:1']);
    expect(down.error?.code).toBe('PEER_UNAVAILABLE');
    const org = await loom(['channel', 'list', '-c', cfgFile, '--org', 'NoSuchMSP']);
    expect(org.error?.code).toBe('ORG_NOT_FOUND');
  });

  it('create refuses an unknown channel and a network without certificates', async () => {
    const unknown = await loom(['channel', 'create', '-c', cfgFile, '-C', 'other', '-o', join(root, 'x.block')]);
    expect(unknown.error?.code).toBe('CHANNEL_NOT_FOUND');
    expect(unknown.error?.message).toContain('mychannel');
    const noData = await loom(['channel', 'create', '-c', cfgFile, '-C', 'mychannel', '-o', join(root, 'x.block')]);
    expect(noData.error?.code).toBe('NETWORK_NOT_FOUND');
  });

  it("create writes a genesis block of the channel from the data directory's certificates", async () => {
    const byMsp = { Org1MSP: org1, Org2MSP: org2, OrdererMSP: ord };
    for (const o of [...net.organizations, net.ordererOrganization]) {
      await writeMspDir(join(layout.userDir(net, o, 'Admin'), 'msp'), byMsp[o.mspId as keyof typeof byMsp]);
    }
    for (const o of net.ordererOrganization.orderers) {
      const dir = layout.nodeDir(net, net.ordererOrganization, 'orderers', o.fqdn);
      await mkdir(join(dir, 'msp', 'signcerts'), { recursive: true });
      await mkdir(join(dir, 'tls'), { recursive: true });
      await writeFile(join(dir, 'msp', 'signcerts', 'cert.pem'), ord.orderer.certPem);
      await writeFile(join(dir, 'tls', 'server.crt'), ord.orderer.certPem);
    }
    const out = join(root, 'created.block');
    const r = await loom(['--json', 'channel', 'create', '-c', cfgFile, '-C', 'mychannel', '-o', out]);
    expect(r.error).toBeUndefined();
    expect(JSON.parse(r.out)).toMatchObject({ channelId: 'mychannel', output: out, orderersJoined: [] });
    const cfg = decodeConfigEnvelopeFromBlock(decodeBlock(new Uint8Array(await readFile(out))));
    expect(cfg?.channelId).toBe('mychannel');
    // The block it wrote is one `channel join` accepts.
    const peer = await recorder(() => ({ status: 201, body: { channelId: 'mychannel', height: 1 } }));
    const joined = await loom(['channel', 'join', '-c', cfgFile, '-b', out, '--peer', peer.url]);
    expect(joined.error).toBeUndefined();
    expect(joined.out).toContain('joined mychannel');
  });
});
