/**
 * Channel config updates: what changed between the config in force and a proposed one, whether the
 * versions of the changed elements moved by exactly one, and whether the modification policy of
 * every changed element holds for the update's verified signatures. Pure (no I/O, no clock).
 *
 * The versioned elements of a config, each with its own modification policy:
 *
 *   channel                          capabilities; which orgs, channel policies and governance exist
 *   policies.<name>                  a channel policy (Readers, Writers, Admins, Endorsement, ...)
 *   governance                       the voting settings
 *   orgs.<mspId>                     an application org: MSP, anchor peers, which policies it has
 *   orgs.<mspId>.policies.<name>     one of its policies
 *   orderer                          consenters, batch settings; which orderer orgs and policies exist
 *   orderer.policies.<name>          an orderer policy
 *   orderer.orgs.<mspId>             an orderer org (MSP)
 *   orderer.orgs.<mspId>.policies.<name>
 *
 * As in Fabric: adding or removing an element changes its parent (whose modification policy then
 * decides), a modified element's version must be the current one plus one, a new element starts at
 * version 0, and a relative modification policy (`Admins`) names a policy of the element's own scope:
 * an org's elements are governed by that org's `Admins`, the channel's by the channel's `Admins`
 * (default `MAJORITY Admins`), the orderer section's by the orderer `Admins`. Absolute names are
 * `/Channel/<name>`, `/Channel/Orderer/<name>`, `/Channel/Application/<mspId>/<name>` and
 * `/Channel/Orderer/<mspId>/<name>`. Policies are those of the config in force, never the proposed one.
 */
import { LoomError } from '../errors.js';
import type { SignerIdentity } from '../identity-types.js';
import type { MspManager } from '../msp/msp-manager.js';
import { MspManager as MspManagerImpl } from '../msp/msp-manager.js';
import type { ValidatedIdentity } from '../msp/types.js';
import type { ChannelPolicies, PolicyEvaluation } from '../policy/channel-policies.js';
import {
  type ChannelConfig,
  type ConfigUpdate,
  type ConfigUpdateEnvelope,
  decodeConfigUpdate,
  type OrgConfig,
  parseChannelConfig,
} from '../protocol/channel-config.js';
import { decodeSerializedIdentity, decodeSignatureHeader } from '../protocol/messages.js';
import { configSignatureSignedBytes } from '../protocol/transactions.js';
import { applicationPoliciesOf, mspConfigsOf, ordererPoliciesOf } from './channel-config-views.js';

export const ConfigUpdateErrorCode = {
  /** The update names another channel. */
  WRONG_CHANNEL: 'CONFIG_WRONG_CHANNEL',
  /** The update was computed on top of another config sequence (409). */
  BASE_SEQUENCE: 'CONFIG_BASE_SEQUENCE_MISMATCH',
  /** The proposed config equals the config in force. */
  EMPTY: 'CONFIG_UPDATE_EMPTY',
  /** A changed element's version is not the current one plus one (or a new element's is not 0). */
  VERSION: 'CONFIG_VERSION_MISMATCH',
  /** The proposed config is not usable: inconsistent org keys, consenters of unknown orgs, bad MSPs or policies. */
  INVALID: 'CONFIG_INVALID',
  /** A modification policy names no policy of the config in force. */
  MOD_POLICY_UNKNOWN: 'CONFIG_MOD_POLICY_UNKNOWN',
  /** The signatures do not satisfy a changed element's modification policy (403). */
  POLICY_UNSATISFIED: 'CONFIG_POLICY_UNSATISFIED',
  /** The update bytes do not decode. */
  MALFORMED: 'CONFIG_UPDATE_MALFORMED',
} as const;

type Scope =
  | { readonly kind: 'channel' }
  | { readonly kind: 'orderer' }
  | { readonly kind: 'org'; readonly section: 'application' | 'orderer'; readonly key: string };

interface Element {
  readonly path: string;
  readonly scope: Scope;
  /** The object carrying `version` and `modPolicy`. */
  readonly node: { version: number; modPolicy: string };
  /** The element's own values (children appear only by name), compared for changes. */
  readonly content: Record<string, unknown>;
}

export interface ConfigElementChange {
  /** e.g. `orderer`, `orgs.Org2MSP`, `orgs.Org1MSP.policies.Writers`. */
  readonly path: string;
  readonly kind: 'added' | 'removed' | 'modified';
  /** Current version (absent for an added element). */
  readonly fromVersion?: number;
  /** Proposed version (absent for a removed element). */
  readonly toVersion?: number;
  /** The modification policy that must hold, as an absolute name; only for `modified`. */
  readonly modPolicy?: string;
  /** Human-readable changed fields, e.g. `batch.maxMessageCount: 500 → 10`. */
  readonly fields: readonly string[];
}

const sortedKeys = (r: Record<string, unknown>) => Object.keys(r).sort();

function elementsOf(config: ChannelConfig): Map<string, Element> {
  const out = new Map<string, Element>();
  const add = (e: Element) => out.set(e.path, e);
  const policies = (prefix: string, scope: Scope, defs: ChannelConfig['policies']) => {
    for (const [name, p] of Object.entries(defs)) {
      add({ path: `${prefix}policies.${name}`, scope, node: p, content: { rule: p.rule, modPolicy: p.modPolicy } });
    }
  };
  const org = (prefix: string, section: 'application' | 'orderer', key: string, o: OrgConfig) => {
    const scope: Scope = { kind: 'org', section, key };
    add({
      path: `${prefix}${key}`,
      scope,
      node: o,
      content: {
        mspId: o.mspId,
        msp: o.msp,
        anchorPeers: o.anchorPeers,
        policies: sortedKeys(o.policies),
        modPolicy: o.modPolicy,
      },
    });
    policies(`${prefix}${key}.`, scope, o.policies);
  };
  add({
    path: 'channel',
    scope: { kind: 'channel' },
    node: config,
    content: {
      capabilities: config.capabilities,
      orgs: sortedKeys(config.orgs),
      policies: sortedKeys(config.policies),
      governance: config.governance ? 'present' : 'absent',
      modPolicy: config.modPolicy,
    },
  });
  policies('', { kind: 'channel' }, config.policies);
  if (config.governance) {
    const { version: _v, ...g } = config.governance;
    add({ path: 'governance', scope: { kind: 'channel' }, node: config.governance, content: g });
  }
  for (const [key, o] of Object.entries(config.orgs)) org('orgs.', 'application', key, o);
  const ord = config.orderer;
  add({
    path: 'orderer',
    scope: { kind: 'orderer' },
    node: ord,
    content: {
      consenters: ord.consenters,
      batch: ord.batch,
      orgs: sortedKeys(ord.orgs),
      policies: sortedKeys(ord.policies),
      modPolicy: ord.modPolicy,
    },
  });
  policies('orderer.', { kind: 'orderer' }, ord.policies);
  for (const [key, o] of Object.entries(ord.orgs)) org('orderer.orgs.', 'orderer', key, o);
  return out;
}

/** Canonical JSON: object keys sorted, so equal values compare equal regardless of key order. */
function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    return `{${Object.keys(o)
      .filter((k) => o[k] !== undefined)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical(o[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v);
}

const short = (v: unknown): string => {
  const s =
    typeof v === 'string' ? (v.includes('BEGIN CERTIFICATE') ? 'certificate' : JSON.stringify(v)) : canonical(v);
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
};

function itemKey(v: unknown): string {
  if (v !== null && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    if (typeof o.id === 'string') return o.id;
    if (typeof o.host === 'string' && typeof o.port === 'number') return `${o.host}:${o.port}`;
  }
  return canonical(v);
}

/** Field-level differences, for people: `a.b: x → y`, `list: + item`, `list: - item`. */
function fieldDiff(a: unknown, b: unknown, path: string, out: string[]): void {
  if (canonical(a) === canonical(b)) return;
  if (Array.isArray(a) && Array.isArray(b)) {
    const ka = new Map(a.map((x) => [itemKey(x), x]));
    const kb = new Map(b.map((x) => [itemKey(x), x]));
    for (const [k, x] of kb) {
      if (!ka.has(k)) out.push(`${path}: + ${typeof x === 'object' ? k : short(x)}`);
      else fieldDiff(ka.get(k), x, `${path}[${k}]`, out);
    }
    for (const [k, x] of ka) if (!kb.has(k)) out.push(`${path}: - ${typeof x === 'object' ? k : short(x)}`);
    if (out.length === 0) out.push(`${path}: reordered`);
    return;
  }
  if (a !== null && b !== null && typeof a === 'object' && typeof b === 'object' && !Array.isArray(a)) {
    const oa = a as Record<string, unknown>;
    const ob = b as Record<string, unknown>;
    for (const k of [...new Set([...Object.keys(oa), ...Object.keys(ob)])].sort()) {
      fieldDiff(oa[k], ob[k], path ? `${path}.${k}` : k, out);
    }
    return;
  }
  out.push(`${path}: ${a === undefined ? '(none)' : short(a)} → ${b === undefined ? '(none)' : short(b)}`);
}

function scopeName(s: Scope): string {
  if (s.kind === 'channel') return '/Channel';
  if (s.kind === 'orderer') return '/Channel/Orderer';
  return `/Channel/${s.section === 'application' ? 'Application' : 'Orderer'}/${s.key}`;
}

/** The absolute name of `modPolicy` seen from `scope`. */
export function absolutePolicyName(scope: Scope, modPolicy: string): string {
  return modPolicy.startsWith('/') ? modPolicy : `${scopeName(scope)}/${modPolicy}`;
}

function versionError(path: string, message: string, details: Record<string, unknown>): LoomError {
  return new LoomError(ConfigUpdateErrorCode.VERSION, `${path}: ${message}`, {
    httpStatus: 400,
    details: { element: path, ...details },
  });
}

/**
 * Every element that differs between `current` and `proposed` (versions included), with the
 * changed fields; `checkVersions` also requires each modified element's version to be the current
 * one plus one and each added element's to be 0.
 */
export function computeConfigChanges(
  current: ChannelConfig,
  proposed: ChannelConfig,
  options: { checkVersions?: boolean } = {},
): ConfigElementChange[] {
  const a = elementsOf(current);
  const b = elementsOf(proposed);
  const changes: ConfigElementChange[] = [];
  for (const [path, eb] of b) {
    const ea = a.get(path);
    if (!ea) {
      if (options.checkVersions && eb.node.version !== 0) {
        throw versionError(path, `a new element starts at version 0, not ${eb.node.version}`, {
          expected: 0,
          got: eb.node.version,
        });
      }
      changes.push({ path, kind: 'added', toVersion: eb.node.version, fields: [] });
      continue;
    }
    const fields: string[] = [];
    fieldDiff(ea.content, eb.content, '', fields);
    if (fields.length === 0 && ea.node.version === eb.node.version) continue;
    if (options.checkVersions && eb.node.version !== ea.node.version + 1) {
      throw versionError(
        path,
        fields.length > 0
          ? `changed but its version is ${eb.node.version}; it must be ${ea.node.version + 1} (current ${ea.node.version} plus one)`
          : `version ${eb.node.version} without a change; it must stay ${ea.node.version}`,
        { expected: fields.length > 0 ? ea.node.version + 1 : ea.node.version, got: eb.node.version, fields },
      );
    }
    changes.push({
      path,
      kind: 'modified',
      fromVersion: ea.node.version,
      toVersion: eb.node.version,
      modPolicy: absolutePolicyName(ea.scope, ea.node.modPolicy),
      fields: fields.length > 0 ? fields : ['version only'],
    });
  }
  for (const [path, ea] of a) {
    if (!b.has(path)) changes.push({ path, kind: 'removed', fromVersion: ea.node.version, fields: [] });
  }
  return changes;
}

/**
 * The update a user means when they edit a copy of the config in force: the edited config with the
 * version of every changed element set to the current one plus one (new elements at 0) and the
 * sequence it will get. Throws CONFIG_UPDATE_EMPTY when nothing changed.
 */
export function computeConfigUpdate(current: ChannelConfig, edited: ChannelConfig): ConfigUpdate {
  const next = parseChannelConfig(structuredClone(edited), 'updated config');
  if (next.channelId !== current.channelId) {
    throw new LoomError(
      ConfigUpdateErrorCode.WRONG_CHANNEL,
      `the updated config is for channel ${next.channelId}, the original for ${current.channelId}`,
      { details: { channelId: next.channelId, expected: current.channelId } },
    );
  }
  const a = elementsOf(current);
  let changed = 0;
  for (const [path, eb] of elementsOf(next)) {
    const ea = a.get(path);
    if (!ea) {
      eb.node.version = 0;
      changed++;
      continue;
    }
    const fields: string[] = [];
    fieldDiff(ea.content, eb.content, '', fields);
    eb.node.version = fields.length > 0 ? ea.node.version + 1 : ea.node.version;
    if (fields.length > 0) changed++;
  }
  for (const path of a.keys()) if (!elementsOf(next).has(path)) changed++;
  if (changed === 0) {
    throw new LoomError(ConfigUpdateErrorCode.EMPTY, 'the updated config does not differ from the original', {
      details: { channelId: current.channelId, sequence: current.sequence },
    });
  }
  next.sequence = current.sequence + 1;
  return { channelId: current.channelId, baseSequence: current.sequence, config: next };
}

function invalid(message: string, details: Record<string, unknown> = {}, cause?: unknown): LoomError {
  return new LoomError(ConfigUpdateErrorCode.INVALID, `invalid config: ${message}`, {
    httpStatus: 400,
    details,
    ...(cause === undefined ? {} : { cause }),
  });
}

/** Checks a proposed config can be put in force: consistent keys, known consenter orgs, loadable MSPs and policies. */
export function checkConfigConsistency(config: ChannelConfig): void {
  for (const [section, orgs] of [
    ['orgs', config.orgs],
    ['orderer.orgs', config.orderer.orgs],
  ] as const) {
    for (const [key, o] of Object.entries(orgs)) {
      if (key !== o.mspId) throw invalid(`${section}.${key} has mspId ${o.mspId}; the key must be the MSP id`);
    }
  }
  const appIds = new Set(Object.keys(config.orgs));
  for (const k of Object.keys(config.orderer.orgs)) {
    if (appIds.has(k)) throw invalid(`${k} is both an application and an orderer organization`);
  }
  const ids = new Set<string>();
  for (const c of config.orderer.consenters) {
    if (ids.has(c.id)) throw invalid(`consenter ${c.id} is listed twice`, { consenter: c.id });
    ids.add(c.id);
    if (!(c.mspId in config.orderer.orgs)) {
      throw invalid(`consenter ${c.id} belongs to ${c.mspId}, which is not an orderer organization of the channel`, {
        consenter: c.id,
        mspId: c.mspId,
      });
    }
  }
  const b = config.orderer.batch;
  if (b.preferredMaxBytes > b.absoluteMaxBytes) {
    throw invalid(`batch.preferredMaxBytes ${b.preferredMaxBytes} exceeds absoluteMaxBytes ${b.absoluteMaxBytes}`);
  }
  try {
    new MspManagerImpl(mspConfigsOf(config));
    applicationPoliciesOf(config);
    ordererPoliciesOf(config);
  } catch (e) {
    throw invalid((e as Error).message, e instanceof LoomError ? { cause: e.code, ...e.details } : {}, e);
  }
}

export interface IgnoredSignature {
  readonly index: number;
  readonly mspId?: string;
  readonly reason: string;
}

export interface VerifiedConfigSignatures {
  /** Distinct identities whose signature verified (one identity counts once however often it signed). */
  readonly signers: ValidatedIdentity[];
  /** Signatures that count for nothing, and why (unknown MSP, bad signature, duplicate). */
  readonly ignored: IgnoredSignature[];
}

/** Verifies each ConfigSignature over its header ‖ the update bytes against the channel's MSPs. */
export function verifyConfigSignatures(envelope: ConfigUpdateEnvelope, msps: MspManager): VerifiedConfigSignatures {
  const signers: ValidatedIdentity[] = [];
  const ignored: IgnoredSignature[] = [];
  const seen = new Set<string>();
  for (const [index, s] of envelope.signatures.entries()) {
    let mspId: string | undefined;
    try {
      const creator = decodeSerializedIdentity(decodeSignatureHeader(s.signatureHeader).creator);
      mspId = creator.mspId;
      const id = msps.verifySignature(
        creator,
        configSignatureSignedBytes(s.signatureHeader, envelope.configUpdate),
        s.signature,
      );
      if (seen.has(id.id)) {
        ignored.push({ index, mspId, reason: 'duplicate: this identity already signed' });
        continue;
      }
      seen.add(id.id);
      signers.push(id);
    } catch (e) {
      ignored.push({
        index,
        ...(mspId ? { mspId } : {}),
        reason: e instanceof LoomError ? `${e.code}: ${e.message}` : (e as Error).message,
      });
    }
  }
  return { signers, ignored };
}

interface PolicyScopes {
  readonly application: ChannelPolicies;
  readonly orderer: ChannelPolicies;
  readonly config: ChannelConfig;
}

function evaluateModPolicy(
  scopes: PolicyScopes,
  name: string,
  signers: readonly SignerIdentity[],
  element: string,
): PolicyEvaluation {
  const unknown = () =>
    new LoomError(ConfigUpdateErrorCode.MOD_POLICY_UNKNOWN, `${element}: modification policy ${name} does not exist`, {
      httpStatus: 400,
      details: { element, policy: name },
    });
  const parts = name.split('/').slice(1);
  if (parts[0] !== 'Channel') throw unknown();
  const org = (section: 'application' | 'orderer', key: string, policy: string) => {
    const orgs = section === 'application' ? scopes.config.orgs : scopes.config.orderer.orgs;
    const rule = orgs[key]?.policies[policy]?.rule;
    if (!rule) throw unknown();
    return scopes.application.evaluateText(rule, signers);
  };
  if (parts.length === 2) {
    if (!scopes.application.has(parts[1]!)) throw unknown();
    return scopes.application.evaluate(parts[1]!, signers);
  }
  if (parts.length === 3 && parts[1] === 'Orderer') {
    if (!scopes.orderer.has(parts[2]!)) throw unknown();
    return scopes.orderer.evaluate(parts[2]!, signers);
  }
  if (parts.length === 4 && (parts[1] === 'Application' || parts[1] === 'Orderer')) {
    return org(parts[1] === 'Application' ? 'application' : 'orderer', parts[2]!, parts[3]!);
  }
  throw unknown();
}

/** Who a policy evaluation wanted and who it got, for the error a submitter reads. */
function shortfall(ev: PolicyEvaluation): { required: string; obtained: string[] } {
  if (ev.kind === 'implicitMeta') {
    return {
      required: `${ev.required} of ${ev.satisfiedOrgs.length + ev.unsatisfiedOrgs.length} organizations' ${ev.subPolicy} (${[...ev.satisfiedOrgs, ...ev.unsatisfiedOrgs].join(', ')})`,
      obtained: [...ev.satisfiedOrgs],
    };
  }
  return { required: ev.reason ?? 'signature policy', obtained: [] };
}

export interface ValidatedConfigUpdate {
  readonly update: ConfigUpdate;
  /** The config to put in force: the proposed one at sequence current + 1. */
  readonly config: ChannelConfig;
  readonly changes: readonly ConfigElementChange[];
  /** The modification policies checked, each with the elements it governed. */
  readonly policies: ReadonlyArray<{ policy: string; elements: string[] }>;
}

/**
 * Checks a config update against the config in force: same channel, based on the current sequence,
 * a usable proposed config, versions bumped by exactly one, and every changed element's
 * modification policy satisfied by `signers` (already verified, see verifyConfigSignatures).
 */
export function validateConfigUpdate(
  current: ChannelConfig,
  update: ConfigUpdate,
  signers: readonly SignerIdentity[],
  options: { ignored?: readonly IgnoredSignature[] } = {},
): ValidatedConfigUpdate {
  if (update.channelId !== current.channelId || update.config.channelId !== current.channelId) {
    throw new LoomError(
      ConfigUpdateErrorCode.WRONG_CHANNEL,
      `the config update is for channel ${update.channelId}, this is ${current.channelId}`,
      { httpStatus: 400, details: { channelId: update.channelId, expected: current.channelId } },
    );
  }
  if (update.baseSequence !== current.sequence) {
    throw new LoomError(
      ConfigUpdateErrorCode.BASE_SEQUENCE,
      `the config update is based on sequence ${update.baseSequence}, the channel is at ${current.sequence}; fetch the config again`,
      { httpStatus: 409, details: { baseSequence: update.baseSequence, sequence: current.sequence } },
    );
  }
  const config: ChannelConfig = { ...update.config, sequence: current.sequence + 1 };
  checkConfigConsistency(config);
  const changes = computeConfigChanges(current, config, { checkVersions: true });
  if (changes.length === 0) {
    throw new LoomError(ConfigUpdateErrorCode.EMPTY, 'the config update changes nothing', {
      httpStatus: 400,
      details: { sequence: current.sequence },
    });
  }
  // Distinct identities only: one admin signing twice is one signature.
  const distinct = [...new Map(signers.map((s) => [s.id, s])).values()];
  const scopes: PolicyScopes = {
    application: applicationPoliciesOf(current),
    orderer: ordererPoliciesOf(current),
    config: current,
  };
  const byPolicy = new Map<string, string[]>();
  for (const c of changes) {
    if (c.kind !== 'modified' || !c.modPolicy) continue;
    const list = byPolicy.get(c.modPolicy);
    if (list) list.push(c.path);
    else byPolicy.set(c.modPolicy, [c.path]);
  }
  for (const [policy, elements] of byPolicy) {
    const ev = evaluateModPolicy(scopes, policy, distinct, elements[0]!);
    if (ev.satisfied) continue;
    const { required, obtained } = shortfall(ev);
    const who = distinct.map((s) => `${s.mspId}${s.isAdmin ? ' admin' : ''}`);
    throw new LoomError(
      ConfigUpdateErrorCode.POLICY_UNSATISFIED,
      `modification policy ${policy} of ${elements.join(', ')} is not satisfied: ${ev.reason}; signed by ${who.length > 0 ? who.join(', ') : 'nobody'}`,
      {
        httpStatus: 403,
        details: {
          policy,
          elements,
          required,
          obtained,
          signers: distinct.map((s) => ({ mspId: s.mspId, isAdmin: s.isAdmin, id: s.id })),
          ...(options.ignored && options.ignored.length > 0 ? { ignoredSignatures: options.ignored } : {}),
          reason: ev.reason,
        },
      },
    );
  }
  return { update, config, changes, policies: [...byPolicy].map(([policy, elements]) => ({ policy, elements })) };
}

/**
 * The orderer's (and a peer's) whole check of a CONFIG_UPDATE's data: decode the update, verify the
 * signatures against the channel's MSPs, then validateConfigUpdate.
 */
export function validateConfigUpdateEnvelope(
  current: ChannelConfig,
  envelope: ConfigUpdateEnvelope,
  msps: MspManager,
): ValidatedConfigUpdate & VerifiedConfigSignatures {
  let update: ConfigUpdate;
  try {
    update = decodeConfigUpdate(envelope.configUpdate);
  } catch (e) {
    throw new LoomError(ConfigUpdateErrorCode.MALFORMED, `the config update does not decode: ${(e as Error).message}`, {
      httpStatus: 400,
      cause: e,
    });
  }
  const verified = verifyConfigSignatures(envelope, msps);
  return { ...validateConfigUpdate(current, update, verified.signers, { ignored: verified.ignored }), ...verified };
}
