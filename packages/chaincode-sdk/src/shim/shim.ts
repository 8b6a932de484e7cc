/**
 * Starting a chaincode, both ways Fabric does:
 * - dial-out (`Shim.start`): the peer launched this process with `--peer.address host:port` and the
 *   chaincode id in `CORE_CHAINCODE_ID_NAME` (or `--chaincode-id`); the chaincode connects and
 *   registers.
 * - chaincode-as-a-service (`Shim.server(...).start()`): the chaincode listens on an address and the
 *   peer dials in; on each accepted connection the chaincode registers, exactly as in dial-out.
 * Either way the stream is a ChaincodeStream and the messages are the same.
 *
 * Dial-out speaks mutual TLS when the peer says so, with Fabric's variables: CORE_PEER_TLS_ENABLED=true,
 * CORE_PEER_TLS_ROOTCERT_FILE (the root the peer's chaincode listener chains to) and
 * CORE_TLS_CLIENT_CERT_PATH / CORE_TLS_CLIENT_KEY_PATH (this process's client pair; PEM files).
 */
import { readFileSync } from 'node:fs';
import { type Server, type Socket, connect, createServer } from 'node:net';
import { createServer as createTlsServer, connect as tlsConnect } from 'node:tls';
import { type ChaincodeLogger, newLogger } from './logger.js';
import { ChaincodeStream } from './handler.js';
import type { ChaincodeInterface, ChaincodeResponse } from './types.js';

export interface PeerAddress {
  host?: string;
  port?: number;
  /** A Unix socket path instead of host:port. */
  path?: string;
}

/** `host:port`, `[v6]:port`, `unix:/path` or an absolute socket path. */
export function parseAddress(address: string): PeerAddress {
  const a = address.replace(/^(grpcs?|tcp):\/\//, '');
  if (a.startsWith('unix:')) return { path: a.slice('unix:'.length) };
  if (a.startsWith('/')) return { path: a };
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(a);
  if (!m) throw new Error(`invalid address "${address}": expected host:port or unix:/path`);
  const port = Number(m[3]);
  if (port > 65535) throw new Error(`invalid port in address "${address}"`);
  return { host: m[1] ?? (m[2] || '127.0.0.1'), port };
}

export interface ShimStartOptions {
  peerAddress?: string;
  chaincodeId?: string;
  maxFrameBytes?: number;
  logger?: ChaincodeLogger;
  /** Mutual TLS to the peer; default from CORE_PEER_TLS_ENABLED and the files it names. */
  tls?: DialTls;
}

/** PEM material for a TLS dial-out. */
export interface DialTls {
  readonly rootCertPem: string;
  readonly clientCertPem: string;
  readonly clientKeyPem: string;
}

/** The TLS settings the peer put in the environment, or undefined when TLS is off. */
export function dialTlsFromEnv(env: NodeJS.ProcessEnv = process.env): DialTls | undefined {
  if ((env['CORE_PEER_TLS_ENABLED'] ?? '').toLowerCase() !== 'true') return undefined;
  const file = (name: string) => {
    const path = env[name];
    if (!path) throw new Error(`CORE_PEER_TLS_ENABLED is true but ${name} is not set`);
    return readFileSync(path, 'utf8');
  };
  return {
    rootCertPem: file('CORE_PEER_TLS_ROOTCERT_FILE'),
    clientCertPem: file('CORE_TLS_CLIENT_CERT_PATH'),
    clientKeyPem: file('CORE_TLS_CLIENT_KEY_PATH'),
  };
}

/** A running dial-out chaincode. */
export interface ChaincodeConnection {
  readonly stream: ChaincodeStream;
  /** Resolves once the peer has answered REGISTERED. */
  readonly registered: Promise<void>;
  /** Resolves when the stream closes. */
  readonly closed: Promise<void>;
  close(): void;
}

/** `--name value` or `--name=value` from argv. */
export function readArg(argv: readonly string[], name: string): string | undefined {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === `--${name}`) return argv[i + 1];
    if (a.startsWith(`--${name}=`)) return a.slice(name.length + 3);
  }
  return undefined;
}

export function dialPeer(
  chaincode: ChaincodeInterface,
  opts: Required<Pick<ShimStartOptions, 'peerAddress' | 'chaincodeId'>> & ShimStartOptions,
): ChaincodeConnection {
  const logger = opts.logger ?? newLogger('shim');
  const addr = parseAddress(opts.peerAddress);
  const tls = opts.tls ?? dialTlsFromEnv();
  const socket: Socket =
    addr.path !== undefined
      ? connect({ path: addr.path })
      : tls
        ? tlsConnect({
            host: addr.host!,
            port: addr.port!,
            ca: [tls.rootCertPem],
            cert: tls.clientCertPem,
            key: tls.clientKeyPem,
            minVersion: 'TLSv1.2',
            rejectUnauthorized: true,
          })
        : connect({ host: addr.host!, port: addr.port! });
  socket.setNoDelay(true);
  const stream = new ChaincodeStream(chaincode, socket, {
    chaincodeId: opts.chaincodeId,
    logger,
    ...(opts.maxFrameBytes === undefined ? {} : { maxFrameBytes: opts.maxFrameBytes }),
  });
  const registered = new Promise<void>((resolve, reject) => {
    socket.once(tls && addr.path === undefined ? 'secureConnect' : 'connect', () => {
      logger.info('connected to peer at %s%s, registering %s', opts.peerAddress, tls ? ' (TLS)' : '', opts.chaincodeId);
      stream.register().then(resolve, reject);
    });
    socket.once('error', reject);
  });
  registered.catch(() => {});
  return { stream, registered, closed: stream.closed, close: () => stream.close() };
}

export interface ChaincodeServerOptions {
  /** The chaincode id the peer expects (package id), sent in REGISTER. */
  ccid: string;
  /** Where to listen: `host:port` (port 0 for any) or `unix:/path`. */
  address: string;
  maxFrameBytes?: number;
  logger?: ChaincodeLogger;
  /**
   * TLS for the server (fabric-shim's `tlsProps`): its PEM pair, and `clientCACerts` to require
   * the peer's client certificate (`client_auth_required` in the peer's connection.json).
   */
  tlsProps?: { key: string | Buffer; cert: string | Buffer; clientCACerts?: string | Buffer };
}

/** Chaincode-as-a-service: listens; the peer connects; every connection registers and serves. */
export class ChaincodeServer {
  readonly #chaincode: ChaincodeInterface;
  readonly #opts: ChaincodeServerOptions;
  readonly #logger: ChaincodeLogger;
  readonly #streams = new Set<ChaincodeStream>();
  #server: Server | undefined;

  constructor(chaincode: ChaincodeInterface, opts: ChaincodeServerOptions) {
    if (!opts.ccid) throw new Error('ccid is required');
    if (!opts.address) throw new Error('address is required');
    this.#chaincode = chaincode;
    this.#opts = opts;
    this.#logger = opts.logger ?? newLogger('shim');
  }

  async start(): Promise<void> {
    const addr = parseAddress(this.#opts.address);
    const tls = this.#opts.tlsProps;
    const server: Server = tls
      ? createTlsServer(
          {
            key: tls.key,
            cert: tls.cert,
            minVersion: 'TLSv1.2',
            ...(tls.clientCACerts !== undefined
              ? { ca: [tls.clientCACerts], requestCert: true, rejectUnauthorized: true }
              : {}),
          },
          (socket) => this.#accept(socket),
        ).on('tlsClientError', (e) => this.#logger.warn('refused a TLS connection: %s', e.message))
      : createServer((socket) => this.#accept(socket));
    this.#server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      const onListening = () => {
        server.off('error', reject);
        resolve();
      };
      if (addr.path !== undefined) server.listen(addr.path, onListening);
      else server.listen(addr.port!, addr.host, onListening);
    });
    this.#logger.info('chaincode server %s listening on %s', this.#opts.ccid, this.address);
  }

  /** The bound address (`host:port` with the real port, or the socket path). */
  get address(): string {
    const a = this.#server?.address();
    if (a === null || a === undefined) return this.#opts.address;
    if (typeof a === 'string') return `unix:${a}`;
    return `${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}`;
  }

  async stop(): Promise<void> {
    for (const s of this.#streams) s.close();
    const server = this.#server;
    if (server === undefined) return;
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  #accept(socket: Socket): void {
    socket.setNoDelay(true);
    const stream = new ChaincodeStream(this.#chaincode, socket, {
      chaincodeId: this.#opts.ccid,
      logger: this.#logger,
      ...(this.#opts.maxFrameBytes === undefined ? {} : { maxFrameBytes: this.#opts.maxFrameBytes }),
    });
    this.#streams.add(stream);
    void stream.closed.then(() => this.#streams.delete(stream));
    stream.register().then(
      () => this.#logger.info('registered with peer %s:%s', socket.remoteAddress, socket.remotePort),
      (e: Error) => this.#logger.error('registration failed: %s', e.message),
    );
  }
}

function responsePayload(p: unknown): Buffer {
  if (p === undefined || p === null) return Buffer.alloc(0);
  if (p instanceof Uint8Array) return Buffer.from(p.buffer, p.byteOffset, p.byteLength);
  return Buffer.from(String(p), 'utf8');
}

/** fabric-shim's static entry points. */
// biome-ignore lint/complexity/noStaticOnlyClass: fabric-shim's public API is this class of statics.
export class Shim {
  /**
   * Dial-out: connects to the peer named by `--peer.address` (or CORE_PEER_ADDRESS) and registers
   * as CORE_CHAINCODE_ID_NAME (or `--chaincode-id`).
   */
  static start(chaincode: ChaincodeInterface, opts: ShimStartOptions = {}): ChaincodeConnection {
    const argv = process.argv.slice(2);
    const peerAddress = opts.peerAddress ?? readArg(argv, 'peer.address') ?? process.env['CORE_PEER_ADDRESS'];
    const chaincodeId =
      opts.chaincodeId ??
      readArg(argv, 'chaincode-id') ??
      readArg(argv, 'chaincode-id-name') ??
      process.env['CORE_CHAINCODE_ID_NAME'];
    if (!peerAddress) throw new Error('the peer address is required: pass --peer.address host:port');
    if (!chaincodeId) throw new Error('the chaincode id is required: set CORE_CHAINCODE_ID_NAME');
    return dialPeer(chaincode, { ...opts, peerAddress, chaincodeId });
  }

  /** Chaincode-as-a-service: call `start()` on the result. */
  static server(chaincode: ChaincodeInterface, opts: ChaincodeServerOptions): ChaincodeServer {
    return new ChaincodeServer(chaincode, opts);
  }

  static success(payload?: Uint8Array | string): ChaincodeResponse {
    return { status: 200, message: '', payload: responsePayload(payload) };
  }

  static error(msg: string | Error | Uint8Array): ChaincodeResponse {
    const message =
      msg instanceof Error ? msg.message : msg instanceof Uint8Array ? Buffer.from(msg).toString('utf8') : String(msg);
    return { status: 500, message, payload: Buffer.alloc(0) };
  }

  static newLogger(name: string): ChaincodeLogger {
    return newLogger(name);
  }
}
