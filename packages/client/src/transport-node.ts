/**
 * The SDK's HTTP in Node: node:https with the gateway's TLS roots (and the client's certificate for
 * mutual TLS), through common's HTTPS client. The only module of the SDK besides file-checkpointer.ts
 * that may import `node:` modules; a browser passes a fetch-based `GatewayTransport` to `connect`.
 */
import type { GatewayTransport } from '@loom/common/gateway/index';
import { createHttpsClient } from '@loom/common/tls/index';

export interface NodeTransportOptions {
  /** Trusted TLS roots of the gateway, PEM. */
  readonly rootCerts: string | Uint8Array | readonly (string | Uint8Array)[];
  readonly clientCert?: string | Uint8Array;
  readonly clientKey?: string | Uint8Array;
  /** Verify the server certificate against this name instead of the URL's host. */
  readonly serverName?: string;
  readonly timeoutMs?: number;
  /** Most connections kept open to the gateway; calls beyond it wait for a free one. Default 256. */
  readonly maxConnections?: number;
}

export const DEFAULT_MAX_CONNECTIONS = 256;

const pem = (x: string | Uint8Array) => (typeof x === 'string' ? x : Buffer.from(x));

export function createNodeTransport(options: NodeTransportOptions): GatewayTransport {
  const roots = Array.isArray(options.rootCerts) ? options.rootCerts : [options.rootCerts as string | Uint8Array];
  return createHttpsClient({
    ca: roots.map(pem),
    ...(options.clientCert !== undefined ? { cert: pem(options.clientCert) } : {}),
    ...(options.clientKey !== undefined ? { key: pem(options.clientKey) } : {}),
    ...(options.serverName !== undefined ? { servername: options.serverName } : {}),
    ...(options.timeoutMs !== undefined ? { timeoutMs: options.timeoutMs } : {}),
    maxSockets: options.maxConnections ?? DEFAULT_MAX_CONNECTIONS,
  });
}
