/**
 * What every object of one connection shares: where the gateway is, who the client is, how it signs
 * and how it talks HTTP. Internal to the SDK. Portable: the Node transport is loaded on first use
 * only when the caller did not supply a transport.
 */
import {
  type BodyCodec,
  type CallOptions,
  type GatewayTransport,
  invokeRoute,
  type Signed,
  type UnaryRoute,
} from '@loom/common/gateway/index';
import { type Bytes, encodeSerializedIdentity, toLowSDer } from '@loom/common/portable';
import { GatewayError } from './errors.js';
import { type Hash, sha256 } from './hash.js';
import type { Identity } from './identity.js';
import { messageSignerOf, type Signer } from './signers.js';

export interface TlsOptions {
  /** Trusted TLS roots of the gateway peer, PEM. */
  readonly rootCerts: string | Uint8Array | readonly (string | Uint8Array)[];
  /** The client's TLS certificate and key, for gateways that require mutual TLS. */
  readonly clientCert?: string | Uint8Array;
  readonly clientKey?: string | Uint8Array;
  /** Check the gateway's certificate against this name instead of the endpoint's host. */
  readonly serverName?: string;
  /**
   * Most HTTPS connections kept open to the gateway (Node transport). Each call in flight holds
   * one, and a commit-status call holds its connection until the commit: allow at least as many as
   * transactions in flight. Default 256.
   */
  readonly maxConnections?: number;
}

/** Per-call settings; `timeoutMs` bounds the whole call. */
export interface CallTimeouts {
  readonly timeoutMs?: number;
}

export const DEFAULT_TIMEOUTS = {
  evaluate: 30_000,
  endorse: 30_000,
  submit: 30_000,
  commitStatus: 60_000,
} as const;

export class ClientContext {
  readonly endpoint: string;
  readonly identity: Identity;
  /** Encoded SerializedIdentity: the creator of every proposal and request. */
  readonly creator: Bytes;
  readonly hash: Hash;
  readonly clock: () => number;
  readonly timeouts: { evaluate: number; endorse: number; submit: number; commitStatus: number };
  readonly #signer: Signer | undefined;
  #transport: GatewayTransport | undefined;
  #pending: Promise<GatewayTransport> | undefined;
  readonly #tls: TlsOptions | undefined;
  #closed = false;

  constructor(o: {
    endpoint: string;
    identity: Identity;
    signer: Signer | undefined;
    hash: Hash;
    clock: () => number;
    transport: GatewayTransport | undefined;
    tls: TlsOptions | undefined;
    timeouts: { evaluate: number; endorse: number; submit: number; commitStatus: number };
  }) {
    this.endpoint = o.endpoint;
    this.identity = o.identity;
    this.creator = encodeSerializedIdentity({ mspId: o.identity.mspId, idBytes: o.identity.credentials });
    this.hash = o.hash;
    this.clock = o.clock;
    this.timeouts = o.timeouts;
    this.#signer = o.signer;
    this.#transport = o.transport;
    this.#tls = o.tls;
  }

  async transport(): Promise<GatewayTransport> {
    if (this.#closed) throw new GatewayError({ code: 'GATEWAY_CLOSED', message: 'the gateway connection is closed' });
    if (this.#transport) return this.#transport;
    if (!this.#tls) {
      throw new GatewayError({ code: 'NO_TRANSPORT', message: 'connect() needs either tls options or a transport' });
    }
    const tls = this.#tls;
    this.#pending ??= import('./transport-node.js').then((m) => {
      this.#transport = m.createNodeTransport(tls);
      return this.#transport;
    });
    return this.#pending;
  }

  async call<Req, Res>(route: UnaryRoute<Req, Res>, request: Req, options: CallOptions): Promise<Res> {
    return invokeRoute(await this.transport(), this.endpoint, route, request, options);
  }

  get canSign(): boolean {
    return this.#signer !== undefined;
  }

  /** Signs a digest with the connection's signer; low-S whatever the signer produced. */
  async sign(digest: Bytes): Promise<Bytes> {
    if (!this.#signer) {
      throw new GatewayError({
        code: 'NO_SIGNER',
        message:
          'no signer: connect with a signer, or sign getBytes()/getDigest() yourself and use gateway.newSigned…()',
      });
    }
    return toLowSDer(await this.#signer(digest));
  }

  /**
   * Signs `bytes`: the signer gets `hash(bytes)`, or, when the hash is the default SHA-256 and the
   * signer can sign whole messages natively (newPrivateKeySigner in Node), the bytes themselves.
   */
  async signBytes(bytes: Bytes): Promise<Bytes> {
    const native = this.hash === sha256 && this.#signer ? messageSignerOf(this.#signer) : undefined;
    if (native) return toLowSDer(await native(bytes));
    return this.sign(this.hash(bytes));
  }

  /** A signed request (commit status, events, proofs): the creator's signature over its bytes. */
  async signRequest<T>(codec: BodyCodec<T>, request: T, signature?: Bytes): Promise<Signed<T>> {
    const bytes = codec.encode(request);
    const sig = signature ?? (await this.signBytes(bytes));
    return { signed: { request: bytes, signature: sig }, request };
  }

  /** Closes the transport this connection made; a transport the caller supplied stays theirs. */
  close(): void {
    this.#closed = true;
    void this.#pending?.then((t) => t.close()).catch(() => undefined);
  }
}
