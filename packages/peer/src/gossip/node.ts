/**
 * The peer's gossip node: libp2p (TCP + noise + yamux) on the peer's p2p port, with an authenticated
 * request/response and push API that any component can use (`handleRequest`/`handlePush` a protocol
 * id, `request`/`push` bytes to a peer on a channel).
 *
 * Authentication. noise authenticates the remote libp2p peer id; the hello (wire.ts) binds that peer
 * id to an MSP identity (certificate + signature by the MSP key). A hello is accepted only if the
 * identity is a peer of an org of at least one channel this peer has joined (`membership.accepts`);
 * every later message on a stream from that peer id is attributed to the bound identity and accepted
 * only if that identity is a member of the message's channel (`membership.isMember`, checked per
 * message, so a config update that removes an org takes effect at once). Anything else is dropped and
 * counted in `gossip_messages_rejected_total{reason}`.
 *
 * Discovery: the bootstrap addresses, the addresses handed to `addAddresses` (e.g. channel anchor
 * peers) and the addresses other peers list in their hellos are dialled, with backoff, until a
 * connection is authenticated; connections that drop are re-dialled.
 */
import '@loom/common/p2p/node-compat';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { noise } from '@chainsafe/libp2p-noise';
import { yamux } from '@chainsafe/libp2p-yamux';
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys';
import type { Connection, PrivateKey, Stream } from '@libp2p/interface';
import { peerIdFromString } from '@libp2p/peer-id';
import { tcp } from '@libp2p/tcp';
import { type Bytes, isLoomError, type Logger, LoomError } from '@loom/common';
import { FrameReader, frame } from '@loom/common/p2p/frames';
import { multiaddr } from '@multiformats/multiaddr';
import { createLibp2p, type Libp2p } from 'libp2p';
import { Counter, type Registry } from 'prom-client';
import {
  decodeMessage,
  decodeResponse,
  encodeMessage,
  encodeResponse,
  GossipErrorCode,
  type GossipFrame,
  HELLO_PROTOCOL,
  type Hello,
  helloRejected,
  MESSAGE_PROTOCOL,
  makeHello,
  verifyHello,
} from './wire.js';

const DIAL_TIMEOUT_MS = 3_000;
const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;
const MAX_BACKOFF_MS = 5_000;

/** An authenticated remote peer: its libp2p id bound to its MSP identity by a verified hello. */
export interface RemotePeer {
  readonly peerId: string;
  readonly nodeId: string;
  readonly mspId: string;
  readonly certPem: string;
  /** Where it accepts gossip connections (`host:port`), '' if it did not say. */
  readonly addr: string;
}

export interface GossipContext {
  readonly channel: string;
  readonly from: RemotePeer;
  readonly protocol: string;
  readonly data: Bytes;
}

export type RequestHandler = (ctx: GossipContext) => Promise<Bytes>;
export type PushHandler = (ctx: GossipContext) => void | Promise<void>;

export interface GossipMembership {
  /** Whether a hello from this identity is accepted (a peer of a member org of some joined channel). */
  accepts(remote: Omit<RemotePeer, 'peerId' | 'addr'>): boolean;
  /** Whether messages from this identity are accepted on `channel`. */
  isMember(channel: string, remote: RemotePeer): boolean;
}

export interface GossipNodeOptions {
  /** Listen host and port (`0` picks a free one). */
  readonly host: string;
  readonly port: number;
  /** The host other peers should dial (default: `host`, or 127.0.0.1 for 0.0.0.0). */
  readonly advertiseHost?: string | undefined;
  readonly privateKey: PrivateKey;
  readonly nodeId: string;
  readonly mspId: string;
  readonly certPem: string;
  readonly signer: { sign(m: Bytes): Bytes | Promise<Bytes> };
  readonly bootstrap: readonly string[];
  readonly membership: GossipMembership;
  readonly logger: Logger;
  readonly registry?: Registry | undefined;
  /** How often unconnected addresses are re-dialled. */
  readonly maintenanceMs?: number;
  readonly clock?: () => number;
}

export interface GossipNode {
  readonly peerId: string;
  /** `host:port` this node accepts gossip connections on. */
  readonly listenAddr: string;
  handleRequest(protocol: string, handler: RequestHandler): void;
  handlePush(protocol: string, handler: PushHandler): void;
  /**
   * Sends a request to a peer and returns its answer (throws a LoomError on refusal). `addr` is where
   * to dial a peer not met yet (the receiver answers only peers whose hello it accepted).
   */
  request(
    peerId: string,
    channel: string,
    protocol: string,
    data: Bytes,
    opts?: { timeoutMs?: number; addr?: string },
  ): Promise<Bytes>;
  /** Best-effort one-way message. */
  push(peerId: string, channel: string, protocol: string, data: Bytes, opts?: { addr?: string }): Promise<void>;
  /** Authenticated peers with a live connection. */
  peers(): RemotePeer[];
  /** More addresses to dial (`host:port`). */
  addAddresses(addrs: readonly string[]): void;
  /** Re-dials every unconnected address now (e.g. after joining a channel: hellos refused before may pass). */
  redial(): void;
  stop(): Promise<void>;
}

/** Loads the node's libp2p key from `path`, generating and saving an Ed25519 key the first time. */
export async function loadOrCreateGossipKey(path: string): Promise<PrivateKey> {
  try {
    return privateKeyFromProtobuf(new Uint8Array(await readFile(path)));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  const key = await generateKeyPair('Ed25519');
  await mkdir(dirname(path), { recursive: true });
  await writeFile(`${path}.tmp`, privateKeyToProtobuf(key), { mode: 0o600 });
  await rename(`${path}.tmp`, path);
  return key;
}

function toMultiaddr(addr: string, peerId?: string) {
  const i = addr.lastIndexOf(':');
  const host = addr.slice(0, i).replace(/^\[|\]$/g, '');
  const port = addr.slice(i + 1);
  const proto = /^\d+\.\d+\.\d+\.\d+$/.test(host) ? 'ip4' : host.includes(':') ? 'ip6' : 'dns4';
  return multiaddr(`/${proto}/${host}/tcp/${port}${peerId ? `/p2p/${peerId}` : ''}`);
}

export function parseGossipAddr(addr: string): string {
  const m = /^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(addr.trim());
  if (!m || Number(m[2]) < 1 || Number(m[2]) > 65535) {
    throw new LoomError('GOSSIP_BAD_ADDRESS', `gossip address ${JSON.stringify(addr)} is not host:port`, {
      httpStatus: 400,
    });
  }
  return `${m[1]}:${m[2]}`;
}

function chunkBytes(d: Uint8Array | { subarray(): Uint8Array }): Uint8Array {
  return d instanceof Uint8Array ? d : d.subarray();
}

/** Reads exactly one frame from a stream, with a deadline. */
function readOneFrame(stream: Stream, timeoutMs: number): Promise<Bytes> {
  const reader = new FrameReader();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => done(new LoomError(GossipErrorCode.TIMEOUT, `no answer within ${timeoutMs} ms`)),
      timeoutMs,
    );
    const onMessage = (evt: { data: Uint8Array | { subarray(): Uint8Array } }) => {
      try {
        const [first] = reader.push(chunkBytes(evt.data));
        if (first) done(undefined, first);
      } catch (e) {
        done(e as Error);
      }
    };
    const onClose = () => done(new LoomError(GossipErrorCode.UNREACHABLE, 'stream closed before an answer'));
    const done = (err?: Error, v?: Bytes) => {
      clearTimeout(timer);
      stream.removeEventListener('message', onMessage as never);
      stream.removeEventListener('close', onClose);
      if (err) reject(err);
      else resolve(v!);
    };
    stream.addEventListener('message', onMessage as never);
    stream.addEventListener('close', onClose);
  });
}

function tune(stream: Stream): void {
  stream.maxReadBufferLength = 256 * 1024 * 1024;
  stream.maxWriteBufferLength = 256 * 1024 * 1024;
}

interface AddrState {
  peerId: string | undefined;
  self: boolean;
  connecting: boolean;
  nextTry: number;
  backoff: number;
}

export async function createGossipNode(opts: GossipNodeOptions): Promise<GossipNode> {
  const listenHost = opts.host === 'localhost' ? '127.0.0.1' : opts.host;
  const libp2p = await createLibp2p({
    privateKey: opts.privateKey,
    addresses: { listen: [`/ip4/${listenHost}/tcp/${opts.port}`] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
  });
  await libp2p.start();
  const bound = libp2p.getMultiaddrs()[0]?.toString() ?? '';
  const port = Number(/\/tcp\/(\d+)/.exec(bound)?.[1] ?? opts.port);
  const advertise = opts.advertiseHost ?? (listenHost === '0.0.0.0' ? '127.0.0.1' : listenHost);
  const node = new Libp2pGossipNode(libp2p, opts, `${advertise}:${port}`);
  const handlerOpts = { maxInboundStreams: 256, maxOutboundStreams: 256 };
  await libp2p.handle(HELLO_PROTOCOL, (s, c) => node.inboundHello(s, c), handlerOpts);
  await libp2p.handle(MESSAGE_PROTOCOL, (s, c) => node.inboundMessage(s, c), handlerOpts);
  node.startMaintenance();
  return node;
}

class Libp2pGossipNode implements GossipNode {
  readonly #node: Libp2p;
  readonly #opts: GossipNodeOptions;
  readonly #log: Logger;
  readonly #clock: () => number;
  readonly #remotes = new Map<string, RemotePeer>();
  readonly #addrs = new Map<string, AddrState>();
  readonly #requestHandlers = new Map<string, RequestHandler>();
  readonly #pushHandlers = new Map<string, PushHandler>();
  readonly #rejected: Counter<'reason'>;
  readonly #received: Counter<'protocol'>;
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;
  readonly peerId: string;
  readonly listenAddr: string;

  constructor(node: Libp2p, opts: GossipNodeOptions, listenAddr: string) {
    this.#node = node;
    this.#opts = opts;
    this.#log = opts.logger;
    this.#clock = opts.clock ?? Date.now;
    this.peerId = node.peerId.toString();
    this.listenAddr = listenAddr;
    const registers = opts.registry ? [opts.registry] : [];
    this.#rejected = new Counter({
      name: 'gossip_messages_rejected_total',
      help: 'Gossip handshakes and messages dropped: bad handshake, unauthenticated sender, or not a channel member.',
      labelNames: ['reason'],
      registers,
    });
    this.#received = new Counter({
      name: 'gossip_messages_received_total',
      help: 'Authenticated gossip messages accepted, by protocol.',
      labelNames: ['protocol'],
      registers,
    });
    this.addAddresses(opts.bootstrap);
  }

  handleRequest(protocol: string, handler: RequestHandler): void {
    this.#requestHandlers.set(protocol, handler);
  }

  handlePush(protocol: string, handler: PushHandler): void {
    this.#pushHandlers.set(protocol, handler);
  }

  peers(): RemotePeer[] {
    return [...this.#remotes.values()].filter((r) => this.#node.getConnections(peerIdFromString(r.peerId)).length > 0);
  }

  addAddresses(addrs: readonly string[]): void {
    for (const a of addrs) {
      let addr: string;
      try {
        addr = parseGossipAddr(a);
      } catch (e) {
        this.#log.warn({ addr: a, err: (e as Error).message }, 'gossip address ignored');
        continue;
      }
      if (addr === this.listenAddr || this.#addrs.has(addr)) continue;
      this.#addrs.set(addr, { peerId: undefined, self: false, connecting: false, nextTry: 0, backoff: 250 });
    }
  }

  redial(): void {
    for (const st of this.#addrs.values()) {
      st.nextTry = 0;
      st.backoff = 250;
    }
    if (!this.#stopped) this.#maintain();
  }

  startMaintenance(): void {
    const every = this.#opts.maintenanceMs ?? 1_000;
    const tick = () => {
      if (this.#stopped) return;
      this.#maintain();
      this.#timer = setTimeout(tick, every);
      this.#timer.unref();
    };
    tick();
  }

  #maintain(): void {
    const now = this.#clock();
    for (const [addr, st] of this.#addrs) {
      if (st.self || st.connecting || now < st.nextTry) continue;
      if (st.peerId && this.#remotes.has(st.peerId)) {
        if (this.#node.getConnections(peerIdFromString(st.peerId)).length > 0) continue;
      }
      st.connecting = true;
      void this.#hello(addr)
        .then((remote) => {
          st.peerId = remote.peerId;
          st.backoff = 250;
          st.nextTry = 0;
        })
        .catch((e: Error) => {
          if (e.message === 'self') {
            st.self = true;
            return;
          }
          this.#log.debug({ addr, err: e.message }, 'gossip dial failed');
          st.nextTry = this.#clock() + st.backoff;
          st.backoff = Math.min(MAX_BACKOFF_MS, st.backoff * 2);
        })
        .finally(() => {
          st.connecting = false;
        });
    }
  }

  async #myHello(): Promise<Bytes> {
    return makeHello(this.#opts.signer, {
      mspId: this.#opts.mspId,
      certPem: this.#opts.certPem,
      nodeId: this.#opts.nodeId,
      peerId: this.peerId,
      listenAddr: this.listenAddr,
      knownAddrs: [...this.#addrs.entries()].filter(([, s]) => !s.self && s.peerId).map(([a]) => a),
      timestamp: this.#clock(),
    });
  }

  /** Checks a verified hello against the channels; records the binding. */
  #accept(h: Hello): RemotePeer {
    if (!this.#opts.membership.accepts({ mspId: h.mspId, certPem: h.certPem, nodeId: h.nodeId })) {
      this.#rejected.inc({ reason: 'non_member' });
      throw helloRejected(`${h.mspId} identity ${h.nodeId} is not a peer of a member org of any channel joined here`);
    }
    const remote: RemotePeer = {
      peerId: h.peerId,
      nodeId: h.nodeId,
      mspId: h.mspId,
      certPem: h.certPem,
      addr: h.listenAddr,
    };
    this.#remotes.set(h.peerId, remote);
    this.addAddresses([...(h.listenAddr ? [h.listenAddr] : []), ...h.knownAddrs]);
    const st = h.listenAddr ? this.#addrs.get(h.listenAddr) : undefined;
    if (st) st.peerId = h.peerId;
    return remote;
  }

  /** Dials `addr` and exchanges hellos. */
  async #hello(addr: string): Promise<RemotePeer> {
    const signal = AbortSignal.timeout(DIAL_TIMEOUT_MS);
    const conn = await this.#node.dial(toMultiaddr(addr), { signal });
    if (conn.remotePeer.toString() === this.peerId) throw new Error('self');
    const stream = await conn.newStream(HELLO_PROTOCOL, { signal });
    tune(stream);
    try {
      stream.send(frame(await this.#myHello()));
      const answer = await readOneFrame(stream, DIAL_TIMEOUT_MS);
      let h: Hello;
      try {
        h = verifyHello(answer, { remotePeerId: conn.remotePeer.toString(), now: this.#clock() });
      } catch (e) {
        this.#rejected.inc({ reason: 'handshake' });
        throw e;
      }
      const remote = this.#accept(h);
      await stream.close().catch(() => undefined);
      this.#log.debug({ addr, node: remote.nodeId, mspId: remote.mspId }, 'gossip peer authenticated');
      return remote;
    } catch (e) {
      stream.abort(e as Error);
      throw e;
    }
  }

  inboundHello(stream: Stream, connection: Connection): void {
    tune(stream);
    const remotePeerId = connection.remotePeer.toString();
    void (async () => {
      try {
        const first = await readOneFrame(stream, DIAL_TIMEOUT_MS);
        let h: Hello;
        try {
          h = verifyHello(first, { remotePeerId, now: this.#clock() });
        } catch (e) {
          this.#rejected.inc({ reason: 'handshake' });
          throw e;
        }
        const remote = this.#accept(h);
        stream.send(frame(await this.#myHello()));
        await stream.close();
        this.#log.debug({ node: remote.nodeId, mspId: remote.mspId }, 'gossip peer authenticated (inbound)');
      } catch (e) {
        this.#log.warn({ remotePeer: remotePeerId, err: (e as Error).message }, 'gossip hello rejected');
        stream.abort(e as Error);
      }
    })();
  }

  inboundMessage(stream: Stream, connection: Connection): void {
    tune(stream);
    const remotePeerId = connection.remotePeer.toString();
    void (async () => {
      let msg: GossipFrame;
      try {
        msg = decodeMessage(await readOneFrame(stream, DEFAULT_REQUEST_TIMEOUT_MS));
      } catch (e) {
        this.#rejected.inc({ reason: 'malformed' });
        stream.abort(e as Error);
        return;
      }
      const reply = async (r: Parameters<typeof encodeResponse>[0]) => {
        if (msg.kind !== 'req') return;
        try {
          stream.send(frame(encodeResponse(r)));
          await stream.close();
        } catch {
          stream.abort(new Error('reply failed'));
        }
      };
      const from = this.#remotes.get(remotePeerId);
      if (!from) {
        this.#rejected.inc({ reason: 'unauthenticated' });
        this.#log.warn(
          { remotePeer: remotePeerId, protocol: msg.protocol },
          'gossip message from an unauthenticated peer dropped',
        );
        await reply({ ok: false, code: GossipErrorCode.UNAUTHENTICATED, message: 'no verified hello from this peer' });
        stream.abort(new Error('unauthenticated'));
        return;
      }
      if (!this.#opts.membership.isMember(msg.channel, from)) {
        this.#rejected.inc({ reason: 'non_member' });
        this.#log.warn(
          { node: from.nodeId, mspId: from.mspId, channel: msg.channel, protocol: msg.protocol },
          'gossip message from a non-member dropped',
        );
        await reply({
          ok: false,
          code: GossipErrorCode.FORBIDDEN,
          message: `${from.mspId} peer ${from.nodeId} is not a member of channel ${msg.channel}`,
        });
        return;
      }
      this.#received.inc({ protocol: msg.protocol });
      const ctx: GossipContext = { channel: msg.channel, from, protocol: msg.protocol, data: msg.data };
      if (msg.kind === 'push') {
        await stream.close().catch(() => undefined);
        const h = this.#pushHandlers.get(msg.protocol);
        if (!h) return;
        try {
          await h(ctx);
        } catch (e) {
          this.#log.warn(
            { protocol: msg.protocol, from: from.nodeId, err: (e as Error).message },
            'gossip push handler failed',
          );
        }
        return;
      }
      const h = this.#requestHandlers.get(msg.protocol);
      if (!h) {
        await reply({ ok: false, code: GossipErrorCode.NO_HANDLER, message: `no handler for ${msg.protocol}` });
        return;
      }
      try {
        await reply({ ok: true, data: await h(ctx) });
      } catch (e) {
        const code = isLoomError(e) ? e.code : GossipErrorCode.REMOTE_ERROR;
        await reply({ ok: false, code, message: (e as Error).message });
      }
    })();
  }

  async #open(peerId: string, signal: AbortSignal, addr?: string): Promise<Stream> {
    const remote = this.#remotes.get(peerId);
    const at = remote?.addr || addr;
    const target = at ? toMultiaddr(at, peerId) : peerIdFromString(peerId);
    try {
      const s = await this.#node.dialProtocol(target, MESSAGE_PROTOCOL, { signal });
      tune(s);
      return s;
    } catch (e) {
      throw new LoomError(
        GossipErrorCode.UNREACHABLE,
        `gossip peer ${remote?.nodeId ?? peerId} unreachable: ${(e as Error).message}`,
        {
          httpStatus: 503,
          cause: e,
        },
      );
    }
  }

  async request(
    peerId: string,
    channel: string,
    protocol: string,
    data: Bytes,
    opts: { timeoutMs?: number; addr?: string } = {},
  ): Promise<Bytes> {
    const timeoutMs = opts.timeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    const stream = await this.#open(peerId, AbortSignal.timeout(Math.min(timeoutMs, DIAL_TIMEOUT_MS)), opts.addr);
    try {
      stream.send(frame(encodeMessage({ kind: 'req', channel, protocol, data })));
      const r = decodeResponse(await readOneFrame(stream, timeoutMs));
      await stream.close().catch(() => undefined);
      if (!r.ok) {
        throw new LoomError(GossipErrorCode.REMOTE_ERROR, `gossip ${protocol} refused: ${r.message}`, {
          httpStatus: 502,
          details: { protocol, channel },
        });
      }
      return r.data;
    } catch (e) {
      stream.abort(e as Error);
      throw e;
    }
  }

  async push(
    peerId: string,
    channel: string,
    protocol: string,
    data: Bytes,
    opts: { addr?: string } = {},
  ): Promise<void> {
    const stream = await this.#open(peerId, AbortSignal.timeout(DIAL_TIMEOUT_MS), opts.addr);
    try {
      stream.send(frame(encodeMessage({ kind: 'push', channel, protocol, data })));
      await stream.close({ signal: AbortSignal.timeout(DEFAULT_REQUEST_TIMEOUT_MS) });
    } catch (e) {
      stream.abort(e as Error);
      throw e;
    }
  }

  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    await this.#node.stop();
  }
}
