/**
 * The `tls:` block of a node's YAML (orderer.yaml, peer.yaml, and their `operations.tls`), parsed
 * one way for every node:
 *
 *   tls:
 *     enabled: true                 # optional, default true when the block is present
 *     certFile: tls/server.crt      # the listener's pair, from the org's TLS CA (reloaded on renewal)
 *     keyFile: tls/server.key
 *     caFiles: [ tls/ca.crt ]       # trusted TLS roots: files or directories of *.pem
 *     clientAuthRequired: false     # mutual TLS: refuse clients without a certificate from caFiles
 *
 * Relative paths are resolved by the caller's `resolvePath` (against the YAML file's folder).
 */
import { LoomError } from '../errors.js';

export interface ListenerTlsConfig {
  readonly certFile: string;
  readonly keyFile: string;
  readonly caFiles: readonly string[];
  readonly clientAuthRequired: boolean;
}

export const TLS_CONFIG_INVALID = 'TLS_CONFIG_INVALID';

/**
 * Parses a `tls:` block: undefined when absent, `null` or `enabled: false`. Throws
 * `TLS_CONFIG_INVALID` naming `where` (e.g. `peer.yaml: operations.tls`) and the field.
 */
export function parseListenerTlsConfig(
  value: unknown,
  where: string,
  resolvePath: (p: string) => string = (p) => p,
): ListenerTlsConfig | undefined {
  if (value === undefined || value === null) return undefined;
  const bad = (field: string, expected: string) =>
    new LoomError(TLS_CONFIG_INVALID, `${where}${field ? `.${field}` : ''}: expected ${expected}`, {
      httpStatus: 400,
      details: { where, field },
    });
  if (typeof value !== 'object' || Array.isArray(value))
    throw bad('', '{ certFile, keyFile, caFiles?, clientAuthRequired? }');
  const t = value as Record<string, unknown>;
  const known = new Set(['enabled', 'certFile', 'keyFile', 'caFiles', 'clientAuthRequired']);
  for (const k of Object.keys(t)) if (!known.has(k)) throw bad(k, `one of ${[...known].join(', ')} (unknown field)`);
  if (t.enabled !== undefined && typeof t.enabled !== 'boolean') throw bad('enabled', 'true or false');
  if (t.enabled === false) return undefined;
  for (const k of ['certFile', 'keyFile']) {
    if (typeof t[k] !== 'string' || (t[k] as string).length === 0) throw bad(k, 'a file path');
  }
  const caFiles = t.caFiles ?? [];
  if (!Array.isArray(caFiles) || caFiles.some((f) => typeof f !== 'string' || f.length === 0)) {
    throw bad('caFiles', 'a list of file or directory paths');
  }
  if (t.clientAuthRequired !== undefined && typeof t.clientAuthRequired !== 'boolean') {
    throw bad('clientAuthRequired', 'true or false');
  }
  const clientAuthRequired = t.clientAuthRequired === true;
  if (clientAuthRequired && caFiles.length === 0) {
    throw bad('caFiles', 'at least one TLS root when clientAuthRequired is true (whose clients to accept)');
  }
  return {
    certFile: resolvePath(t.certFile as string),
    keyFile: resolvePath(t.keyFile as string),
    caFiles: (caFiles as string[]).map(resolvePath),
    clientAuthRequired,
  };
}
