/**
 * A small HTTPS/HTTP client for the launcher: trusts the network's TLS CA roots, bounded by a
 * timeout, answers `{status, body}` and never throws on an HTTP error status.
 */
import http from 'node:http';
import https from 'node:https';

/** A TLS client pair presented to mutual-TLS listeners (`tls.clientAuthRequired`). */
export interface ClientTlsPair {
  readonly cert: string;
  readonly key: string;
}

let defaultClientTls: ClientTlsPair | undefined;

/**
 * The pair every `httpRequest` without its own presents: `network up` sets the orderer org admin's
 * TLS client certificate, so the launcher's admin calls (channel joins, installs) pass mutual TLS.
 */
export function useClientTls(pair: ClientTlsPair | undefined): void {
  defaultClientTls = pair;
}

export interface HttpAnswer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

export function httpRequest(
  url: string,
  options: {
    method?: string;
    body?: Uint8Array | string;
    headers?: Record<string, string>;
    ca?: string[];
    /** The client's TLS pair; default the one given to `useClientTls`. */
    clientTls?: ClientTlsPair;
    timeoutMs?: number;
  } = {},
): Promise<HttpAnswer> {
  const u = new URL(url);
  const pair = options.clientTls ?? defaultClientTls;
  const mod = u.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    const req = mod.request(
      u,
      {
        method: options.method ?? 'GET',
        headers: options.headers,
        ...(u.protocol === 'https:' ? { ca: options.ca, ...(pair ? { cert: pair.cert, key: pair.key } : {}) } : {}),
        timeout: options.timeoutMs ?? 10_000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }),
        );
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`request to ${url} timed out`)));
    req.on('error', reject);
    if (options.body !== undefined) req.write(options.body);
    req.end();
  });
}

/** Polls `url` until it answers 200, or throws after `timeoutMs`. */
export async function waitForHealthy(
  url: string,
  ca: string[] | undefined,
  timeoutMs: number,
  isAlive?: () => boolean,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    if (isAlive && !isAlive()) throw new Error(`process behind ${url} exited (see its log)`);
    try {
      const r = await httpRequest(url, { ca, timeoutMs: 2000 });
      if (r.status === 200) return;
      last = `HTTP ${r.status}`;
    } catch (e) {
      last = (e as Error).message;
    }
    await new Promise((r) => setTimeout(r, 150));
  }
  throw new Error(`${url} not healthy after ${timeoutMs} ms (${last})`);
}
