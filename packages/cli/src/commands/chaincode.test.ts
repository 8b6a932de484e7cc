import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { parse as parseYaml, stringify as toYaml } from 'yaml';
import { buildCli } from '../index.js';
import { parseCtor, parsePackageIdArg } from './chaincode.js';

const defaultConfig = fileURLToPath(new URL('../../../../network-config/default.yaml', import.meta.url));
const cleanup: (() => Promise<void> | void)[] = [];
afterAll(async () => {
  for (const c of cleanup) await c();
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

describe('loom chaincode', () => {
  it("parses Fabric's -c forms", () => {
    expect(parseCtor('{"function":"CreateAsset","Args":["a1","blue"]}')).toEqual({
      fn: 'CreateAsset',
      args: ['a1', 'blue'],
    });
    expect(parseCtor('{"Args":["ReadAsset","a1"]}')).toEqual({ fn: 'ReadAsset', args: ['a1'] });
    expect(parseCtor('{"function":"GetAllAssets"}')).toEqual({ fn: 'GetAllAssets', args: [] });
    expect(() => parseCtor('nope')).toThrow(/-c must be JSON/);
    expect(() => parseCtor('{"Args":[1]}')).toThrow(/list of strings/);
    expect(() => parseCtor('{"Args":[]}')).toThrow(/name the function/);
  });

  it('registers every subcommand under the shared chaincode group', () => {
    const cc = buildCli().commands.find((c) => c.name() === 'chaincode')!;
    expect(cc.commands.map((c) => c.name()).sort()).toEqual(
      [
        'approve',
        'calculatepackageid',
        'checkcommitreadiness',
        'commit',
        'deploy',
        'getinstalledpackage',
        'install',
        'invoke',
        'package',
        'query',
        'querycommitted',
        'queryinstalled',
      ].sort(),
    );
  });

  describe('getinstalledpackage', async () => {
    const root = await mkdtemp(join(tmpdir(), 'loom-getpkg-'));
    cleanup.push(() => rm(root, { recursive: true, force: true }));
    const doc = parseYaml(await readFile(defaultConfig, 'utf8')) as Record<string, unknown>;
    doc.dataDir = join(root, 'data');
    doc.tls = { enabled: false, clientAuthRequired: false };
    const cfg = join(root, 'network.yaml');
    await writeFile(cfg, toYaml(doc));
    await mkdir(join(root, 'data'), { recursive: true });
    await writeFile(join(root, 'data', 'pids.json'), '[]');
    const id = `basic_1.0:${'ab'.repeat(32)}`;
    const pkg = Buffer.from([0x1f, 0x8b, 1, 2, 3, 4, 5]);
    const seen: string[] = [];
    const server: Server = createServer((req, res) => {
      seen.push(req.url ?? '');
      if (req.url === `/v1/admin/chaincodes/${encodeURIComponent(id)}`) {
        res.writeHead(200, { 'content-type': 'application/octet-stream' });
        res.end(pkg);
        return;
      }
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ code: 'CHAINCODE_NOT_INSTALLED', message: 'chaincode package is not installed' }));
    });
    await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
    cleanup.push(() => server.close());
    const peer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

    it('checks the package id', () => {
      expect(parsePackageIdArg(` ${id} `)).toBe(id);
      expect(() => parsePackageIdArg('basic_1.0')).toThrow(/<label>:<sha256 hex>/);
      expect(() => parsePackageIdArg('basic 1.0:abcd')).toThrow(/--package-id/);
    });

    it("writes the peer's package bytes to --output", async () => {
      const out = join(root, 'basic.tar.gz');
      const r = await loom([
        '--json',
        'chaincode',
        'getinstalledpackage',
        '--config',
        cfg,
        '--peer',
        peer,
        '--package-id',
        id,
        '-o',
        out,
      ]);
      expect(r.error).toBeUndefined();
      expect(JSON.parse(r.out)).toMatchObject({ packageId: id, bytes: pkg.length });
      expect(Buffer.compare(await readFile(out), pkg)).toBe(0);
    });

    it('fails with a code for a package not installed, an unreachable peer, a bad id and no --output', async () => {
      const other = `other_1:${'cd'.repeat(32)}`;
      const missing = await loom([
        '--json',
        'chaincode',
        'getinstalledpackage',
        '--config',
        cfg,
        '--peer',
        peer,
        '--package-id',
        other,
        '-o',
        join(root, 'x'),
      ]);
      expect(missing.error?.code).toBe('CHAINCODE_NOT_INSTALLED');
      expect(JSON.parse(missing.out).error.code).toBe('CHAINCODE_NOT_INSTALLED');
      const down = await loom([
        'chaincode',
        'getinstalledpackage',
        '--config',
        cfg,
        '--peer',
        'http://127.0.0.1:1',
        '--package-id',
        id,
        '-o',
        join(root, 'x'),
      ]);
      expect(down.error?.code).toBe('PEER_UNAVAILABLE');
      const bad = await loom([
        'chaincode',
        'getinstalledpackage',
        '--config',
        cfg,
        '--peer',
        peer,
        '--package-id',
        'nope',
        '-o',
        join(root, 'x'),
      ]);
      expect(bad.error?.code).toBe('INVALID_ARGUMENT');
      const noOut = await loom(['chaincode', 'getinstalledpackage', '--config', cfg, '--package-id', id]);
      expect(noOut.error?.code).toBe('commander.missingMandatoryOptionValue');
      const unwritable = await loom([
        'chaincode',
        'getinstalledpackage',
        '--config',
        cfg,
        '--peer',
        peer,
        '--package-id',
        id,
        '-o',
        join(root, 'no', 'such', 'dir', 'p.tgz'),
      ]);
      expect(unwritable.error?.code).toBe('FILE_UNWRITABLE');
    });
  });
});
