/**
 * Finds the gossip addresses of other orgs' anchor peers from the channel configs. A channel's
 * `anchorPeers` give each peer's API `host:port`; the peer API answers `GET /v1/gossip/endpoint`
 * with its gossip `{ peerId, addr }`, which goes to the gossip node's dial list (the hello then
 * authenticates whoever answers there). Anchors not reached yet are asked again every `intervalMs`.
 */
import type { ChannelConfig, Logger } from '@loom/common';
import type { GossipNode } from './node.js';

export const GOSSIP_ENDPOINT_PATH = '/v1/gossip/endpoint';

export interface AnchorDiscoveryOptions {
  readonly selfMspId: string;
  /** Scheme of the peer APIs (anchor peers are assumed to speak the same as this peer). */
  readonly scheme: 'http' | 'https';
  readonly channels: () => readonly string[];
  readonly config: (channel: string) => ChannelConfig | undefined;
  /** GETs a URL and returns its JSON body, or throws. */
  readonly getJson: (url: string) => Promise<unknown>;
  readonly node: GossipNode;
  readonly logger: Logger;
  readonly intervalMs?: number;
}

export interface AnchorDiscovery {
  /** Looks for anchors now (e.g. after a join or a config block). */
  refresh(): void;
  stop(): void;
}

export function startAnchorDiscovery(o: AnchorDiscoveryOptions): AnchorDiscovery {
  const resolved = new Map<string, string>();
  const inFlight = new Set<string>();
  let stopped = false;

  const refresh = () => {
    if (stopped) return;
    for (const channel of o.channels()) {
      const cfg = o.config(channel);
      if (!cfg) continue;
      for (const org of Object.values(cfg.orgs)) {
        if (org.mspId === o.selfMspId) continue;
        for (const a of org.anchorPeers) {
          const api = `${o.scheme}://${a.host}:${a.port}`;
          if (resolved.has(api) || inFlight.has(api)) continue;
          inFlight.add(api);
          o.getJson(`${api}${GOSSIP_ENDPOINT_PATH}`)
            .then((body) => {
              const addr = (body as { addr?: unknown })?.addr;
              if (typeof addr !== 'string') throw new Error('no gossip address in the answer');
              resolved.set(api, addr);
              o.node.addAddresses([addr]);
              o.logger.info({ channel, mspId: org.mspId, api, addr }, 'anchor peer gossip endpoint found');
            })
            .catch((e: Error) =>
              o.logger.debug({ api, err: e.message }, 'anchor peer gossip endpoint not reachable yet'),
            )
            .finally(() => inFlight.delete(api));
        }
      }
    }
  };
  const timer = setInterval(refresh, o.intervalMs ?? 5_000);
  timer.unref();
  refresh();
  return {
    refresh,
    stop() {
      stopped = true;
      clearInterval(timer);
    },
  };
}
