/**
 * Runs chaincode out of process, as Fabric's chaincode support does:
 *
 * - launched (dial-in to the peer): the runtime listens on loopback and starts
 *   `node <loom-chaincode> start --peer.address 127.0.0.1:<port> --chaincode-id-name <packageId>
 *   --module-path <dir>` with `CORE_CHAINCODE_ID_NAME`, `CORE_PEER_ADDRESS`, `CORE_PEER_LOCALMSPID`
 *   in its environment; the process connects and registers. Only a package id the runtime has just
 *   launched (and is waiting for) may register; anything else is refused.
 * - chaincode-as-a-service (dial-out): the package's `connection.json` names the chaincode server;
 *   the runtime connects, and the server registers on that stream with the package id.
 *
 * With `tls` the dial-in listener speaks mutual TLS, as Fabric's chaincode support does: its pair
 * and every launched process's client pair come from a CA the peer made for itself (common's
 * `createEphemeralTlsCa`); the process gets `CORE_PEER_TLS_ENABLED=true`,
 * `CORE_PEER_TLS_ROOTCERT_FILE`, `CORE_TLS_CLIENT_CERT_PATH` and `CORE_TLS_CLIENT_KEY_PATH` (PEM
 * files, mode 0600), and a REGISTER is accepted only on a connection whose client certificate was
 * issued for that package id.
 *
 * One instance per package id, started on first use and shared by every transaction and channel.
 * An instance that crashes (exits, stream closed) fails its in-flight transactions with
 * CHAINCODE_CRASHED and is started again on next use. A transaction that outlives the execute
 * timeout fails with CHAINCODE_TIMEOUT and its process is killed (an endless loop would otherwise
 * hold the instance forever); the next use starts a fresh one. The peer process itself is never
 * affected by a chaincode's failure.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { createServer as createTlsServer, type TLSSocket, connect as tlsConnect } from 'node:tls';
import { LoomError, type Logger } from '@loom/common';
import { ChaincodeStreamConnection } from './connection.js';
import {
  type ChaincodeLaunchSpec,
  type ChaincodePackageResolver,
  ChaincodeRuntimeErrorCode,
  type ChaincodeServerConnection,
  type ExecuteRequest,
  type ExecuteResult,
} from './types.js';

export interface ChaincodeRuntimeOptions {
  /** Where installed packages are and how to run them. */
  readonly packages: ChaincodePackageResolver;
  /** This peer's MSP id (`CORE_PEER_LOCALMSPID`, what `stub.getMspID()` answers). */
  readonly peerMspId: string;
  /** Listen host for launched chaincode; default 127.0.0.1. */
  readonly listenHost?: string | undefined;
  /** Listen port; default 0 (any free port). */
  readonly listenPort?: number | undefined;
  /** Per-transaction execute timeout; default 30 s (Fabric's `chaincode.executetimeout`). */
  readonly executeTimeoutMs?: number | undefined;
  /** How long a launched chaincode may take to register; default 20 s. */
  readonly startupTimeoutMs?: number | undefined;
  /** Records per page of unpaginated queries; default 100. */
  readonly queryPageSize?: number | undefined;
  /** `loom-chaincode` script used when a package has none in its node_modules/.bin. */
  readonly defaultChaincodeBin?: string | undefined;
  /** Node executable; default this process's. */
  readonly nodePath?: string | undefined;
  /** Chaincode log level passed as CORE_CHAINCODE_LOGGING_LEVEL. */
  readonly chaincodeLogLevel?: string | undefined;
  readonly maxFrameBytes?: number | undefined;
  readonly logger?: Logger | undefined;
  /** Mutual TLS on the dial-in listener (see the module comment); plain TCP when absent. */
  readonly tls?: ChaincodeListenerTls | undefined;
}

export interface ChaincodeListenerTls {
  /** The listener's pair (issued for the listen host). */
  readonly certPem: string;
  readonly keyPem: string;
  /** The root that issued the listener's pair and issues the client pairs. */
  readonly rootCertPem: string;
  /** A client pair whose CN is `packageId` (sanitized as the CA does). */
  issueClient(packageId: string): Promise<{ readonly certPem: string; readonly keyPem: string }>;
  /** Where the files handed to chaincode processes are written. */
  readonly dir: string;
}

/** The CN a client certificate for `packageId` carries (the ephemeral CA's sanitizing). */
const cnOf = (packageId: string) => packageId.replace(/[,+="\\<>;#]/g, '_');

interface Instance {
  readonly packageId: string;
  /** Resolves once the chaincode has registered. */
  readonly ready: Promise<ChaincodeStreamConnection>;
  process: ChildProcess | undefined;
  connection: ChaincodeStreamConnection | undefined;
  dead: boolean;
  /** The last lines the process wrote to stderr/stdout, for error messages. */
  readonly output: string[];
}

interface PendingRegistration {
  resolve: (c: ChaincodeStreamConnection) => void;
  reject: (e: Error) => void;
}

const OUTPUT_LINES = 20;

function parseDuration(v: string | number | undefined, fallback: number): number {
  if (v === undefined) return fallback;
  if (typeof v === 'number') return v;
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(v.trim());
  if (!m) return fallback;
  const n = Number(m[1]);
  return m[2] === 'ms' ? n : m[2] === 'm' ? n * 60_000 : n * 1000;
}

export class ChaincodeRuntime {
  readonly #opts: ChaincodeRuntimeOptions;
  readonly #instances = new Map<string, Instance>();
  /** Launched package ids waiting for their REGISTER. */
  readonly #expected = new Map<string, PendingRegistration>();
  readonly #sockets = new Set<Socket>();
  #server: Server | undefined;
  #address: string | undefined;
  #stopped = false;

  constructor(opts: ChaincodeRuntimeOptions) {
    this.#opts = opts;
  }

  /** Starts the listener launched chaincode dials into. */
  async start(): Promise<void> {
    if (this.#server !== undefined) return;
    const tls = this.#opts.tls;
    const server: Server = tls
      ? createTlsServer(
          {
            cert: tls.certPem,
            key: tls.keyPem,
            ca: [tls.rootCertPem],
            requestCert: true,
            rejectUnauthorized: true,
            minVersion: 'TLSv1.2',
          },
          (socket) => this.#accept(socket),
        ).on('tlsClientError', (e) =>
          this.#opts.logger?.warn({ err: e.message }, 'refused a chaincode connection: TLS handshake failed'),
        )
      : createServer((socket) => this.#accept(socket));
    this.#server = server;
    const host = this.#opts.listenHost ?? '127.0.0.1';
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.#opts.listenPort ?? 0, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    const a = server.address();
    if (a === null || typeof a === 'string') throw new Error('chaincode listener has no TCP address');
    this.#address = `${host}:${a.port}`;
  }

  /** `host:port` launched chaincode connects to. */
  get address(): string {
    if (this.#address === undefined) throw new LoomError(ChaincodeRuntimeErrorCode.STOPPED, 'runtime not started');
    return this.#address;
  }

  /** Stops every chaincode instance and the listener. */
  async stop(): Promise<void> {
    this.#stopped = true;
    const exits: Promise<void>[] = [];
    for (const inst of [...this.#instances.values()]) exits.push(this.#kill(inst, 'runtime stopped'));
    for (const p of this.#expected.values()) {
      p.reject(new LoomError(ChaincodeRuntimeErrorCode.STOPPED, 'chaincode runtime stopped'));
    }
    this.#expected.clear();
    await Promise.all(exits);
    for (const s of this.#sockets) s.destroy();
    const server = this.#server;
    this.#server = undefined;
    if (server !== undefined) await new Promise<void>((r) => server.close(() => r()));
  }

  /** Package ids with a running (or starting) instance. */
  get runningPackages(): string[] {
    return [...this.#instances.keys()];
  }

  /** The OS process id of a launched instance, if running (tests, diagnostics). */
  pidOf(packageId: string): number | undefined {
    return this.#instances.get(packageId)?.process?.pid;
  }

  /** Runs one transaction on the package's instance, starting it if needed. */
  async execute(request: ExecuteRequest): Promise<ExecuteResult> {
    if (this.#stopped) throw new LoomError(ChaincodeRuntimeErrorCode.STOPPED, 'chaincode runtime stopped');
    const inst = this.#instanceFor(request.packageId);
    const connection = await inst.ready;
    const timeoutMs = request.timeoutMs ?? this.#opts.executeTimeoutMs ?? 30_000;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        connection.abandon(request.channelId, request.txId);
        this.#opts.logger?.warn(
          { packageId: request.packageId, txId: request.txId, timeoutMs },
          'chaincode execution timed out; killing the chaincode',
        );
        void this.#kill(inst, 'execute timeout');
        reject(
          new LoomError(
            ChaincodeRuntimeErrorCode.TIMEOUT,
            `chaincode ${request.chaincodeName} (${request.packageId}) did not complete transaction ${request.txId} within ${timeoutMs} ms`,
            { httpStatus: 504, details: { packageId: request.packageId, txId: request.txId, timeoutMs } },
          ),
        );
      }, timeoutMs);
    });
    try {
      return await Promise.race([connection.execute(request), timeout]);
    } catch (e) {
      if (e instanceof LoomError && e.code === ChaincodeRuntimeErrorCode.CRASHED) {
        const tail = inst.output.slice(-5).join('\n');
        throw new LoomError(
          ChaincodeRuntimeErrorCode.CRASHED,
          `chaincode ${request.chaincodeName} (${request.packageId}) crashed during transaction ${request.txId}${tail ? `: ${tail}` : ''}`,
          { httpStatus: 500, details: { packageId: request.packageId, txId: request.txId }, cause: e },
        );
      }
      throw e;
    } finally {
      clearTimeout(timer);
    }
  }

  #instanceFor(packageId: string): Instance {
    const existing = this.#instances.get(packageId);
    if (existing !== undefined && !existing.dead) return existing;
    const output: string[] = [];
    const holder: { inst?: Instance } = {};
    const ready = this.#launch(packageId, () => holder.inst!);
    const inst: Instance = { packageId, ready, process: undefined, connection: undefined, dead: false, output };
    holder.inst = inst;
    this.#instances.set(packageId, inst);
    ready.then(
      (c) => {
        inst.connection = c;
        void c.closed.then(() => this.#forget(inst, 'stream closed'));
      },
      () => this.#forget(inst, 'start failed'),
    );
    return inst;
  }

  async #launch(packageId: string, instance: () => Instance): Promise<ChaincodeStreamConnection> {
    const spec = await this.#opts.packages(packageId);
    if (spec === undefined) {
      throw new LoomError(ChaincodeRuntimeErrorCode.NOT_INSTALLED, `chaincode package ${packageId} is not installed`, {
        httpStatus: 404,
        details: { packageId },
      });
    }
    if (spec.kind === 'external') return this.#dial(packageId, spec.connection);
    return this.#spawn(packageId, spec, instance());
  }

  #startFailed(packageId: string, why: string, output: string[] = []): LoomError {
    const tail = output.slice(-5).join('\n');
    return new LoomError(
      ChaincodeRuntimeErrorCode.START_FAILED,
      `chaincode ${packageId} failed to start: ${why}${tail ? `\n${tail}` : ''}`,
      { httpStatus: 500, details: { packageId } },
    );
  }

  async #spawn(
    packageId: string,
    spec: Extract<ChaincodeLaunchSpec, { kind: 'process' }>,
    inst: Instance,
  ): Promise<ChaincodeStreamConnection> {
    await this.start();
    const local = join(spec.dir, 'node_modules', '.bin', 'loom-chaincode');
    const bin = spec.bin ?? (existsSync(local) ? local : this.#opts.defaultChaincodeBin);
    if (bin === undefined) {
      throw this.#startFailed(
        packageId,
        `no loom-chaincode in ${spec.dir}/node_modules/.bin and no default configured`,
      );
    }
    if (this.#expected.has(packageId)) throw this.#startFailed(packageId, 'already starting');
    const peerAddress = this.address;
    const registered = new Promise<ChaincodeStreamConnection>((resolve, reject) => {
      this.#expected.set(packageId, { resolve, reject });
    });
    const tlsEnv = this.#opts.tls ? await this.#clientTlsFiles(packageId, this.#opts.tls) : {};
    const env: Record<string, string> = {
      PATH: process.env['PATH'] ?? '/usr/bin:/bin',
      CORE_CHAINCODE_ID_NAME: packageId,
      CORE_PEER_ADDRESS: peerAddress,
      CORE_PEER_LOCALMSPID: this.#opts.peerMspId,
      ...tlsEnv,
      ...(this.#opts.chaincodeLogLevel ? { CORE_CHAINCODE_LOGGING_LEVEL: this.#opts.chaincodeLogLevel } : {}),
      ...(spec.env ?? {}),
    };
    const child = spawn(
      this.#opts.nodePath ?? process.execPath,
      [bin, 'start', '--peer.address', peerAddress, '--chaincode-id-name', packageId, '--module-path', spec.dir],
      { cwd: spec.dir, env, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    inst.process = child;
    const keep = (chunk: Buffer) => {
      for (const line of chunk.toString('utf8').split('\n')) {
        if (line.trim() === '') continue;
        inst.output.push(line);
        if (inst.output.length > OUTPUT_LINES) inst.output.shift();
      }
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    const exited = new Promise<never>((_, reject) => {
      child.once('error', (e) => reject(this.#startFailed(packageId, e.message, inst.output)));
      child.once('exit', (code, signal) => {
        inst.process = undefined;
        this.#opts.logger?.info({ packageId, code, signal }, 'chaincode process exited');
        // Once registered, the stream's close fails in-flight transactions; make sure it does close.
        inst.connection?.close();
        this.#forget(inst, 'process exited');
        reject(this.#startFailed(packageId, `process exited (code ${code}, signal ${signal})`, inst.output));
      });
    });
    exited.catch(() => {});
    let timer: NodeJS.Timeout | undefined;
    const startup = this.#opts.startupTimeoutMs ?? 20_000;
    const timedOut = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(this.#startFailed(packageId, `did not register within ${startup} ms`, inst.output)),
        startup,
      );
    });
    try {
      const c = await Promise.race([registered, exited, timedOut]);
      this.#opts.logger?.info({ packageId, pid: child.pid }, 'chaincode registered');
      return c;
    } catch (e) {
      child.kill('SIGKILL');
      throw e;
    } finally {
      clearTimeout(timer);
      this.#expected.delete(packageId);
    }
  }

  async #dial(packageId: string, conn: ChaincodeServerConnection): Promise<ChaincodeStreamConnection> {
    if (conn.tls_required && !conn.root_cert) {
      throw this.#startFailed(packageId, "connection.json: tls_required needs root_cert (PEM of the server's root)");
    }
    if (conn.tls_required && conn.client_auth_required && (!conn.client_cert || !conn.client_key)) {
      throw this.#startFailed(
        packageId,
        'connection.json: client_auth_required needs client_cert and client_key (PEM)',
      );
    }
    const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d+)$/.exec(conn.address);
    if (!m) throw this.#startFailed(packageId, `invalid chaincode server address ${JSON.stringify(conn.address)}`);
    const host = m[1] ?? m[2]!;
    const port = Number(m[3]);
    const dialTimeout = parseDuration(conn.dial_timeout, 10_000);
    const socket: Socket = conn.tls_required
      ? tlsConnect({
          host,
          port,
          ca: [conn.root_cert!],
          ...(conn.client_auth_required ? { cert: conn.client_cert!, key: conn.client_key! } : {}),
          minVersion: 'TLSv1.2',
          rejectUnauthorized: true,
        })
      : connect({ host, port });
    this.#track(socket);
    let timer: NodeJS.Timeout | undefined;
    try {
      await new Promise<void>((resolve, reject) => {
        timer = setTimeout(() => reject(new Error(`dial timeout after ${dialTimeout} ms`)), dialTimeout);
        socket.once(conn.tls_required ? 'secureConnect' : 'connect', resolve);
        socket.once('error', reject);
      });
    } catch (e) {
      socket.destroy();
      throw this.#startFailed(packageId, `cannot reach chaincode server ${conn.address}: ${(e as Error).message}`);
    } finally {
      clearTimeout(timer);
    }
    return new Promise<ChaincodeStreamConnection>((resolve, reject) => {
      const t = setTimeout(() => {
        socket.destroy();
        reject(this.#startFailed(packageId, `chaincode server ${conn.address} did not register in ${dialTimeout} ms`));
      }, dialTimeout);
      const c = new ChaincodeStreamConnection({
        socket,
        queryPageSize: this.#opts.queryPageSize ?? 100,
        maxFrameBytes: this.#opts.maxFrameBytes,
        logger: this.#opts.logger,
        onRegister: (id, connection) => {
          clearTimeout(t);
          // The server must be the package we expect (its CHAINCODE_ID is the package id).
          if (id !== packageId) {
            reject(this.#startFailed(packageId, `chaincode server registered as ${JSON.stringify(id)}`));
            return false;
          }
          resolve(connection);
          return true;
        },
      });
      void c.closed.then(() => {
        clearTimeout(t);
        reject(this.#startFailed(packageId, 'chaincode server closed the stream before registering'));
      });
    });
  }

  /** Writes a fresh client pair for `packageId` and the root; returns the environment naming them. */
  async #clientTlsFiles(packageId: string, tls: ChaincodeListenerTls): Promise<Record<string, string>> {
    const dir = join(tls.dir, packageId.replace(/[^A-Za-z0-9._-]/g, '_'));
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const pair = await tls.issueClient(packageId);
    const files = { root: join(dir, 'root.crt'), cert: join(dir, 'client.crt'), key: join(dir, 'client.key') };
    await writeFile(files.root, tls.rootCertPem, { mode: 0o600 });
    await writeFile(files.cert, pair.certPem, { mode: 0o600 });
    await writeFile(files.key, pair.keyPem, { mode: 0o600 });
    return {
      CORE_PEER_TLS_ENABLED: 'true',
      CORE_PEER_TLS_ROOTCERT_FILE: files.root,
      CORE_TLS_CLIENT_CERT_PATH: files.cert,
      CORE_TLS_CLIENT_KEY_PATH: files.key,
    };
  }

  #track(socket: Socket): void {
    this.#sockets.add(socket);
    socket.once('close', () => this.#sockets.delete(socket));
  }

  #accept(socket: Socket): void {
    this.#track(socket);
    if (this.#stopped) {
      socket.destroy();
      return;
    }
    new ChaincodeStreamConnection({
      socket,
      queryPageSize: this.#opts.queryPageSize ?? 100,
      maxFrameBytes: this.#opts.maxFrameBytes,
      logger: this.#opts.logger,
      onRegister: (id, connection) => {
        if (this.#opts.tls) {
          const cn = (socket as TLSSocket).getPeerCertificate?.()?.subject?.CN;
          if (cn !== cnOf(id)) {
            this.#opts.logger?.warn(
              { chaincodeId: id, certificateCn: cn },
              'refused REGISTER: the TLS client certificate was issued for another chaincode',
            );
            return false;
          }
        }
        const pending = this.#expected.get(id);
        if (pending === undefined) {
          this.#opts.logger?.warn({ chaincodeId: id }, 'refused REGISTER from a chaincode this peer did not launch');
          return false;
        }
        this.#expected.delete(id);
        pending.resolve(connection);
        return true;
      },
    });
  }

  #forget(inst: Instance, reason: string): void {
    if (inst.dead) return;
    inst.dead = true;
    if (this.#instances.get(inst.packageId) === inst) this.#instances.delete(inst.packageId);
    this.#opts.logger?.debug({ packageId: inst.packageId, reason }, 'chaincode instance gone');
  }

  /** Kills an instance's process (or closes its stream), resolving when it is gone. */
  async #kill(inst: Instance, reason: string): Promise<void> {
    this.#forget(inst, reason);
    const child = inst.process;
    inst.connection?.close();
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, 5000);
      child.once('exit', () => {
        clearTimeout(t);
        resolve();
      });
      child.kill('SIGKILL');
    });
  }
}

/** Creates a runtime; call `start()` before use (or let the first launch start it). */
export function createChaincodeRuntime(opts: ChaincodeRuntimeOptions): ChaincodeRuntime {
  return new ChaincodeRuntime(opts);
}
