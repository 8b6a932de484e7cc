/**
 * The peer's node config (`peer.yaml`), e.g.
 *
 *   id: peer0.org1.example.com
 *   mspId: Org1MSP
 *   mspDir: ./crypto/peer0/msp        # Fabric-layout MSP folder with signcerts/ and keystore/
 *   dataDir: ./data/peer0             # ledgers live in <dataDir>/ledgers/<channel>
 *   listen: { host: 127.0.0.1, port: 7051 }        # peer API
 *   operations: { host: 127.0.0.1, port: 9443 }    # /healthz, /metrics, /logspec; plain HTTP unless
 *                                      # operations.tls: { certFile, keyFile, caFiles?, clientAuthRequired? }
 *   orderers: [ http://127.0.0.1:7050 ]
 *   channels:                          # joined at start (a ledger already on disk is reopened anyway)
 *     - name: mychannel
 *       genesisBlock: ./mychannel.block
 *   debugStateApi: false               # GET /v1/channels/:ch/state/:ns/:key
 *   logLevel: info
 *   chaincodePort: 7052                # chaincode dial-in listener (optional; default 0 = any free port)
 *   chaincodeExecuteTimeoutMs: 30000   # per-transaction chaincode execute timeout (optional)
 *   ledgerWriteBufferMB: 16            # LevelDB memtable per channel ledger (optional; 1–1024, default 16)
 *   tls:                               # optional: serve HTTPS with this pair (renewed files are reloaded)
 *     certFile: ./tls/server.crt
 *     keyFile: ./tls/server.key
 *     caFiles: [ ./tls/ca.crt ]        # optional extra TLS roots to trust (besides the channels' TLS roots)
 *     clientAuthRequired: false        # mutual TLS: every client (SDK, other peers) presents a TLS
 *                                      # certificate from caFiles or a joined channel's TLS roots
 *   peers:                             # optional: other peers' gateways, besides the channels' anchor peers
 *     - { mspId: Org2MSP, url: https://127.0.0.1:9051 }
 *   gossip:                            # optional: block dissemination among peers (see gossip/config.ts)
 *     listen: { host: 127.0.0.1, port: 7151 }       # the p2pPort
 *     bootstrap: [ 127.0.0.1:7161 ]    # org peers / other orgs' anchor peers (gossip host:port)
 *     orgLeader: auto                  # auto | true | false
 *   undefinedChaincodesUseChannelEndorsement: false  # tests only: validate transactions of chaincodes
 *                                      # with no _lifecycle definition against the channel's Endorsement
 *                                      # policy instead of rejecting them (the ledger-only behaviour)
 *
 * The peer API serves the ledger routes, the gateway (`/v1/gateway/*`, `/v1/peer/process-proposal`)
 * and the admin routes (`/v1/admin/chaincodes`, localhost only). Without `tls` it speaks plain HTTP.
 *
 * Relative paths are resolved against the config file's directory.
 */
import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { LoomError } from '@loom/common';
import { parseListenerTlsConfig } from '@loom/common/tls/listener-config';
import { type GossipConfig, parseGossipConfig } from '../gossip/config.js';
import { parse as parseYaml } from 'yaml';

export interface HostPort {
  readonly host: string;
  readonly port: number;
}

export interface PeerChannelConfig {
  readonly name: string;
  /** Path of the channel's genesis block (encoded Block); needed only to join. */
  readonly genesisBlock?: string | undefined;
}

export interface PeerConfig {
  readonly id: string;
  readonly mspId: string;
  readonly mspDir: string;
  readonly dataDir: string;
  readonly listen: HostPort;
  readonly operations: HostPort;
  readonly orderers: readonly string[];
  readonly channels: readonly PeerChannelConfig[];
  readonly debugStateApi: boolean;
  readonly logLevel: string;
  /** Signature verification worker threads (default: cores, at most 4). */
  readonly verifyWorkers?: number | undefined;
  /** Chaincode dial-in listener port; undefined or 0 picks a free one. */
  readonly chaincodePort?: number | undefined;
  /** Per-transaction chaincode execute timeout (ms); default the runtime's (30 s). */
  readonly chaincodeExecuteTimeoutMs?: number | undefined;
  /**
   * Each channel ledger's LevelDB memtable, in MB (default 16; ledger-stores.ts). Larger: less
   * recompaction of a large state per committed block, at that much memory (twice while flushing).
   */
  readonly ledgerWriteBufferMB?: number | undefined;
  /** TLS for the peer API: absent serves plain HTTP. */
  readonly tls?: PeerTlsConfig | undefined;
  /** TLS for the operations listener (`operations.tls`): absent serves plain HTTP, as Fabric's default. */
  readonly operationsTls?: PeerTlsConfig | undefined;
  /** Other peers' gateways (besides the channels' anchor peers), for endorsement. */
  readonly peers?: readonly PeerEndpointConfig[] | undefined;
  /** Tests only: undefined chaincodes are validated against the channel's `Endorsement` policy. */
  readonly undefinedChaincodesUseChannelEndorsement?: boolean | undefined;
  /** Gossip among peers (libp2p on the p2p port): see gossip/config.ts. Absent: no gossip. */
  readonly gossip?: GossipConfig | undefined;
}

export interface PeerTlsConfig {
  readonly certFile: string;
  readonly keyFile: string;
  /** Extra trusted TLS roots (files or directories of *.pem). */
  readonly caFiles?: readonly string[] | undefined;
  /** Mutual TLS: refuse clients without a certificate chaining to caFiles or a channel's TLS roots. */
  readonly clientAuthRequired?: boolean | undefined;
}

export interface PeerEndpointConfig {
  readonly mspId: string;
  /** The peer API's base URL (`https://host:port` or `http://host:port`). */
  readonly url: string;
}

export const PeerConfigErrorCode = { INVALID: 'PEER_CONFIG_INVALID' } as const;

function invalid(file: string, path: string, message: string): LoomError {
  return new LoomError(PeerConfigErrorCode.INVALID, `${file}: ${path}: ${message}`, { details: { file, path } });
}

/** Checks a parsed YAML/JSON document; `baseDir` resolves relative paths. */
export function parsePeerConfig(doc: unknown, file = 'peer config', baseDir = process.cwd()): PeerConfig {
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc))
    throw invalid(file, '(root)', 'expected a mapping');
  const o = doc as Record<string, unknown>;
  const str = (k: string, dflt?: string): string => {
    const v = o[k] ?? dflt;
    if (typeof v !== 'string' || v.length === 0) throw invalid(file, k, 'expected a non-empty string');
    return v;
  };
  const hostPort = (k: string, dflt?: HostPort): HostPort => {
    const v = (o[k] ?? dflt) as Record<string, unknown> | undefined;
    if (typeof v !== 'object' || v === null) throw invalid(file, k, 'expected { host, port }');
    const host = v.host ?? '127.0.0.1';
    const port = v.port;
    if (typeof host !== 'string') throw invalid(file, `${k}.host`, 'expected a string');
    if (typeof port !== 'number' || !Number.isInteger(port) || port < 0 || port > 65535) {
      throw invalid(file, `${k}.port`, 'expected a port number (0 picks a free one)');
    }
    return { host, port };
  };
  const orderers = o.orderers ?? [];
  if (!Array.isArray(orderers) || !orderers.every((x) => typeof x === 'string' && /^https?:\/\//.test(x))) {
    throw invalid(file, 'orderers', 'expected a list of http(s):// URLs');
  }
  const channelsIn = o.channels ?? [];
  if (!Array.isArray(channelsIn)) throw invalid(file, 'channels', 'expected a list');
  const channels = channelsIn.map((c, i): PeerChannelConfig => {
    if (typeof c === 'string') return { name: c };
    if (typeof c !== 'object' || c === null || typeof (c as { name?: unknown }).name !== 'string') {
      throw invalid(file, `channels[${i}]`, 'expected a channel name or { name, genesisBlock }');
    }
    const g = (c as { genesisBlock?: unknown }).genesisBlock;
    if (g !== undefined && typeof g !== 'string') throw invalid(file, `channels[${i}].genesisBlock`, 'expected a path');
    return { name: (c as { name: string }).name, genesisBlock: g === undefined ? undefined : resolve(baseDir, g) };
  });
  const debug = o.debugStateApi ?? false;
  if (typeof debug !== 'boolean') throw invalid(file, 'debugStateApi', 'expected true or false');
  const workers = o.verifyWorkers;
  if (workers !== undefined && (typeof workers !== 'number' || !Number.isInteger(workers) || workers < 0)) {
    throw invalid(file, 'verifyWorkers', 'expected a non-negative integer');
  }
  const optInt = (k: string, min: number, max: number): number | undefined => {
    const v = o[k];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
      throw invalid(file, k, `expected an integer in [${min}, ${max}]`);
    }
    return v;
  };
  const chaincodePort = optInt('chaincodePort', 0, 65535);
  const chaincodeExecuteTimeoutMs = optInt('chaincodeExecuteTimeoutMs', 1, 3_600_000);
  const ledgerWriteBufferMB = optInt('ledgerWriteBufferMB', 1, 1024);
  const tlsBlock = (value: unknown, at: string): PeerTlsConfig | undefined => {
    try {
      return parseListenerTlsConfig(value, at, (f) => resolve(baseDir, f));
    } catch (e) {
      const field = (e as LoomError).details?.field;
      throw invalid(file, field ? `${at}.${String(field)}` : at, (e as Error).message.replace(/^[^:]*: /, ''));
    }
  };
  const tls = tlsBlock(o.tls, 'tls');
  const operationsTls = tlsBlock((o.operations as Record<string, unknown> | undefined)?.tls, 'operations.tls');
  const peersIn = o.peers ?? [];
  if (!Array.isArray(peersIn)) throw invalid(file, 'peers', 'expected a list of { mspId, url }');
  const peers = peersIn.map((p, i): PeerEndpointConfig => {
    const e = p as Record<string, unknown>;
    if (typeof e !== 'object' || e === null || typeof e.mspId !== 'string' || e.mspId.length === 0) {
      throw invalid(file, `peers[${i}].mspId`, 'expected an MSP id');
    }
    if (typeof e.url !== 'string' || !/^https?:\/\//.test(e.url)) {
      throw invalid(file, `peers[${i}].url`, 'expected an http(s):// URL');
    }
    return { mspId: e.mspId, url: e.url.replace(/\/+$/, '') };
  });
  const legacy = o.undefinedChaincodesUseChannelEndorsement ?? false;
  if (typeof legacy !== 'boolean') {
    throw invalid(file, 'undefinedChaincodesUseChannelEndorsement', 'expected true or false');
  }
  return {
    undefinedChaincodesUseChannelEndorsement: legacy,
    chaincodePort,
    chaincodeExecuteTimeoutMs,
    ledgerWriteBufferMB,
    tls,
    operationsTls,
    peers,
    gossip: parseGossipConfig(o.gossip, (path, message) => invalid(file, path, message)),
    id: str('id'),
    mspId: str('mspId'),
    mspDir: resolve(baseDir, str('mspDir')),
    dataDir: resolve(baseDir, str('dataDir')),
    listen: hostPort('listen'),
    operations: hostPort('operations', { host: '127.0.0.1', port: 0 }),
    orderers: orderers as string[],
    channels,
    debugStateApi: debug,
    logLevel: str('logLevel', 'info'),
    verifyWorkers: workers as number | undefined,
  };
}

export async function loadPeerConfig(file: string): Promise<PeerConfig> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    throw new LoomError(PeerConfigErrorCode.INVALID, `cannot read ${file}: ${(e as Error).message}`, { cause: e });
  }
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (e) {
    throw new LoomError(PeerConfigErrorCode.INVALID, `${file}: not valid YAML: ${(e as Error).message}`, { cause: e });
  }
  return parsePeerConfig(doc, file, dirname(resolve(file)));
}
