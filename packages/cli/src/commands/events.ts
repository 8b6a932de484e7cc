/**
 * `loom events blocks|chaincode`: follow a channel's committed blocks or a chaincode's events from a
 * peer gateway, as a user of a launched network (like fabric-gateway's `network.getBlockEvents()` /
 * `getChaincodeEvents()`). One line per event (a JSON object per line with --json), until `--count`
 * events were printed or Ctrl-C. `--checkpoint <file>` keeps the position in a file (the SDK's
 * FileCheckpointer), so the next run resumes after the last event printed.
 */
import {
  type BlockEvent,
  type ChaincodeEvent,
  type Checkpointer,
  type CloseableAsyncIterable,
  type Gateway,
  GatewayError,
} from '@loom/client';
import { fileCheckpointer } from '@loom/client/file-checkpointer';
import {
  type Block,
  decodeChannelHeader,
  decodeEnvelope,
  decodeHeader,
  decodePayload,
  LoomError,
  type NetworkConfig,
  txValidationCodeName,
} from '@loom/common';
import type { Command } from 'commander';
import { findOrg, gatewayFor, requireNetworkData } from '../network/gateway.js';
import { DEFAULT_CONFIG, loadConfig } from './network.js';

export interface EventsOpts {
  config?: string;
  data?: string;
  org?: string;
  user?: string;
  peer?: string;
  channel?: string;
  name?: string;
  startBlock?: string;
  count?: string;
  checkpoint?: string;
}

/** The validated numbers of the flags: `--start-block` (≥ 0) and `--count` (≥ 1). */
export function parseEventsArgs(opts: Pick<EventsOpts, 'startBlock' | 'count' | 'peer'>): {
  startBlock?: number;
  count?: number;
  peer?: { host: string; port: number };
} {
  const int = (v: string, flag: string, min: number): number => {
    const n = /^\d+$/.test(v.trim()) ? Number(v) : Number.NaN;
    if (!Number.isSafeInteger(n) || n < min) {
      throw new LoomError('INVALID_ARGUMENT', `${flag} must be an integer ≥ ${min}, not '${v}'`);
    }
    return n;
  };
  const out: { startBlock?: number; count?: number; peer?: { host: string; port: number } } = {};
  if (opts.startBlock !== undefined) out.startBlock = int(opts.startBlock, '--start-block', 0);
  if (opts.count !== undefined) out.count = int(opts.count, '--count', 1);
  if (opts.peer !== undefined) {
    let u: URL;
    try {
      u = new URL(opts.peer);
    } catch {
      throw new LoomError('INVALID_ARGUMENT', `--peer must be a URL like https://localhost:7051, not '${opts.peer}'`);
    }
    if (!u.port) throw new LoomError('INVALID_ARGUMENT', `--peer ${opts.peer} names no port`);
    out.peer = { host: u.hostname, port: Number(u.port) };
  }
  return out;
}

function txIdOf(env: Uint8Array): string {
  try {
    return decodeChannelHeader(decodeHeader(decodePayload(decodeEnvelope(env).payload).header).channelHeader).txId;
  } catch {
    return '';
  }
}

/** A block event as one printable record: its transactions with their validation codes. */
export function blockRecord(blockNumber: number, block: Block) {
  return {
    type: 'block' as const,
    blockNumber,
    transactions: block.data.map((env, i) => ({
      txId: txIdOf(env),
      validationCode: txValidationCodeName(block.metadata.txValidationCodes[i] ?? 255),
    })),
  };
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** A chaincode event as one printable record; the payload as text when it is UTF-8, else base64. */
export function chaincodeRecord(e: ChaincodeEvent) {
  let text: string | undefined;
  try {
    text = utf8.decode(e.payload);
  } catch {}
  return {
    type: 'chaincode' as const,
    blockNumber: e.blockNumber,
    transactionId: e.transactionId,
    chaincodeName: e.chaincodeName,
    eventName: e.eventName,
    ...(text !== undefined ? { payload: text } : { payloadBase64: Buffer.from(e.payload).toString('base64') }),
  };
}

function humanBlock(r: ReturnType<typeof blockRecord>): string {
  const txs = r.transactions.map((t) => `${t.txId || '(config)'} ${t.validationCode}`).join(', ');
  return `block ${r.blockNumber}: ${r.transactions.length} transaction(s)${txs ? `: ${txs}` : ''}`;
}

function humanChaincode(r: ReturnType<typeof chaincodeRecord>): string {
  const payload = 'payload' in r ? r.payload : `base64:${r.payloadBase64}`;
  return `block ${r.blockNumber} tx ${r.transactionId} ${r.chaincodeName} ${r.eventName}${payload ? ` ${payload}` : ''}`;
}

async function openCheckpoint(file: string | undefined): Promise<Checkpointer | undefined> {
  if (!file) return undefined;
  try {
    return await fileCheckpointer(file);
  } catch (e) {
    throw new LoomError(
      'CHECKPOINT_FILE_INVALID',
      `cannot use checkpoint file ${file}: ${(e as Error).message} (delete it to start over)`,
      { details: { file } },
    );
  }
}

async function gatewayOf(
  net: NetworkConfig,
  opts: EventsOpts,
  peer: { host: string; port: number } | undefined,
): Promise<Gateway> {
  requireNetworkData(net);
  const org = opts.org ? findOrg(net, opts.org) : net.organizations[0];
  if (!org) throw new LoomError('ORG_NOT_FOUND', `${net.source} has no peer organization`);
  return gatewayFor(net, org, opts.user ?? 'User1', peer ? { peer } : {});
}

/** A failure as `{code, message}`: the gateway's code, with an unreachable peer named as such. */
function describeError(e: unknown, opts: EventsOpts): LoomError {
  if (e instanceof LoomError && !(e instanceof GatewayError)) return e;
  const x = e as { code?: string; message?: string };
  const message = x.message ?? String(e);
  if (/ECONNREFUSED|ENOTFOUND|EHOSTUNREACH|socket hang up|timed out/i.test(message) || x.code === 'UNAVAILABLE') {
    return new LoomError('PEER_UNAVAILABLE', `peer ${opts.peer ?? '(gateway)'} is unreachable: ${message}`);
  }
  return new LoomError(x.code ?? 'ERROR', message, { cause: e });
}

export function registerEventsCommands(program: Command): void {
  const events = program.command('events').description('follow block events or chaincode events from a peer');
  const json = () => Boolean(program.opts().json);
  const common = (c: Command) =>
    c
      .option('--config <file>', 'network-config file', DEFAULT_CONFIG)
      .option('-d, --data <dir>', 'network data directory (default: the network-config one)')
      .option('--org <mspId>', 'organization whose identity and peer to use (default: the first)')
      .option('--user <name>', 'identity of the organization: User1 or Admin (default User1)')
      .option('--peer <url>', "gateway peer URL (default: the organization's first peer)")
      .option('-C, --channel <name>', 'channel (default: the first of the network-config)')
      .option('--start-block <n>', 'first block to read (default: the next block committed)')
      .option('--checkpoint <file>', 'resume after the position kept in this file, and keep it there')
      .option('--count <n>', 'stop after this many events (default: until Ctrl-C)');

  const follow = async (kind: 'blocks' | 'chaincode', opts: EventsOpts): Promise<void> => {
    try {
      const args = parseEventsArgs(opts);
      if (kind === 'chaincode' && !opts.name) throw new LoomError('INVALID_ARGUMENT', 'pass -n <chaincode name>');
      const checkpoint = await openCheckpoint(opts.checkpoint);
      const net = await loadConfig(opts);
      const ch = opts.channel ?? net.channels[0]?.name;
      if (!ch) throw new LoomError('CHANNEL_NOT_FOUND', 'no channel: pass -C <channel>');
      if (!net.channels.some((c) => c.name === ch) && !opts.peer) {
        throw new LoomError(
          'CHANNEL_NOT_FOUND',
          `no channel ${ch} in ${net.source}; known: ${net.channels.map((c) => c.name).join(', ')} (pass --peer to ask a peer about another channel)`,
        );
      }
      const g = await gatewayOf(net, opts, args.peer);
      let stream: CloseableAsyncIterable<BlockEvent | ChaincodeEvent> | undefined;
      let interrupted = false;
      const onSigint = () => {
        interrupted = true;
        stream?.close();
      };
      process.once('SIGINT', onSigint);
      try {
        const network = g.getNetwork(ch);
        const options = {
          ...(args.startBlock !== undefined ? { startBlock: args.startBlock } : {}),
          ...(checkpoint ? { checkpoint } : {}),
        };
        stream =
          kind === 'blocks'
            ? await network.getBlockEvents(options)
            : await network.getChaincodeEvents(opts.name!, options);
        if (interrupted) return;
        let printed = 0;
        for await (const e of stream) {
          const line =
            'block' in e
              ? (() => {
                  const r = blockRecord(e.blockNumber, e.block);
                  return json() ? JSON.stringify(r) : humanBlock(r);
                })()
              : (() => {
                  const r = chaincodeRecord(e);
                  return json() ? JSON.stringify(r) : humanChaincode(r);
                })();
          process.stdout.write(`${line}\n`);
          if (checkpoint) {
            if ('block' in e) await checkpoint.checkpointBlock(e.blockNumber);
            else await checkpoint.checkpointChaincodeEvent(e);
          }
          printed++;
          if (args.count !== undefined && printed >= args.count) break;
        }
      } finally {
        process.off('SIGINT', onSigint);
        stream?.close();
        g.close();
      }
    } catch (e) {
      const err = describeError(e, opts);
      if (json()) process.stdout.write(`${JSON.stringify({ error: { code: err.code, message: err.message } })}\n`);
      throw err;
    }
  };

  common(events.command('blocks'))
    .description('committed blocks of a channel, one line per block with its transactions and validation codes')
    .action((opts: EventsOpts) => follow('blocks', opts));

  common(events.command('chaincode'))
    .description("a chaincode's events, one line per event (block, transaction, name, payload)")
    .requiredOption('-n, --name <name>', 'chaincode name')
    .action((opts: EventsOpts) => follow('chaincode', opts));
}
