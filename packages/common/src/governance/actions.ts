/**
 * What a governance proposal does to the channel config: invite an org (with its MSP), remove an
 * org, change the orderer's batch settings, set a channel policy. `proposedConfigUpdate` applies
 * the actions to the config in force and returns the ConfigUpdate a vote signs. Pure.
 *
 * Versions follow the config's rule that a changed element's version goes up by one: adding or
 * removing an org bumps the channel's version (the org map lives there); a batch change bumps the
 * orderer section's; a policy change bumps that policy's (a new policy starts at 0, with the
 * channel's version bumped).
 */
import { LoomError } from '../errors.js';
import {
  type BatchConfig,
  type ChannelConfig,
  type ConfigUpdate,
  type OrgConfig,
  orgConfigSchema,
  parseChannelConfig,
} from '../protocol/channel-config.js';
import { GovernanceErrorCode } from './threshold.js';

export type GovernanceAction =
  | { readonly type: 'INVITE_ORG'; readonly org: OrgConfig }
  | { readonly type: 'REMOVE_ORG'; readonly mspId: string }
  | { readonly type: 'SET_BATCH'; readonly batch: Partial<BatchConfig> }
  | { readonly type: 'SET_POLICY'; readonly name: string; readonly rule: string };

const bad = (message: string, details: Record<string, unknown> = {}) =>
  new LoomError(GovernanceErrorCode.INVALID_ACTION, message, { httpStatus: 400, details });

const BATCH_KEYS = ['batchTimeoutMs', 'maxMessageCount', 'absoluteMaxBytes', 'preferredMaxBytes'] as const;

/** Validates untrusted data (e.g. a JSON argument) as a list of actions. */
export function parseGovernanceActions(v: unknown): GovernanceAction[] {
  if (!Array.isArray(v) || v.length === 0) throw bad('a proposal needs at least one action');
  return v.map((a, i): GovernanceAction => {
    const x = a as Record<string, unknown> | null;
    switch (x?.type) {
      case 'INVITE_ORG': {
        const r = orgConfigSchema.safeParse(x.org);
        if (!r.success) {
          const issue = r.error.issues[0]!;
          throw bad(`actions[${i}].org.${issue.path.map(String).join('.')}: ${issue.message}`);
        }
        return { type: 'INVITE_ORG', org: r.data };
      }
      case 'REMOVE_ORG':
        if (typeof x.mspId !== 'string' || x.mspId === '') throw bad(`actions[${i}].mspId must be an MSP id`);
        return { type: 'REMOVE_ORG', mspId: x.mspId };
      case 'SET_BATCH': {
        const b = x.batch as Record<string, unknown> | null;
        if (!b || typeof b !== 'object' || Object.keys(b).length === 0) throw bad(`actions[${i}].batch is empty`);
        const out: Partial<Record<(typeof BATCH_KEYS)[number], number>> = {};
        for (const [k, val] of Object.entries(b)) {
          if (!(BATCH_KEYS as readonly string[]).includes(k)) {
            throw bad(`actions[${i}].batch.${k} is not a batch setting (${BATCH_KEYS.join(', ')})`);
          }
          if (typeof val !== 'number' || !Number.isSafeInteger(val) || val <= 0) {
            throw bad(`actions[${i}].batch.${k} must be a positive integer`);
          }
          out[k as (typeof BATCH_KEYS)[number]] = val;
        }
        return { type: 'SET_BATCH', batch: out };
      }
      case 'SET_POLICY':
        if (typeof x.name !== 'string' || !/^[A-Za-z][A-Za-z0-9_]*$/.test(x.name)) {
          throw bad(`actions[${i}].name must be a policy name`);
        }
        if (typeof x.rule !== 'string' || x.rule.trim() === '') throw bad(`actions[${i}].rule must be a policy rule`);
        return { type: 'SET_POLICY', name: x.name, rule: x.rule.trim() };
      default:
        throw bad(`actions[${i}].type must be INVITE_ORG, REMOVE_ORG, SET_BATCH or SET_POLICY`, { type: x?.type });
    }
  });
}

/** The config after `actions`, at sequence current + 1. Throws GOVERNANCE_INVALID_ACTION. */
export function applyGovernanceActions(current: ChannelConfig, actions: readonly GovernanceAction[]): ChannelConfig {
  const next = structuredClone(current) as ChannelConfig;
  let channelChanged = false;
  for (const a of actions) {
    switch (a.type) {
      case 'INVITE_ORG': {
        const id = a.org.mspId;
        if (next.orgs[id] || Object.values(next.orgs).some((o) => o.mspId === id)) {
          throw bad(`${id} is already a member of channel ${current.channelId}`, { mspId: id });
        }
        if (next.orderer.orgs[id]) throw bad(`${id} is an orderer organization of the channel`, { mspId: id });
        next.orgs[id] = { ...structuredClone(a.org), version: 0 };
        channelChanged = true;
        break;
      }
      case 'REMOVE_ORG': {
        const key = Object.keys(next.orgs).find((k) => k === a.mspId || next.orgs[k]?.mspId === a.mspId);
        if (!key) throw bad(`${a.mspId} is not a member of channel ${current.channelId}`, { mspId: a.mspId });
        delete next.orgs[key];
        if (Object.keys(next.orgs).length === 0) throw bad('a channel cannot lose its last organization');
        channelChanged = true;
        break;
      }
      case 'SET_BATCH': {
        const batch = { ...next.orderer.batch, ...a.batch };
        if (batch.preferredMaxBytes > batch.absoluteMaxBytes) {
          throw bad('preferredMaxBytes cannot exceed absoluteMaxBytes', { batch });
        }
        next.orderer = { ...next.orderer, batch, version: current.orderer.version + 1 };
        break;
      }
      case 'SET_POLICY': {
        const old = next.policies[a.name];
        if (old) {
          next.policies[a.name] = { ...old, rule: a.rule, version: (current.policies[a.name]?.version ?? 0) + 1 };
        } else {
          next.policies[a.name] = { rule: a.rule, version: 0, modPolicy: 'Admins' };
          channelChanged = true;
        }
        break;
      }
    }
  }
  if (channelChanged) next.version = current.version + 1;
  next.sequence = current.sequence + 1;
  return parseChannelConfig(next, 'proposed ChannelConfig');
}

/** The ConfigUpdate that a proposal of `actions` on top of `current` would apply. */
export function proposedConfigUpdate(current: ChannelConfig, actions: readonly GovernanceAction[]): ConfigUpdate {
  return {
    channelId: current.channelId,
    baseSequence: current.sequence,
    config: applyGovernanceActions(current, actions),
  };
}

/** One line per action, for listings. */
export function describeGovernanceAction(a: GovernanceAction): string {
  switch (a.type) {
    case 'INVITE_ORG':
      return `invite ${a.org.mspId}`;
    case 'REMOVE_ORG':
      return `remove ${a.mspId}`;
    case 'SET_BATCH':
      return `set batch ${Object.entries(a.batch)
        .map(([k, v]) => `${k}=${v}`)
        .join(', ')}`;
    case 'SET_POLICY':
      return `set policy ${a.name} = ${a.rule}`;
  }
}
