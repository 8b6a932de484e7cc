/**
 * The `gossip` section of peer.yaml:
 *
 *   gossip:
 *     enabled: true                    # default true when the section is present
 *     listen: { host: 127.0.0.1, port: 7151 }   # the peer's p2pPort (libp2p); 0 picks a free one
 *     advertiseHost: 127.0.0.1         # optional: the host other peers dial (default listen.host)
 *     bootstrap: [ 127.0.0.1:7161 ]     # other peers' gossip host:port (the org's peers; other orgs' anchors)
 *     orgLeader: auto                  # auto (election) | true (always pulls from orderers) | false (never,
 *                                      # unless no leader of the org is alive)
 *     heartbeatMs: 1000                # alive messages; a peer silent for 5 heartbeats is dead
 *     stateTransferBatch: 50           # blocks per state-transfer range
 */
import type { LoomError } from '@loom/common';
import type { Leadership } from './election.js';
import { parseGossipAddr } from './node.js';

export interface GossipConfig {
  readonly enabled: boolean;
  readonly listen: { readonly host: string; readonly port: number };
  readonly advertiseHost?: string | undefined;
  readonly bootstrap: readonly string[];
  readonly orgLeader: Leadership;
  readonly heartbeatMs: number;
  readonly stateTransferBatch: number;
}

/** Parses `gossip` (undefined: gossip off). `invalid(path, message)` builds the config error. */
export function parseGossipConfig(
  value: unknown,
  invalid: (path: string, message: string) => LoomError,
): GossipConfig | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'object' || Array.isArray(value)) throw invalid('gossip', 'expected a mapping');
  const g = value as Record<string, unknown>;
  const enabled = g.enabled ?? true;
  if (typeof enabled !== 'boolean') throw invalid('gossip.enabled', 'expected true or false');
  const l = g.listen as Record<string, unknown> | undefined;
  if (typeof l !== 'object' || l === null) throw invalid('gossip.listen', 'expected { host, port }');
  const host = l.host ?? '127.0.0.1';
  if (typeof host !== 'string' || host.length === 0) throw invalid('gossip.listen.host', 'expected a host');
  const port = l.port;
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 0 || port > 65535)
    throw invalid('gossip.listen.port', 'expected a port number (0 picks a free one)');
  const adv = g.advertiseHost;
  if (adv !== undefined && (typeof adv !== 'string' || adv.length === 0))
    throw invalid('gossip.advertiseHost', 'expected a host');
  const boot = g.bootstrap ?? [];
  if (!Array.isArray(boot)) throw invalid('gossip.bootstrap', 'expected a list of host:port');
  const bootstrap = boot.map((b, i) => {
    try {
      return parseGossipAddr(String(b));
    } catch (e) {
      throw invalid(`gossip.bootstrap[${i}]`, (e as Error).message);
    }
  });
  const leader = g.orgLeader ?? 'auto';
  const orgLeader = leader === true ? 'true' : leader === false ? 'false' : leader;
  if (orgLeader !== 'auto' && orgLeader !== 'true' && orgLeader !== 'false')
    throw invalid('gossip.orgLeader', 'expected auto, true or false');
  const int = (k: string, dflt: number, min: number, max: number): number => {
    const v = g[k] ?? dflt;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max)
      throw invalid(`gossip.${k}`, `expected an integer in [${min}, ${max}]`);
    return v;
  };
  return {
    enabled,
    listen: { host, port },
    advertiseHost: adv as string | undefined,
    bootstrap,
    orgLeader,
    heartbeatMs: int('heartbeatMs', 1_000, 50, 60_000),
    stateTransferBatch: int('stateTransferBatch', 50, 1, 1_000),
  };
}
