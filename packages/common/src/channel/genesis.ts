/**
 * A channel's first config from a network-config, and its genesis block. Pure: certificates are
 * passed in as PEM text by whoever enrolled them.
 */
import type { NetworkConfig } from '../config/schema.js';
import { LoomError } from '../errors.js';
import {
  type ChannelConfig,
  encodeChannelConfig,
  encodeConfigEnvelope,
  type OrgConfig,
  type PolicyDef,
} from '../protocol/channel-config.js';
import type { HashFn } from '../protocol/merkle.js';
import {
  type Block,
  encodeChannelHeader,
  encodeConsenterMetadata,
  encodeEnvelope,
  encodeHeader,
  encodePayload,
  encodeSignatureHeader,
  HeaderType,
} from '../protocol/messages.js';
import { buildBlock, defaultHash, GENESIS_PREVIOUS_HASH } from '../protocol/transactions.js';

/** Certificates an organization contributes to channel configs (PEM). */
export interface OrgMaterial {
  rootCerts: string[];
  intermediateCerts?: string[];
  tlsRootCerts: string[];
  admins?: string[];
}

export interface ConsenterMaterial {
  identityCert: string;
  tlsCert: string;
}

const def = (rule: string, modPolicy = 'Admins'): PolicyDef => ({ rule, version: 0, modPolicy });

function orgConfig(
  mspId: string,
  material: OrgMaterial | undefined,
  policies: Record<string, string>,
  anchorPeers: { host: string; port: number }[],
): OrgConfig {
  if (!material) {
    throw new LoomError('GENESIS_MATERIAL_MISSING', `no certificates given for ${mspId}`, { details: { mspId } });
  }
  return {
    mspId,
    msp: {
      rootCerts: material.rootCerts,
      intermediateCerts: material.intermediateCerts ?? [],
      admins: material.admins ?? [],
      crls: [],
      tlsRootCerts: material.tlsRootCerts,
      tlsIntermediateCerts: [],
      nodeOUs: true,
    },
    anchorPeers,
    policies: Object.fromEntries(Object.entries(policies).map(([k, v]) => [k, def(v)])),
    version: 0,
    modPolicy: 'Admins',
  };
}

/** The sequence-0 config of `channelName` as described by the network-config. */
export function channelConfigFromNetwork(
  net: NetworkConfig,
  channelName: string,
  orgs: Record<string, OrgMaterial>,
  consenters: Record<string, ConsenterMaterial>,
): ChannelConfig {
  const channel = net.channels.find((c) => c.name === channelName);
  if (!channel)
    throw new LoomError('CHANNEL_NOT_FOUND', `network-config has no channel '${channelName}'`, { httpStatus: 404 });
  const appOrgs: Record<string, OrgConfig> = {};
  for (const mspId of channel.organizations) {
    const org = net.organizations.find((o) => o.mspId === mspId);
    if (!org) throw new LoomError('CHANNEL_ORG_UNKNOWN', `channel ${channelName} names unknown org ${mspId}`);
    const anchors = org.anchorPeers
      .map((name) => org.peers.find((p) => p.name === name))
      .filter((p) => p !== undefined)
      .map((p) => ({ host: p.host, port: p.port }));
    appOrgs[mspId] = orgConfig(mspId, orgs[mspId], { ...org.policies }, anchors);
  }
  const oo = net.ordererOrganization;
  return {
    channelId: channel.name,
    sequence: 0,
    orgs: appOrgs,
    policies: Object.fromEntries(Object.entries(channel.policies).map(([k, v]) => [k, def(v)])),
    orderer: {
      consenters: channel.consenters.map((name) => {
        const o = oo.orderers.find((x) => x.name === name);
        const m = consenters[name];
        if (!o || !m) throw new LoomError('GENESIS_MATERIAL_MISSING', `no certificates given for consenter ${name}`);
        return { id: name, mspId: oo.mspId, host: o.host, port: o.port, raftPort: o.raftPort, ...m };
      }),
      batch: { ...channel.batch },
      orgs: { [oo.mspId]: orgConfig(oo.mspId, orgs[oo.mspId], { ...oo.policies }, []) },
      policies: {
        Readers: def('ANY Readers'),
        Writers: def('ANY Writers'),
        Admins: def('MAJORITY Admins'),
        BlockValidation: def('ANY Writers'),
      },
      version: 0,
      modPolicy: 'Admins',
    },
    capabilities: ['V2_0'],
    governance: {
      thresholdPercentage: 50,
      thresholdComparator: 'GREATER_THAN',
      proposalDurationMs: 24 * 3600 * 1000,
      version: 0,
      modPolicy: 'Admins',
    },
    version: 0,
    modPolicy: 'Admins',
  };
}

/**
 * Block 0 of a channel: one unsigned CONFIG envelope (no creator: the genesis block is trusted
 * because an administrator hands it to each node, as in Fabric).
 */
export function buildGenesisBlock(config: ChannelConfig, timestamp: number, hash: HashFn = defaultHash): Block {
  const payload = encodePayload({
    header: encodeHeader({
      channelHeader: encodeChannelHeader({
        type: HeaderType.CONFIG,
        version: 1,
        channelId: config.channelId,
        txId: '',
        timestamp,
        extension: new Uint8Array(0),
      }),
      signatureHeader: encodeSignatureHeader({ creator: new Uint8Array(0), nonce: new Uint8Array(0) }),
    }),
    data: encodeConfigEnvelope({ config: encodeChannelConfig(config), lastUpdate: null }),
  });
  const envelope = encodeEnvelope({ payload, signature: new Uint8Array(0) });
  return buildBlock(
    0,
    GENESIS_PREVIOUS_HASH,
    [envelope],
    encodeConsenterMetadata({ lastConfig: 0, raftIndex: 0 }),
    hash,
  );
}
