/**
 * Private data collection configuration in Fabric's JSON format (`--collections-config`):
 *
 *   [{ "name": "assetCollection", "policy": "OR('Org1MSP.member','Org2MSP.member')",
 *      "requiredPeerCount": 1, "maxPeerCount": 2, "blockToLive": 0,
 *      "memberOnlyRead": true, "memberOnlyWrite": true,
 *      "endorsementPolicy": { "signaturePolicy": "OR('Org1MSP.peer')" } }]
 *
 * plus each organization's implicit collection `_implicit_org_<MSPID>`. Pure.
 */
import { formatPolicy, LoomError, mspIdsOf, type Policy, parsePolicy, parseSignaturePolicy } from '@loom/common';

export const CollectionErrorCode = {
  INVALID: 'COLLECTION_CONFIG_INVALID',
} as const;

/**
 * A chaincode's or collection's endorsement policy as Fabric's `ApplicationPolicy`: a policy text of
 * its own, or a reference to a channel policy by name (`Endorsement`), which follows config updates.
 */
export type ApplicationPolicy = { readonly signaturePolicy: string } | { readonly channelConfigPolicy: string };

export interface CollectionConfig {
  readonly name: string;
  /** Who is a member: a signature policy text (canonical form). */
  readonly memberPolicy: string;
  /** The MSP ids the member policy names: peers of these orgs store the collection's data. */
  readonly memberOrgs: readonly string[];
  readonly requiredPeerCount: number;
  readonly maxPeerCount: number;
  /** Blocks after which private data is purged; 0 keeps it forever. */
  readonly blockToLive: number;
  readonly memberOnlyRead: boolean;
  readonly memberOnlyWrite: boolean;
  /** The collection's own endorsement policy; undefined: the chaincode's applies. */
  readonly endorsementPolicy: ApplicationPolicy | undefined;
}

export const IMPLICIT_COLLECTION_PREFIX = '_implicit_org_';

/** Fabric's collection name rule; names starting with `_` are reserved (implicit collections). */
export const COLLECTION_NAME_PATTERN = /^[A-Za-z0-9-]+([.\-_][A-Za-z0-9-]+)*$/;

const MAX_COLLECTIONS = 256;

const invalid = (message: string, details: Record<string, unknown> = {}) =>
  new LoomError(CollectionErrorCode.INVALID, message, { details, httpStatus: 400 });

export function implicitCollectionName(mspId: string): string {
  return `${IMPLICIT_COLLECTION_PREFIX}${mspId}`;
}

/** The MSP id of an implicit collection's name, or undefined for any other name. */
export function implicitCollectionOrg(name: string): string | undefined {
  return name.startsWith(IMPLICIT_COLLECTION_PREFIX) && name.length > IMPLICIT_COLLECTION_PREFIX.length
    ? name.slice(IMPLICIT_COLLECTION_PREFIX.length)
    : undefined;
}

/** An organization's implicit collection: its own members only, endorsed by one of its peers. */
export function implicitCollection(mspId: string): CollectionConfig {
  return {
    name: implicitCollectionName(mspId),
    memberPolicy: `OR('${mspId}.member')`,
    memberOrgs: [mspId],
    requiredPeerCount: 0,
    maxPeerCount: 0,
    blockToLive: 0,
    memberOnlyRead: true,
    memberOnlyWrite: true,
    endorsementPolicy: { signaturePolicy: `OR('${mspId}.peer')` },
  };
}

/** Parses an `ApplicationPolicy`-shaped JSON value; `what` names it in errors. */
export function parseApplicationPolicy(v: unknown, what: string, channelPolicyNames?: readonly string[]) {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) {
    throw invalid(`${what} must be {"signaturePolicy": ...} or {"channelConfigPolicy": ...}`);
  }
  const o = v as Record<string, unknown>;
  const keys = Object.keys(o);
  if (keys.length !== 1 || (keys[0] !== 'signaturePolicy' && keys[0] !== 'channelConfigPolicy')) {
    throw invalid(`${what} must have exactly one of signaturePolicy, channelConfigPolicy`);
  }
  const text = o[keys[0]!];
  if (typeof text !== 'string' || text.length === 0) throw invalid(`${what}.${keys[0]} must be a non-empty string`);
  if (keys[0] === 'channelConfigPolicy') {
    const name = text.replace(/^\/Channel\/Application\//, '');
    if (channelPolicyNames && !channelPolicyNames.includes(name)) {
      throw invalid(`${what}: channel has no policy named '${name}'`, { policy: name });
    }
    return { channelConfigPolicy: name } satisfies ApplicationPolicy;
  }
  let p: Policy;
  try {
    p = parsePolicy(text);
  } catch (e) {
    throw invalid(`${what}: ${(e as Error).message}`);
  }
  return { signaturePolicy: formatPolicy(p) } satisfies ApplicationPolicy;
}

function uint(o: Record<string, unknown>, key: string, what: string): number {
  const v = o[key];
  if (v === undefined) return 0;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) {
    throw invalid(`${what}.${key} must be a non-negative integer, got ${JSON.stringify(v)}`);
  }
  return v;
}

function bool(o: Record<string, unknown>, key: string, what: string): boolean {
  const v = o[key];
  if (v === undefined) return false;
  if (typeof v !== 'boolean') throw invalid(`${what}.${key} must be a boolean`);
  return v;
}

const KNOWN_FIELDS = new Set([
  'name',
  'policy',
  'requiredPeerCount',
  'maxPeerCount',
  'blockToLive',
  'memberOnlyRead',
  'memberOnlyWrite',
  'endorsementPolicy',
]);

export interface CollectionParseOptions {
  /** The channel's organizations: a member policy may only name these. */
  readonly channelOrgs?: readonly string[];
  /** The channel's policy names, for `channelConfigPolicy` references. */
  readonly channelPolicyNames?: readonly string[];
}

/**
 * Parses a collections config: JSON text/bytes or the parsed array (`null`/empty: no collections).
 * Throws COLLECTION_CONFIG_INVALID naming the collection and field. Output is sorted by name.
 */
export function parseCollectionsConfig(input: unknown, options: CollectionParseOptions = {}): CollectionConfig[] {
  let v = input;
  if (typeof v === 'string' || v instanceof Uint8Array) {
    const text = typeof v === 'string' ? v : new TextDecoder().decode(v);
    if (text.trim() === '') return [];
    try {
      v = JSON.parse(text);
    } catch (e) {
      throw invalid(`collections config is not JSON: ${(e as Error).message}`);
    }
  }
  if (v === null || v === undefined) return [];
  if (!Array.isArray(v)) throw invalid('collections config must be a JSON array of collections');
  if (v.length > MAX_COLLECTIONS) throw invalid(`more than ${MAX_COLLECTIONS} collections`);
  const seen = new Set<string>();
  const out = v.map((item, i): CollectionConfig => {
    if (item === null || typeof item !== 'object' || Array.isArray(item))
      throw invalid(`collection #${i} must be an object`);
    const o = item as Record<string, unknown>;
    const name = o.name;
    if (typeof name !== 'string' || name.length === 0) throw invalid(`collection #${i} has no name`);
    const what = `collection '${name}'`;
    if (name.startsWith('_')) throw invalid(`${what}: names starting with '_' are reserved`, { collection: name });
    if (!COLLECTION_NAME_PATTERN.test(name) || name.length > 128) {
      throw invalid(`${what}: invalid name (allowed: ${COLLECTION_NAME_PATTERN.source})`, { collection: name });
    }
    if (seen.has(name)) throw invalid(`${what} is defined twice`, { collection: name });
    seen.add(name);
    const unknown = Object.keys(o).filter((k) => !KNOWN_FIELDS.has(k));
    if (unknown.length > 0) throw invalid(`${what}: unknown field(s) ${unknown.join(', ')}`, { collection: name });
    if (typeof o.policy !== 'string') throw invalid(`${what}: policy (the member policy) is required`);
    let member: Policy;
    try {
      member = parseSignaturePolicy(o.policy);
    } catch (e) {
      throw invalid(`${what}: member policy: ${(e as Error).message}`, { collection: name });
    }
    const memberOrgs = mspIdsOf(member).sort();
    if (options.channelOrgs) {
      const foreign = memberOrgs.filter((m) => !options.channelOrgs!.includes(m));
      if (foreign.length > 0) {
        throw invalid(`${what}: member policy names organizations not in the channel: ${foreign.join(', ')}`, {
          collection: name,
          orgs: foreign,
        });
      }
    }
    const requiredPeerCount = uint(o, 'requiredPeerCount', what);
    const maxPeerCount = uint(o, 'maxPeerCount', what);
    if (maxPeerCount < requiredPeerCount) {
      throw invalid(`${what}: maxPeerCount (${maxPeerCount}) is less than requiredPeerCount (${requiredPeerCount})`, {
        collection: name,
      });
    }
    return {
      name,
      memberPolicy: formatPolicy(member),
      memberOrgs,
      requiredPeerCount,
      maxPeerCount,
      blockToLive: uint(o, 'blockToLive', what),
      memberOnlyRead: bool(o, 'memberOnlyRead', what),
      memberOnlyWrite: bool(o, 'memberOnlyWrite', what),
      endorsementPolicy:
        o.endorsementPolicy === undefined || o.endorsementPolicy === null
          ? undefined
          : parseApplicationPolicy(o.endorsementPolicy, `${what}.endorsementPolicy`, options.channelPolicyNames),
    };
  });
  return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/**
 * Fabric's rules for a collection config in an upgrade: an existing collection cannot be removed,
 * and its `blockToLive` cannot change (purging already scheduled data would diverge between peers).
 */
export function checkCollectionsUpgrade(
  previous: readonly CollectionConfig[],
  next: readonly CollectionConfig[],
): void {
  const byName = new Map(next.map((c) => [c.name, c]));
  for (const old of previous) {
    const now = byName.get(old.name);
    if (!now) throw invalid(`collection '${old.name}' cannot be removed in an upgrade`, { collection: old.name });
    if (now.blockToLive !== old.blockToLive) {
      throw invalid(
        `collection '${old.name}': blockToLive cannot change in an upgrade (${old.blockToLive} -> ${now.blockToLive})`,
        { collection: old.name },
      );
    }
  }
}
