/**
 * The `_lifecycle` system chaincode's rules: approve a chaincode definition for my org, check commit
 * readiness, commit by the channel's `LifecycleEndorsement` policy, upgrade by sequence, and queries.
 * Pure over a small key-value interface (`LifecycleState`, all keys in the `_lifecycle` namespace), so
 * the endorser runs it in its simulator and every read and write lands in the rwset.
 *
 * State layout (values are canonical JSON, UTF-8):
 *
 *   definitions/<name>                      CommittedDefinition
 *   approvals/<name>/<sequence>/<mspId>     Approval: the org's definition, its hash, its package id
 *
 * Deviation from Fabric, deliberately: Fabric keeps each org's approval in the org's implicit private
 * collection and compares hashes across orgs. Loom keeps approvals as public keys, so any peer can
 * check readiness by reading them, and approvals carry each org's package id so every peer knows what
 * to run.
 *
 * Endorsement, as in Fabric: an approval (`ApproveChaincodeDefinitionForMyOrg`) is endorsed by a peer
 * of the approving org alone — the peer checks that the submitter is an admin of its own org and
 * writes only that org's approval key (`invokeLifecycle`), and validation accepts a write of
 * `approvals/<name>/<sequence>/<mspId>` only when a peer of `<mspId>` endorsed it
 * (`approvalEndorsementPolicy`), whatever the channel's `LifecycleEndorsement` says. Every other
 * `_lifecycle` write (the commit's `definitions/<name>`) needs `LifecycleEndorsement`.
 */
import {
  type ChannelPolicies,
  formatPolicy,
  fromUtf8,
  LoomError,
  type SignerIdentity,
  sha256Hex,
  utf8,
} from '@loom/common';
import { parsePackageId } from '../package/package.js';
import {
  type ApplicationPolicy,
  type CollectionConfig,
  checkCollectionsUpgrade,
  parseApplicationPolicy,
  parseCollectionsConfig,
} from './collections.js';

export const LIFECYCLE_NAMESPACE = '_lifecycle';

export const LifecycleErrorCode = {
  INVALID_ARGUMENT: 'LIFECYCLE_INVALID_ARGUMENT',
  SEQUENCE_INVALID: 'LIFECYCLE_SEQUENCE_INVALID',
  DEFINITION_MISMATCH: 'LIFECYCLE_DEFINITION_MISMATCH',
  NOT_ENOUGH_APPROVALS: 'LIFECYCLE_NOT_ENOUGH_APPROVALS',
  NOT_AGREED_BY_ORG: 'LIFECYCLE_NOT_AGREED_BY_ORG',
  UNAUTHORIZED: 'LIFECYCLE_UNAUTHORIZED',
  NOT_FOUND: 'LIFECYCLE_NOT_FOUND',
} as const;

/** Fabric's chaincode name rule. */
export const CHAINCODE_NAME_PATTERN = /^[a-zA-Z0-9]+([-_][a-zA-Z0-9]+)*$/;
export const CHAINCODE_VERSION_PATTERN = /^[A-Za-z0-9_.+-]+$/;

/** The `_lifecycle` namespace's keys, in the namespace the simulator scopes them to. */
export interface LifecycleState {
  getState(key: string): Promise<Uint8Array | undefined>;
  putState(key: string, value: Uint8Array): Promise<void> | void;
  /** Entries with `startKey <= key < endKey`, in key order. */
  getStateByRange(startKey: string, endKey: string): AsyncIterable<{ key: string; value: Uint8Array }>;
}

export interface LifecycleContext {
  readonly state: LifecycleState;
  /** The channel's application policies (`applicationPoliciesOf(config)`). */
  readonly policies: ChannelPolicies;
}

/** What a caller gives: Fabric's `approveformyorg`/`commit` flags. */
export interface ChaincodeDefinitionInput {
  readonly channel?: string;
  readonly name: string;
  readonly version: string;
  readonly sequence: number;
  /**
   * A policy text (`AND('Org1MSP.peer','Org2MSP.peer')`, `MAJORITY Endorsement`) or an
   * `ApplicationPolicy`; default: a reference to the channel's `Endorsement` policy.
   */
  readonly endorsementPolicy?: string | ApplicationPolicy;
  /** Fabric's collections config JSON (text, bytes or parsed), or undefined for none. */
  readonly collections?: unknown;
  readonly initRequired?: boolean;
}

export interface ApproveInput extends ChaincodeDefinitionInput {
  /** The package this org runs for the definition; empty or absent: approve without a package. */
  readonly packageId?: string;
}

/** The definition the orgs agree on (Fabric's: without package ids, which are per org). */
export interface ChaincodeDefinition {
  readonly name: string;
  readonly version: string;
  readonly sequence: number;
  readonly endorsementPolicy: ApplicationPolicy;
  readonly collections: readonly CollectionConfig[];
  readonly initRequired: boolean;
}

export interface Approval {
  readonly mspId: string;
  readonly definition: ChaincodeDefinition;
  readonly definitionHash: string;
  readonly packageId: string;
}

export interface CommittedDefinition extends ChaincodeDefinition {
  readonly definitionHash: string;
  /** The package each approving org named when the definition was committed ('' for none). */
  readonly packageIdsByOrg: Readonly<Record<string, string>>;
}

export interface CommitReadiness {
  /** Every channel org: whether it approved exactly this definition at this sequence. */
  readonly approvals: Readonly<Record<string, boolean>>;
}

const err = (code: string, message: string, details: Record<string, unknown> = {}, httpStatus = 400) =>
  new LoomError(code, message, { details, httpStatus });

/** JSON with object keys sorted: one byte encoding per value, so endorsers agree byte for byte. */
export function canonicalJson(v: unknown): string {
  if (v === null || typeof v !== 'object') return JSON.stringify(v);
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  const entries = Object.entries(v as Record<string, unknown>)
    .filter(([, x]) => x !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, x]) => `${JSON.stringify(k)}:${canonicalJson(x)}`).join(',')}}`;
}

const encode = (v: unknown): Uint8Array => utf8(canonicalJson(v));
const decode = <T>(b: Uint8Array): T => JSON.parse(fromUtf8(b)) as T;

export const definitionKey = (name: string) => `definitions/${name}`;
export const approvalKey = (name: string, sequence: number, mspId: string) => `approvals/${name}/${sequence}/${mspId}`;

/**
 * The org whose approval a `_lifecycle` key holds: its MSP id for `approvals/<name>/<sequence>/<mspId>`,
 * null for any other key under `approvals/` (malformed: no endorsement can make it valid), undefined
 * for keys outside `approvals/`.
 */
export function approvalOrgOfKey(key: string): string | null | undefined {
  if (!key.startsWith('approvals/')) return undefined;
  const parts = key.split('/');
  if (parts.length !== 4) return null;
  const [, name, sequence, mspId] = parts as [string, string, string, string];
  if (!CHAINCODE_NAME_PATTERN.test(name) || !/^[1-9][0-9]*$/.test(sequence)) return null;
  if (!/^[A-Za-z0-9._-]+$/.test(mspId)) return null;
  return mspId;
}

/** The policy a write of an org's approval key needs: a peer of that org (`OR('<mspId>.peer')`). */
export const approvalEndorsementPolicy = (mspId: string): string => `OR('${mspId}.peer')`;

/** The end of a prefix range: the prefix with its last character incremented. */
const prefixEnd = (prefix: string) =>
  prefix.slice(0, -1) + String.fromCharCode(prefix.charCodeAt(prefix.length - 1) + 1);

export function definitionHash(def: ChaincodeDefinition): string {
  return sha256Hex(utf8(canonicalJson(def)));
}

/** Validates a definition input into the stored form (policies canonical, collections parsed). */
export function normalizeDefinition(input: ChaincodeDefinitionInput, policies: ChannelPolicies): ChaincodeDefinition {
  if (input === null || typeof input !== 'object')
    throw err(LifecycleErrorCode.INVALID_ARGUMENT, 'definition must be an object');
  const { name, version, sequence } = input;
  if (typeof name !== 'string' || !CHAINCODE_NAME_PATTERN.test(name) || name.length > 128) {
    throw err(LifecycleErrorCode.INVALID_ARGUMENT, `invalid chaincode name ${JSON.stringify(name)}`, { name });
  }
  if (typeof version !== 'string' || !CHAINCODE_VERSION_PATTERN.test(version) || version.length > 128) {
    throw err(LifecycleErrorCode.INVALID_ARGUMENT, `invalid chaincode version ${JSON.stringify(version)}`, { version });
  }
  if (typeof sequence !== 'number' || !Number.isSafeInteger(sequence) || sequence < 1) {
    throw err(
      LifecycleErrorCode.INVALID_ARGUMENT,
      `sequence must be a positive integer, got ${JSON.stringify(sequence)}`,
    );
  }
  if (input.initRequired !== undefined && typeof input.initRequired !== 'boolean') {
    throw err(LifecycleErrorCode.INVALID_ARGUMENT, 'initRequired must be a boolean');
  }
  let endorsementPolicy: ApplicationPolicy;
  const ep = input.endorsementPolicy;
  if (ep === undefined || ep === '') {
    endorsementPolicy = { channelConfigPolicy: 'Endorsement' };
  } else if (typeof ep === 'string') {
    try {
      endorsementPolicy = { signaturePolicy: formatPolicy(policies.parse(ep)) };
    } catch (e) {
      throw err(LifecycleErrorCode.INVALID_ARGUMENT, `invalid endorsement policy: ${(e as Error).message}`);
    }
  } else {
    try {
      endorsementPolicy = parseApplicationPolicy(ep, 'endorsementPolicy', policies.policyNames);
    } catch (e) {
      throw err(LifecycleErrorCode.INVALID_ARGUMENT, (e as Error).message);
    }
  }
  const collections = parseCollectionsConfig(input.collections, {
    channelOrgs: policies.orgIds,
    channelPolicyNames: policies.policyNames,
  });
  return { name, version, sequence, endorsementPolicy, collections, initRequired: input.initRequired ?? false };
}

export async function queryCommitted(state: LifecycleState, name: string): Promise<CommittedDefinition | undefined> {
  const b = await state.getState(definitionKey(name));
  return b ? decode<CommittedDefinition>(b) : undefined;
}

export async function queryAllCommitted(state: LifecycleState): Promise<CommittedDefinition[]> {
  const out: CommittedDefinition[] = [];
  for await (const { value } of state.getStateByRange('definitions/', prefixEnd('definitions/'))) {
    out.push(decode<CommittedDefinition>(value));
  }
  return out;
}

/** An org's approval at `sequence`, or its latest approval when `sequence` is undefined. */
export async function queryApproved(
  state: LifecycleState,
  name: string,
  mspId: string,
  sequence?: number,
): Promise<Approval | undefined> {
  if (sequence !== undefined) {
    const b = await state.getState(approvalKey(name, sequence, mspId));
    return b ? decode<Approval>(b) : undefined;
  }
  let latest: Approval | undefined;
  const prefix = `approvals/${name}/`;
  for await (const { key, value } of state.getStateByRange(prefix, prefixEnd(prefix))) {
    if (!key.endsWith(`/${mspId}`)) continue;
    const a = decode<Approval>(value);
    if (a.mspId === mspId && (!latest || a.definition.sequence > latest.definition.sequence)) latest = a;
  }
  return latest;
}

/**
 * Records `callerMspId`'s approval of a definition. Allowed sequences, as in Fabric: the next one
 * (current + 1), any number of times (the last approval counts); or the committed one, only with the
 * committed definition unchanged (to name this org's package after the commit).
 */
export async function approveForMyOrg(
  ctx: LifecycleContext,
  input: ApproveInput,
  callerMspId: string,
): Promise<Approval> {
  if (!ctx.policies.orgIds.includes(callerMspId)) {
    throw err(LifecycleErrorCode.UNAUTHORIZED, `${callerMspId} is not an organization of the channel`, {}, 403);
  }
  const def = normalizeDefinition(input, ctx.policies);
  const packageId = input.packageId ?? '';
  if (typeof packageId !== 'string') throw err(LifecycleErrorCode.INVALID_ARGUMENT, 'packageId must be a string');
  if (packageId !== '') {
    try {
      parsePackageId(packageId);
    } catch (e) {
      throw err(LifecycleErrorCode.INVALID_ARGUMENT, (e as Error).message, { packageId });
    }
  }
  const hash = definitionHash(def);
  const committed = await queryCommitted(ctx.state, def.name);
  const current = committed?.sequence ?? 0;
  if (committed && def.sequence === current) {
    if (committed.definitionHash !== hash) {
      throw err(
        LifecycleErrorCode.DEFINITION_MISMATCH,
        `attempted to redefine the committed sequence ${current} of ${def.name}; only the package id may differ`,
        { name: def.name, sequence: current },
      );
    }
  } else if (def.sequence !== current + 1) {
    throw err(
      LifecycleErrorCode.SEQUENCE_INVALID,
      `requested sequence is ${def.sequence}, but the next definition of ${def.name} must be sequence ${current + 1}`,
      { name: def.name, requested: def.sequence, expected: current + 1 },
    );
  } else if (committed) {
    checkCollectionsUpgrade(committed.collections, def.collections);
  }
  const approval: Approval = { mspId: callerMspId, definition: def, definitionHash: hash, packageId };
  await ctx.state.putState(approvalKey(def.name, def.sequence, callerMspId), encode(approval));
  return approval;
}

async function readiness(ctx: LifecycleContext, def: ChaincodeDefinition) {
  const hash = definitionHash(def);
  const approvals: Record<string, boolean> = {};
  const matching = new Map<string, Approval>();
  for (const mspId of [...ctx.policies.orgIds].sort()) {
    const b = await ctx.state.getState(approvalKey(def.name, def.sequence, mspId));
    const a = b ? decode<Approval>(b) : undefined;
    approvals[mspId] = a?.definitionHash === hash;
    if (a && approvals[mspId]) matching.set(mspId, a);
  }
  return { hash, approvals, matching };
}

async function requireNextSequence(
  ctx: LifecycleContext,
  def: ChaincodeDefinition,
): Promise<CommittedDefinition | undefined> {
  const committed = await queryCommitted(ctx.state, def.name);
  const expected = (committed?.sequence ?? 0) + 1;
  if (def.sequence !== expected) {
    throw err(
      LifecycleErrorCode.SEQUENCE_INVALID,
      `requested sequence is ${def.sequence}, but the next definition of ${def.name} must be sequence ${expected}`,
      { name: def.name, requested: def.sequence, expected },
    );
  }
  if (committed) checkCollectionsUpgrade(committed.collections, def.collections);
  return committed;
}

/** Which orgs approved exactly this definition at its sequence (Fabric's `checkcommitreadiness`). */
export async function checkCommitReadiness(
  ctx: LifecycleContext,
  input: ChaincodeDefinitionInput,
): Promise<CommitReadiness> {
  const def = normalizeDefinition(input, ctx.policies);
  await requireNextSequence(ctx, def);
  return { approvals: (await readiness(ctx, def)).approvals };
}

/** The approving orgs as peer identities, so the `LifecycleEndorsement` policy can be evaluated over them. */
function approversAsSigners(orgs: Iterable<string>): SignerIdentity[] {
  return [...orgs].map((mspId) => ({ mspId, role: 'peer', isAdmin: false, id: `approval:${mspId}` }));
}

export interface CommitOptions {
  /** The endorsing peer's org: as in Fabric, a peer endorses a commit only if its own org approved. */
  readonly myMspId?: string;
}

/**
 * Commits a definition: the sequence must be the next one, and the orgs that approved exactly this
 * definition must satisfy the channel's `LifecycleEndorsement` policy (evaluated with one peer
 * signature per approving org), else LIFECYCLE_NOT_ENOUGH_APPROVALS naming the orgs missing.
 */
export async function commit(
  ctx: LifecycleContext,
  input: ChaincodeDefinitionInput,
  options: CommitOptions = {},
): Promise<CommittedDefinition> {
  const def = normalizeDefinition(input, ctx.policies);
  await requireNextSequence(ctx, def);
  const { hash, approvals, matching } = await readiness(ctx, def);
  const missing = Object.keys(approvals).filter((m) => !approvals[m]);
  if (options.myMspId !== undefined && !approvals[options.myMspId]) {
    throw err(
      LifecycleErrorCode.NOT_AGREED_BY_ORG,
      `chaincode definition ${def.name} sequence ${def.sequence} not agreed to by this org (${options.myMspId})`,
      { approvals, missing },
    );
  }
  const policyName = ctx.policies.has('LifecycleEndorsement') ? 'LifecycleEndorsement' : undefined;
  const evaluation = policyName
    ? ctx.policies.evaluate(policyName, approversAsSigners(matching.keys()))
    : ctx.policies.evaluateText('MAJORITY Endorsement', approversAsSigners(matching.keys()));
  if (!evaluation.satisfied) {
    throw err(
      LifecycleErrorCode.NOT_ENOUGH_APPROVALS,
      `chaincode definition ${def.name} sequence ${def.sequence} lacks approvals to satisfy the LifecycleEndorsement policy; missing approvals from ${missing.join(', ')}`,
      { approvals, missing, reason: evaluation.reason },
    );
  }
  const packageIdsByOrg: Record<string, string> = {};
  for (const [mspId, a] of matching) packageIdsByOrg[mspId] = a.packageId;
  const committed: CommittedDefinition = { ...def, definitionHash: hash, packageIdsByOrg };
  await ctx.state.putState(definitionKey(def.name), encode(committed));
  return committed;
}

/** The text of the policy an `ApplicationPolicy` stands for on this channel. */
export function resolveApplicationPolicy(policy: ApplicationPolicy, policies: ChannelPolicies): string {
  if ('signaturePolicy' in policy) return policy.signaturePolicy;
  const p = policies.get(policy.channelConfigPolicy);
  if (!p) {
    throw err(LifecycleErrorCode.NOT_FOUND, `channel has no policy named '${policy.channelConfigPolicy}'`, {}, 404);
  }
  return formatPolicy(p);
}

/** The `_lifecycle` namespace's own endorsement policy: the channel's `LifecycleEndorsement`. */
export function lifecycleEndorsementPolicy(policies: ChannelPolicies): string {
  const p = policies.get('LifecycleEndorsement');
  return p ? formatPolicy(p) : 'MAJORITY Endorsement';
}
