#!/usr/bin/env node
/**
 * `loom-chaincode start|server` — the equivalent of `fabric-chaincode-node start|server`: loads the
 * chaincode package in `--module-path` (default: the working directory) through its package.json
 * `main`, builds a chaincode from its exported `contracts` (or uses an exported `chaincode`
 * implementing Init/Invoke), and
 * - start: dials the peer at `--peer.address` / CORE_PEER_ADDRESS and registers as
 *   `--chaincode-id-name` / CORE_CHAINCODE_ID_NAME;
 * - server (or CHAINCODE_SERVER_ADDRESS set without a peer address): listens at
 *   `--chaincode-address` / CHAINCODE_SERVER_ADDRESS for the peer, as chaincode-as-a-service, with the
 *   id from `--chaincode-id` / CHAINCODE_ID / CORE_CHAINCODE_ID_NAME.
 */
import { readFileSync, realpathSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ChaincodeFromContract } from '../contract/chaincode-from-contract.js';
import { Contract } from '../contract/contract.js';
import { newLogger, setDefaultLogLevel } from '../shim/logger.js';
import { type ChaincodeConnection, ChaincodeServer, Shim, readArg } from '../shim/shim.js';
import type { ChaincodeInterface } from '../shim/types.js';

export interface LoadedChaincode {
  chaincode: ChaincodeInterface;
  name: string;
  version: string;
}

/** Imports the package's main module and turns its exports into a chaincode. */
export async function loadChaincode(moduleDir: string): Promise<LoadedChaincode> {
  const pkgPath = resolve(moduleDir, 'package.json');
  let pkg: { name?: string; version?: string; main?: string };
  try {
    pkg = JSON.parse(await readFile(pkgPath, 'utf8'));
  } catch (e) {
    throw new Error(`cannot read ${pkgPath}: ${(e as Error).message}`);
  }
  const main = resolve(moduleDir, pkg.main ?? 'index.js');
  const mod = (await import(pathToFileURL(main).href)) as Record<string, unknown>;
  const exported = (mod['contracts'] ??
    (mod['default'] as Record<string, unknown> | undefined)?.['contracts']) as unknown;
  const name = pkg.name ?? 'chaincode';
  const version = pkg.version ?? '';
  if (Array.isArray(exported)) {
    return { chaincode: new ChaincodeFromContract(exported, { title: name, version }), name, version };
  }
  const single = mod['default'];
  if (typeof single === 'function' && (single as { prototype?: unknown }).prototype instanceof Contract) {
    return {
      chaincode: new ChaincodeFromContract([single as new () => Contract], { title: name, version }),
      name,
      version,
    };
  }
  const cc = (mod['chaincode'] ?? single) as Partial<ChaincodeInterface> | undefined;
  if (cc && typeof cc.Init === 'function' && typeof cc.Invoke === 'function') {
    return { chaincode: cc as ChaincodeInterface, name, version };
  }
  throw new Error(`${main} exports neither \`contracts\` nor a chaincode with Init and Invoke`);
}

export async function startChaincode(
  argv: readonly string[],
  env: NodeJS.ProcessEnv,
): Promise<ChaincodeConnection | ChaincodeServer> {
  const logger = newLogger('chaincode');
  const level = readArg(argv, 'chaincode-log-level') ?? env['CORE_CHAINCODE_LOGGING_LEVEL'];
  if (level) setDefaultLogLevel(level);
  const command = argv[0] && !argv[0].startsWith('--') ? argv[0] : 'start';
  const moduleDir = resolve(readArg(argv, 'module-path') ?? process.cwd());
  const { chaincode } = await loadChaincode(moduleDir);
  const peerAddress = readArg(argv, 'peer.address') ?? env['CORE_PEER_ADDRESS'];
  const serverAddress = readArg(argv, 'chaincode-address') ?? env['CHAINCODE_SERVER_ADDRESS'];
  if (command === 'server' || (command === 'start' && !peerAddress && serverAddress)) {
    const ccid = readArg(argv, 'chaincode-id') ?? env['CHAINCODE_ID'] ?? env['CORE_CHAINCODE_ID_NAME'];
    if (!serverAddress) throw new Error('server mode needs --chaincode-address or CHAINCODE_SERVER_ADDRESS');
    if (!ccid) throw new Error('server mode needs --chaincode-id or CHAINCODE_ID / CORE_CHAINCODE_ID_NAME');
    // TLS as fabric-chaincode-node's server mode: CHAINCODE_TLS_KEY_FILE / CHAINCODE_TLS_CERT_FILE,
    // and CHAINCODE_TLS_CLIENT_CACERT_FILE to require the peer's client certificate.
    const tlsFile = (arg: string, name: string) => {
      const f = readArg(argv, arg) ?? env[name];
      return f ? readFileSync(f, 'utf8') : undefined;
    };
    const key = tlsFile('chaincode-tls-key-file', 'CHAINCODE_TLS_KEY_FILE');
    const cert = tlsFile('chaincode-tls-cert-file', 'CHAINCODE_TLS_CERT_FILE');
    const clientCACerts = tlsFile('chaincode-tls-client-cacert-file', 'CHAINCODE_TLS_CLIENT_CACERT_FILE');
    if ((key === undefined) !== (cert === undefined)) {
      throw new Error('server TLS needs both CHAINCODE_TLS_KEY_FILE and CHAINCODE_TLS_CERT_FILE');
    }
    const server = Shim.server(chaincode, {
      ccid,
      address: serverAddress,
      logger,
      ...(key && cert ? { tlsProps: { key, cert, ...(clientCACerts ? { clientCACerts } : {}) } } : {}),
    });
    await server.start();
    return server;
  }
  if (command !== 'start') throw new Error(`unknown command "${command}": expected start or server`);
  const chaincodeId =
    readArg(argv, 'chaincode-id-name') ?? readArg(argv, 'chaincode-id') ?? env['CORE_CHAINCODE_ID_NAME'];
  if (!peerAddress) throw new Error('start needs --peer.address or CORE_PEER_ADDRESS');
  if (!chaincodeId) throw new Error('start needs --chaincode-id-name or CORE_CHAINCODE_ID_NAME');
  const conn = Shim.start(chaincode, { peerAddress, chaincodeId, logger });
  await conn.registered;
  return conn;
}

function isMainModule(): boolean {
  const script = process.argv[1];
  if (script === undefined) return false;
  try {
    return import.meta.url === pathToFileURL(realpathSync(script)).href;
  } catch {
    return false;
  }
}

const invokedDirectly = isMainModule();
if (invokedDirectly) {
  startChaincode(process.argv.slice(2), process.env).then(
    (running) => {
      if (!(running instanceof ChaincodeServer)) {
        // A dial-out chaincode lives as long as its stream: the peer restarts it when needed.
        void running.closed.then(() => process.exit(0));
      }
    },
    (e: Error) => {
      process.stderr.write(`chaincode failed to start: ${e.message}\n`);
      process.exit(1);
    },
  );
}
