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
