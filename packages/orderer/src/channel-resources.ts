/**
 * What an orderer derives from a channel's config: its MSPs, its policies, the batch limits and the
 * consenter set. Rebuilt whenever a config block is applied.
 */
import {
  type Block,
  type ChannelConfig,
  type Consenter,
  decodeChannelConfig,
  decodeChannelHeader,
  decodeConfigEnvelope,
  decodeConsenterMetadata,
  decodeEnvelope,
  decodeHeader,
  decodePayload,
  HeaderType,
  type OrgConfig,
} from '@loom/common';
import { MspManager } from '@loom/common/msp/msp-manager';
import type { MspConfig } from '@loom/common/msp/types';
import { ChannelPolicies } from '@loom/common/policy/channel-policies';
import type { BatchLimits } from './blockcutter.js';
import type { ClusterMember } from './transport/types.js';

export interface ChannelResources {
  readonly config: ChannelConfig;
  /** Application and orderer organizations' MSPs. */
  readonly msps: MspManager;
  /** Channel-level policies (Readers, Writers, Admins) over the application organizations. */
  readonly policies: ChannelPolicies;
  readonly limits: BatchLimits;
  readonly consenters: readonly Consenter[];
}

export function mspConfigOf(org: OrgConfig): MspConfig {
  return {
    mspId: org.mspId,
    rootCerts: org.msp.rootCerts,
    intermediateCerts: org.msp.intermediateCerts,
    admins: org.msp.admins,
    revocationList: org.msp.crls,
    nodeOUs: { enable: org.msp.nodeOUs },
    tlsRootCerts: org.msp.tlsRootCerts,
    tlsIntermediateCerts: org.msp.tlsIntermediateCerts,
  };
}

export function channelResources(config: ChannelConfig): ChannelResources {
  const orgs = new Map<string, OrgConfig>();
  for (const o of Object.values(config.orderer.orgs)) orgs.set(o.mspId, o);
  for (const o of Object.values(config.orgs)) orgs.set(o.mspId, o);
  const msps = new MspManager([...orgs.values()].map(mspConfigOf));
  const orgPolicies: Record<string, Record<string, string>> = {};
  for (const o of Object.values(config.orgs)) {
    orgPolicies[o.mspId] = Object.fromEntries(Object.entries(o.policies).map(([k, v]) => [k, v.rule]));
  }
  const policies = new ChannelPolicies({
    orgs: orgPolicies,
    channel: Object.fromEntries(Object.entries(config.policies).map(([k, v]) => [k, v.rule])),
  });
  return { config, msps, policies, limits: { ...config.orderer.batch }, consenters: config.orderer.consenters };
}

export function clusterMembers(consenters: readonly Consenter[]): ClusterMember[] {
  return consenters.map((c) => ({ id: c.id, host: c.host, raftPort: c.raftPort, identityCert: c.identityCert }));
}

const normalizePem = (pem: string) => pem.replace(/\r/g, '').trim();

/** The consenter whose identityCert is `certPem`, if any. */
export function consenterFor(config: ChannelConfig, certPem: string): Consenter | undefined {
  const want = normalizePem(certPem);
  return config.orderer.consenters.find((c) => normalizePem(c.identityCert) === want);
}

/** The channel header type of an envelope's payload (throws on malformed bytes). */
export function envelopeHeaderType(envelope: Uint8Array): number {
  const payload = decodePayload(decodeEnvelope(envelope).payload);
  return decodeChannelHeader(decodeHeader(payload.header).channelHeader).type;
}

/** For a config block (one CONFIG envelope): the config it installs and the update it came from. */
export function configOfBlock(block: Block): { config: ChannelConfig; lastUpdate: Uint8Array | null } | undefined {
  if (block.data.length !== 1) return undefined;
  try {
    const payload = decodePayload(decodeEnvelope(block.data[0]!).payload);
    const ch = decodeChannelHeader(decodeHeader(payload.header).channelHeader);
    if (ch.type !== HeaderType.CONFIG) return undefined;
    const env = decodeConfigEnvelope(payload.data);
    return { config: decodeChannelConfig(env.config), lastUpdate: env.lastUpdate };
  } catch {
    return undefined;
  }
}

/** The block's ConsenterMetadata, tolerating blocks (genesis) written without one. */
export function consenterMetadataOf(block: Block, number: number): { lastConfig: number; raftIndex: number } {
  try {
    return decodeConsenterMetadata(block.metadata.consenterMetadata);
  } catch {
    return { lastConfig: number, raftIndex: 0 };
  }
}
