/**
 * `loom chaincode install|queryinstalled|approve|checkcommitreadiness|commit|querycommitted|deploy|
 * invoke|query`: Fabric's `peer lifecycle chaincode …` and `peer chaincode invoke|query` against a
 * local network. Identities (`--org Org1MSP --user User1|Admin`) and TLS roots come from the
 * network's data directory; the gateway is the organization's first peer unless `--peer` names one.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { type Gateway, GatewayError } from '@loom/client';
import { LoomError, type NetworkConfig, type NetworkPeerOrganization } from '@loom/common';
import type { Command } from 'commander';
import {
  type DefinitionInput,
  deployChaincodes,
  installOnPeer,
  queryCommitted,
  queryInstalled,
} from '../network/deploy.js';
import { findOrg, gatewayFor, networkTlsRoots, peerUrl, requireNetworkData } from '../network/gateway.js';
import { httpRequest } from '../network/http.js';
import { output } from '../output.js';
import { chaincodeCommand } from './chaincode-package.js';
import { DEFAULT_CONFIG, loadConfig, progressPrinter } from './network.js';

interface CommonOpts {
  config?: string;
  data?: string;
  org?: string;
  user?: string;
  peer?: string;
  channel?: string;
  name?: string;
}

interface DefOpts extends CommonOpts {
  version?: string;
  sequence?: string;
  policy?: string;
  packageId?: string;
  initRequired?: boolean;
}

const dec = new TextDecoder();

async function context(opts: CommonOpts): Promise<{ net: NetworkConfig; org: NetworkPeerOrganization }> {
  const net = await loadConfig(opts);
  requireNetworkData(net);
  const org = opts.org ? findOrg(net, opts.org) : net.organizations[0];
  if (!org) throw new LoomError('ORG_NOT_FOUND', `${net.source} has no peer organization`);
  return { net, org };
}

function peerOf(opts: CommonOpts): { host: string; port: number } | undefined {
  if (!opts.peer) return undefined;
  const u = new URL(opts.peer);
  return { host: u.hostname, port: Number(u.port) };
}

async function openGateway(opts: CommonOpts, defaultUser: string): Promise<{ net: NetworkConfig; g: Gateway }> {
  const { net, org } = await context(opts);
  const peer = peerOf(opts);
  const g = await gatewayFor(net, org, opts.user ?? defaultUser, peer ? { peer } : {});
  return { net, g };
}

function channelOf(net: NetworkConfig, opts: CommonOpts): string {
  const ch = opts.channel ?? net.chaincodes.find((c) => c.name === opts.name)?.channel ?? net.channels[0]?.name;
  if (!ch) throw new LoomError('CHANNEL_NOT_FOUND', 'no channel: pass -C <channel>');
  return ch;
}

/** The definition from the flags, defaulting to the network-config's entry for the chaincode. */
function definitionFrom(net: NetworkConfig, opts: DefOpts): DefinitionInput {
  if (!opts.name) throw new LoomError('INVALID_ARGUMENT', 'pass -n <chaincode name>');
  const cc = net.chaincodes.find((c) => c.name === opts.name);
  const version = opts.version ?? cc?.version;
  const sequence = opts.sequence !== undefined ? Number(opts.sequence) : cc?.sequence;
  if (!version || !sequence || !Number.isInteger(sequence)) {
    throw new LoomError(
      'INVALID_ARGUMENT',
      `pass --version and --sequence for ${opts.name} (not in the network-config)`,
    );
  }
  const def: DefinitionInput = { name: opts.name, version, sequence };
  const policy = opts.policy ?? cc?.endorsementPolicy;
  if (policy) def.endorsementPolicy = policy;
  if (opts.initRequired) def.initRequired = true;
  return def;
}

/** A `--package-id` as `<label>:<sha256 hex>`. */
export function parsePackageIdArg(id: string): string {
  const v = id.trim();
  if (!/^[A-Za-z0-9_.+-]+:[0-9a-f]{64}$/.test(v)) {
    throw new LoomError(
      'INVALID_ARGUMENT',
      `--package-id must be <label>:<sha256 hex> as \`loom chaincode queryinstalled\` prints it, not '${id}'`,
    );
  }
  return v;
}

/** One installed package's bytes, through the peer's admin route (localhost only). */
async function getInstalledPackage(url: string, packageId: string, tlsRoots: string[]): Promise<Uint8Array> {
  let r: Awaited<ReturnType<typeof httpRequest>>;
  try {
    r = await httpRequest(`${url}/v1/admin/chaincodes/${encodeURIComponent(packageId)}`, {
      ca: tlsRoots,
      timeoutMs: 60_000,
    });
  } catch (e) {
    throw new LoomError('PEER_UNAVAILABLE', `peer ${url} is unreachable: ${(e as Error).message}`);
  }
  if (r.status === 200) return new Uint8Array(r.body);
  let code = r.status === 404 ? 'PEER_ROUTE_MISSING' : 'PEER_REQUEST_FAILED';
  let message = `HTTP ${r.status} ${r.body.toString().slice(0, 300)}`;
  try {
    const j = JSON.parse(r.body.toString()) as { code?: string; message?: string };
    if (j.code) code = j.code;
    if (j.message) message = j.message;
  } catch {}
  throw new LoomError(code, `getinstalledpackage on ${url}: ${message}`, { httpStatus: r.status });
}

/** Fabric's `-c '{"function":"F","Args":[...]}'` (also `{"Args":["F", ...]}`). */
export function parseCtor(text: string): { fn: string; args: string[] } {
  let v: { function?: unknown; Function?: unknown; Args?: unknown; args?: unknown };
  try {
    v = JSON.parse(text) as typeof v;
  } catch {
    throw new LoomError('INVALID_ARGUMENT', `-c must be JSON like '{"function":"ReadAsset","Args":["asset1"]}'`);
  }
  const list = (v.Args ?? v.args ?? []) as unknown[];
  if (!Array.isArray(list) || !list.every((a) => typeof a === 'string')) {
    throw new LoomError('INVALID_ARGUMENT', '-c: "Args" must be a list of strings');
  }
  const fn = (v.function ?? v.Function) as string | undefined;
  if (typeof fn === 'string' && fn.length > 0) return { fn, args: list as string[] };
  if (list.length === 0) throw new LoomError('INVALID_ARGUMENT', '-c: name the function ("function" or Args[0])');
  return { fn: list[0] as string, args: (list as string[]).slice(1) };
}

/** The error a gateway call failed with, with its endorsers' codes when they say more. */
function describe(e: unknown): { code: string; message: string; endorsers?: unknown } {
  if (e instanceof GatewayError) {
    const ends = e.endorsers.filter((x) => x.code || x.message);
    const detail = ends.map(
      (x) => `${x.mspId}${x.endpoint ? ` (${x.endpoint})` : ''}: ${x.code ? `${x.code}: ` : ''}${x.message}`,
    );
    return {
      code: e.code,
      message:
        detail.length > 0 && !detail.every((d) => e.message.includes(d))
          ? `${e.message} [${detail.join('; ')}]`
          : e.message,
      endorsers: e.endorsers,
    };
  }
  const x = e as { code?: string; message?: string };
  return { code: x.code ?? 'ERROR', message: x.message ?? String(e) };
}

export function registerChaincodeCommands(program: Command): void {
  const chaincode = chaincodeCommand(program);
  const json = () => Boolean(program.opts().json);

  /** Runs an action; with --json a failure is printed as `{error: {code, message}}` too. */
  const act =
    <A extends unknown[]>(fn: (...a: A) => Promise<void>) =>
    async (...a: A) => {
      try {
        await fn(...a);
      } catch (e) {
        const d = describe(e);
        if (json()) process.stdout.write(`${JSON.stringify({ error: d }, null, 2)}\n`);
        throw Object.assign(new LoomError(d.code, d.message), { cause: e });
      }
    };

  const net = (c: Command) =>
    c
      .option('--config <file>', 'network-config file', DEFAULT_CONFIG)
      .option('-d, --data <dir>', 'network data directory (default: the network-config one)');
  const who = (c: Command, user: string) =>
    net(c)
      .option('--org <mspId>', 'organization whose identity and peer to use (default: the first)')
      .option('--user <name>', `identity of the organization: User1 or Admin (default ${user})`)
      .option('--peer <url>', "gateway peer URL (default: the organization's first peer)");
  const def = (c: Command) =>
    who(c, 'Admin')
      .option('-C, --channel <name>', 'channel (default: the chaincode entry or first channel)')
      .requiredOption('-n, --name <name>', 'chaincode name')
      .option('-v, --version <version>', 'definition version (default: the network-config entry)')
      .option('--sequence <n>', 'definition sequence (default: the network-config entry)')
      .option('--policy <text>', 'endorsement policy (default: the channel Endorsement policy)')
      .option('--init-required', 'require Init before use');

  net(chaincode.command('install <package>'))
    .description('install a chaincode package on a peer (default: every peer of --org)')
    .option('--org <mspId>', 'organization whose peers to install on (default: the first)')
    .option('--peer <url>', 'a peer URL')
    .action(
      act(async (file: string, opts: CommonOpts) => {
        const { net: n, org } = await context(opts);
        const pkg = new Uint8Array(await readFile(resolve(file)));
        const roots = await networkTlsRoots(n);
        const urls = opts.peer ? [opts.peer] : org.peers.map((p) => peerUrl(n, p));
        const results: ({ peer: string } & Awaited<ReturnType<typeof installOnPeer>>)[] = [];
        for (const url of urls) results.push({ peer: url, ...(await installOnPeer(url, pkg, roots)) });
        output(json(), results, () =>
          results
            .map((r) => `${r.alreadyInstalled ? 'already installed' : 'installed'} ${r.packageId} on ${r.peer}`)
            .join('\n'),
        );
      }),
    );

  net(chaincode.command('queryinstalled'))
    .description('list the packages installed on a peer')
    .option('--org <mspId>', 'organization whose first peer to ask (default: the first)')
    .option('--peer <url>', 'a peer URL')
    .action(
      act(async (opts: CommonOpts) => {
        const { net: n, org } = await context(opts);
        const url = opts.peer ?? peerUrl(n, org.peers[0]!);
        const installed = await queryInstalled(url, await networkTlsRoots(n));
        output(json(), { peer: url, installed }, () =>
          installed.length === 0
            ? `no chaincode installed on ${url}`
            : [`installed on ${url}:`, ...installed.map((i) => `  ${i.packageId}  (label ${i.label})`)].join('\n'),
        );
      }),
    );

  net(chaincode.command('getinstalledpackage'))
    .description('download an installed chaincode package from a peer')
    .requiredOption('--package-id <id>', 'installed package id (`loom chaincode queryinstalled`)')
    .requiredOption('-o, --output <file>', 'file to write the package to')
    .option('--org <mspId>', 'organization whose first peer to ask (default: the first)')
    .option('--peer <url>', 'a peer URL')
    .action(
      act(async (opts: CommonOpts & { packageId: string; output: string }) => {
        const packageId = parsePackageIdArg(opts.packageId);
        const { net: n, org } = await context(opts);
        const url = opts.peer ?? peerUrl(n, org.peers[0]!);
        const bytes = await getInstalledPackage(url, packageId, await networkTlsRoots(n));
        const out = resolve(opts.output);
        try {
          await writeFile(out, bytes);
        } catch (e) {
          throw new LoomError('FILE_UNWRITABLE', `cannot write ${opts.output}: ${(e as Error).message}`);
        }
        output(
          json(),
          { peer: url, packageId, output: out, bytes: bytes.length },
          () => `package ${packageId} (${bytes.length} bytes) from ${url} written to ${out}`,
        );
      }),
    );

  def(chaincode.command('approve'))
    .description('approve a chaincode definition for the organization (as its admin)')
    .option('--package-id <id>', 'installed package id (default: the one labelled <name>_<version> on the peer)')
    .action(
      act(async (opts: DefOpts) => {
        const { net: n, g } = await openGateway(opts, 'Admin');
        try {
          const d = definitionFrom(n, opts);
          let packageId = opts.packageId;
          if (!packageId) {
            const { org } = await context(opts);
            const url = opts.peer ?? peerUrl(n, org.peers[0]!);
            const found = (await queryInstalled(url, await networkTlsRoots(n))).find(
              (i) => i.label === `${d.name}_${d.version}`,
            );
            if (!found) {
              throw new LoomError(
                'CHAINCODE_NOT_INSTALLED',
                `no package labelled ${d.name}_${d.version} on ${url}: run \`loom chaincode install\` or pass --package-id`,
              );
            }
            packageId = found.packageId;
          }
          const ch = channelOf(n, opts);
          await g
            .getNetwork(ch)
            .getContract('_lifecycle')
            // Endorsed by the approving org's own peer alone, as in Fabric.
            .submit('ApproveChaincodeDefinitionForMyOrg', {
              arguments: [JSON.stringify({ ...d, packageId })],
              endorsingOrganizations: [g.getIdentity().mspId],
            });
          output(
            json(),
            { approved: true, channel: ch, ...d, packageId },
            () => `approved ${d.name} ${d.version} sequence ${d.sequence} with ${packageId} on ${ch}`,
          );
        } finally {
          g.close();
        }
      }),
    );

  def(chaincode.command('checkcommitreadiness'))
    .description('which organizations approved the definition')
    .action(
      act(async (opts: DefOpts) => {
        const { net: n, g } = await openGateway(opts, 'Admin');
        try {
          const d = definitionFrom(n, opts);
          const r = JSON.parse(
            dec.decode(
              await g
                .getNetwork(channelOf(n, opts))
                .getContract('_lifecycle')
                .evaluateTransaction('CheckCommitReadiness', JSON.stringify(d)),
            ),
          ) as { approvals: Record<string, boolean> };
          output(json(), r, () =>
            [
              'Chaincode definition for chaincode ' + `'${d.name}', version '${d.version}', sequence '${d.sequence}':`,
              ...Object.entries(r.approvals).map(([k, v]) => `  ${k}: ${v}`),
            ].join('\n'),
          );
        } finally {
          g.close();
        }
      }),
    );

  def(chaincode.command('commit'))
    .description('commit an approved chaincode definition (as an admin)')
    .action(
      act(async (opts: DefOpts) => {
        const { net: n, g } = await openGateway(opts, 'Admin');
        try {
          const d = definitionFrom(n, opts);
          const ch = channelOf(n, opts);
          await g
            .getNetwork(ch)
            .getContract('_lifecycle')
            .submitTransaction('CommitChaincodeDefinition', JSON.stringify(d));
          output(
            json(),
            { committed: true, channel: ch, ...d },
            () => `committed ${d.name} ${d.version} sequence ${d.sequence} on ${ch}`,
          );
        } finally {
          g.close();
        }
      }),
    );

  who(chaincode.command('querycommitted'), 'User1')
    .description('the committed definition of a chaincode (or of all, without -n)')
    .option('-C, --channel <name>', 'channel')
    .option('-n, --name <name>', 'chaincode name')
    .action(
      act(async (opts: CommonOpts) => {
        const { net: n, g } = await openGateway(opts, 'User1');
        try {
          const ch = channelOf(n, opts);
          if (opts.name) {
            const d = await queryCommitted(g, ch, opts.name);
            if (!d)
              throw new LoomError(
                'LIFECYCLE_NOT_FOUND',
                `chaincode ${opts.name} is not committed on ${ch}: run \`loom chaincode deploy\``,
              );
            output(json(), d, () => JSON.stringify(d, null, 2));
          } else {
            const all = JSON.parse(
              dec.decode(
                await g.getNetwork(ch).getContract('_lifecycle').evaluateTransaction('QueryChaincodeDefinitions', '{}'),
              ),
            ) as unknown;
            output(json(), all, () => JSON.stringify(all, null, 2));
          }
        } finally {
          g.close();
        }
      }),
    );

  net(chaincode.command('deploy'))
    .description(
      "package, install on every peer, approve as every org's admin and commit the network-config's chaincodes",
    )
    .option('-n, --name <name>', 'only this chaincode')
    .action(
      act(async (opts: CommonOpts) => {
        const { net: n } = await context(opts);
        const deployed = await deployChaincodes(n, progressPrinter(json()), opts.name);
        output(json(), { deployed }, () => `deployed ${deployed.join(', ')}`);
      }),
    );

  const call = (name: 'invoke' | 'query') =>
    who(chaincode.command(name), 'User1')
      .description(
        name === 'invoke' ? 'submit a transaction and wait for its commit' : 'evaluate a transaction (no commit)',
      )
      .option('-C, --channel <name>', 'channel')
      .requiredOption('-n, --name <name>', 'chaincode name')
      .requiredOption('-c, --ctor <json>', `'{"function":"ReadAsset","Args":["asset1"]}'`)
      .action(
        act(async (opts: CommonOpts & { ctor: string }) => {
          const { fn, args } = parseCtor(opts.ctor);
          const { net: n, g } = await openGateway(opts, 'User1');
          try {
            const contract = g.getNetwork(channelOf(n, opts)).getContract(opts.name!);
            if (name === 'query') {
              const r = dec.decode(await contract.evaluateTransaction(fn, ...args));
              output(json(), { result: r }, () => r);
              return;
            }
            const tx = await contract.submitAsync(fn, { arguments: args });
            const status = await tx.getStatus();
            const result = dec.decode(tx.getResult());
            if (!status.successful) {
              throw new LoomError(
                status.codeName,
                `transaction ${status.transactionId} committed as ${status.codeName} in block ${status.blockNumber}`,
              );
            }
            output(
              json(),
              { transactionId: status.transactionId, blockNumber: status.blockNumber, status: status.codeName, result },
              () =>
                `transaction ${status.transactionId} committed ${status.codeName} in block ${status.blockNumber}${result ? `; result: ${result}` : ''}`,
            );
          } finally {
            g.close();
          }
        }),
      );
  call('invoke');
  call('query');
}
