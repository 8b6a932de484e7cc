/**
 * A peer's installed chaincode packages, under `<dataDir>/chaincode/`:
 *
 *   <label>.<sha256>/package.tar.gz   the package bytes as installed (`getInstalledPackage`)
 *   <label>.<sha256>/src/             node: the extracted source, prepared (dependencies linked, built)
 *   <label>.<sha256>/META-INF/        rich-query indexes
 *   <label>.<sha256>/connection.json  ccaas: where the chaincode server listens
 *   <label>.<sha256>/installed.json   the install record; written last, so its presence means "installed"
 *
 * (The directory is the package id with ':' replaced by '.', which keeps ':' out of paths; the hash is
 * always the last 64 characters, so the mapping is one to one.)
 *
 * Preparing node chaincode is Loom's version of Fabric's node builder (`npm install` + build):
 *
 * - The package's package.json `dependencies` are installed into `src/node_modules` at install time
 *   with `npm install --omit=dev --ignore-scripts --no-audit --no-fund --prefer-offline` (npm's cache
 *   first, the configured registry otherwise), within a timeout; npm's output is kept in the record
 *   and a failure fails the install (CHAINCODE_INSTALL_FAILED, 400) with npm's output.
 * - `@loom/*` dependencies are never fetched: each is a symbolic link in `src/node_modules` to the
 *   peer's own package (npm sees the package.json without them). `@loom/chaincode-sdk` is linked even
 *   when undeclared, since the peer starts the chaincode with that SDK's launcher. A package whose only dependencies
 *   are `@loom/*` runs no npm at all, so the sample chaincodes install on a peer with no network.
 * - A package that ships `node_modules/` (vendored) is used as it is; npm does not run.
 * - A package with a `tsconfig.json` and a `build` script is compiled with the peer's TypeScript
 *   (`tsc -p tsconfig.json`, type roots: the package's then the peer's `@types`), within a timeout.
 *
 * The package's own npm scripts are never run. Work happens in a temporary directory that is renamed
 * into place when complete, so a failed install or a crash never leaves a half-installed package.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, realpathSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { dirname, join, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { fromUtf8, LoomError } from '@loom/common';
import {
  type CcaasConnection,
  type ChaincodeType,
  indexDefinitions,
  type PackagedIndex,
  type ParsedPackage,
  parsePackage,
  parsePackageId,
} from './package.js';

export const ChaincodeInstallErrorCode = {
  /** The package is valid but could not be prepared (missing dependency, compile error, timeout). */
  INSTALL_FAILED: 'CHAINCODE_INSTALL_FAILED',
  NOT_INSTALLED: 'CHAINCODE_NOT_INSTALLED',
} as const;

export interface InstalledChaincode {
  readonly packageId: string;
  readonly label: string;
  readonly type: ChaincodeType;
  /** Whether the install compiled TypeScript. */
  readonly built: boolean;
  /** Compiler output of the build step (tail), for operators. */
  readonly buildLog: string;
  /**
   * How the package's package.json dependencies were provided: `none` declared; `linked` (only
   * `@loom/*`, linked to the peer's own packages, no npm run); `npm` (`npm install` at install time);
   * `vendored` (the package ships node_modules/). Absent in records of older installs.
   */
  readonly dependencies?: 'none' | 'linked' | 'npm' | 'vendored';
  /** npm's output (tail) when dependencies were installed with npm. */
  readonly dependencyLog?: string;
}

/** How the chaincode runtime starts (node) or reaches (ccaas) an installed chaincode. */
export type LaunchSpec =
  | {
      readonly type: 'node';
      readonly packageId: string;
      /** The prepared source directory: the chaincode's package.json is here. */
      readonly cwd: string;
      /** The node executable. */
      readonly command: string;
      /** `[<@loom/chaincode-sdk>/dist/bin/start-chaincode.js, 'start', '--module-path', cwd]`. */
      readonly args: readonly string[];
      /** To add to the runtime's environment (peer address and TLS are the runtime's to add). */
      readonly env: Readonly<Record<string, string>>;
    }
  | { readonly type: 'ccaas'; readonly packageId: string; readonly connection: CcaasConnection };

export interface InstallResult {
  readonly packageId: string;
  readonly label: string;
  readonly type: ChaincodeType;
  /** True when the package was installed before (install is idempotent). */
  readonly alreadyInstalled: boolean;
}

export interface ChaincodeInstallStore {
  install(packageBytes: Uint8Array): Promise<InstallResult>;
  queryInstalled(): Promise<InstalledChaincode[]>;
  getInstalled(packageId: string): Promise<InstalledChaincode | undefined>;
  /** The package bytes; throws CHAINCODE_NOT_INSTALLED (404). */
  getInstalledPackage(packageId: string): Promise<Uint8Array>;
  /** The rich-query index definitions the package ships; throws CHAINCODE_NOT_INSTALLED (404). */
  indexes(packageId: string): Promise<PackagedIndex[]>;
  launchSpec(packageId: string): Promise<LaunchSpec>;
  /** For the runtime's `ChaincodePackageResolver`: undefined when the package is not installed. */
  resolveLaunch(packageId: string): Promise<RuntimeLaunchSpec | undefined>;
}

/**
 * The chaincode runtime's view of an install (its `ChaincodePackageResolver` result): a process to
 * start from `dir` with the SDK's `loom-chaincode` script `bin`, or an external (ccaas) server.
 */
export type RuntimeLaunchSpec =
  | {
      readonly kind: 'process';
      readonly dir: string;
      readonly bin: string;
      readonly env: Readonly<Record<string, string>>;
    }
  | {
      readonly kind: 'external';
      readonly connection: {
        readonly address: string;
        readonly dial_timeout?: string | undefined;
        readonly tls_required?: boolean | undefined;
        readonly client_auth_required?: boolean | undefined;
        readonly root_cert?: string | undefined;
        readonly client_cert?: string | undefined;
        readonly client_key?: string | undefined;
      };
    };

export interface InstallStoreOptions {
  /** The peer's data directory; packages live in `<dataDir>/chaincode`. */
  readonly dataDir: string;
  /** node_modules that installed chaincode resolves its dependencies from; default: the peer's own. */
  readonly nodeModulesDir?: string;
  /** Bound on the TypeScript build of one package. Default 120 s. */
  readonly buildTimeoutMs?: number;
  /** Bound on the `npm install` of one package's dependencies. Default 180 s. */
  readonly dependencyTimeoutMs?: number;
  /** The npm command (program and leading arguments); default `defaultNpmCommand()`. */
  readonly npmCommand?: readonly string[];
}

const notInstalled = (packageId: string) =>
  new LoomError(ChaincodeInstallErrorCode.NOT_INSTALLED, `chaincode package ${packageId} is not installed`, {
    details: { packageId },
    httpStatus: 404,
  });

const installFailed = (packageId: string, message: string, details: Record<string, unknown> = {}) =>
  new LoomError(ChaincodeInstallErrorCode.INSTALL_FAILED, `install of ${packageId} failed: ${message}`, {
    details: { packageId, ...details },
    httpStatus: 400,
  });

/** The nearest node_modules above this module that holds `@loom/chaincode-sdk`. */
export function findPeerNodeModules(from: string = dirname(fileURLToPath(import.meta.url))): string {
  for (let d = from; ; d = dirname(d)) {
    const candidate = join(d, 'node_modules');
    if (existsSync(join(candidate, '@loom', 'chaincode-sdk', 'package.json'))) return candidate;
    if (dirname(d) === d) break;
  }
  throw new LoomError('CHAINCODE_RUNTIME_UNAVAILABLE', `no node_modules with @loom/chaincode-sdk above ${from}`, {
    httpStatus: 500,
  });
}

const dirNameOf = (packageId: string): string => {
  const { label, hash } = parsePackageId(packageId);
  return `${label}.${hash}`;
};

function run(
  cmd: string,
  args: string[],
  cwd: string,
  timeoutMs: number,
  env: Record<string, string> = {},
): Promise<{ ok: boolean; out: string; timedOut: boolean }> {
  return new Promise((done) => {
    execFile(
      cmd,
      args,
      { cwd, timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 8 * 1024 * 1024, env: { ...process.env, ...env } },
      (err, stdout, stderr) => {
        // A program that could not start (no npm on PATH: ENOENT) has no output but the error.
        const out = (`${stdout}${stderr}` || (err ? err.message : '')).slice(-8000);
        const timedOut = err !== null && (err as { killed?: boolean }).killed === true;
        done({ ok: err === null, out, timedOut });
      },
    );
  });
}

/** The npm command line: npm's CLI next to this node (as the node image ships it), else `npm` on PATH. */
export function defaultNpmCommand(): readonly string[] {
  const cli = join(dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'bin', 'npm-cli.js');
  return existsSync(cli) ? [process.execPath, cli] : ['npm'];
}

/** The flags of the install-time dependency install (Fabric's node builder runs `npm install` too). */
export const NPM_INSTALL_ARGS: readonly string[] = [
  'install',
  '--omit=dev',
  '--ignore-scripts',
  '--no-audit',
  '--no-fund',
  '--prefer-offline',
  '--no-update-notifier',
];

const CHAINCODE_SDK = '@loom/chaincode-sdk';

/** Whether a dependency is one of Loom's own packages, which the peer provides (never fetched). */
export const isLoomPackage = (name: string): boolean => name.startsWith('@loom/');

interface PrepareOptions {
  readonly nodeModules: string;
  readonly buildTimeoutMs: number;
  readonly npm: readonly string[];
  readonly dependencyTimeoutMs: number;
}

interface Prepared {
  built: boolean;
  buildLog: string;
  /** How the dependencies got there: none declared, only peer-provided links, `npm install`, vendored. */
  dependencies: 'none' | 'linked' | 'npm' | 'vendored';
  dependencyLog: string;
}

async function prepareNode(pkg: ParsedPackage, dir: string, o: PrepareOptions): Promise<Prepared> {
  const src = join(dir, 'src');
  const srcModules = join(src, 'node_modules');
  const packageJson = pkg.files.get('src/package.json')!;
  const meta = JSON.parse(fromUtf8(packageJson)) as {
    main?: unknown;
    scripts?: Record<string, unknown>;
    dependencies?: unknown;
  };
  const declared = meta.dependencies ?? {};
  if (
    declared === null ||
    typeof declared !== 'object' ||
    Array.isArray(declared) ||
    Object.values(declared).some((v) => typeof v !== 'string')
  ) {
    throw installFailed(pkg.packageId, 'package.json "dependencies" must map package names to version strings');
  }
  const deps = declared as Record<string, string>;
  const vendored = [...pkg.files.keys()].some((p) => p.startsWith('src/node_modules/'));
  const registryDeps = Object.keys(deps).filter((d) => !isLoomPackage(d));
  const dependencies: Prepared['dependencies'] = vendored
    ? 'vendored'
    : registryDeps.length > 0
      ? 'npm'
      : Object.keys(deps).length > 0
        ? 'linked'
        : 'none';
  let dependencyLog = '';

  if (dependencies === 'npm') {
    // npm sees a package.json with the runtime dependencies only: not the peer-provided @loom/* ones
    // (they are on no registry), not devDependencies (npm resolves those even with --omit=dev), no
    // scripts or workspaces. The original is put back afterwards, byte for byte.
    const raw = meta as Record<string, unknown>;
    const forNpm = {
      name: typeof raw.name === 'string' ? raw.name : 'chaincode',
      version: typeof raw.version === 'string' ? raw.version : '0.0.0',
      private: true,
      dependencies: Object.fromEntries(registryDeps.map((d) => [d, deps[d]!])),
      ...(raw.overrides && typeof raw.overrides === 'object' ? { overrides: raw.overrides } : {}),
    };
    await writeFile(join(src, 'package.json'), JSON.stringify(forNpm, null, 2));
    const [cmd, ...pre] = o.npm;
    const r = await run(cmd!, [...pre, ...NPM_INSTALL_ARGS], src, o.dependencyTimeoutMs, {
      npm_config_update_notifier: 'false',
    });
    dependencyLog = r.out;
    await writeFile(join(src, 'package.json'), packageJson);
    if (!r.ok) {
      throw installFailed(
        pkg.packageId,
        r.timedOut
          ? `npm install of the dependencies timed out after ${o.dependencyTimeoutMs} ms`
          : `npm install of the dependencies (${registryDeps.join(', ')}) failed:\n${r.out.slice(-2000)}`,
        { dependencies: registryDeps, npmLog: r.out },
      );
    }
  }

  // @loom/* dependencies: links to the peer's own packages (unless the package vendors its own copy).
  // The chaincode SDK is linked even when undeclared: the peer launches every node chaincode with
  // that SDK's launcher, and the chaincode's `import '@loom/chaincode-sdk'` must reach the same copy.
  const loomDeps = [...new Set([...Object.keys(deps).filter(isLoomPackage), CHAINCODE_SDK])].filter(
    (d) => !existsSync(join(srcModules, d)),
  );
  const unavailable = loomDeps.filter((d) => !existsSync(join(o.nodeModules, d, 'package.json')));
  if (unavailable.length > 0) {
    throw installFailed(pkg.packageId, `dependencies not provided by this peer: ${unavailable.join(', ')}`, {
      missing: unavailable,
    });
  }
  for (const d of loomDeps) {
    const at = join(srcModules, d);
    await mkdir(dirname(at), { recursive: true });
    await symlink(realpathSync(join(o.nodeModules, d)), at, 'dir');
  }

  let built = false;
  let buildLog = '';
  if (pkg.files.has('src/tsconfig.json') && typeof meta.scripts?.build === 'string') {
    const tsc = join(o.nodeModules, 'typescript', 'bin', 'tsc');
    if (!existsSync(tsc)) throw installFailed(pkg.packageId, 'TypeScript is not available on this peer');
    // Type packages (`@types/node`, …) are development dependencies, not installed: the compiler
    // finds them in the package's node_modules first, then among the peer's.
    const typeRoots = [join(srcModules, '@types'), join(o.nodeModules, '@types')].join(',');
    const r = await run(
      process.execPath,
      [tsc, '-p', 'tsconfig.json', '--typeRoots', typeRoots],
      src,
      o.buildTimeoutMs,
    );
    buildLog = r.out;
    if (!r.ok) {
      throw installFailed(
        pkg.packageId,
        r.timedOut ? `build timed out after ${o.buildTimeoutMs} ms` : `build failed:\n${r.out.slice(-2000)}`,
        { buildLog: r.out },
      );
    }
    built = true;
  }
  const main = typeof meta.main === 'string' ? meta.main : 'index.js';
  const mainPath = resolve(src, main);
  if (!mainPath.startsWith(src + sep) || !existsSync(mainPath)) {
    throw installFailed(pkg.packageId, `package.json main ${JSON.stringify(main)} does not exist after the build`);
  }
  return { built, buildLog, dependencies, dependencyLog };
}

async function extract(pkg: ParsedPackage, dir: string): Promise<void> {
  for (const [path, content] of pkg.files) {
    // Paths were checked by the tar reader; this is a second fence against escaping `dir`.
    const target = resolve(dir, path);
    if (!target.startsWith(dir + sep)) throw installFailed(pkg.packageId, `entry ${path} escapes the install dir`);
    await mkdir(dirname(target), { recursive: true });
    await writeFile(target, content, { flag: 'wx' });
  }
}

export function createInstallStore(options: InstallStoreOptions): ChaincodeInstallStore {
  const root = resolve(options.dataDir, 'chaincode');
  const timeoutMs = options.buildTimeoutMs ?? 120_000;
  let nodeModules = options.nodeModulesDir ? resolve(options.nodeModulesDir) : undefined;
  const peerNodeModules = () => {
    nodeModules ??= findPeerNodeModules();
    return nodeModules;
  };
  const pending = new Map<string, Promise<InstallResult>>();
  let cleaned: Promise<void> | undefined;

  // Temporary directories of installs a crash interrupted.
  const cleanup = () => {
    cleaned ??= (async () => {
      await mkdir(root, { recursive: true });
      for (const name of await readdir(root)) {
        if (name.startsWith('.tmp-')) await rm(join(root, name), { recursive: true, force: true });
      }
    })();
    return cleaned;
  };

  const readRecord = async (packageId: string): Promise<InstalledChaincode | undefined> => {
    let dir: string;
    try {
      dir = join(root, dirNameOf(packageId));
    } catch {
      return undefined;
    }
    try {
      return JSON.parse(await readFile(join(dir, 'installed.json'), 'utf8')) as InstalledChaincode;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw e;
    }
  };

  const doInstall = async (pkg: ParsedPackage, bytes: Uint8Array): Promise<InstallResult> => {
    await cleanup();
    const base = { packageId: pkg.packageId, label: pkg.label, type: pkg.type };
    if (await readRecord(pkg.packageId)) return { ...base, alreadyInstalled: true };
    const final = join(root, dirNameOf(pkg.packageId));
    const tmp = join(root, `.tmp-${randomBytes(8).toString('hex')}`);
    await mkdir(tmp, { recursive: true });
    try {
      await writeFile(join(tmp, 'package.tar.gz'), bytes);
      await extract(pkg, tmp);
      const prepared =
        pkg.type === 'node'
          ? await prepareNode(pkg, tmp, {
              nodeModules: peerNodeModules(),
              buildTimeoutMs: timeoutMs,
              npm: options.npmCommand ?? defaultNpmCommand(),
              dependencyTimeoutMs: options.dependencyTimeoutMs ?? 180_000,
            })
          : { built: false, buildLog: '', dependencies: 'none' as const, dependencyLog: '' };
      const record: InstalledChaincode = { ...base, ...prepared };
      await writeFile(join(tmp, 'installed.json'), JSON.stringify(record, null, 2));
      await rm(final, { recursive: true, force: true });
      await rename(tmp, final);
      return { ...base, alreadyInstalled: false };
    } catch (e) {
      await rm(tmp, { recursive: true, force: true });
      throw e;
    }
  };

  const requireInstalled = async (packageId: string): Promise<{ record: InstalledChaincode; dir: string }> => {
    const record = await readRecord(packageId);
    if (!record) throw notInstalled(packageId);
    return { record, dir: join(root, dirNameOf(packageId)) };
  };

  const store: ChaincodeInstallStore = {
    install(bytes) {
      let pkg: ParsedPackage;
      try {
        pkg = parsePackage(bytes);
      } catch (e) {
        return Promise.reject(e);
      }
      // One install per package at a time; a concurrent second call waits for the first.
      let p = pending.get(pkg.packageId);
      if (!p) {
        p = doInstall(pkg, bytes).finally(() => pending.delete(pkg.packageId));
        pending.set(pkg.packageId, p);
        return p;
      }
      return p.then((r) => ({ ...r, alreadyInstalled: true }));
    },

    async queryInstalled() {
      await cleanup();
      const out: InstalledChaincode[] = [];
      for (const name of (await readdir(root)).sort()) {
        if (name.startsWith('.')) continue;
        try {
          out.push(JSON.parse(await readFile(join(root, name, 'installed.json'), 'utf8')) as InstalledChaincode);
        } catch {
          // Not an install record: ignore foreign files.
        }
      }
      return out;
    },

    getInstalled: readRecord,

    async getInstalledPackage(packageId) {
      const { dir } = await requireInstalled(packageId);
      return new Uint8Array(await readFile(join(dir, 'package.tar.gz')));
    },

    async indexes(packageId) {
      const { dir } = await requireInstalled(packageId);
      return indexDefinitions(parsePackage(new Uint8Array(await readFile(join(dir, 'package.tar.gz')))).files);
    },

    async launchSpec(packageId) {
      const { record, dir } = await requireInstalled(packageId);
      if (record.type === 'ccaas') {
        const pkg = parsePackage(new Uint8Array(await readFile(join(dir, 'package.tar.gz'))));
        return { type: 'ccaas', packageId, connection: pkg.connection! };
      }
      const cwd = join(dir, 'src');
      const start = join(peerNodeModules(), '@loom', 'chaincode-sdk', 'dist', 'bin', 'start-chaincode.js');
      if (!existsSync(start)) {
        throw new LoomError('CHAINCODE_RUNTIME_UNAVAILABLE', `chaincode SDK launcher not built: ${start}`, {
          httpStatus: 500,
        });
      }
      return {
        type: 'node',
        packageId,
        cwd,
        command: process.execPath,
        args: [realpathSync(start), 'start', '--module-path', cwd],
        env: { CORE_CHAINCODE_ID_NAME: packageId },
      };
    },

    async resolveLaunch(packageId) {
      if (!(await readRecord(packageId))) return undefined;
      const spec = await store.launchSpec(packageId);
      if (spec.type === 'ccaas') {
        const c = spec.connection;
        return {
          kind: 'external',
          connection: {
            address: c.address,
            dial_timeout: c.dialTimeout,
            tls_required: c.tlsRequired,
            client_auth_required: c.clientAuthRequired,
            root_cert: c.rootCert,
            client_cert: c.clientCert,
            client_key: c.clientKey,
          },
        };
      }
      return { kind: 'process', dir: spec.cwd, bin: spec.args[0]!, env: spec.env };
    },
  };
  return store;
}
