/**
 * Who may gossip with this peer: a peer (NodeOU `peer`) of an application org of a channel this peer
 * has joined, its certificate validated by that channel's MSPs (chain to the org's roots, validity
 * window, CRLs). Rebuilt whenever a channel's config changes.
 */
import { type ChannelConfig, MspManager, mspConfigsOf, utf8 } from '@loom/common';
import type { GossipMembership, RemotePeer } from './node.js';

export interface ChannelMembershipOptions {
  /** Channels joined here. */
  channels(): readonly string[];
  /** A joined channel's current config. */
  config(channel: string): ChannelConfig | undefined;
}

export function createChannelMembership(o: ChannelMembershipOptions): GossipMembership {
  const managers = new Map<string, { config: ChannelConfig; msp: MspManager }>();
  const mspOf = (channel: string): { config: ChannelConfig; msp: MspManager } | undefined => {
    const config = o.config(channel);
    if (!config) return undefined;
    const cached = managers.get(channel);
    if (cached?.config === config) return cached;
    const fresh = { config, msp: new MspManager(mspConfigsOf(config)) };
    managers.set(channel, fresh);
    return fresh;
  };
  const isMember = (channel: string, remote: Pick<RemotePeer, 'mspId' | 'certPem'>): boolean => {
    const view = mspOf(channel);
    if (!view?.config.orgs[remote.mspId]) return false;
    try {
      const id = view.msp.deserialize({ mspId: remote.mspId, idBytes: utf8(remote.certPem) });
      return id.role === 'peer';
    } catch {
      return false;
    }
  };
  return {
    accepts: (remote) => o.channels().some((ch) => isMember(ch, remote)),
    isMember,
  };
}
