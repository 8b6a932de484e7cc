import { z } from 'zod';
import { parseByteSize, parseDuration } from './units.js';

/**
 * The network-config file's shape, as written (`NetworkConfigInput`), and the typed result with
 * every default filled and every duration and size in milliseconds and bytes (`NetworkConfig`).
 * Cross-references (a channel naming an organization, a policy naming an MSP) are checked in
 * `network-config.ts`; this file only knows the shape of each part.
 */

const port = z.number({ error: 'expected a port number' }).int('expected a whole port number').min(1).max(65535);
const host = z.string().min(1).default('127.0.0.1');
const nodeName = z
  .string()
  .regex(/^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/, 'expected a lowercase name of letters, digits and dashes (e.g. peer0)');
const mspId = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9.-]*$/, 'expected an MSP id of letters, digits, dots and dashes (e.g. Org1MSP)');
const domain = z
  .string()
  .regex(
    /^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$/,
    'expected a DNS domain (e.g. org1.example.com)',
  );
// Fabric's channel and chaincode naming rules.
const channelName = z
  .string()
  .max(249)
  .regex(
    /^[a-z][a-z0-9.-]*$/,
    'expected a channel name: lowercase letters, digits, dots and dashes, starting with a letter',
  );
const chaincodeName = z
  .string()
  .regex(/^[a-zA-Z0-9]+([-_][a-zA-Z0-9]+)*$/, 'expected a chaincode name: letters and digits, joined by - or _');
const policyName = z.string().regex(/^[A-Za-z][A-Za-z0-9_-]*$/, 'expected a policy name (e.g. Readers)');
const policyText = z.string({ error: 'expected a policy string' }).min(1, 'expected a policy, not an empty string');
const policies = z.record(policyName, policyText);

const duration = z
  .union([z.number(), z.string()], { error: "expected a duration (e.g. '250ms', '2s')" })
  .transform((v, ctx) => {
    try {
      return parseDuration(v);
    } catch (e) {
      ctx.addIssue({ code: 'custom', message: (e as Error).message });
      return z.NEVER;
    }
  });

const byteSize = z
  .union([z.number(), z.string()], { error: "expected a size (e.g. '10 MB', 4096)" })
  .transform((v, ctx) => {
    try {
      return parseByteSize(v);
    } catch (e) {
      ctx.addIssue({ code: 'custom', message: (e as Error).message });
      return z.NEVER;
    }
  });

const caSchema = z.strictObject({
  name: z.string().min(1).optional(),
  host,
  port,
  tlsPort: port.optional(),
  admin: z
    .strictObject({
      user: z.string().min(1).default('admin'),
      secret: z.string().min(1).default('adminpw'),
    })
    .prefault({}),
});

const peerSchema = z.strictObject({
  name: nodeName,
  host,
  port,
  p2pPort: port,
  chaincodePort: port.optional(),
  operationsPort: port,
});

const ordererSchema = z.strictObject({
  name: nodeName,
  host,
  port,
  adminPort: port,
  raftPort: port,
  operationsPort: port,
});

const peerOrgSchema = z.strictObject({
  mspId,
  name: z.string().min(1).optional(),
  domain,
  ca: caSchema,
  peers: z.array(peerSchema).min(1, 'an organization needs at least one peer'),
  anchorPeers: z.array(nodeName).optional(),
  policies: policies.optional(),
});

const ordererOrgSchema = z.strictObject({
  mspId: mspId.default('OrdererMSP'),
  name: z.string().min(1).optional(),
  domain,
  ca: caSchema,
  orderers: z.array(ordererSchema).min(1, 'the ordering service needs at least one orderer'),
  policies: policies.optional(),
});

/** Batch settings when a channel gives none, as in Fabric's sample configtx.yaml (timeout 250 ms here). */
export const DEFAULT_BATCH = {
  batchTimeoutMs: 250,
  maxMessageCount: 500,
  absoluteMaxBytes: 10 * 1024 * 1024,
  preferredMaxBytes: 2 * 1024 * 1024,
} as const;

export const DEFAULT_RAFT = {
  tickIntervalMs: 100,
  electionTick: 10,
  heartbeatTick: 1,
  maxInflightBlocks: 5,
  snapshotIntervalSize: 16 * 1024 * 1024,
} as const;

const batchSchema = z
  .strictObject({
    batchTimeout: duration.default(DEFAULT_BATCH.batchTimeoutMs),
    maxMessageCount: z.number().int().min(1).default(DEFAULT_BATCH.maxMessageCount),
    absoluteMaxBytes: byteSize.default(DEFAULT_BATCH.absoluteMaxBytes),
    preferredMaxBytes: byteSize.default(DEFAULT_BATCH.preferredMaxBytes),
  })
  .prefault({})
  .transform(({ batchTimeout, ...rest }): BatchSettings => ({ batchTimeoutMs: batchTimeout, ...rest }));

const raftSchema = z
  .strictObject({
    tickInterval: duration.default(DEFAULT_RAFT.tickIntervalMs),
    electionTick: z.number().int().min(2).default(DEFAULT_RAFT.electionTick),
    heartbeatTick: z.number().int().min(1).default(DEFAULT_RAFT.heartbeatTick),
    maxInflightBlocks: z.number().int().min(1).default(DEFAULT_RAFT.maxInflightBlocks),
    snapshotIntervalSize: byteSize.default(DEFAULT_RAFT.snapshotIntervalSize),
  })
  .prefault({})
  .transform(({ tickInterval, ...rest }): RaftSettings => ({ tickIntervalMs: tickInterval, ...rest }));

const channelSchema = z.strictObject({
  name: channelName,
  organizations: z.array(mspId).min(1, 'a channel needs at least one organization'),
  consenters: z.array(nodeName).min(1).optional(),
  policies: policies.optional(),
  batch: batchSchema,
  raft: raftSchema,
});

const chaincodeSchema = z.strictObject({
  name: chaincodeName,
  path: z.string().min(1),
  channel: channelName,
  version: z.union([z.string().min(1), z.number().transform(String)]).default('1.0'),
  sequence: z.number().int().min(1).default(1),
  endorsementPolicy: policyText.optional(),
  collections: z.string().min(1).optional(),
});

export const networkConfigSchema = z.strictObject({
  name: z.string().regex(/^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/, 'expected a lowercase network name (e.g. loom)'),
  dataDir: z.string().min(1).default('.loom'),
  tls: z
    .strictObject({
      enabled: z.boolean().default(true),
      clientAuthRequired: z.boolean().default(false),
      /** Serve the nodes' operations endpoints (/healthz, /metrics, /logspec) over TLS too (with `enabled`). */
      operations: z.boolean().default(true),
    })
    .prefault({}),
  organizations: z.array(peerOrgSchema).min(1, 'a network needs at least one organization'),
  ordererOrganization: ordererOrgSchema,
  channels: z.array(channelSchema).default([]),
  chaincodes: z.array(chaincodeSchema).default([]),
});

/** The file as written, before defaults. */
export type NetworkConfigInput = z.input<typeof networkConfigSchema>;
/** The file after the schema, before cross-references and derived defaults. */
export type NetworkConfigParsed = z.output<typeof networkConfigSchema>;

// ---- The typed result ----

export interface NetworkCa {
  /** The CA's name (Fabric CA's `caname`); defaults to `ca.<domain>`. */
  readonly name: string;
  readonly host: string;
  readonly port: number;
  /** Port of the organization's TLS CA, when it runs as its own server. */
  readonly tlsPort: number | undefined;
  /** The bootstrap registrar, enrolled first and used to register everyone else. */
  readonly admin: { readonly user: string; readonly secret: string };
}

export interface NetworkPeer {
  readonly name: string;
  /** `<name>.<org domain>`: the name in the peer's certificates. */
  readonly fqdn: string;
  readonly host: string;
  /** Gateway HTTP API. */
  readonly port: number;
  /** libp2p gossip among peers. */
  readonly p2pPort: number;
  /** Where chaincode processes connect back to the peer; undefined lets the peer choose. */
  readonly chaincodePort: number | undefined;
  /** `/healthz`, `/metrics`, `/logspec`. */
  readonly operationsPort: number;
}

export interface NetworkOrderer {
  readonly name: string;
  readonly fqdn: string;
  readonly host: string;
  /** Broadcast and deliver API. */
  readonly port: number;
  /** Channel participation (admin) API. */
  readonly adminPort: number;
  /** libp2p transport between Raft consenters. */
  readonly raftPort: number;
  readonly operationsPort: number;
}

/** An organization's named policies; the four standard ones are always present. */
export type OrgPolicies = Readonly<Record<string, string>> & {
  readonly Readers: string;
  readonly Writers: string;
  readonly Admins: string;
};

export interface NetworkPeerOrganization {
  readonly mspId: string;
  readonly name: string;
  readonly domain: string;
  readonly ca: NetworkCa;
  readonly peers: readonly NetworkPeer[];
  /** Names of the peers other organizations' peers contact first; defaults to the first peer. */
  readonly anchorPeers: readonly string[];
  readonly policies: OrgPolicies & { readonly Endorsement: string };
}

export interface NetworkOrdererOrganization {
  readonly mspId: string;
  readonly name: string;
  readonly domain: string;
  readonly ca: NetworkCa;
  readonly orderers: readonly NetworkOrderer[];
  readonly policies: OrgPolicies;
}

/** A channel's block cutting settings; the same shape as the channel config's `BatchConfig`. */
export interface BatchSettings {
  /** Milliseconds after the first pending transaction before a block is cut (`batchTimeout` in the file). */
  readonly batchTimeoutMs: number;
  readonly maxMessageCount: number;
  readonly absoluteMaxBytes: number;
  readonly preferredMaxBytes: number;
}

export interface RaftSettings {
  /** Milliseconds per Raft tick (`tickInterval` in the file). */
  readonly tickIntervalMs: number;
  readonly electionTick: number;
  readonly heartbeatTick: number;
  readonly maxInflightBlocks: number;
  /** Bytes of blocks after which a snapshot is taken. */
  readonly snapshotIntervalSize: number;
}

/** A channel's policies; the five standard ones are always present. */
export type NetworkChannelPolicies = Readonly<Record<string, string>> & {
  readonly Readers: string;
  readonly Writers: string;
  readonly Admins: string;
  readonly Endorsement: string;
  readonly LifecycleEndorsement: string;
};

export interface NetworkChannel {
  readonly name: string;
  /** MSP ids of the channel's (application) organizations. */
  readonly organizations: readonly string[];
  /** Names of the orderers in this channel's Raft group; defaults to every orderer. */
  readonly consenters: readonly string[];
  readonly policies: NetworkChannelPolicies;
  readonly batch: BatchSettings;
  readonly raft: RaftSettings;
}

export interface NetworkChaincode {
  readonly name: string;
  /** Absolute path of the chaincode's source directory. */
  readonly path: string;
  readonly channel: string;
  readonly version: string;
  readonly sequence: number;
  /** Undefined means the channel's `Endorsement` policy. */
  readonly endorsementPolicy: string | undefined;
  /** Absolute path of the collections config file, if any. */
  readonly collections: string | undefined;
}

export interface NetworkConfig {
  readonly name: string;
  /** The file this came from, as given to the loader. */
  readonly source: string;
  /** Absolute directory for node data (ledgers, crypto material, logs). */
  readonly dataDir: string;
  readonly tls: {
    readonly enabled: boolean;
    readonly clientAuthRequired: boolean;
    /** Operations endpoints over TLS (server-side only) when `enabled`; default true. */
    readonly operations: boolean;
  };
  readonly organizations: readonly NetworkPeerOrganization[];
  readonly ordererOrganization: NetworkOrdererOrganization;
  readonly channels: readonly NetworkChannel[];
  readonly chaincodes: readonly NetworkChaincode[];
}

/** Fabric's sample defaults for an application organization's policies. */
export function defaultPeerOrgPolicies(mspId: string): NetworkPeerOrganization['policies'] {
  return {
    Readers: `OR('${mspId}.admin', '${mspId}.peer', '${mspId}.client')`,
    Writers: `OR('${mspId}.admin', '${mspId}.client')`,
    Admins: `OR('${mspId}.admin')`,
    Endorsement: `OR('${mspId}.peer')`,
  };
}

export function defaultOrdererOrgPolicies(mspId: string): OrgPolicies {
  return {
    Readers: `OR('${mspId}.member')`,
    Writers: `OR('${mspId}.member')`,
    Admins: `OR('${mspId}.admin')`,
  };
}

export const DEFAULT_CHANNEL_POLICIES: NetworkChannelPolicies = {
  Readers: 'ANY Readers',
  Writers: 'ANY Writers',
  Admins: 'MAJORITY Admins',
  Endorsement: 'MAJORITY Endorsement',
  LifecycleEndorsement: 'MAJORITY Endorsement',
};
