/**
 * Where a local network keeps its files, all under the network-config's data directory:
 *
 *   <data>/pids.json                                  processes started by `network up --detach`
 *   <data>/logs/<node>.log                            one log per process
 *   <data>/channels/<channel>.genesis.block           genesis blocks (encoded Block)
 *   <data>/<org domain>/ca/                           the org's CA: ca.yaml + its data
 *   <data>/<org domain>/users/<Name>@<domain>/msp     admin and client identities (Fabric layout)
 *   <data>/<org domain>/peers/<fqdn>/{msp,tls,data}   a peer's identity, TLS pair, ledger
 *   <data>/<org domain>/orderers/<fqdn>/{msp,tls,data}
 */
import { join } from 'node:path';
import type { NetworkConfig, NetworkOrdererOrganization, NetworkPeerOrganization } from '@loom/common';

export type AnyOrg = NetworkPeerOrganization | NetworkOrdererOrganization;

export const layout = {
  orgDir: (net: NetworkConfig, org: AnyOrg) => join(net.dataDir, org.domain),
  caDir: (net: NetworkConfig, org: AnyOrg) => join(net.dataDir, org.domain, 'ca'),
  userDir: (net: NetworkConfig, org: AnyOrg, user: string) =>
    join(net.dataDir, org.domain, 'users', `${user}@${org.domain}`),
  nodeDir: (net: NetworkConfig, org: AnyOrg, kind: 'peers' | 'orderers', fqdn: string) =>
    join(net.dataDir, org.domain, kind, fqdn),
  genesisBlock: (net: NetworkConfig, channel: string) => join(net.dataDir, 'channels', `${channel}.genesis.block`),
};

export function allOrgs(net: NetworkConfig): AnyOrg[] {
  return [...net.organizations, net.ordererOrganization];
}
