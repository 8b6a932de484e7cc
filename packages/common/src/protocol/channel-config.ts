/**
 * Channel configuration as data. A channel's config is a tree of versioned elements (orgs,
 * policies, orderer settings), each with its own modification policy; it is encoded as canonical
 * CBOR maps (keys sorted per RFC 8949) so the same config always has the same bytes and hash, and
 * users read and edit it as YAML/JSON. Certificates are PEM text. Pure and browser-portable.
 */
import { z } from 'zod';
import { type Bytes, decodeValue, encodeValue, readBytes, readList, readOptional, readTuple } from '../encoding.js';
import { EncodingErrorCode, LoomError } from '../errors.js';

const versioned = { version: z.number().int().nonnegative(), modPolicy: z.string() };

export const policyDefSchema = z.strictObject({ rule: z.string().min(1), ...versioned });

export const mspDefSchema = z.strictObject({
  rootCerts: z.array(z.string()).min(1),
  intermediateCerts: z.array(z.string()),
  admins: z.array(z.string()),
  crls: z.array(z.string()),
  tlsRootCerts: z.array(z.string()),
  tlsIntermediateCerts: z.array(z.string()),
  nodeOUs: z.boolean(),
});

export const orgConfigSchema = z.strictObject({
  mspId: z.string().min(1),
  msp: mspDefSchema,
  anchorPeers: z.array(z.strictObject({ host: z.string(), port: z.number().int().min(1).max(65535) })),
  policies: z.record(z.string(), policyDefSchema),
  ...versioned,
});

export const consenterSchema = z.strictObject({
  id: z.string().min(1),
  mspId: z.string().min(1),
  host: z.string(),
  port: z.number().int().min(1).max(65535),
  raftPort: z.number().int().min(1).max(65535),
  /** PEM of the orderer's signing certificate: binds its libp2p identity (see ordering). */
  identityCert: z.string(),
  tlsCert: z.string(),
});

export const batchConfigSchema = z.strictObject({
  batchTimeoutMs: z.number().int().positive(),
  maxMessageCount: z.number().int().positive(),
  absoluteMaxBytes: z.number().int().positive(),
  preferredMaxBytes: z.number().int().positive(),
});

export const ordererConfigSchema = z.strictObject({
  consenters: z.array(consenterSchema).min(1),
  batch: batchConfigSchema,
  orgs: z.record(z.string(), orgConfigSchema),
  policies: z.record(z.string(), policyDefSchema),
  ...versioned,
});

export const governanceConfigSchema = z.strictObject({
  /** Percentage of member orgs whose admins must vote yes, e.g. 50. */
  thresholdPercentage: z.number().min(0).max(100),
  thresholdComparator: z.enum(['GREATER_THAN', 'GREATER_THAN_OR_EQUAL_TO']),
  proposalDurationMs: z.number().int().positive(),
  ...versioned,
});

export const channelConfigSchema = z.strictObject({
  channelId: z
    .string()
    .regex(/^[a-z][a-z0-9.-]{0,248}$/, 'channel names are lowercase letters, digits, dots and dashes'),
  /** Increases by one with every accepted config update. */
  sequence: z.number().int().nonnegative(),
  orgs: z.record(z.string(), orgConfigSchema),
  policies: z.record(z.string(), policyDefSchema),
  orderer: ordererConfigSchema,
  capabilities: z.array(z.string()),
  governance: governanceConfigSchema.optional(),
  ...versioned,
});

export type PolicyDef = z.infer<typeof policyDefSchema>;
export type MspDef = z.infer<typeof mspDefSchema>;
export type OrgConfig = z.infer<typeof orgConfigSchema>;
export type Consenter = z.infer<typeof consenterSchema>;
export type BatchConfig = z.infer<typeof batchConfigSchema>;
export type OrdererConfig = z.infer<typeof ordererConfigSchema>;
export type GovernanceConfig = z.infer<typeof governanceConfigSchema>;
export type ChannelConfig = z.infer<typeof channelConfigSchema>;

function strip<T>(v: T): T {
  // Drop undefined optional fields so the encoding depends only on present values.
  return JSON.parse(JSON.stringify(v)) as T;
}

/** Parses untrusted data into a ChannelConfig, naming the first bad path. */
export function parseChannelConfig(v: unknown, what = 'ChannelConfig'): ChannelConfig {
  const r = channelConfigSchema.safeParse(v);
  if (!r.success) {
    const issue = r.error.issues[0]!;
    const path = issue.path.map(String).join('.');
    throw new LoomError(EncodingErrorCode.WRONG_SHAPE, `${what}${path ? `.${path}` : ''}: ${issue.message}`, {
      details: {
        what,
        path,
        issues: r.error.issues.map((i) => ({ path: i.path.map(String).join('.'), message: i.message })),
      },
    });
  }
  return r.data;
}

export function encodeChannelConfig(c: ChannelConfig): Bytes {
  return encodeValue(strip(parseChannelConfig(c)));
}
export function decodeChannelConfig(b: Bytes): ChannelConfig {
  return parseChannelConfig(decodeValue(b, 'ChannelConfig'));
}

/** A proposed change: the complete new config, applicable only on top of `baseSequence`. */
export interface ConfigUpdate {
  channelId: string;
  baseSequence: number;
  config: ChannelConfig;
}
export function encodeConfigUpdate(u: ConfigUpdate): Bytes {
  return encodeValue({
    baseSequence: u.baseSequence,
    channelId: u.channelId,
    config: strip(parseChannelConfig(u.config)),
  });
}
export function decodeConfigUpdate(b: Bytes): ConfigUpdate {
  const v = decodeValue(b, 'ConfigUpdate');
  const r = z
    .strictObject({ baseSequence: z.number().int().nonnegative(), channelId: z.string(), config: z.unknown() })
    .safeParse(v);
  if (!r.success) {
    throw new LoomError(EncodingErrorCode.WRONG_SHAPE, `ConfigUpdate: ${r.error.issues[0]?.message}`, {
      details: { what: 'ConfigUpdate' },
    });
  }
  return { channelId: r.data.channelId, baseSequence: r.data.baseSequence, config: parseChannelConfig(r.data.config) };
}

/** One admin's signature over signatureHeader ‖ configUpdate (configSignatureSignedBytes). */
export interface ConfigSignature {
  signatureHeader: Bytes;
  signature: Bytes;
}
/** The data of a CONFIG_UPDATE payload: the update's bytes and the admins' signatures over them. */
export interface ConfigUpdateEnvelope {
  configUpdate: Bytes;
  signatures: ConfigSignature[];
}
export function encodeConfigUpdateEnvelope(v: ConfigUpdateEnvelope): Bytes {
  return encodeValue([v.configUpdate, v.signatures.map((s) => [s.signatureHeader, s.signature])]);
}
export function decodeConfigUpdateEnvelope(b: Bytes): ConfigUpdateEnvelope {
  const t = readTuple(decodeValue(b, 'ConfigUpdateEnvelope'), 2, 'ConfigUpdateEnvelope');
  return {
    configUpdate: readBytes(t[0], 'ConfigUpdateEnvelope.configUpdate'),
    signatures: readList(t[1], 'ConfigUpdateEnvelope.signatures', (x, w) => {
      const u = readTuple(x, 2, w);
      return { signatureHeader: readBytes(u[0], `${w}.signatureHeader`), signature: readBytes(u[1], `${w}.signature`) };
    }),
  };
}

/** The data of a CONFIG payload (a config block's one transaction). */
export interface ConfigEnvelope {
  /** Encoded ChannelConfig now in force. */
  config: Bytes;
  /** The CONFIG_UPDATE Envelope that produced it; null in a genesis block. */
  lastUpdate: Bytes | null;
}
export function encodeConfigEnvelope(v: ConfigEnvelope): Bytes {
  return encodeValue([v.config, v.lastUpdate]);
}
export function decodeConfigEnvelope(b: Bytes): ConfigEnvelope {
  const t = readTuple(decodeValue(b, 'ConfigEnvelope'), 2, 'ConfigEnvelope');
  return {
    config: readBytes(t[0], 'ConfigEnvelope.config'),
    lastUpdate: readOptional(t[1], 'ConfigEnvelope.lastUpdate', readBytes),
  };
}
