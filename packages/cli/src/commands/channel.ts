/**
 * `loom channel config fetch|diff|compute-update|sign|update`: channel config updates the way
 * Fabric's `peer channel fetch config` + configtxlator + `peer channel signconfigtx|update` do them,
 * but on files people read and edit (YAML or JSON, certificates as PEM text, signed bytes as base64).
 *
 *   fetch           the latest config block from an orderer → config.yaml (and the raw block with --block)
 *   diff            the changed elements between two config files, with the policy each change needs
 *   compute-update  original + edited config → an update file (versions bumped, base sequence set)
 *   sign            an admin adds its ConfigSignature to an update file
 *   update          submits the update file to an orderer; prints the orderer's error naming the policy
 *
 * Update file: `{channelId, baseSequence, changes, config, configUpdate, signatures}` where
 * `configUpdate` is the base64 of the exact bytes signed (encodeConfigUpdate of the readable part)
 * and each signature is `{signer, signatureHeader, signature}` (base64). Editing the readable part
 * of a file that already carries signatures is refused, since they would no longer verify.
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { extname, join } from 'node:path';
import {
  type Block,
  type ChannelConfig,
  type ConfigElementChange,
  type ConfigSignature,
  computeConfigChanges,
  computeConfigUpdate,
  computeTxId,
  configSignatureSignedBytes,
  decodeBlock,
  decodeConfigEnvelopeFromBlock,
  decodeConfigUpdate,
  decodeConsenterMetadata,
  encodeBlock,
  encodeChannelHeader,
  encodeConfigUpdate,
  encodeConfigUpdateEnvelope,
  encodeEnvelope,
  encodeHeader,
  encodePayload,
  encodeSeekInfo,
  encodeSerializedIdentity,
  encodeSignatureHeader,
  HeaderType,
  LoomError,
  type NetworkConfig,
  type OrgMaterial,
  type ConsenterMaterial,
  buildGenesisBlock,
  channelConfigFromNetwork,
  loadMspFromDir,
  sha256,
  parseChannelConfig,
  privateKeyFromPem,
  type SeekPosition,
  sign,
} from '@loom/common';
import type { Command } from 'commander';
import { parse as parseYaml, stringify as toYaml } from 'yaml';
import { networkTlsRoots } from '../network/gateway.js';
import { httpRequest } from '../network/http.js';
import { type AnyOrg, allOrgs, layout } from '../network/layout.js';
import { output } from '../output.js';
import { DEFAULT_CONFIG, loadConfig } from './network.js';

interface NetOpts {
  config?: string;
  data?: string;
  channel?: string;
  org?: string;
  user?: string;
  orderer?: string;
}

interface Identity {
  mspId: string;
  certPem: string;
  keyPem: string;
  label: string;
}

const b64 = (b: Uint8Array) => Buffer.from(b).toString('base64');
const unb64 = (s: unknown, what: string): Uint8Array => {
  if (typeof s !== 'string' || !/^[A-Za-z0-9+/=\s]*$/.test(s))
    throw new LoomError('CONFIG_FILE_INVALID', `${what} must be base64 text`);
  return new Uint8Array(Buffer.from(s, 'base64'));
};
const scheme = (net: NetworkConfig) => (net.tls.enabled ? 'https' : 'http');

function findAnyOrg(net: NetworkConfig, name: string): AnyOrg {
  const org = allOrgs(net).find((o) => o.mspId === name || o.name === name || o.domain === name);
  if (!org) {
    throw new LoomError(
      'ORG_NOT_FOUND',
      `no organization ${name} in ${net.source}; known: ${allOrgs(net)
        .map((o) => o.mspId)
        .join(', ')}`,
    );
  }
  return org;
}

/** An enrolled identity of any org of the network (orderer org included), from its MSP folder. */
async function identityOf(net: NetworkConfig, orgName: string | undefined, user: string): Promise<Identity> {
  const org = orgName ? findAnyOrg(net, orgName) : net.organizations[0];
  if (!org) throw new LoomError('ORG_NOT_FOUND', `${net.source} has no organization`);
  const msp = join(layout.userDir(net, org, user), 'msp');
  const certFile = join(msp, 'signcerts', 'cert.pem');
  if (!existsSync(certFile)) {
    throw new LoomError(
      'IDENTITY_NOT_FOUND',
      `no identity ${user}@${org.domain} in ${msp}: use --user Admin or User1, or run \`loom network up\``,
    );
  }
  const keys = (await readdir(join(msp, 'keystore'))).sort();
  if (keys.length === 0) throw new LoomError('IDENTITY_NOT_FOUND', `no private key in ${join(msp, 'keystore')}`);
  return {
    mspId: org.mspId,
    certPem: await readFile(certFile, 'utf8'),
    keyPem: await readFile(join(msp, 'keystore', keys[0]!), 'utf8'),
    label: `${user}@${org.domain} (${org.mspId})`,
  };
}

function channelOf(net: NetworkConfig, opts: NetOpts): string {
  const ch = opts.channel ?? net.channels[0]?.name;
  if (!ch) throw new LoomError('CHANNEL_NOT_FOUND', 'no channel: pass -C <channel>');
  return ch;
}

function ordererUrls(net: NetworkConfig, opts: NetOpts): string[] {
  if (opts.orderer) return [opts.orderer.replace(/\/$/, '')];
  return net.ordererOrganization.orderers.map((o) => `${scheme(net)}://${o.host}:${o.port}`);
}

function creatorOf(id: Identity): Uint8Array {
  return encodeSerializedIdentity({ mspId: id.mspId, idBytes: new TextEncoder().encode(id.certPem) });
}

/** A signed envelope of `type` on `channel` around `data`. */
function envelope(id: Identity, channel: string, type: HeaderType, data: Uint8Array): Uint8Array {
  const creator = creatorOf(id);
  const nonce = randomBytes(24);
  const payload = encodePayload({
    header: encodeHeader({
      channelHeader: encodeChannelHeader({
        type,
        version: 1,
        channelId: channel,
        txId: computeTxId(nonce, creator),
        timestamp: Date.now(),
        extension: new Uint8Array(0),
      }),
      signatureHeader: encodeSignatureHeader({ creator, nonce }),
    }),
    data,
  });
  return encodeEnvelope({ payload, signature: sign(privateKeyFromPem(id.keyPem), payload) });
}

/** The orderer's answer as a LoomError (its `{code, message, details}` body), or a transport error. */
function ordererError(url: string, status: number, body: Buffer): LoomError {
  try {
    const j = JSON.parse(body.toString()) as { code?: string; message?: string; details?: Record<string, unknown> };
    if (j.code) return new LoomError(j.code, j.message ?? '', { httpStatus: status, details: j.details ?? {} });
  } catch {}
  return new LoomError('ORDERER_ERROR', `${url}: HTTP ${status} ${body.toString().slice(0, 300)}`, {
    httpStatus: status,
  });
}

async function deliverOne(
  net: NetworkConfig,
  url: string,
  id: Identity,
  channel: string,
  at: SeekPosition,
  ca: string[],
): Promise<Block> {
  const seek = envelope(
    id,
    channel,
    HeaderType.DELIVER_SEEK_INFO,
    encodeSeekInfo({ start: at, stop: at, behavior: 'FAIL_IF_NOT_READY' }),
  );
  const r = await httpRequest(`${url}/v1/channels/${encodeURIComponent(channel)}/deliver`, {
    method: 'POST',
    body: seek,
    headers: { 'content-type': 'application/octet-stream' },
    ca: net.tls.enabled ? ca : undefined,
    timeoutMs: 20_000,
  });
  if (r.status !== 200) throw ordererError(url, r.status, r.body);
  if (r.body.length < 4) throw new LoomError('ORDERER_ERROR', `${url} returned no block`);
  const n = r.body.readUInt32BE(0);
  return decodeBlock(new Uint8Array(r.body.subarray(4, 4 + n)));
}

/** The latest config block of `channel`: the newest block's lastConfig, fetched from the first orderer that answers. */
export async function fetchConfigBlock(
  net: NetworkConfig,
  opts: NetOpts,
): Promise<{ block: Block; number: number; config: ChannelConfig; orderer: string }> {
  const channel = channelOf(net, opts);
  const id = await identityOf(net, opts.org, opts.user ?? 'Admin');
  const ca = await networkTlsRoots(net);
  const errors: string[] = [];
  for (const url of ordererUrls(net, opts)) {
    try {
      const newest = await deliverOne(net, url, id, channel, { kind: 'newest' }, ca);
      let lastConfig = 0;
      try {
        lastConfig = decodeConsenterMetadata(newest.metadata.consenterMetadata).lastConfig;
      } catch {}
      const block =
        decodeConfigEnvelopeFromBlock(newest) !== undefined
          ? newest
          : await deliverOne(net, url, id, channel, { kind: 'specified', number: lastConfig }, ca);
      const config = decodeConfigEnvelopeFromBlock(block);
      if (!config) throw new LoomError('CONFIG_BLOCK_INVALID', `block ${lastConfig} is not a config block`);
      return { block, number: lastConfig, config, orderer: url };
    } catch (e) {
      if (e instanceof LoomError && e.httpStatus >= 400 && e.httpStatus < 500 && e.httpStatus !== 404) throw e;
      errors.push(`${url}: ${(e as Error).message}`);
    }
  }
  throw new LoomError('ORDERER_UNAVAILABLE', `no orderer answered: ${errors.join('; ')}`);
}

function parseText(text: string, file: string): unknown {
  try {
    return extname(file) === '.json' ? JSON.parse(text) : parseYaml(text);
  } catch (e) {
    throw new LoomError(
      'CONFIG_FILE_INVALID',
      `${file} is not valid ${extname(file) === '.json' ? 'JSON' : 'YAML'}: ${(e as Error).message}`,
    );
  }
}

function render(value: unknown, file: string | undefined, json: boolean): string {
  return json || (file && extname(file) === '.json')
    ? `${JSON.stringify(value, null, 2)}\n`
    : toYaml(value, { lineWidth: 0 });
}

/** A config file: a fetched config, or an update file (its `config`). */
async function readConfigFile(file: string): Promise<ChannelConfig> {
  const v = parseText(await readFile(file, 'utf8'), file) as Record<string, unknown> | null;
  const raw = v && typeof v === 'object' && 'configUpdate' in v && 'config' in v ? v.config : v;
  return parseChannelConfig(raw, file);
}

interface UpdateFile {
  channelId: string;
  baseSequence: number;
  changes?: string[];
  config: ChannelConfig;
  configUpdate: string;
  signatures: Array<{ signer?: string; signatureHeader: string; signature: string }>;
}

function describeChange(c: ConfigElementChange): string {
  const v =
    c.kind === 'modified'
      ? ` (v${c.fromVersion} → v${c.toVersion}, needs ${c.modPolicy})`
      : c.kind === 'added'
        ? ` (v${c.toVersion})`
        : '';
  return `${c.kind} ${c.path}${v}${c.fields.length > 0 ? `: ${c.fields.join('; ')}` : ''}`;
}

/** Reads an update file, checking its signed bytes still match its readable part. */
async function readUpdateFile(
  file: string,
): Promise<{ file: UpdateFile; bytes: Uint8Array; signatures: ConfigSignature[] }> {
  const v = parseText(await readFile(file, 'utf8'), file) as Partial<UpdateFile> | null;
  if (!v || typeof v !== 'object' || !('config' in v) || !('baseSequence' in v)) {
    throw new LoomError(
      'CONFIG_FILE_INVALID',
      `${file} is not an update file (make one with \`loom channel config compute-update\`)`,
    );
  }
  const config = parseChannelConfig(v.config, `${file}: config`);
  if (typeof v.baseSequence !== 'number' || typeof v.channelId !== 'string') {
    throw new LoomError('CONFIG_FILE_INVALID', `${file}: channelId and baseSequence are required`);
  }
  const bytes = encodeConfigUpdate({ channelId: v.channelId, baseSequence: v.baseSequence, config });
  const signatures = (v.signatures ?? []).map((s, i) => ({
    signatureHeader: unb64(s.signatureHeader, `signatures[${i}].signatureHeader`),
    signature: unb64(s.signature, `signatures[${i}].signature`),
  }));
  if (v.configUpdate !== undefined) {
    const stated = unb64(v.configUpdate, 'configUpdate');
    if (Buffer.compare(Buffer.from(stated), Buffer.from(bytes)) !== 0 && signatures.length > 0) {
      throw new LoomError(
        'CONFIG_FILE_EDITED',
        `${file} was edited after it was signed: its ${signatures.length} signature(s) cover other bytes; compute the update again and collect the signatures again`,
      );
    }
  }
  // The bytes decode back to the same update (canonical encoding).
  decodeConfigUpdate(bytes);
  return {
    file: { ...(v as UpdateFile), config, configUpdate: b64(bytes), signatures: v.signatures ?? [] },
    bytes,
    signatures,
  };
}

async function writeUpdateFile(path: string, f: UpdateFile, json: boolean): Promise<void> {
  const header =
    extname(path) === '.json' || json
      ? ''
      : '# Loom channel config update. Sign: loom channel config sign <file>; submit: loom channel config update <file>.\n# configUpdate is the base64 of the exact bytes the signatures cover.\n';
  await writeFile(path, header + render(f, path, json));
}

export function registerChannelCommands(program: Command): void {
  const channel = program.command('channel').description('channel administration');
  const config = channel.command('config').description('read, change and sign a channel configuration');
  const net = (c: Command) =>
    c
      .option('-c, --config <file>', 'network-config file', DEFAULT_CONFIG)
      .option('-d, --data <dir>', 'data directory (overrides the config)')
      .option('-C, --channel <name>', 'channel (default: the first of the network-config)')
      .option('--org <mspId>', 'organization of the identity used (default: the first peer organization)')
      .option('--user <name>', 'identity of that organization', 'Admin')
      .option('--orderer <url>', 'orderer to talk to (default: each orderer of the network-config in turn)');
  const isJson = () => Boolean(program.opts().json);

  net(config.command('fetch').description('the latest config block from an orderer, as YAML or JSON'))
    .option('-o, --output <file>', 'write the config here (.json for JSON) instead of stdout')
    .option('--block <file>', 'also write the raw config block (to join a new orderer or peer with it)')
    .action(async (opts: NetOpts & { output?: string; block?: string }) => {
      const n = await loadConfig(opts);
      const got = await fetchConfigBlock(n, opts);
      if (opts.block) await writeFile(opts.block, encodeBlock(got.block));
      const text = render(got.config, opts.output, isJson());
      if (opts.output) {
        await writeFile(opts.output, text);
        process.stderr.write(
          `config of ${got.config.channelId} at sequence ${got.config.sequence} (block ${got.number}, from ${got.orderer}) written to ${opts.output}\n`,
        );
      } else process.stdout.write(text);
    });

  config
    .command('diff <original> <updated>')
    .description('the changed elements between two config files, with the policy each change needs')
    .action(async (original: string, updated: string) => {
      const a = await readConfigFile(original);
      const b = await readConfigFile(updated);
      const changes = computeConfigChanges(a, b);
      output(isJson(), changes, () =>
        changes.length === 0 ? 'no changes' : changes.map((c) => `  ${describeChange(c)}`).join('\n'),
      );
    });

  config
    .command('compute-update <original> <updated>')
    .description('an update file from the fetched config and an edited copy (versions bumped for you)')
    .requiredOption('-o, --output <file>', 'update file to write (.yaml or .json)')
    .action(async (original: string, updated: string, opts: { output: string }) => {
      const a = await readConfigFile(original);
      const b = await readConfigFile(updated);
      const u = computeConfigUpdate(a, b);
      const changes = computeConfigChanges(a, u.config).map(describeChange);
      const f: UpdateFile = {
        channelId: u.channelId,
        baseSequence: u.baseSequence,
        changes,
        config: u.config,
        configUpdate: b64(encodeConfigUpdate(u)),
        signatures: [],
      };
      await writeUpdateFile(opts.output, f, false);
      output(isJson(), { output: opts.output, changes }, () =>
        [
          `update of ${u.channelId} on sequence ${u.baseSequence} written to ${opts.output}:`,
          ...changes.map((c) => `  ${c}`),
        ].join('\n'),
      );
    });

  net(config.command('sign <updateFile>').description("add this admin's signature to an update file"))
    .option('-o, --output <file>', 'write the signed file here instead of in place')
    .action(async (file: string, opts: NetOpts & { output?: string }) => {
      const { file: f, bytes } = await readUpdateFile(file);
      const n = await loadConfig(opts);
      const id = await identityOf(n, opts.org, opts.user ?? 'Admin');
      const signatureHeader = encodeSignatureHeader({ creator: creatorOf(id), nonce: randomBytes(24) });
      const signature = sign(privateKeyFromPem(id.keyPem), configSignatureSignedBytes(signatureHeader, bytes));
      f.signatures.push({ signer: id.label, signatureHeader: b64(signatureHeader), signature: b64(signature) });
      const out = opts.output ?? file;
      await writeUpdateFile(out, f, false);
      output(
        isJson(),
        { output: out, signer: id.label, signatures: f.signatures.length },
        () => `signed by ${id.label}; ${f.signatures.length} signature(s) in ${out}`,
      );
    });

  net(config.command('update <updateFile>').description('submit a signed update file to the ordering service')).action(
    async (file: string, opts: NetOpts) => {
      const { file: f, bytes, signatures } = await readUpdateFile(file);
      const n = await loadConfig(opts);
      const id = await identityOf(n, opts.org, opts.user ?? 'Admin');
      const ch = opts.channel ?? f.channelId;
      const env = envelope(
        id,
        ch,
        HeaderType.CONFIG_UPDATE,
        encodeConfigUpdateEnvelope({ configUpdate: bytes, signatures }),
      );
      const ca = await networkTlsRoots(n);
      const errors: string[] = [];
      for (const url of ordererUrls(n, opts)) {
        const deadline = Date.now() + 30_000;
        for (;;) {
          let r: Awaited<ReturnType<typeof httpRequest>>;
          try {
            r = await httpRequest(`${url}/v1/channels/${encodeURIComponent(ch)}/broadcast`, {
              method: 'POST',
              body: env,
              headers: { 'content-type': 'application/octet-stream' },
              ca: n.tls.enabled ? ca : undefined,
              timeoutMs: 30_000,
            });
          } catch (e) {
            errors.push(`${url}: ${(e as Error).message}`);
            break;
          }
          if (r.status === 200) {
            const ack = JSON.parse(r.body.toString()) as { blockNumber: number };
            output(
              isJson(),
              { channelId: ch, blockNumber: ack.blockNumber, sequence: f.baseSequence + 1 },
              () => `config update accepted: ${ch} is at sequence ${f.baseSequence + 1} from block ${ack.blockNumber}`,
            );
            return;
          }
          if (r.status === 503 && Date.now() < deadline) {
            await new Promise((ok) => setTimeout(ok, 1000));
            continue;
          }
          // A refusal (4xx) is the answer; another orderer would say the same.
          const e = ordererError(url, r.status, r.body);
          if (r.status < 500) {
            if (isJson()) process.stdout.write(`${JSON.stringify(e.toJSON(), null, 2)}\n`);
            throw e;
          }
          errors.push(`${url}: ${e.code}: ${e.message}`);
          break;
        }
      }
      throw new LoomError('ORDERER_UNAVAILABLE', `no orderer took the update: ${errors.join('; ')}`);
    },
  );
}

// ---------------------------------------------------------------------------------------------
// `loom channel join|list|create`: channel membership, like Fabric's `peer channel join|list`,
// `osnadmin channel join|list` and configtxgen's `-outputBlock`.
// ---------------------------------------------------------------------------------------------

interface MembershipOpts {
  config?: string;
  data?: string;
  org?: string;
  peer?: string;
  ordererAdmin?: string;
  orderers?: boolean;
}

/** One node a membership command talks to: a peer (channel join API) or an orderer (participation API). */
interface Target {
  kind: 'peer' | 'orderer';
  name: string;
  url: string;
}

/** Reads a channel's genesis/config block file, naming the problem when it is not one. */
export async function readChannelBlockFile(file: string): Promise<{ bytes: Uint8Array; channelId: string }> {
  let bytes: Uint8Array;
  try {
    bytes = new Uint8Array(await readFile(file));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new LoomError(
      code === 'ENOENT' ? 'FILE_NOT_FOUND' : 'FILE_UNREADABLE',
      `cannot read block file ${file}: ${code === 'ENOENT' ? 'no such file' : (e as Error).message}`,
      { details: { file } },
    );
  }
  let config: ChannelConfig | undefined;
  try {
    config = decodeConfigEnvelopeFromBlock(decodeBlock(bytes));
  } catch (e) {
    throw new LoomError('BLOCK_FILE_INVALID', `${file} is not a block: ${(e as Error).message}`, {
      details: { file },
    });
  }
  if (!config) {
    throw new LoomError(
      'BLOCK_FILE_INVALID',
      `${file} is a block but not a config block: join with a channel's genesis block (\`loom channel create\`) or its latest config block (\`loom channel config fetch --block\`)`,
      { details: { file } },
    );
  }
  return { bytes, channelId: config.channelId };
}

/** An HTTP call to a node; an unreachable node is a LoomError naming it, not a socket stack. */
async function nodeRequest(
  t: Target,
  path: string,
  options: Parameters<typeof httpRequest>[1],
): Promise<Awaited<ReturnType<typeof httpRequest>>> {
  try {
    return await httpRequest(`${t.url}${path}`, options);
  } catch (e) {
    throw new LoomError(
      t.kind === 'peer' ? 'PEER_UNAVAILABLE' : 'ORDERER_UNAVAILABLE',
      `${t.kind} ${t.name}${t.name === t.url ? '' : ` at ${t.url}`} is unreachable: ${(e as Error).message}`,
      { details: { url: t.url } },
    );
  }
}

/** The node's `{code, message}` error body as a LoomError. */
function nodeError(t: Target, what: string, status: number, body: Buffer): LoomError {
  try {
    const j = JSON.parse(body.toString()) as { code?: string; message?: string; details?: Record<string, unknown> };
    if (j.code) {
      return new LoomError(j.code, `${what} on ${t.kind} ${t.name}: ${j.message ?? ''}`, {
        httpStatus: status,
        details: j.details ?? {},
      });
    }
  } catch {}
  return new LoomError(
    status === 404 ? 'ROUTE_NOT_FOUND' : 'NODE_ERROR',
    `${what} on ${t.kind} ${t.name} (${t.url}): HTTP ${status} ${body.toString().slice(0, 300)}`,
    { httpStatus: status },
  );
}

/** The targets named by --peer / --orderer-admin / --orderers, else the peers of --org (all, or the first). */
function membershipTargets(net: NetworkConfig, opts: MembershipOpts, allPeers: boolean, channel?: string): Target[] {
  const out: Target[] = [];
  const checkUrl = (u: string, flag: string) => {
    let ok = false;
    try {
      ok = ['http:', 'https:'].includes(new URL(u).protocol);
    } catch {}
    if (!ok) throw new LoomError('INVALID_ARGUMENT', `${flag} must be a URL like https://localhost:7051, not '${u}'`);
    return u.replace(/\/$/, '');
  };
  if (opts.peer) out.push({ kind: 'peer', name: opts.peer, url: checkUrl(opts.peer, '--peer') });
  if (opts.ordererAdmin) {
    out.push({ kind: 'orderer', name: opts.ordererAdmin, url: checkUrl(opts.ordererAdmin, '--orderer-admin') });
  }
  if (opts.orderers) {
    const consenters = channel ? net.channels.find((c) => c.name === channel)?.consenters : undefined;
    for (const o of net.ordererOrganization.orderers) {
      if (consenters && !consenters.includes(o.name)) continue;
      out.push({ kind: 'orderer', name: o.name, url: `${scheme(net)}://${o.host}:${o.adminPort}` });
    }
  }
  if (out.length > 0) return out;
  const org = opts.org ? findAnyOrg(net, opts.org) : net.organizations[0];
  if (!org) throw new LoomError('ORG_NOT_FOUND', `${net.source} has no organization`);
  if (!('peers' in org)) {
    throw new LoomError(
      'INVALID_ARGUMENT',
      `${org.mspId} is the orderer organization: pass --orderers or --orderer-admin`,
    );
  }
  const peers = allPeers ? org.peers : org.peers.slice(0, 1);
  if (peers.length === 0) throw new LoomError('PEER_NOT_FOUND', `${org.mspId} has no peer in ${net.source}`);
  return peers.map((p) => ({ kind: 'peer', name: p.name, url: `${scheme(net)}://${p.host}:${p.port}` }));
}

interface JoinResult {
  kind: Target['kind'];
  node: string;
  url: string;
  channelId: string;
  joined: boolean;
  height?: number;
  error?: { code: string; message: string };
}

async function joinOne(t: Target, bytes: Uint8Array, channelId: string, ca: string[] | undefined): Promise<JoinResult> {
  const path = t.kind === 'peer' ? '/v1/channels' : '/participation/v1/channels';
  const r = await nodeRequest(t, path, {
    method: 'POST',
    body: bytes,
    headers: { 'content-type': 'application/octet-stream' },
    ca,
    timeoutMs: 60_000,
  });
  if (r.status >= 300) throw nodeError(t, `joining ${channelId}`, r.status, r.body);
  const j = JSON.parse(r.body.toString()) as { height?: number };
  return {
    kind: t.kind,
    node: t.name,
    url: t.url,
    channelId,
    joined: true,
    ...(typeof j.height === 'number' ? { height: j.height } : {}),
  };
}

/** Genesis material of every organization (root and TLS root CAs) and every consenter, from the data directory. */
async function genesisMaterial(
  net: NetworkConfig,
): Promise<{ orgs: Record<string, OrgMaterial>; consenters: Record<string, ConsenterMaterial> }> {
  const orgs: Record<string, OrgMaterial> = {};
  for (const org of allOrgs(net)) {
    const dir = join(layout.userDir(net, org, 'Admin'), 'msp');
    if (!existsSync(dir)) {
      throw new LoomError(
        'NETWORK_NOT_FOUND',
        `no MSP folder for ${org.mspId} at ${dir}: run \`loom network up\` (or \`loom network setup\`) first`,
        { details: { dataDir: net.dataDir } },
      );
    }
    const msp = await loadMspFromDir(dir, org.mspId);
    orgs[org.mspId] = { rootCerts: [...msp.config.rootCerts], tlsRootCerts: [...(msp.config.tlsRootCerts ?? [])] };
  }
  const consenters: Record<string, ConsenterMaterial> = {};
  const oo = net.ordererOrganization;
  for (const o of oo.orderers) {
    const dir = layout.nodeDir(net, oo, 'orderers', o.fqdn);
    const cert = join(dir, 'msp', 'signcerts', 'cert.pem');
    const tls = join(dir, 'tls', 'server.crt');
    if (!existsSync(cert) || !existsSync(tls)) {
      throw new LoomError(
        'NETWORK_NOT_FOUND',
        `no certificates for orderer ${o.name} in ${dir}: run \`loom network up\` first`,
      );
    }
    consenters[o.name] = { identityCert: await readFile(cert, 'utf8'), tlsCert: await readFile(tls, 'utf8') };
  }
  return { orgs, consenters };
}

/**
 * Registers `channel join`, `channel list` and `channel create` on the `channel` command (made here
 * if no other module registered it first).
 */
export function registerChannelMembershipCommands(program: Command): void {
  const channel =
    program.commands.find((c) => c.name() === 'channel') ??
    program.command('channel').description('channel administration');
  const isJson = () => Boolean(program.opts().json);
  /** Failures whose JSON was already printed (inside a per-node result list). */
  const reported = new WeakSet<object>();
  /** With --json a failure is printed as `{error: {code, message}}` too; always a LoomError (exit 1, no stack). */
  const act =
    <A extends unknown[]>(fn: (...a: A) => Promise<void>) =>
    async (...a: A) => {
      try {
        await fn(...a);
      } catch (e) {
        const err =
          e instanceof LoomError
            ? e
            : new LoomError((e as { code?: string }).code ?? 'ERROR', (e as Error).message ?? String(e), { cause: e });
        if (isJson() && !reported.has(err)) {
          process.stdout.write(`${JSON.stringify({ error: { code: err.code, message: err.message } }, null, 2)}\n`);
        }
        throw err;
      }
    };
  const targets = (c: Command) =>
    c
      .option('-c, --config <file>', 'network-config file', DEFAULT_CONFIG)
      .option('-d, --data <dir>', 'data directory (overrides the config)')
      .option('--org <mspId>', 'organization whose peers to use when no node is named (default: the first)')
      .option('--peer <url>', 'a peer (its gateway URL)')
      .option('--orderer-admin <url>', "an orderer's admin (channel participation) URL, like osnadmin -o")
      .option('--orderers', 'every orderer of the network-config (their admin ports)');

  targets(channel.command('join'))
    .description('join peers (default: every peer of --org) or orderers to a channel from its genesis or config block')
    .requiredOption('-b, --blockpath <file>', 'genesis block (`loom channel create`) or config block file')
    .action(
      act(async (opts: MembershipOpts & { blockpath: string }) => {
        const { bytes, channelId } = await readChannelBlockFile(opts.blockpath);
        const n = await loadConfig(opts);
        const list = membershipTargets(n, opts, true, channelId);
        const ca = n.tls.enabled ? await networkTlsRoots(n) : undefined;
        const results: JoinResult[] = [];
        for (const t of list) {
          try {
            results.push(await joinOne(t, bytes, channelId, ca));
          } catch (e) {
            const err = e as LoomError;
            results.push({
              kind: t.kind,
              node: t.name,
              url: t.url,
              channelId,
              joined: false,
              error: { code: err.code ?? 'ERROR', message: err.message },
            });
          }
        }
        const failed = results.filter((r) => r.error);
        if (isJson()) process.stdout.write(`${JSON.stringify({ channelId, results }, null, 2)}\n`);
        else {
          for (const r of results) {
            process.stdout.write(
              r.error
                ? `${r.kind} ${r.node}: not joined to ${channelId}: ${r.error.code}: ${r.error.message}\n`
                : `${r.kind} ${r.node} joined ${channelId}${r.height !== undefined ? ` (height ${r.height})` : ''}\n`,
            );
          }
        }
        if (failed.length > 0) {
          const first = failed[0]!.error!;
          const err = new LoomError(
            first.code,
            `${failed.length} of ${results.length} node(s) did not join ${channelId}: ${first.message}`,
          );
          reported.add(err);
          throw err;
        }
      }),
    );

  targets(channel.command('list'))
    .description('the channels a peer (default: the first peer of --org) or an orderer has joined')
    .action(
      act(async (opts: MembershipOpts) => {
        const n = await loadConfig(opts);
        const list = membershipTargets(n, opts, false);
        const ca = n.tls.enabled ? await networkTlsRoots(n) : undefined;
        const nodes: { kind: string; node: string; url: string; channels: { name: string; height?: number }[] }[] = [];
        for (const t of list) {
          const path = t.kind === 'peer' ? '/v1/channels' : '/participation/v1/channels';
          const r = await nodeRequest(t, path, { ca, timeoutMs: 15_000 });
          if (r.status !== 200) throw nodeError(t, 'listing channels', r.status, r.body);
          const body = JSON.parse(r.body.toString()) as { channels: { name: string; height?: number }[] };
          nodes.push({
            kind: t.kind,
            node: t.name,
            url: t.url,
            channels: body.channels.map((c) => ({
              name: c.name,
              ...(typeof c.height === 'number' ? { height: c.height } : {}),
            })),
          });
        }
        output(isJson(), nodes.length === 1 ? nodes[0] : { nodes }, () =>
          nodes
            .map((x) =>
              [
                `Channels ${x.kind} ${x.node} has joined:`,
                ...(x.channels.length === 0
                  ? ['  (none)']
                  : x.channels.map((c) => `  ${c.name}${c.height !== undefined ? ` (height ${c.height})` : ''}`)),
              ].join('\n'),
            )
            .join('\n'),
        );
      }),
    );

  channel
    .command('create')
    .description("build a channel's genesis block from the network-config (and join the orderers with it)")
    .option('-c, --config <file>', 'network-config file', DEFAULT_CONFIG)
    .option('-d, --data <dir>', 'data directory (overrides the config)')
    .requiredOption('-C, --channel <name>', 'channel of the network-config')
    .requiredOption('-o, --output <file>', 'genesis block file to write')
    .option('--join-orderers', "join the channel's consenters with it through their participation API")
    .action(
      act(async (opts: MembershipOpts & { channel: string; output: string; joinOrderers?: boolean }) => {
        const n = await loadConfig(opts);
        if (!n.channels.some((c) => c.name === opts.channel)) {
          throw new LoomError(
            'CHANNEL_NOT_FOUND',
            `no channel ${opts.channel} in ${n.source}; known: ${n.channels.map((c) => c.name).join(', ') || '(none)'}`,
          );
        }
        const { orgs, consenters } = await genesisMaterial(n);
        const cfg = channelConfigFromNetwork(n, opts.channel, orgs, consenters);
        const bytes = encodeBlock(buildGenesisBlock(cfg, Date.now(), sha256));
        try {
          await writeFile(opts.output, bytes);
        } catch (e) {
          throw new LoomError('FILE_UNWRITABLE', `cannot write ${opts.output}: ${(e as Error).message}`);
        }
        const joined: JoinResult[] = [];
        if (opts.joinOrderers) {
          const ca = n.tls.enabled ? await networkTlsRoots(n) : undefined;
          for (const t of membershipTargets(n, { orderers: true }, false, opts.channel)) {
            joined.push(await joinOne(t, bytes, opts.channel, ca));
          }
        }
        output(
          isJson(),
          {
            channelId: opts.channel,
            output: opts.output,
            bytes: bytes.length,
            orderersJoined: joined.map((j) => j.node),
          },
          () =>
            [
              `genesis block of ${opts.channel} written to ${opts.output} (${bytes.length} bytes)`,
              ...joined.map((j) => `orderer ${j.node} joined ${opts.channel}`),
            ].join('\n'),
        );
      }),
    );
}
