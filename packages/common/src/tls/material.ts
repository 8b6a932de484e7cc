/**
 * An org's TLS material — a certificate and key from its TLS CA plus the TLS roots (and
 * intermediates) it trusts — turned into node:tls / node:https options. Every listener and client
 * in Loom builds its TLS settings here, so the floor (TLS 1.2) and the client-auth rules are one.
 */
import { createPrivateKey, type KeyObject, X509Certificate } from 'node:crypto';
import { readdir, readFile, stat } from 'node:fs/promises';
import type { ServerOptions as HttpsServerOptions } from 'node:https';
import { extname, join } from 'node:path';
import { type ConnectionOptions, createSecureContext, type SecureContextOptions } from 'node:tls';
import { LoomError } from '../errors.js';
import type { MspConfig } from '../msp/types.js';

export const TlsErrorCode = {
  /** Certificate or key unreadable, unparsable, or not a pair. */
  MATERIAL_INVALID: 'TLS_MATERIAL_INVALID',
  /** The server's certificate does not name the host the client connected to. */
  HOSTNAME_MISMATCH: 'TLS_HOSTNAME_MISMATCH',
  /** The server's certificate does not chain to a trusted TLS root, or has expired. */
  SERVER_UNTRUSTED: 'TLS_SERVER_UNTRUSTED',
  /** The server ended the handshake: no client certificate, or one it does not trust. */
  HANDSHAKE_REFUSED: 'TLS_HANDSHAKE_REFUSED',
  /** No connection, or it broke before an answer. */
  UNAVAILABLE: 'HTTPS_UNAVAILABLE',
  TIMEOUT: 'HTTPS_TIMEOUT',
  RESPONSE_TOO_LARGE: 'HTTPS_RESPONSE_TOO_LARGE',
} as const;

/** The oldest protocol any Loom endpoint speaks. */
export const MIN_TLS_VERSION = 'TLSv1.2' as const;

type PemInput = string | Buffer;

export interface TlsMaterial {
  /** PEM certificate from the TLS CA; may be followed by its intermediates. */
  readonly certPem: PemInput;
  /** PEM (PKCS#8 or SEC1) private key of `certPem`. */
  readonly keyPem: PemInput;
  /** Trusted TLS roots and intermediates: for a server, whose clients it accepts; for a client, whose servers. */
  readonly caPems: readonly PemInput[];
}

export interface TlsServerSettings {
  /** Require every client to present a certificate chaining to `caPems` (mutual TLS). */
  readonly clientAuthRequired?: boolean;
}

/** A TLS (or mutual TLS) listener's options for `https.createServer`, `tls.createServer` or fastify's `https`. */
export function tlsServerOptions(
  material: TlsMaterial,
  settings: TlsServerSettings = {},
): HttpsServerOptions & SecureContextOptions {
  const clientAuth = settings.clientAuthRequired ?? false;
  if (clientAuth && material.caPems.length === 0) {
    throw new LoomError(TlsErrorCode.MATERIAL_INVALID, 'mutual TLS needs at least one trusted TLS root', {
      httpStatus: 500,
      details: { reason: 'no_ca' },
    });
  }
  return {
    ...secureContextOptions(material),
    requestCert: clientAuth,
    rejectUnauthorized: clientAuth,
  };
}

/** What a server's secure context holds: the part `server.setSecureContext()` can swap. */
export function secureContextOptions(material: TlsMaterial): SecureContextOptions {
  return {
    cert: material.certPem,
    key: material.keyPem,
    ...(material.caPems.length > 0 ? { ca: [...material.caPems] } : {}),
    minVersion: MIN_TLS_VERSION,
  };
}

export interface TlsClientMaterial {
  /** Trusted TLS roots (and intermediates) of the servers this client talks to. */
  readonly caPems: readonly PemInput[];
  /** The client's own TLS certificate and key, presented to mutual-TLS listeners. */
  readonly certPem?: PemInput;
  readonly keyPem?: PemInput;
  /** The name to verify the server certificate against (and send as SNI), when it differs from the URL host. */
  readonly servername?: string;
}

/** Options for `tls.connect`, `https.request` or an `https.Agent`; hostname verification stays on. */
export function tlsClientOptions(material: TlsClientMaterial): ConnectionOptions {
  if ((material.certPem === undefined) !== (material.keyPem === undefined)) {
    throw new LoomError(
      TlsErrorCode.MATERIAL_INVALID,
      'a client TLS certificate needs its key, and a key its certificate',
      {
        httpStatus: 500,
        details: { reason: 'incomplete_pair' },
      },
    );
  }
  if (material.caPems.length === 0) {
    throw new LoomError(TlsErrorCode.MATERIAL_INVALID, 'a TLS client needs at least one trusted TLS root', {
      httpStatus: 500,
      details: { reason: 'no_ca' },
    });
  }
  return {
    ca: [...material.caPems],
    ...(material.certPem !== undefined ? { cert: material.certPem, key: material.keyPem } : {}),
    ...(material.servername !== undefined ? { servername: material.servername } : {}),
    minVersion: MIN_TLS_VERSION,
    rejectUnauthorized: true,
  };
}

/** The TLS roots and intermediates of one or more orgs' MSPs: what a listener serving them trusts. */
export function tlsTrustOf(msps: readonly MspConfig[]): string[] {
  return msps.flatMap((m) => [...(m.tlsRootCerts ?? []), ...(m.tlsIntermediateCerts ?? [])]);
}

export interface CheckedTlsPair {
  readonly certificate: X509Certificate;
  readonly privateKey: KeyObject;
  /** Lowercase hex without leading zeros. */
  readonly serial: string;
  readonly notAfter: Date;
}

function invalid(reason: string, message: string, cause?: unknown): LoomError {
  return new LoomError(TlsErrorCode.MATERIAL_INVALID, message, { httpStatus: 500, details: { reason }, cause });
}

export function normalizeHexSerial(serial: string): string {
  const s = serial
    .toLowerCase()
    .replace(/[^0-9a-f]/g, '')
    .replace(/^0+/, '');
  return s === '' ? '0' : s;
}

/**
 * Parses a certificate and key and checks that they are a pair and that OpenSSL takes them (what
 * `setSecureContext` would otherwise throw on). Throws `TLS_MATERIAL_INVALID` with `details.reason`
 * `certificate_unparsable`, `key_unparsable`, `key_mismatch` or `context_rejected`.
 */
export function checkTlsPair(material: TlsMaterial): CheckedTlsPair {
  let certificate: X509Certificate;
  try {
    certificate = new X509Certificate(material.certPem);
  } catch (e) {
    throw invalid('certificate_unparsable', `TLS certificate is not a PEM certificate: ${(e as Error).message}`, e);
  }
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(material.keyPem);
  } catch (e) {
    throw invalid('key_unparsable', `TLS key is not a PEM private key: ${(e as Error).message}`, e);
  }
  if (!certificate.checkPrivateKey(privateKey)) {
    throw invalid('key_mismatch', `TLS key does not belong to certificate ${certificate.serialNumber.toLowerCase()}`);
  }
  try {
    createSecureContext(secureContextOptions(material));
  } catch (e) {
    throw invalid('context_rejected', `TLS material rejected: ${(e as Error).message}`, e);
  }
  return {
    certificate,
    privateKey,
    serial: normalizeHexSerial(certificate.serialNumber),
    notAfter: new Date(certificate.validTo),
  };
}

const PEM_EXTENSIONS = new Set(['.pem', '.crt', '.cert']);

/**
 * Reads CA certificate files; a directory stands for every `*.pem`/`*.crt` in it (as `tlscacerts/`).
 * A missing path is an error: a listener that trusts nobody would refuse everyone silently.
 */
export async function readCaFiles(paths: readonly string[]): Promise<Buffer[]> {
  const out: Buffer[] = [];
  for (const p of paths) {
    let isDir: boolean;
    try {
      isDir = (await stat(p)).isDirectory();
    } catch (e) {
      throw invalid('ca_unreadable', `TLS CA file ${p} cannot be read: ${(e as Error).message}`, e);
    }
    if (!isDir) {
      out.push(await readFile(p));
      continue;
    }
    const names = (await readdir(p)).filter((n) => PEM_EXTENSIONS.has(extname(n).toLowerCase())).sort();
    for (const n of names) out.push(await readFile(join(p, n)));
  }
  return out;
}

/** Reads a TLS pair and its trusted CAs from files (`tls/server.crt`, `tls/server.key`, `tls/ca.crt` or `tlscacerts/`). */
export async function loadTlsMaterial(files: {
  readonly certFile: string;
  readonly keyFile: string;
  readonly caFiles?: readonly string[];
}): Promise<TlsMaterial> {
  const read = async (file: string, what: string) => {
    try {
      return await readFile(file);
    } catch (e) {
      throw invalid(`${what}_unreadable`, `TLS ${what} file ${file} cannot be read: ${(e as Error).message}`, e);
    }
  };
  const [certPem, keyPem, caPems] = await Promise.all([
    read(files.certFile, 'certificate'),
    read(files.keyFile, 'key'),
    readCaFiles(files.caFiles ?? []),
  ]);
  return { certPem, keyPem, caPems };
}
