/**
 * The CA server's config file (YAML):
 *
 *   name: ca.org1.example.com          # the CA name (Fabric CA's caname)
 *   mspId: Org1MSP                     # optional, informational
 *   listen: { host: 127.0.0.1, port: 7054 }   # port 0: any free port
 *   dataDir: ./ca-data                 # relative to the config file
 *   bootstrap: { id: admin, secret: adminpw }
 *   csr: { cn: ca.org1.example.com, names: [{ C: US, O: org1.example.com }] }
 *   tls: { enabled: true, hosts: [localhost, 127.0.0.1] }
 *   maxEnrollments: -1                 # default for identities registered without one; -1 = unlimited
 *   affiliations: { org1: [department1, department2], org2: [] }
 *   logLevel: info
 */
import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { CaErrorCode, caError } from './errors.js';

export interface CaServerConfig {
  readonly name: string;
  readonly mspId?: string;
  readonly listen: { readonly host: string; readonly port: number };
  readonly dataDir: string;
  readonly bootstrap: { readonly id: string; readonly secret: string };
  readonly csr: { readonly cn: string; readonly names?: ReadonlyArray<Readonly<Record<string, string>>> };
  readonly tls: {
    readonly enabled: boolean;
    /** Names and addresses the listener's certificate covers (besides localhost and 127.0.0.1). */
    readonly hosts?: readonly string[];
  };
  readonly maxEnrollments: number;
  /** Dotted names: `org1`, `org1.department1`. */
  readonly affiliations: readonly string[];
  readonly logLevel?: string;
}

function invalid(file: string, path: string, problem: string): never {
  throw caError(CaErrorCode.CONFIG_INVALID, `${file}: ${path}: ${problem}`, { file, path });
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

function str(file: string, o: Obj, key: string, path: string, dflt?: string): string {
  const v = o[key];
  if (v === undefined && dflt !== undefined) return dflt;
  if (typeof v !== 'string' || v === '') invalid(file, `${path}${key}`, 'expected a non-empty string');
  return v;
}

/** Fabric's affiliation tree (`org1: [department1]`, nested maps allowed) or a list of dotted names. */
export function flattenAffiliations(v: unknown, file = 'config', prefix = ''): string[] {
  if (v === undefined || v === null) return [];
  if (Array.isArray(v)) {
    const out: string[] = [];
    for (const item of v) {
      if (typeof item === 'string') out.push(...dotted(prefix, item));
      else if (isObj(item)) out.push(...flattenAffiliations(item, file, prefix));
      else invalid(file, 'affiliations', 'expected names or maps');
    }
    return out;
  }
  if (isObj(v)) {
    const out: string[] = [];
    for (const [k, children] of Object.entries(v)) {
      const name = prefix ? `${prefix}.${k}` : k;
      out.push(name, ...flattenAffiliations(children, file, name));
    }
    return out;
  }
  return invalid(file, 'affiliations', 'expected a map or a list');
}

function dotted(prefix: string, name: string): string[] {
  const full = prefix ? `${prefix}.${name}` : name;
  // `a.b` written flat also creates its parent `a`.
  const parts = full.split('.');
  return parts.map((_, i) => parts.slice(0, i + 1).join('.'));
}

export function parseCaConfig(text: string, file: string): CaServerConfig {
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (e) {
    invalid(file, '(file)', `not YAML: ${(e as Error).message}`);
  }
  if (!isObj(doc)) invalid(file, '(file)', 'expected a map');
  const name = str(file, doc, 'name', '');
  const listen = isObj(doc.listen) ? doc.listen : {};
  const host = str(file, listen, 'host', 'listen.', '127.0.0.1');
  const port = listen.port ?? 7054;
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 0 || port > 65535) {
    invalid(file, 'listen.port', 'expected a port number (0 for any free port)');
  }
  const dataDir = resolve(dirname(resolve(file)), str(file, doc, 'dataDir', ''));
  if (!isObj(doc.bootstrap)) invalid(file, 'bootstrap', 'expected { id, secret }');
  const bootstrap = {
    id: str(file, doc.bootstrap, 'id', 'bootstrap.'),
    secret: str(file, doc.bootstrap, 'secret', 'bootstrap.'),
  };
  const csrDoc = isObj(doc.csr) ? doc.csr : {};
  const cn = str(file, csrDoc, 'cn', 'csr.', name);
  const names = csrDoc.names;
  if (names !== undefined && (!Array.isArray(names) || !names.every(isObj)))
    invalid(file, 'csr.names', 'expected a list of maps');
  const tlsDoc = isObj(doc.tls) ? doc.tls : {};
  const enabled = tlsDoc.enabled ?? true;
  if (typeof enabled !== 'boolean') invalid(file, 'tls.enabled', 'expected true or false');
  const hosts = tlsDoc.hosts ?? [];
  if (!Array.isArray(hosts) || !hosts.every((h) => typeof h === 'string'))
    invalid(file, 'tls.hosts', 'expected a list of names');
  const maxEnrollments = doc.maxEnrollments ?? -1;
  if (typeof maxEnrollments !== 'number' || !Number.isInteger(maxEnrollments) || maxEnrollments < -1) {
    invalid(file, 'maxEnrollments', 'expected -1 (unlimited) or a count');
  }
  const mspId = doc.mspId;
  if (mspId !== undefined && typeof mspId !== 'string') invalid(file, 'mspId', 'expected a string');
  const logLevel = doc.logLevel;
  if (logLevel !== undefined && typeof logLevel !== 'string') invalid(file, 'logLevel', 'expected a log spec');
  return {
    name,
    ...(mspId ? { mspId } : {}),
    listen: { host, port },
    dataDir,
    bootstrap,
    csr: {
      cn,
      ...(names
        ? { names: (names as Obj[]).map((n) => Object.fromEntries(Object.entries(n).map(([k, v]) => [k, String(v)]))) }
        : {}),
    },
    tls: { enabled, hosts: hosts as string[] },
    maxEnrollments,
    affiliations: [...new Set(flattenAffiliations(doc.affiliations, file))],
    ...(logLevel ? { logLevel } : {}),
  };
}

export async function loadCaConfig(file: string): Promise<CaServerConfig> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    throw caError(CaErrorCode.CONFIG_INVALID, `cannot read CA config ${file}: ${(e as Error).message}`, { file });
  }
  return parseCaConfig(text, file);
}
