import { execFile } from 'node:child_process';
import { existsSync, lstatSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { utf8 } from '@loom/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createInstallStore, findPeerNodeModules } from './install-store.js';
import { buildPackage, packageIdOf } from './package.js';
import { createPackage } from './package-dir.js';

const BASIC = fileURLToPath(new URL('../../../../../chaincode/basic', import.meta.url));

let dataDir: string;
beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'loom-install-'));
});
afterAll(async () => {
  await rm(dataDir, { recursive: true, force: true });
});

describe('install store', () => {
  it('installs chaincode/basic: extracts, links dependencies, compiles; idempotent; runnable', async () => {
    const store = createInstallStore({ dataDir, buildTimeoutMs: 90_000 });
    const bytes = await createPackage(BASIC, 'basic_1.0');
    const id = packageIdOf('basic_1.0', bytes);
    const first = await store.install(bytes);
    expect(first).toEqual({ packageId: id, label: 'basic_1.0', type: 'node', alreadyInstalled: false });

    const spec = await store.launchSpec(id);
    if (spec.type !== 'node') throw new Error('expected a node launch spec');
    expect(existsSync(join(spec.cwd, 'dist', 'index.js'))).toBe(true);
    expect(lstatSync(join(spec.cwd, 'node_modules')).isSymbolicLink()).toBe(true);
    expect(spec.command).toBe(process.execPath);
    expect(spec.args[0]).toMatch(/chaincode-sdk\/dist\/bin\/start-chaincode\.js$/);
    expect(spec.args.slice(1)).toEqual(['start', '--module-path', spec.cwd]);
    expect(spec.env).toEqual({ CORE_CHAINCODE_ID_NAME: id });
    expect(await store.resolveLaunch(id)).toEqual({ kind: 'process', dir: spec.cwd, bin: spec.args[0], env: spec.env });
    expect(await store.resolveLaunch(`nope:${'0'.repeat(64)}`)).toBeUndefined();

    // The prepared module loads with its dependencies resolved through the link.
    const out = await new Promise<string>((done, fail) =>
      execFile(
        process.execPath,
        ['--input-type=module', '-e', `const m = await import('./dist/index.js'); console.log(m.contracts.length);`],
        { cwd: spec.cwd, timeout: 30_000 },
        (err, stdout, stderr) => (err ? fail(new Error(`${err.message}\n${stderr}`)) : done(stdout)),
      ),
    );
    expect(out.trim()).toBe('1');

    expect(await store.install(bytes)).toMatchObject({ packageId: id, alreadyInstalled: true });
    expect(await store.queryInstalled()).toEqual([
      expect.objectContaining({ packageId: id, label: 'basic_1.0', type: 'node', built: true }),
    ]);
    expect(await store.getInstalledPackage(id)).toEqual(bytes);
    expect((await store.indexes(id)).map((i) => i.definition.name)).toEqual(['indexOwner']);

    // A new store over the same data dir (a restarted peer) sees the install.
    const again = createInstallStore({ dataDir });
    expect(await again.getInstalled(id)).toMatchObject({ packageId: id, built: true });
  }, 120_000);

  it('fails loudly on compile errors and missing dependencies, leaving nothing behind', async () => {
    const store = createInstallStore({ dataDir, buildTimeoutMs: 60_000 });
    const tsconfig = JSON.stringify({
      compilerOptions: {
        target: 'ES2022',
        module: 'NodeNext',
        strict: true,
        outDir: 'dist',
        rootDir: 'src',
        types: [],
      },
      include: ['src'],
    });
    const pkgJson = JSON.stringify({
      name: 'broken',
      type: 'module',
      main: 'dist/index.js',
      scripts: { build: 'tsc' },
    });
    const broken = buildPackage({
      label: 'broken_1',
      type: 'node',
      files: [
        { path: 'src/package.json', content: utf8(pkgJson) },
        { path: 'src/tsconfig.json', content: utf8(tsconfig) },
        { path: 'src/src/index.ts', content: utf8('export const x: number = "not a number";') },
      ],
    });
    await expect(store.install(broken)).rejects.toMatchObject({
      code: 'CHAINCODE_INSTALL_FAILED',
      message: expect.stringContaining('build failed'),
    });
    const missingDep = buildPackage({
      label: 'deps_1',
      type: 'node',
      files: [
        {
          path: 'src/package.json',
          content: utf8(JSON.stringify({ name: 'd', main: 'index.js', dependencies: { 'left-pad-not-here': '1' } })),
        },
        { path: 'src/index.js', content: utf8('') },
      ],
    });
    await expect(store.install(missingDep)).rejects.toMatchObject({
      code: 'CHAINCODE_INSTALL_FAILED',
      details: expect.objectContaining({ missing: ['left-pad-not-here'] }),
    });
    const ids = (await store.queryInstalled()).map((i) => i.label);
    expect(ids).not.toContain('broken_1');
    expect(ids).not.toContain('deps_1');
    expect((await readdir(join(dataDir, 'chaincode'))).filter((n) => n.startsWith('.tmp-'))).toEqual([]);
    await expect(store.launchSpec(packageIdOf('deps_1', missingDep))).rejects.toMatchObject({
      code: 'CHAINCODE_NOT_INSTALLED',
      httpStatus: 404,
    });
  }, 90_000);

  it('rejects invalid packages and packages that ship node_modules', async () => {
    const store = createInstallStore({ dataDir });
    await expect(store.install(utf8('garbage'))).rejects.toMatchObject({ code: 'CHAINCODE_PACKAGE_INVALID' });
    const shipsModules = buildPackage({
      label: 'mods_1',
      type: 'node',
      files: [
        { path: 'src/package.json', content: utf8('{"main":"index.js"}') },
        { path: 'src/index.js', content: utf8('') },
        { path: 'src/node_modules/evil/index.js', content: utf8('') },
      ],
    });
    await expect(store.install(shipsModules)).rejects.toThrow(/ships node_modules/);
  });

  it('installs ccaas packages without a build and hands out the connection', async () => {
    const store = createInstallStore({ dataDir });
    const bytes = buildPackage({
      label: 'basic_ccaas',
      type: 'ccaas',
      files: [{ path: 'connection.json', content: utf8('{"address":"basic.org1:9999","dial_timeout":"10s"}') }],
    });
    const { packageId } = await store.install(bytes);
    expect(await store.launchSpec(packageId)).toMatchObject({
      type: 'ccaas',
      connection: { address: 'basic.org1:9999', dialTimeout: '10s' },
    });
    expect(await store.resolveLaunch(packageId)).toEqual({
      kind: 'external',
      connection: { address: 'basic.org1:9999', dial_timeout: '10s', tls_required: false, client_auth_required: false },
    });
  });

  it('cleans temporary directories a crash left behind', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'loom-install-crash-'));
    try {
      await mkdir(join(dir, 'chaincode', '.tmp-deadbeef', 'src'), { recursive: true });
      await writeFile(join(dir, 'chaincode', '.tmp-deadbeef', 'src', 'x'), 'partial');
      const store = createInstallStore({ dataDir: dir, nodeModulesDir: findPeerNodeModules() });
      expect(await store.queryInstalled()).toEqual([]);
      expect(await readdir(join(dir, 'chaincode'))).toEqual([]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
