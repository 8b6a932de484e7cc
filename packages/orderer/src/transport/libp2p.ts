/**
 * Consenter-to-consenter transport over libp2p (TCP + noise + yamux) on the orderer's raft port.
 *
 * Per (channel, remote consenter) this node keeps one outbound stream and sends its frames on it;
 * it receives on the streams the others open to it. Every stream starts with the signed handshake
 * (handshake.ts) in both directions, so a frame is only ever attributed to a consenter whose
 * certificate is in the channel config and whose libp2p key signed for that binding.
 *
 * The libp2p private key (Ed25519) is generated once and kept in the orderer's data dir.
 */
import './node-compat.js';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { noise } from '@chainsafe/libp2p-noise';
import { yamux } from '@chainsafe/libp2p-yamux';
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys';
import type { Connection, PrivateKey, Stream } from '@libp2p/interface';
import { tcp } from '@libp2p/tcp';
import type { Logger } from '@loom/common/logging';
import { multiaddr } from '@multiformats/multiaddr';
import { createLibp2p, type Libp2p } from 'libp2p';
import { FrameReader, frame } from './frames.js';
import { makeHandshake, verifyHandshake } from './handshake.js';
import type { ClusterMember, ClusterTransport, FrameHandler } from './types.js';

export const CLUSTER_PROTOCOL = '/loom/cluster/1.0.0';
const DIAL_TIMEOUT_MS = 3_000;
const RETRY_MS = 250;
const MAX_QUEUED_BYTES = 64 * 1024 * 1024;
/** Largest single write when coalescing queued frames. */
const COALESCE_BYTES = 1024 * 1024;

/** Loads the node's libp2p key from `path`, generating and saving an Ed25519 key the first time. */
export async function loadOrCreateLibp2pKey(path: string): Promise<PrivateKey> {
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

export interface Libp2pTransportOptions {
  readonly host: string;
  readonly port: number;
  readonly privateKey: PrivateKey;
  /** PEM of this orderer's signing certificate (its consenter `identityCert`). */
  readonly certPem: string;
  readonly signer: { sign(m: Uint8Array): Uint8Array | Promise<Uint8Array> };
  readonly logger: Logger;
  readonly clock?: () => number;
}

interface ChannelState {
  self: string;
  members: Map<string, ClusterMember>;
  handler: FrameHandler;
  outbound: Map<string, Outbound>;
}

interface Outbound {
  stream: Stream | undefined;
  connecting: boolean;
  queue: Uint8Array[];
  queuedBytes: number;
  flushScheduled: boolean;
  retryTimer: NodeJS.Timeout | undefined;
  lastError: string | undefined;
}

function addrOf(m: ClusterMember) {
  const proto = /^\d+\.\d+\.\d+\.\d+$/.test(m.host) ? 'ip4' : m.host.includes(':') ? 'ip6' : 'dns4';
  return multiaddr(`/${proto}/${m.host}/tcp/${m.raftPort}`);
}

function chunkBytes(d: Uint8Array | { subarray(): Uint8Array }): Uint8Array {
  return d instanceof Uint8Array ? d : d.subarray();
}

/** Reads exactly one frame from a fresh stream (the handshake), with a deadline. */
function readFirstFrame(
  stream: Stream,
  reader: FrameReader,
  timeoutMs: number,
): Promise<{ first: Uint8Array; rest: Uint8Array[] }> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => done(new Error('handshake timeout')), timeoutMs);
    const onMessage = (evt: { data: Uint8Array | { subarray(): Uint8Array } }) => {
      try {
        const frames = reader.push(chunkBytes(evt.data));
        const [first, ...rest] = frames;
        if (first) done(undefined, { first, rest });
      } catch (e) {
        done(e as Error);
      }
    };
    const onClose = () => done(new Error('stream closed during handshake'));
    const done = (err?: Error, v?: { first: Uint8Array; rest: Uint8Array[] }) => {
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

export async function createLibp2pTransport(
  opts: Libp2pTransportOptions,
): Promise<ClusterTransport & { peerId: string }> {
  const node = await createLibp2p({
    privateKey: opts.privateKey,
    addresses: { listen: [`/ip4/${opts.host === 'localhost' ? '127.0.0.1' : opts.host}/tcp/${opts.port}`] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
  });
  await node.start();
  const t = new Libp2pTransport(node, opts);
  await node.handle(CLUSTER_PROTOCOL, (stream, connection) => t.inbound(stream, connection), {
    maxInboundStreams: 1024,
    maxOutboundStreams: 1024,
  });
  return t;
}

class Libp2pTransport implements ClusterTransport {
  readonly #node: Libp2p;
  readonly #opts: Libp2pTransportOptions;
  readonly #channels = new Map<string, ChannelState>();
  readonly #clock: () => number;
  readonly #log: Logger;
  readonly #inboundStreams = new Set<Stream>();
  #stopped = false;
  readonly peerId: string;

  constructor(node: Libp2p, opts: Libp2pTransportOptions) {
    this.#node = node;
    this.#opts = opts;
    this.#clock = opts.clock ?? Date.now;
    this.#log = opts.logger;
    this.peerId = node.peerId.toString();
  }

  join(channel: string, self: string, members: readonly ClusterMember[], handler: FrameHandler): void {
    const existing = this.#channels.get(channel);
    if (existing) {
      existing.self = self;
      existing.handler = handler;
      this.updateMembers(channel, members);
      return;
    }
    this.#channels.set(channel, {
      self,
      members: new Map(members.map((m) => [m.id, m])),
      handler,
      outbound: new Map(),
    });
  }

  updateMembers(channel: string, members: readonly ClusterMember[]): void {
    const ch = this.#channels.get(channel);
    if (!ch) return;
    ch.members = new Map(members.map((m) => [m.id, m]));
    for (const [id, ob] of ch.outbound) {
      if (!ch.members.has(id)) {
        this.#dropOutbound(ob);
        ch.outbound.delete(id);
      }
    }
  }

  leave(channel: string): void {
    const ch = this.#channels.get(channel);
    if (!ch) return;
    for (const ob of ch.outbound.values()) this.#dropOutbound(ob);
    this.#channels.delete(channel);
  }

  send(channel: string, to: string, data: Uint8Array): void {
    if (this.#stopped) return;
    const ch = this.#channels.get(channel);
    if (!ch) return;
    const member = ch.members.get(to);
    if (!member || to === ch.self) return;
    let ob = ch.outbound.get(to);
    if (!ob) {
      ob = {
        stream: undefined,
        connecting: false,
        queue: [],
        queuedBytes: 0,
        flushScheduled: false,
        retryTimer: undefined,
        lastError: undefined,
      };
      ch.outbound.set(to, ob);
    }
    const f = frame(data);
    if (ob.queuedBytes + f.length > MAX_QUEUED_BYTES) return; // Raft retransmits what is lost.
    ob.queue.push(f);
    ob.queuedBytes += f.length;
    if (ob.stream?.status !== 'open') {
      this.#connect(channel, to, ob);
      return;
    }
    // Frames sent in the same turn of the event loop leave as one write (one noise/yamux frame,
    // one syscall): a leader's appends and a follower's forwarded envelopes come in bursts.
    if (!ob.flushScheduled) {
      ob.flushScheduled = true;
      setImmediate(() => {
        ob.flushScheduled = false;
        this.#flush(ob);
      });
    }
  }

  #flush(ob: Outbound): void {
    const s = ob.stream;
    if (!s) return;
    while (ob.queue.length > 0 && s.status === 'open' && !s.writableNeedsDrain) {
      let n = 0;
      let bytes = 0;
      while (n < ob.queue.length && (n === 0 || bytes + ob.queue[n]!.length <= COALESCE_BYTES))
        bytes += ob.queue[n++]!.length;
      const parts = ob.queue.splice(0, n);
      ob.queuedBytes -= bytes;
      let chunk: Uint8Array;
      if (parts.length === 1) chunk = parts[0]!;
      else {
        chunk = new Uint8Array(bytes);
        let o = 0;
        for (const p of parts) {
          chunk.set(p, o);
          o += p.length;
        }
      }
      try {
        s.send(chunk);
      } catch {
        ob.stream = undefined;
        return;
      }
    }
  }

  #connect(channel: string, to: string, ob: Outbound): void {
    if (ob.connecting || ob.retryTimer || this.#stopped) return;
    ob.connecting = true;
    void this.#dial(channel, to, ob)
      .then((stream) => {
        ob.stream = stream;
        ob.lastError = undefined;
        stream.addEventListener('drain', () => this.#flush(ob));
        stream.addEventListener('close', () => {
          if (ob.stream === stream) ob.stream = undefined;
        });
        this.#flush(ob);
      })
      .catch((e: Error) => {
        if (ob.lastError !== e.message) this.#log.debug({ channel, to, err: e.message }, 'cluster dial failed');
        ob.lastError = e.message;
        ob.retryTimer = setTimeout(() => {
          ob.retryTimer = undefined;
          const ch = this.#channels.get(channel);
          if (ob.queue.length > 0 && ch?.outbound.get(to) === ob) this.#connect(channel, to, ob);
        }, RETRY_MS);
        ob.retryTimer.unref();
      })
      .finally(() => {
        ob.connecting = false;
      });
  }

  async #dial(channel: string, to: string, _ob: Outbound): Promise<Stream> {
    const ch = this.#channels.get(channel);
    const member = ch?.members.get(to);
    if (!ch || !member) throw new Error(`${to} is not a consenter of ${channel}`);
    const signal = AbortSignal.timeout(DIAL_TIMEOUT_MS);
    const conn = await this.#node.dial(addrOf(member), { signal });
    const stream = await conn.newStream(CLUSTER_PROTOCOL, { signal });
    this.#tune(stream);
    const reader = new FrameReader();
    try {
      stream.send(frame(await this.#handshake(channel)));
      const { first } = await readFirstFrame(stream, reader, DIAL_TIMEOUT_MS);
      const { member: who } = verifyHandshake(first, {
        remotePeerId: conn.remotePeer.toString(),
        channel,
        members: (c) => (c === channel ? [...(this.#channels.get(c)?.members.values() ?? [])] : undefined),
        now: this.#clock(),
      });
      if (who.id !== to) throw new Error(`dialled ${to} but ${who.id} answered`);
    } catch (e) {
      stream.abort(e as Error);
      throw e;
    }
    return stream;
  }

  #handshake(channel: string): Promise<Uint8Array> {
    return makeHandshake(this.#opts.signer, {
      certPem: this.#opts.certPem,
      peerId: this.peerId,
      channel,
      timestamp: this.#clock(),
    });
  }

  #tune(stream: Stream): void {
    stream.maxReadBufferLength = 256 * 1024 * 1024;
    stream.maxWriteBufferLength = 256 * 1024 * 1024;
    stream.inactivityTimeout = 0;
  }

  inbound(stream: Stream, connection: Connection): void {
    if (this.#stopped) {
      stream.abort(new Error('stopping'));
      return;
    }
    this.#tune(stream);
    // One listener for the stream's whole life, so no frame can slip past between the handshake
    // and the data that follows it.
    const reader = new FrameReader();
    let state: 'handshake' | 'verifying' | 'open' = 'handshake';
    let from = '';
    let channel = '';
    const early: Uint8Array[] = [];
    const deliver = (data: Uint8Array) => {
      const ch = this.#channels.get(channel);
      // Membership can shrink after the handshake: frames of a removed consenter are dropped.
      if (!ch?.members.has(from)) return;
      try {
        ch.handler(from, data);
      } catch (e) {
        this.#log.warn({ channel, from, err: (e as Error).message }, 'cluster frame handler failed');
      }
    };
    const timer = setTimeout(() => {
      if (state !== 'open') stream.abort(new Error('handshake timeout'));
    }, DIAL_TIMEOUT_MS);
    timer.unref();
    const verify = async (first: Uint8Array) => {
      try {
        const { handshake, member } = verifyHandshake(first, {
          remotePeerId: connection.remotePeer.toString(),
          members: (c) => {
            const ch = this.#channels.get(c);
            return ch ? [...ch.members.values()] : undefined;
          },
          now: this.#clock(),
        });
        from = member.id;
        channel = handshake.channel;
        stream.send(frame(await this.#handshake(channel)));
      } catch (e) {
        clearTimeout(timer);
        this.#log.warn(
          { remotePeer: connection.remotePeer.toString(), err: (e as Error).message },
          'cluster stream rejected',
        );
        stream.abort(e as Error);
        return;
      }
      clearTimeout(timer);
      state = 'open';
      this.#inboundStreams.add(stream);
      for (const f of early.splice(0)) deliver(f);
    };
    stream.addEventListener('message', (evt) => {
      let frames: Uint8Array[];
      try {
        frames = reader.push(chunkBytes(evt.data));
      } catch (e) {
        stream.abort(e as Error);
        return;
      }
      for (const f of frames) {
        if (state === 'open') deliver(f);
        else if (state === 'handshake') {
          state = 'verifying';
          void verify(f);
        } else early.push(f);
      }
    });
    stream.addEventListener('close', () => {
      clearTimeout(timer);
      this.#inboundStreams.delete(stream);
    });
  }

  #dropOutbound(ob: Outbound): void {
    if (ob.retryTimer) clearTimeout(ob.retryTimer);
    ob.retryTimer = undefined;
    ob.queue = [];
    ob.queuedBytes = 0;
    ob.stream?.abort(new Error('member removed'));
    ob.stream = undefined;
  }

  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    for (const channel of [...this.#channels.keys()]) this.leave(channel);
    for (const s of this.#inboundStreams) s.abort(new Error('stopping'));
    await this.#node.stop();
  }
}
