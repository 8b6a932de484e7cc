/**
 * A `fetch` for the deliver client that trusts the channel's TLS roots (Node 20's global fetch
 * cannot take a CA without undici). It answers a standard `Response` whose body streams the HTTP
 * response as it arrives, so deliver streams stay open-ended; `signal` aborts the request.
 */
import http from 'node:http';
import https from 'node:https';
import { Readable } from 'node:stream';

export interface TlsFetchOptions {
  /** PEM roots to trust for https URLs, read at each request (channel configs change). */
  readonly roots: () => readonly string[];
  /**
   * This node's TLS pair, presented when an orderer asks for a client certificate; a function is
   * asked at each request (a renewed pair is presented from then on).
   */
  readonly clientPair?:
    | { readonly cert: Buffer | string; readonly key: Buffer | string }
    | (() => { readonly cert: Buffer | string; readonly key: Buffer | string } | undefined);
}

export function createTlsFetch(options: TlsFetchOptions): typeof fetch {
  return ((input: string | URL | Request, init?: RequestInit): Promise<Response> =>
    new Promise((resolve, reject) => {
      const url = new URL(input instanceof Request ? input.url : String(input));
      const secure = url.protocol === 'https:';
      const pair = typeof options.clientPair === 'function' ? options.clientPair() : options.clientPair;
      const headers: Record<string, string> = {};
      new Headers(init?.headers).forEach((v, k) => {
        headers[k] = v;
      });
      const req = (secure ? https : http).request(
        url,
        {
          method: init?.method ?? 'GET',
          headers,
          ...(init?.signal ? { signal: init.signal } : {}),
          ...(secure
            ? {
                ca: [...options.roots()],
                ...(pair ? { cert: pair.cert, key: pair.key } : {}),
              }
            : {}),
        },
        (res) => {
          const responseHeaders = new Headers();
          for (const [k, v] of Object.entries(res.headers)) {
            if (typeof v === 'string') responseHeaders.set(k, v);
          }
          const status = res.statusCode ?? 500;
          const body =
            status === 204 || status === 304 ? null : (Readable.toWeb(res) as unknown as ReadableStream<Uint8Array>);
          resolve(new Response(body, { status, headers: responseHeaders }));
        },
      );
      req.on('error', reject);
      const body = init?.body;
      if (body === undefined || body === null) req.end();
      else if (typeof body === 'string' || body instanceof Uint8Array) req.end(body);
      else reject(new TypeError('tls fetch supports string and Uint8Array bodies only'));
    })) as typeof fetch;
}
