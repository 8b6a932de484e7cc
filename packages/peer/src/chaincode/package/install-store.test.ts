import { execFile } from 'node:child_process';
import { existsSync, lstatSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
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
  it('installs chaincode/basic: extracts, links @loom dependencies without npm, compiles; idempotent; runnable', async () => {
    const store = createInstallStore({ dataDir, buildTimeoutMs: 90_000 });
    const bytes = await createPackage(BASIC, 'basic_1.0');
    const id = packageIdOf('basic_1.0', bytes);
    const first = await store.install(bytes);
    expect(first).toEqual({ packageId: id, label: 'basic_1.0', type: 'node', alreadyInstalled: false });

    const spec = await store.launchSpec(id);
    if (spec.type !== 'node') throw new Error('expected a node launch spec');
    expect(existsSync(join(spec.cwd, 'dist', 'index.js'))).toBe(true);
    // Its only dependency is @loom/chaincode-sdk: a link to the peer's package, nothing else visible.
    expect(lstatSync(join(spec.cwd, 'node_modules')).isDirectory()).toBe(true);
    expect(lstatSync(join(spec.cwd, 'node_modules', '@loom', 'chaincode-sdk')).isSymbolicLink()).toBe(true);
    expect(await readdir(join(spec.cwd, 'node_modules'))).toEqual(['@loom']);
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
      expect.objectContaining({ packageId: id, label: 'basic_1.0', type: 'node', built: true, dependencies: 'linked' }),
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
          content: utf8(JSON.stringify({ name: 'd', main: 'index.js', dependencies: { '@loom/not-provided': '1' } })),
        },
        { path: 'src/index.js', content: utf8('') },
      ],
    });
    await expect(store.install(missingDep)).rejects.toMatchObject({
      code: 'CHAINCODE_INSTALL_FAILED',
      httpStatus: 400,
      details: expect.objectContaining({ missing: ['@loom/not-provided'] }),
    });
    // No dependencies declared: still the peer's chaincode SDK (the launcher's), nothing else.
    const bare = buildPackage({
      label: 'bare_1',
      type: 'node',
      files: [
        { path: 'src/package.json', content: utf8('{"name":"bare","main":"index.js"}') },
        { path: 'src/index.js', content: utf8('') },
      ],
    });
    const bareId = (await store.install(bare)).packageId;
    expect(await store.getInstalled(bareId)).toMatchObject({ dependencies: 'none' });
    const bareSpec = await store.launchSpec(bareId);
    if (bareSpec.type !== 'node') throw new Error('expected node');
    expect(await readdir(join(bareSpec.cwd, 'node_modules', '@loom'))).toEqual(['chaincode-sdk']);

    const ids = (await store.queryInstalled()).map((i) => i.label);
    expect(ids).not.toContain('broken_1');
    expect(ids).not.toContain('deps_1');
    expect((await readdir(join(dataDir, 'chaincode'))).filter((n) => n.startsWith('.tmp-'))).toEqual([]);
    await expect(store.launchSpec(packageIdOf('deps_1', missingDep))).rejects.toMatchObject({
      code: 'CHAINCODE_NOT_INSTALLED',
      httpStatus: 404,
    });
  }, 90_000);

  it('rejects invalid packages and bad dependency declarations', async () => {
    const store = createInstallStore({ dataDir });
    await expect(store.install(utf8('garbage'))).rejects.toMatchObject({ code: 'CHAINCODE_PACKAGE_INVALID' });
    const badDeps = buildPackage({
      label: 'baddeps_1',
      type: 'node',
      files: [
        { path: 'src/package.json', content: utf8('{"main":"index.js","dependencies":["yaml"]}') },
        { path: 'src/index.js', content: utf8('') },
      ],
    });
    await expect(store.install(badDeps)).rejects.toMatchObject({
      code: 'CHAINCODE_INSTALL_FAILED',
      httpStatus: 400,
      message: expect.stringContaining('"dependencies" must map'),
    });
  });

  it('uses vendored node_modules as they are (no npm), still linking @loom dependencies', async () => {
    const store = createInstallStore({ dataDir, npmCommand: [process.execPath, '-e', 'process.exit(3)'] });
    const bytes = buildPackage({
      label: 'vendored_1',
      type: 'node',
      files: [
        {
          path: 'src/package.json',
          content: utf8(
            JSON.stringify({
              name: 'v',
              type: 'module',
              main: 'index.js',
              dependencies: { 'vendored-dep': '1.0.0', '@loom/chaincode-sdk': '*' },
            }),
          ),
        },
        {
          path: 'src/index.js',
          content: utf8(
            "import v from 'vendored-dep'; import * as sdk from '@loom/chaincode-sdk'; export const out = v + ':' + typeof sdk.Contract;",
          ),
        },
        { path: 'src/node_modules/vendored-dep/package.json', content: utf8('{"name":"vendored-dep","main":"i.js"}') },
        { path: 'src/node_modules/vendored-dep/i.js', content: utf8('module.exports = "from-vendor";') },
      ],
    });
    const { packageId } = await store.install(bytes);
    expect(await store.getInstalled(packageId)).toMatchObject({ dependencies: 'vendored', dependencyLog: '' });
    const spec = await store.launchSpec(packageId);
    if (spec.type !== 'node') throw new Error('expected node');
    const out = await new Promise<string>((done, fail) =>
      execFile(
        process.execPath,
        ['--input-type=module', '-e', "const m = await import('./index.js'); console.log(m.out);"],
        { cwd: spec.cwd, timeout: 30_000 },
        (err, stdout, stderr) => (err ? fail(new Error(`${err.message}\n${stderr}`)) : done(stdout)),
      ),
    );
    expect(out.trim()).toBe('from-vendor:function');
  }, 60_000);

  it('installs registry dependencies with real npm (offline-first from the npm cache) and keeps package.json', async () => {
    const yamlVersion = (
      JSON.parse(await readFile(join(findPeerNodeModules(), 'yaml', 'package.json'), 'utf8')) as { version: string }
    ).version;
    const store = createInstallStore({ dataDir, dependencyTimeoutMs: 150_000 });
    const packageJson = JSON.stringify({
      name: 'withyaml',
      type: 'module',
      main: 'index.js',
      dependencies: { yaml: yamlVersion, '@loom/chaincode-sdk': '*' },
      devDependencies: { '@loom-nonexistent/dev-only': '1.0.0' },
    });
    const bytes = buildPackage({
      label: 'withyaml_1',
      type: 'node',
      files: [
        { path: 'src/package.json', content: utf8(packageJson) },
        {
          path: 'src/index.js',
          content: utf8("import YAML from 'yaml'; export const out = YAML.stringify({ a: [1, 2] });"),
        },
      ],
    });
    const { packageId } = await store.install(bytes);
    const record = await store.getInstalled(packageId);
    expect(record).toMatchObject({ dependencies: 'npm' });
    const spec = await store.launchSpec(packageId);
    if (spec.type !== 'node') throw new Error('expected node');
    expect(await readFile(join(spec.cwd, 'package.json'), 'utf8')).toBe(packageJson);
    expect(
      (
        JSON.parse(await readFile(join(spec.cwd, 'node_modules', 'yaml', 'package.json'), 'utf8')) as {
          version: string;
        }
      ).version,
    ).toBe(yamlVersion);
    expect(lstatSync(join(spec.cwd, 'node_modules', '@loom', 'chaincode-sdk')).isSymbolicLink()).toBe(true);
    const out = await new Promise<string>((done, fail) =>
      execFile(
        process.execPath,
        ['--input-type=module', '-e', "const m = await import('./index.js'); process.stdout.write(m.out);"],
        { cwd: spec.cwd, timeout: 30_000 },
        (err, stdout, stderr) => (err ? fail(new Error(`${err.message}\n${stderr}`)) : done(stdout)),
      ),
    );
    expect(out).toBe('a:\n  - 1\n  - 2\n');
  }, 180_000);

  it("fails the install with npm's error when npm cannot install the dependencies; nothing recorded", async () => {
    // A stand-in npm that fails like npm does (exit 1, error on stderr): no registry needed here.
    const fakeNpm = [
      process.execPath,
      '-e',
      "console.error('npm error code E404 not found: ' + process.argv.slice(1).join(' ')); process.exit(1)",
    ];
    const store = createInstallStore({ dataDir, npmCommand: fakeNpm });
    const bytes = buildPackage({
      label: 'npmfail_1',
      type: 'node',
      files: [
        {
          path: 'src/package.json',
          content: utf8(JSON.stringify({ name: 'f', main: 'index.js', dependencies: { 'some-dep': '^1.0.0' } })),
        },
        { path: 'src/index.js', content: utf8('') },
      ],
    });
    const e = await store.install(bytes).catch((x: unknown) => x);
    expect(e).toMatchObject({
      code: 'CHAINCODE_INSTALL_FAILED',
      httpStatus: 400,
      message: expect.stringMatching(/npm install of the dependencies \(some-dep\) failed:[\s\S]*E404/),
      details: expect.objectContaining({ dependencies: ['some-dep'] }),
    });
    // npm is run with the offline-first, no-scripts flags.
    expect((e as { details: { npmLog: string } }).details.npmLog).toContain(
      'install --omit=dev --ignore-scripts --no-audit --no-fund --prefer-offline',
    );
    expect((await store.queryInstalled()).map((i) => i.label)).not.toContain('npmfail_1');
    expect((await readdir(join(dataDir, 'chaincode'))).filter((n) => n.startsWith('.tmp-'))).toEqual([]);

    const noNpm = createInstallStore({ dataDir, npmCommand: ['/nonexistent/bin/npm'] });
    await expect(noNpm.install(bytes)).rejects.toMatchObject({
      code: 'CHAINCODE_INSTALL_FAILED',
      message: expect.stringContaining('ENOENT'),
    });

    const slow = createInstallStore({
      dataDir,
      npmCommand: [process.execPath, '-e', 'setTimeout(() => {}, 60_000)'],
      dependencyTimeoutMs: 1_000,
    });
    await expect(slow.install(bytes)).rejects.toMatchObject({
      code: 'CHAINCODE_INSTALL_FAILED',
      message: expect.stringContaining('timed out after 1000 ms'),
    });
  }, 60_000);

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
