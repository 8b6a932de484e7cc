/**
 * HTTPS for the SDK and for nodes calling each other. Node 20's global fetch cannot take a custom
 * CA or a client certificate without undici's dispatcher, so this is `node:https` with a keep-alive
 * agent carrying the TLS roots (and the client's own certificate for mutual TLS). Hostname
 * verification stays on; TLS failures come back as `LoomError`s that say what went wrong.
 */
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import { Agent, request as httpsRequest } from 'node:https';
import type { TLSSocket } from 'node:tls';
import { LoomError } from '../errors.js';
import { normalizeHexSerial, type TlsClientMaterial, TlsErrorCode, tlsClientOptions } from './material.js';

type PemInput = string | Buffer;

export interface HttpsClientOptions {
  /** Trusted TLS roots (and intermediates) of the servers. */
  readonly ca: PemInput | readonly PemInput[];
  /** The client's TLS certificate and key, presented to mutual-TLS listeners. */
  readonly cert?: PemInput;
  readonly key?: PemInput;
  /** Verify server certificates against this name instead of the URL's host (and send it as SNI). */
  readonly servername?: string;
  /** Default per-request deadline. Default 30 s. */
  readonly timeoutMs?: number;
  /** Sockets per origin. Default 16. */
  readonly maxSockets?: number;
  /** `request()` refuses bodies larger than this. Default 64 MiB. */
  readonly maxResponseBytes?: number;
}

export interface HttpsRequest {
  readonly method?: string;
  readonly url: string | URL;
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: string | Uint8Array;
  /** Deadline for the whole exchange (`request`) or until the response headers (`stream`). */
  readonly timeoutMs?: number;
  /** Aborts the request (and a streamed response). */
  readonly signal?: AbortSignal;
}

export interface PeerCertificateInfo {
  /** Lowercase hex without leading zeros. */
  readonly serial: string;
  readonly subject: string;
}

export interface HttpsResponse {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: Buffer;
  /** The certificate the server presented on the connection that answered. */
  readonly peer: PeerCertificateInfo | undefined;
}

export interface HttpsStreamResponse {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  /** The response body as it arrives (deliver and event streams); destroy it to hang up. */
  readonly body: IncomingMessage;
  readonly peer: PeerCertificateInfo | undefined;
}

export interface HttpsClient {
  request(req: HttpsRequest): Promise<HttpsResponse>;
  stream(req: HttpsRequest): Promise<HttpsStreamResponse>;
  /** Closes every connection of this client, idle or in flight. */
  close(): void;
  /**
   * Closes the idle connections now and each busy one as soon as its exchange ends, then the
   * client; `graceMs` (default 120 s) caps the wait for long-lived streams. For replacing a client
   * whose roots or client certificate changed without failing the requests still in flight.
   */
  retire(graceMs?: number): void;
}

function peerOf(res: IncomingMessage): PeerCertificateInfo | undefined {
  const socket = res.socket as TLSSocket | null;
  const cert = socket?.getPeerCertificate?.();
  if (!cert?.serialNumber) return undefined;
  const s = cert.subject as unknown as Record<string, string | string[]> | undefined;
  const subject = s
    ? Object.entries(s)
        .map(([k, v]) => `${k}=${Array.isArray(v) ? v.join('+') : v}`)
        .join(', ')
    : '';
  return { serial: normalizeHexSerial(cert.serialNumber), subject };
}

const UNTRUSTED = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_SIGNATURE_FAILURE',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_REVOKED',
]);

/** Turns a socket-level failure into an error naming the TLS problem. */
export function httpsFailure(e: NodeJS.ErrnoException, target: URL, servername: string | undefined): LoomError {
  const code = e.code ?? '';
  const host = servername ?? target.hostname;
  const details = { url: target.origin, code, ...(servername ? { servername } : {}) };
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') {
    return new LoomError(
      TlsErrorCode.HOSTNAME_MISMATCH,
      `TLS: the certificate of ${target.host} is not valid for host "${host}" (${e.message.replace(/^Hostname\/IP does not match certificate's altnames: /, '')})`,
      { httpStatus: 502, details, cause: e },
    );
  }
  if (UNTRUSTED.has(code)) {
    return new LoomError(
      TlsErrorCode.SERVER_UNTRUSTED,
      `TLS: the certificate of ${target.host} is not trusted (${code}: ${e.message})`,
      { httpStatus: 502, details, cause: e },
    );
  }
  if (code.startsWith('ERR_SSL_') || code === 'ECONNRESET' || /before secure TLS connection/.test(e.message)) {
    return new LoomError(
      TlsErrorCode.HANDSHAKE_REFUSED,
      `TLS: ${target.host} refused the connection (${code || e.message}); it may require a client certificate from a TLS CA it trusts`,
      { httpStatus: 502, details, cause: e },
    );
  }
  return new LoomError(TlsErrorCode.UNAVAILABLE, `${target.origin} unreachable: ${e.message}`, {
    httpStatus: 503,
    details,
    cause: e,
  });
}

export function createHttpsClient(options: HttpsClientOptions): HttpsClient {
  const ca = (Array.isArray(options.ca) ? options.ca : [options.ca]) as PemInput[];
  const material: TlsClientMaterial = {
    caPems: ca,
    ...(options.cert !== undefined ? { certPem: options.cert } : {}),
    ...(options.key !== undefined ? { keyPem: options.key } : {}),
    ...(options.servername !== undefined ? { servername: options.servername } : {}),
  };
  const agent = new Agent({
    ...tlsClientOptions(material),
    keepAlive: true,
    maxSockets: options.maxSockets ?? 16,
    maxFreeSockets: options.maxSockets ?? 16,
  });
  const defaultTimeout = options.timeoutMs ?? 30_000;
  const maxBytes = options.maxResponseBytes ?? 64 * 1024 * 1024;
  const servername = options.servername;

  const start = (req: HttpsRequest, onResponse: (res: IncomingMessage) => void, fail: (e: LoomError) => void) => {
    const url = typeof req.url === 'string' ? new URL(req.url) : req.url;
    if (url.protocol !== 'https:') {
      fail(
        new LoomError('HTTPS_BAD_URL', `not an https URL: ${url.href}`, {
          httpStatus: 400,
          details: { url: url.href },
        }),
      );
      return undefined;
    }
    const body = req.body === undefined ? undefined : typeof req.body === 'string' ? Buffer.from(req.body) : req.body;
    const r = httpsRequest(
      {
        agent,
        protocol: 'https:',
        hostname: url.hostname.replace(/^\[|\]$/g, ''),
        port: url.port || 443,
        path: `${url.pathname}${url.search}`,
        method: req.method ?? (body ? 'POST' : 'GET'),
        headers: { ...req.headers, ...(body ? { 'content-length': String(body.byteLength) } : {}) },
        ...(servername !== undefined ? { servername } : {}),
        ...(req.signal ? { signal: req.signal } : {}),
      },
      onResponse,
    );
    const timeoutMs = req.timeoutMs ?? defaultTimeout;
    const timer = setTimeout(() => {
      r.destroy(
        new LoomError(TlsErrorCode.TIMEOUT, `${url.origin} did not answer within ${timeoutMs} ms`, {
          httpStatus: 504,
          details: { url: url.origin, timeoutMs },
        }),
      );
    }, timeoutMs);
    r.on('error', (e) => {
      clearTimeout(timer);
      fail(e instanceof LoomError ? e : httpsFailure(e as NodeJS.ErrnoException, url, servername));
    });
    r.end(body);
    return { r, timer, url };
  };

  return {
    request(req) {
      return new Promise<HttpsResponse>((resolve, reject) => {
        const started = start(
          req,
          (res) => {
            // Read now: at the end of the body a kept-alive socket is already back in the pool.
            const peer = peerOf(res);
            const chunks: Buffer[] = [];
            let size = 0;
            res.on('data', (c: Buffer) => {
              size += c.length;
              if (size > maxBytes) {
                res.destroy(
                  new LoomError(TlsErrorCode.RESPONSE_TOO_LARGE, `response larger than ${maxBytes} bytes`, {
                    httpStatus: 502,
                    details: { maxBytes },
                  }),
                );
                return;
              }
              chunks.push(c);
            });
            res.on('error', (e) => {
              if (started) clearTimeout(started.timer);
              reject(
                e instanceof LoomError ? e : httpsFailure(e, started?.url ?? new URL(String(req.url)), servername),
              );
            });
            res.on('end', () => {
              if (started) clearTimeout(started.timer);
              resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks), peer });
            });
          },
          reject,
        );
      });
    },
    stream(req) {
      return new Promise<HttpsStreamResponse>((resolve, reject) => {
        const started = start(
          req,
          (res) => {
            // The deadline covers getting an answer; a stream then lives as long as the caller wants.
            if (started) clearTimeout(started.timer);
            resolve({ status: res.statusCode ?? 0, headers: res.headers, body: res, peer: peerOf(res) });
          },
          reject,
        );
      });
    },
    close() {
      agent.destroy();
    },
    retire(graceMs = 120_000) {
      const busy = () =>
        Object.values(agent.sockets).some((list) => (list?.length ?? 0) > 0) ||
        Object.values(agent.requests).some((list) => (list?.length ?? 0) > 0);
      const deadline = Date.now() + graceMs;
      // A socket that finishes its exchange is closed instead of going back to the pool.
      agent.on('free', (socket) => socket.destroy());
      const check = () => {
        for (const list of Object.values(agent.freeSockets)) for (const s of list ?? []) s.destroy();
        if (!busy() || Date.now() >= deadline) {
          clearInterval(timer);
          agent.destroy();
        }
      };
      const timer = setInterval(check, 250);
      timer.unref();
      check();
    },
  };
}
