/**
 * Chaincode packages in Fabric's layout: a gzipped tar holding exactly `metadata.json`
 * (`{"type":"node","label":"basic_1.0"}`) and `code.tar.gz`. For `node` chaincode, code.tar.gz holds
 * the source under `src/` (with its package.json; the peer installs and builds it) and rich-query
 * indexes under `META-INF/`; for `ccaas` (chaincode as a service, Fabric's external builder type) it
 * holds `connection.json` saying where the already running chaincode listens.
 *
 * `packageId = label ':' hex(sha256(package bytes))`. Archives are written deterministically, so the
 * same files and label always give the same id. Pure apart from node:zlib.
 */
import { gunzipSync, gzipSync } from 'node:zlib';
import { fromUtf8, LoomError, sha256Hex, utf8 } from '@loom/common';
import { type IndexDefinition, parseIndexDefinition } from '../../ledger/query/index-def.js';
import { DEFAULT_TAR_LIMITS, readTar, type TarEntry, type TarLimits, writeTar } from './tar.js';

export const ChaincodePackageErrorCode = {
  INVALID: 'CHAINCODE_PACKAGE_INVALID',
} as const;

export type ChaincodeType = 'node' | 'ccaas';
export const CHAINCODE_TYPES: readonly ChaincodeType[] = ['node', 'ccaas'];

/** Fabric's package label rule. */
export const LABEL_PATTERN = /^[A-Za-z0-9_.+-]+$/;

/** Largest package accepted, compressed. */
export const MAX_PACKAGE_BYTES = 64 * 1024 * 1024;

export interface CcaasConnection {
  /** `host:port` of the chaincode server. */
  readonly address: string;
  readonly dialTimeout: string | undefined;
  readonly tlsRequired: boolean;
  readonly clientAuthRequired: boolean;
  readonly rootCert: string | undefined;
  readonly clientCert: string | undefined;
  readonly clientKey: string | undefined;
}

export interface ParsedPackage {
  readonly packageId: string;
  readonly label: string;
  readonly type: ChaincodeType;
  /** code.tar.gz's files by path (`src/package.json`, `META-INF/...`, `connection.json`). */
  readonly files: ReadonlyMap<string, Uint8Array>;
  /** For `ccaas`: the parsed connection.json. */
  readonly connection: CcaasConnection | undefined;
}

export interface PackageContents {
  readonly label: string;
  readonly type: ChaincodeType;
  /** code.tar.gz's files, paths as in `ParsedPackage.files`. */
  readonly files: readonly TarEntry[];
}

const invalid = (message: string, details: Record<string, unknown> = {}) =>
  new LoomError(ChaincodePackageErrorCode.INVALID, message, { details, httpStatus: 400 });

export function checkLabel(label: string): void {
  if (typeof label !== 'string' || !LABEL_PATTERN.test(label)) {
    throw invalid(`invalid package label ${JSON.stringify(label)}: must match ${LABEL_PATTERN.source}`, { label });
  }
}

function checkType(type: unknown): ChaincodeType {
  if (typeof type !== 'string' || !CHAINCODE_TYPES.includes(type as ChaincodeType)) {
    throw invalid(`unsupported chaincode type ${JSON.stringify(type)}; expected one of ${CHAINCODE_TYPES.join(', ')}`);
  }
  return type as ChaincodeType;
}

/** `label:sha256hex(bytes)`. */
export function packageIdOf(label: string, packageBytes: Uint8Array): string {
  return `${label}:${sha256Hex(packageBytes)}`;
}

/** Splits a package id into label and hash; throws CHAINCODE_PACKAGE_INVALID when malformed. */
export function parsePackageId(packageId: string): { label: string; hash: string } {
  const i = packageId.lastIndexOf(':');
  const label = packageId.slice(0, i);
  const hash = packageId.slice(i + 1);
  if (i <= 0 || !LABEL_PATTERN.test(label) || !/^[0-9a-f]{64}$/.test(hash)) {
    throw invalid(`malformed package id ${JSON.stringify(packageId)}: expected <label>:<sha256 hex>`, { packageId });
  }
  return { label, hash };
}

// Gzip with mtime 0 (node's default) and OS byte "unknown", so the bytes do not depend on the platform.
function gzip(bytes: Uint8Array): Uint8Array {
  const out = new Uint8Array(gzipSync(bytes, { level: 9 }));
  out[9] = 0xff;
  return out;
}

function gunzip(bytes: Uint8Array, maxOutput: number, what: string): Uint8Array {
  if (bytes.length < 18 || bytes[0] !== 0x1f || bytes[1] !== 0x8b) throw invalid(`${what} is not gzip data`);
  try {
    return new Uint8Array(gunzipSync(bytes, { maxOutputLength: maxOutput }));
  } catch (e) {
    throw invalid(`${what} does not decompress: ${(e as Error).message}`);
  }
}

function parseConnection(bytes: Uint8Array): CcaasConnection {
  let j: Record<string, unknown>;
  try {
    j = JSON.parse(fromUtf8(bytes)) as Record<string, unknown>;
  } catch {
    throw invalid('connection.json is not JSON');
  }
  if (j === null || typeof j !== 'object' || Array.isArray(j)) throw invalid('connection.json must be an object');
  const str = (k: string): string | undefined => {
    const v = j[k];
    if (v === undefined) return undefined;
    if (typeof v !== 'string') throw invalid(`connection.json: ${k} must be a string`);
    return v;
  };
  const bool = (k: string): boolean => {
    const v = j[k];
    if (v === undefined) return false;
    if (typeof v !== 'boolean') throw invalid(`connection.json: ${k} must be a boolean`);
    return v;
  };
  const address = str('address');
  if (!address || !/^[^\s:]+:\d{1,5}$/.test(address)) {
    throw invalid(`connection.json: address must be host:port, got ${JSON.stringify(address)}`);
  }
  return {
    address,
    dialTimeout: str('dial_timeout'),
    tlsRequired: bool('tls_required'),
    clientAuthRequired: bool('client_auth_required'),
    rootCert: str('root_cert'),
    clientCert: str('client_cert'),
    clientKey: str('client_key'),
  };
}

function checkCode(type: ChaincodeType, files: ReadonlyMap<string, Uint8Array>): CcaasConnection | undefined {
  if (type === 'ccaas') {
    const conn = files.get('connection.json');
    if (!conn) throw invalid('ccaas package: code.tar.gz has no connection.json');
    return parseConnection(conn);
  }
  const pkg = files.get('src/package.json');
  if (!pkg) throw invalid('node package: code.tar.gz has no src/package.json');
  try {
    const j = JSON.parse(fromUtf8(pkg)) as unknown;
    if (j === null || typeof j !== 'object' || Array.isArray(j)) throw new Error('not an object');
  } catch (e) {
    throw invalid(`node package: src/package.json is not a JSON object (${(e as Error).message})`);
  }
  return undefined;
}

/** The package bytes for `contents`: deterministic. */
export function buildPackage(contents: PackageContents): Uint8Array {
  checkLabel(contents.label);
  const type = checkType(contents.type);
  checkCode(type, new Map(contents.files.map((f) => [f.path, f.content])));
  const code = gzip(writeTar(contents.files));
  const metadata = utf8(JSON.stringify({ label: contents.label, path: '', type }));
  return gzip(
    writeTar([
      { path: 'metadata.json', content: metadata },
      { path: 'code.tar.gz', content: code },
    ]),
  );
}

/**
 * Parses and validates a package: gzip and tar well-formed within `limits`, exactly `metadata.json`
 * and `code.tar.gz`, a valid label and type, and the files that type needs. Throws
 * CHAINCODE_PACKAGE_INVALID (400) otherwise.
 */
export function parsePackage(bytes: Uint8Array, limits: TarLimits = DEFAULT_TAR_LIMITS): ParsedPackage {
  if (!(bytes instanceof Uint8Array)) throw invalid('package must be bytes');
  if (bytes.length > MAX_PACKAGE_BYTES) throw invalid(`package is over ${MAX_PACKAGE_BYTES} bytes`);
  const outer = readTar(gunzip(bytes, limits.maxTotalBytes + 1024 * 1024, 'package'), limits);
  const byPath = new Map(outer.map((e) => [e.path, e.content]));
  const extra = outer.map((e) => e.path).filter((p) => p !== 'metadata.json' && p !== 'code.tar.gz');
  if (extra.length > 0) throw invalid(`unexpected files in package: ${extra.join(', ')}`, { files: extra });
  const metaBytes = byPath.get('metadata.json');
  if (!metaBytes) throw invalid('package has no metadata.json');
  const codeBytes = byPath.get('code.tar.gz');
  if (!codeBytes) throw invalid('package has no code.tar.gz');
  let meta: Record<string, unknown>;
  try {
    meta = JSON.parse(fromUtf8(metaBytes)) as Record<string, unknown>;
  } catch {
    throw invalid('metadata.json is not JSON');
  }
  if (meta === null || typeof meta !== 'object' || Array.isArray(meta))
    throw invalid('metadata.json must be an object');
  const label = meta.label;
  if (typeof label !== 'string') throw invalid('metadata.json has no label');
  checkLabel(label);
  const type = checkType(meta.type);
  const code = readTar(gunzip(codeBytes, limits.maxTotalBytes + 1024 * 1024, 'code.tar.gz'), limits);
  const files = new Map(code.map((e) => [e.path, e.content]));
  const connection = checkCode(type, files);
  return { packageId: packageIdOf(label, bytes), label, type, files, connection };
}

export interface PackagedIndex {
  /** Undefined for the chaincode's public state; the collection name for a private data index. */
  readonly collection: string | undefined;
  /** The file's path in code.tar.gz. */
  readonly path: string;
  readonly content: Uint8Array;
  readonly definition: IndexDefinition;
}

const PUBLIC_INDEX = /^META-INF\/statedb\/couchdb\/indexes\/[^/]+\.json$/;
const COLLECTION_INDEX = /^META-INF\/statedb\/couchdb\/collections\/([^/]+)\/indexes\/[^/]+\.json$/;

/**
 * The rich-query index definitions a package ships (Fabric's CouchDB layout), parsed; a malformed
 * index file makes the package invalid, as it would fail at install in Fabric.
 */
export function indexDefinitions(files: ReadonlyMap<string, Uint8Array>): PackagedIndex[] {
  const out: PackagedIndex[] = [];
  for (const [path, content] of [...files].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    const coll = COLLECTION_INDEX.exec(path);
    if (!PUBLIC_INDEX.test(path) && !coll) continue;
    let definition: IndexDefinition;
    try {
      definition = parseIndexDefinition(content);
    } catch (e) {
      throw invalid(`index ${path}: ${(e as Error).message}`, { path });
    }
    out.push({ collection: coll?.[1], path, content, definition });
  }
  return out;
}
