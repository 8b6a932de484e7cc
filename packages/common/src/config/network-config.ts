import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { type Document, isMap, isPair, isScalar, isSeq, LineCounter, type Node, parseDocument, Scalar } from 'yaml';
import type { z } from 'zod';
import { LoomError } from '../errors.js';
import { formatPrincipal, type Policy, principalsOf } from '../policy/ast.js';
import type { ChannelPolicyDefinitions } from '../policy/channel-policies.js';
import { parsePolicy } from '../policy/parse.js';
import {
  type NetworkCa,
  type NetworkChaincode,
  type NetworkChannel,
  DEFAULT_CHANNEL_POLICIES,
  defaultOrdererOrgPolicies,
  defaultPeerOrgPolicies,
  type NetworkConfig,
  type NetworkConfigParsed,
  networkConfigSchema,
  type NetworkOrdererOrganization,
  type NetworkPeerOrganization,
} from './schema.js';

export const ConfigErrorCode = {
  INVALID: 'CONFIG_INVALID',
  NOT_FOUND: 'CONFIG_NOT_FOUND',
} as const;

export type ConfigPath = ReadonlyArray<string | number>;

export interface ConfigProblem {
  /** Where in the file, e.g. `organizations[1].peers[0].port`; empty for the whole file. */
  readonly path: string;
  /** 1-based line and column of the offending node, when the file has one. */
  readonly line: number | undefined;
  readonly column: number | undefined;
  readonly message: string;
}

export interface ConfigInvalidDetails extends Record<string, unknown> {
  file: string;
  problems: ConfigProblem[];
}

/** `organizations[1].peers[0].port` from `['organizations', 1, 'peers', 0, 'port']`. */
export function formatConfigPath(path: ConfigPath): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else if (/^[A-Za-z_$][A-Za-z0-9_$]*$/.test(seg)) out += out === '' ? seg : `.${seg}`;
    else out += `[${JSON.stringify(seg)}]`;
  }
  return out;
}

/** Maps a path in the data to the YAML node it came from, and that node to a line and column. */
class SourceMap {
  readonly #doc: Document;
  readonly #lines: LineCounter;
  readonly #source: string;

  constructor(doc: Document, lines: LineCounter, source: string) {
    this.#doc = doc;
    this.#lines = lines;
    this.#source = source;
  }

  /**
   * Line and column of the deepest node on `path` that exists: the value itself, else the key
   * with no value, else the nearest enclosing map or list (where a missing field belongs).
   * `offset` moves into a single-line scalar, for errors at a position inside a policy string.
   */
  locate(path: ConfigPath, offset = 0): { line: number; column: number } | undefined {
    let node: unknown = this.#doc.contents;
    let range: readonly [number, number, number] | undefined = (node as Node | null)?.range ?? undefined;
    for (const seg of path) {
      if (isMap(node)) {
        const pair = node.items.find((p) => isPair(p) && isScalar(p.key) && String(p.key.value) === String(seg));
        if (!pair) break;
        const key = pair.key as Scalar;
        node = pair.value;
        range = (isScalar(node) || isMap(node) || isSeq(node)) && node.range ? node.range : (key.range ?? range);
        if (!(isScalar(node) || isMap(node) || isSeq(node))) break;
      } else if (isSeq(node) && typeof seg === 'number') {
        const item = node.items[seg];
        if (!(isScalar(item) || isMap(item) || isSeq(item))) break;
        node = item;
        range = item.range ?? range;
      } else {
        break;
      }
    }
    if (!range) return undefined;
    let start = range[0];
    if (offset > 0 && isScalar(node) && node.range) {
      // Only plain and simply-quoted one-line scalars map character for character onto the source.
      const quoted = node.type === Scalar.QUOTE_SINGLE || node.type === Scalar.QUOTE_DOUBLE;
      const raw = this.#source.slice(node.range[0] + (quoted ? 1 : 0), node.range[1]);
      if ((node.type === Scalar.PLAIN || quoted) && raw.startsWith(String(node.value)) && !raw.includes('\n')) {
        start = node.range[0] + (quoted ? 1 : 0) + offset;
      }
    }
    const pos = this.#lines.linePos(start);
    return { line: pos.line, column: pos.col };
  }
}

class ProblemList {
  readonly problems: ConfigProblem[] = [];
  readonly #map: SourceMap | undefined;

  constructor(map: SourceMap | undefined) {
    this.#map = map;
  }

  add(path: ConfigPath, message: string, offset = 0): void {
    const loc = this.#map?.locate(path, offset);
    this.problems.push({ path: formatConfigPath(path), line: loc?.line, column: loc?.column, message });
  }
}

function invalid(file: string, problems: ConfigProblem[]): LoomError<ConfigInvalidDetails> {
  const lines = problems.map((p) => {
    const where = p.line === undefined ? file : `${file}:${p.line}:${p.column}`;
    return `  ${where}${p.path ? ` ${p.path}` : ''}: ${p.message}`;
  });
  const count = problems.length === 1 ? '1 problem' : `${problems.length} problems`;
  return new LoomError(ConfigErrorCode.INVALID, `invalid network config ${file} (${count}):\n${lines.join('\n')}`, {
    details: { file, problems },
    httpStatus: 400,
  });
}

function zodProblems(error: z.ZodError, out: ProblemList): void {
  for (const issue of error.issues) {
    const path = issue.path.filter((p): p is string | number => typeof p !== 'symbol');
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) out.add([...path, key], `unknown field '${key}'`);
    } else if (issue.code === 'invalid_type' && / received undefined$/.test(issue.message)) {
      const field = path[path.length - 1];
      out.add(path, typeof field === 'string' ? `missing required field '${field}'` : 'missing value');
    } else {
      out.add(path, issue.message);
    }
  }
}

/**
 * Parses and checks a network config. Every problem found is reported in one `CONFIG_INVALID`
 * error that names the file, the path, the line and column, and what is wrong. Relative paths in
 * the file (`dataDir`, chaincode `path` and `collections`) are resolved against the file's directory.
 */
export function parseNetworkConfig(text: string, fileName: string): NetworkConfig {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw invalid(
      fileName,
      doc.errors.map((e) => ({
        path: '',
        line: e.linePos?.[0].line,
        column: e.linePos?.[0].col,
        message: `YAML: ${e.message.split('\n')[0]}`,
      })),
    );
  }
  const map = new SourceMap(doc, lineCounter, text);
  const problems = new ProblemList(map);
  const data: unknown = doc.toJS();
  if (data === null || typeof data !== 'object' || Array.isArray(data)) {
    problems.add([], 'expected a YAML mapping at the top level');
    throw invalid(fileName, problems.problems);
  }
  const parsed = networkConfigSchema.safeParse(data);
  if (!parsed.success) {
    zodProblems(parsed.error, problems);
    throw invalid(fileName, problems.problems);
  }
  const config = buildConfig(parsed.data, fileName);
  checkReferences(config, problems);
  if (problems.problems.length > 0) throw invalid(fileName, problems.problems);
  return config;
}

/** Reads and parses a network config file; see `parseNetworkConfig`. */
export async function loadNetworkConfig(file: string): Promise<NetworkConfig> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    throw new LoomError(ConfigErrorCode.NOT_FOUND, `cannot read network config ${file}: ${(e as Error).message}`, {
      details: { file },
      cause: e,
    });
  }
  return parseNetworkConfig(text, file);
}

function buildCa(ca: NetworkConfigParsed['ordererOrganization']['ca'], domain: string): NetworkCa {
  return { name: ca.name ?? `ca.${domain}`, host: ca.host, port: ca.port, tlsPort: ca.tlsPort, admin: ca.admin };
}

function buildConfig(p: NetworkConfigParsed, fileName: string): NetworkConfig {
  const baseDir = dirname(resolve(fileName));
  const organizations: NetworkPeerOrganization[] = p.organizations.map((o) => ({
    mspId: o.mspId,
    name: o.name ?? o.mspId.replace(/MSP$/, ''),
    domain: o.domain,
    ca: buildCa(o.ca, o.domain),
    peers: o.peers.map((peer) => ({
      name: peer.name,
      fqdn: `${peer.name}.${o.domain}`,
      host: peer.host,
      port: peer.port,
      p2pPort: peer.p2pPort,
      chaincodePort: peer.chaincodePort,
      operationsPort: peer.operationsPort,
    })),
    anchorPeers: o.anchorPeers ?? [o.peers[0]!.name],
    policies: { ...defaultPeerOrgPolicies(o.mspId), ...o.policies },
  }));
  const oo = p.ordererOrganization;
  const ordererOrganization: NetworkOrdererOrganization = {
    mspId: oo.mspId,
    name: oo.name ?? oo.mspId.replace(/MSP$/, ''),
    domain: oo.domain,
    ca: buildCa(oo.ca, oo.domain),
    orderers: oo.orderers.map((o) => ({ ...o, fqdn: `${o.name}.${oo.domain}` })),
    policies: { ...defaultOrdererOrgPolicies(oo.mspId), ...oo.policies },
  };
  const channels: NetworkChannel[] = p.channels.map((c) => ({
    name: c.name,
    organizations: c.organizations,
    consenters: c.consenters ?? oo.orderers.map((o) => o.name),
    policies: { ...DEFAULT_CHANNEL_POLICIES, ...c.policies },
    batch: c.batch,
    raft: c.raft,
  }));
  const chaincodes: NetworkChaincode[] = p.chaincodes.map((c) => ({
    name: c.name,
    path: resolve(baseDir, c.path),
    channel: c.channel,
    version: c.version,
    sequence: c.sequence,
    endorsementPolicy: c.endorsementPolicy,
    collections: c.collections === undefined ? undefined : resolve(baseDir, c.collections),
  }));
  return {
    name: p.name,
    source: fileName,
    dataDir: resolve(baseDir, p.dataDir),
    tls: p.tls,
    organizations,
    ordererOrganization,
    channels,
    chaincodes,
  };
}

function checkUnique<T>(
  items: readonly T[],
  key: (t: T) => string,
  path: (i: number) => ConfigPath,
  what: string,
  out: ProblemList,
) {
  const first = new Map<string, number>();
  items.forEach((item, i) => {
    const k = key(item);
    const prev = first.get(k);
    if (prev === undefined) first.set(k, i);
    else out.add(path(i), `duplicate ${what} '${k}' (also at ${formatConfigPath(path(prev))})`);
  });
}

const WILDCARD_HOSTS = new Set(['0.0.0.0', '::', '']);

function checkPorts(c: NetworkConfig, out: ProblemList): void {
  const bindings: Array<{ host: string; port: number; path: ConfigPath }> = [];
  const ca = (ca: NetworkCa, base: ConfigPath) => {
    bindings.push({ host: ca.host, port: ca.port, path: [...base, 'ca', 'port'] });
    if (ca.tlsPort !== undefined) bindings.push({ host: ca.host, port: ca.tlsPort, path: [...base, 'ca', 'tlsPort'] });
  };
  c.organizations.forEach((o, i) => {
    ca(o.ca, ['organizations', i]);
    o.peers.forEach((p, j) => {
      for (const field of ['port', 'p2pPort', 'chaincodePort', 'operationsPort'] as const) {
        const port = p[field];
        if (port !== undefined) bindings.push({ host: p.host, port, path: ['organizations', i, 'peers', j, field] });
      }
    });
  });
  ca(c.ordererOrganization.ca, ['ordererOrganization']);
  c.ordererOrganization.orderers.forEach((o, j) => {
    for (const field of ['port', 'adminPort', 'raftPort', 'operationsPort'] as const) {
      bindings.push({ host: o.host, port: o[field], path: ['ordererOrganization', 'orderers', j, field] });
    }
  });
  // Two listeners clash on the same port when their hosts are equal or either binds every interface.
  for (let i = 0; i < bindings.length; i++) {
    const b = bindings[i]!;
    const clash = bindings
      .slice(0, i)
      .find(
        (a) => a.port === b.port && (a.host === b.host || WILDCARD_HOSTS.has(a.host) || WILDCARD_HOSTS.has(b.host)),
      );
    if (clash) {
      out.add(b.path, `port ${b.port} on ${b.host} is already used by ${formatConfigPath(clash.path)}`);
    }
  }
}

/**
 * Checks a policy text: it parses; every MSP a signature policy names is one of `allowedMsps`; an
 * implicit meta policy's sub-policy is defined by every organization it ranges over.
 */
function checkPolicy(
  text: string,
  path: ConfigPath,
  out: ProblemList,
  scope: {
    allowedMsps: ReadonlySet<string>;
    definedMsps: ReadonlySet<string>;
    where: string;
    /** For implicit meta policies: the organizations and their policy names. Undefined: not allowed. */
    subPolicies?: ReadonlyMap<string, ReadonlySet<string>>;
  },
): Policy | undefined {
  let policy: Policy;
  try {
    policy = parsePolicy(text);
  } catch (e) {
    if (e instanceof LoomError) {
      const position = typeof e.details['position'] === 'number' ? e.details['position'] : 0;
      out.add(path, e.message, position);
      return undefined;
    }
    throw e;
  }
  if (policy.type === 'implicitMeta') {
    if (!scope.subPolicies) {
      out.add(path, `implicit meta policy '${text}' is not allowed ${scope.where}; write a signature policy`);
      return undefined;
    }
    const lacking = [...scope.subPolicies].filter(([, names]) => !names.has(policy.subPolicy)).map(([msp]) => msp);
    if (lacking.length > 0) {
      out.add(path, `'${text}' refers to policy '${policy.subPolicy}', which ${lacking.join(', ')} does not define`);
    }
    return policy;
  }
  for (const p of principalsOf(policy)) {
    if (scope.allowedMsps.has(p.mspId)) continue;
    const why = scope.definedMsps.has(p.mspId)
      ? `${p.mspId} is not an organization ${scope.where}`
      : `${p.mspId} is not defined in this network`;
    out.add(path, `policy principal '${formatPrincipal(p)}' is unknown: ${why}`, text.indexOf(p.mspId));
  }
  return policy;
}

function checkReferences(c: NetworkConfig, out: ProblemList): void {
  const oo = c.ordererOrganization;
  const allOrgs: Array<{ mspId: string; domain: string; path: ConfigPath }> = [
    ...c.organizations.map((o, i) => ({ mspId: o.mspId, domain: o.domain, path: ['organizations', i] as ConfigPath })),
    { mspId: oo.mspId, domain: oo.domain, path: ['ordererOrganization'] },
  ];
  checkUnique(
    allOrgs,
    (o) => o.mspId,
    (i) => [...allOrgs[i]!.path, 'mspId'],
    'MSP id',
    out,
  );
  checkUnique(
    c.organizations,
    (o) => o.name,
    (i) => ['organizations', i, 'name'],
    'organization name',
    out,
  );
  checkUnique(
    c.organizations,
    (o) => o.domain,
    (i) => ['organizations', i, 'domain'],
    'domain',
    out,
  );

  const definedMsps = new Set(allOrgs.map((o) => o.mspId));
  const peerOrgs = new Map(c.organizations.map((o) => [o.mspId, o]));
  const orgPolicyNames = new Map<string, ReadonlySet<string>>(
    c.organizations.map((o) => [o.mspId, new Set(Object.keys(o.policies))]),
  );

  c.organizations.forEach((o, i) => {
    checkUnique(
      o.peers,
      (p) => p.name,
      (j) => ['organizations', i, 'peers', j, 'name'],
      'peer name',
      out,
    );
    const peerNames = new Set(o.peers.map((p) => p.name));
    o.anchorPeers.forEach((a, k) => {
      if (!peerNames.has(a))
        out.add(['organizations', i, 'anchorPeers', k], `anchor peer '${a}' is not a peer of ${o.mspId}`);
    });
    for (const [name, text] of Object.entries(o.policies)) {
      checkPolicy(text, ['organizations', i, 'policies', name], out, {
        allowedMsps: definedMsps,
        definedMsps,
        where: 'of this network',
      });
    }
  });
  checkUnique(
    oo.orderers,
    (o) => o.name,
    (j) => ['ordererOrganization', 'orderers', j, 'name'],
    'orderer name',
    out,
  );
  for (const [name, text] of Object.entries(oo.policies)) {
    checkPolicy(text, ['ordererOrganization', 'policies', name], out, {
      allowedMsps: definedMsps,
      definedMsps,
      where: 'of this network',
    });
  }
  checkPorts(c, out);

  const ordererNames = new Set(oo.orderers.map((o) => o.name));
  checkUnique(
    c.channels,
    (ch) => ch.name,
    (i) => ['channels', i, 'name'],
    'channel name',
    out,
  );
  c.channels.forEach((ch, i) => {
    checkUnique(
      ch.organizations,
      (m) => m,
      (k) => ['channels', i, 'organizations', k],
      'organization',
      out,
    );
    ch.organizations.forEach((m, k) => {
      if (peerOrgs.has(m)) return;
      out.add(
        ['channels', i, 'organizations', k],
        m === oo.mspId
          ? `${m} is the orderer organization; a channel's organizations are peer organizations`
          : `unknown organization '${m}' (defined: ${c.organizations.map((o) => o.mspId).join(', ')})`,
      );
    });
    checkUnique(
      ch.consenters,
      (n) => n,
      (k) => ['channels', i, 'consenters', k],
      'consenter',
      out,
    );
    ch.consenters.forEach((n, k) => {
      if (!ordererNames.has(n)) {
        out.add(
          ['channels', i, 'consenters', k],
          `unknown consenter '${n}' (orderers: ${[...ordererNames].join(', ')})`,
        );
      }
    });
    if (ch.batch.preferredMaxBytes > ch.batch.absoluteMaxBytes) {
      out.add(['channels', i, 'batch', 'preferredMaxBytes'], 'preferredMaxBytes must not exceed absoluteMaxBytes');
    }
    if (ch.batch.batchTimeoutMs <= 0)
      out.add(['channels', i, 'batch', 'batchTimeout'], 'batchTimeout must be positive');
    if (ch.raft.heartbeatTick >= ch.raft.electionTick) {
      out.add(['channels', i, 'raft', 'heartbeatTick'], 'heartbeatTick must be less than electionTick');
    }
    const scope = channelPolicyScope(ch, oo.mspId, definedMsps, orgPolicyNames);
    for (const [name, text] of Object.entries(ch.policies)) {
      checkPolicy(text, ['channels', i, 'policies', name], out, scope);
    }
  });

  const channels = new Map(c.channels.map((ch) => [ch.name, ch]));
  checkUnique(
    c.chaincodes,
    (cc) => `${cc.name}' on channel '${cc.channel}`,
    (i) => ['chaincodes', i, 'name'],
    'chaincode',
    out,
  );
  c.chaincodes.forEach((cc, i) => {
    const ch = channels.get(cc.channel);
    if (!ch) {
      out.add(['chaincodes', i, 'channel'], `unknown channel '${cc.channel}'`);
      return;
    }
    if (cc.endorsementPolicy !== undefined) {
      checkPolicy(cc.endorsementPolicy, ['chaincodes', i, 'endorsementPolicy'], out, {
        ...channelPolicyScope(ch, undefined, definedMsps, orgPolicyNames),
      });
    }
  });
}

function channelPolicyScope(
  ch: NetworkChannel,
  ordererMsp: string | undefined,
  definedMsps: ReadonlySet<string>,
  orgPolicyNames: ReadonlyMap<string, ReadonlySet<string>>,
) {
  const members = ch.organizations.filter((m) => orgPolicyNames.has(m));
  return {
    allowedMsps: new Set(ordererMsp === undefined ? members : [...members, ordererMsp]),
    definedMsps,
    where: `of channel ${ch.name}`,
    subPolicies: new Map(members.map((m) => [m, orgPolicyNames.get(m)!])),
  };
}

/** The policy texts of a channel in the shape `ChannelPolicies` is built from. */
export function channelPolicyDefinitions(config: NetworkConfig, channel: string): ChannelPolicyDefinitions {
  const ch = config.channels.find((c) => c.name === channel);
  if (!ch) {
    throw new LoomError(ConfigErrorCode.INVALID, `network ${config.name} has no channel '${channel}'`, {
      details: { channel, known: config.channels.map((c) => c.name) },
      httpStatus: 404,
    });
  }
  const orgs: Record<string, Record<string, string>> = {};
  for (const mspId of ch.organizations) {
    const org = config.organizations.find((o) => o.mspId === mspId);
    if (org) orgs[mspId] = { ...org.policies };
  }
  return { orgs, channel: { ...ch.policies } };
}
