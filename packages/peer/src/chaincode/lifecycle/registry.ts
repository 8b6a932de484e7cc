/**
 * The peer's read view of committed chaincode definitions, per channel: what the endorser needs to
 * run a chaincode (which package my org runs, init required) and what the validator needs to check
 * endorsements (chaincode and collection policies, `_lifecycle`'s own).
 *
 * A snapshot: `load` reads the committed `_lifecycle` state; the committer calls it again after a
 * block that wrote the `_lifecycle` namespace (`touchesLifecycle`) or changed the channel config, so
 * lookups stay synchronous on the hot path.
 */
import type { ChannelPolicies } from '@loom/common';
import type { StateReader } from '../../ledger/state-reader.js';
import type { EndorsementPolicyTexts } from '../../validation/policies.js';
import {
  type ApplicationPolicy,
  type CollectionConfig,
  implicitCollection,
  implicitCollectionOrg,
} from './collections.js';
import {
  type CommittedDefinition,
  LIFECYCLE_NAMESPACE,
  type LifecycleState,
  lifecycleEndorsementPolicy,
  queryAllCommitted,
  queryApproved,
  resolveApplicationPolicy,
} from './lifecycle.js';

export interface ChaincodeInfo {
  readonly name: string;
  readonly version: string;
  readonly sequence: number;
  /** The package my org runs for this definition; undefined when my org named none. */
  readonly packageId: string | undefined;
  /** The endorsement policy text in force (a channel policy reference resolved). */
  readonly endorsementPolicy: string;
  readonly endorsementPolicyRef: ApplicationPolicy;
  readonly collections: readonly CollectionConfig[];
  readonly initRequired: boolean;
  readonly definition: CommittedDefinition;
}

export interface ChaincodeRegistry {
  /** (Re)reads a channel's committed definitions. `policies`: the channel's application policies. */
  load(
    channel: string,
    state: Pick<LifecycleState, 'getState' | 'getStateByRange'>,
    policies: ChannelPolicies,
  ): Promise<void>;
  get(channel: string, name: string): ChaincodeInfo | undefined;
  list(channel: string): ChaincodeInfo[];
  /** A namespace's endorsement policy text; `_lifecycle`'s is the channel's `LifecycleEndorsement`. */
  endorsementPolicyFor(channel: string, namespace: string): string | undefined;
  /** A collection's own endorsement policy text; undefined when it has none (the chaincode's applies). */
  collectionPolicyFor(channel: string, namespace: string, collection: string): string | undefined;
  /** A collection's config (implicit org collections included); undefined when not defined. */
  collection(channel: string, namespace: string, collection: string): CollectionConfig | undefined;
  /** For `createEndorsementPolicySource(channelPolicies, registry.endorsementPolicyTexts(channel))`. */
  endorsementPolicyTexts(channel: string): EndorsementPolicyTexts;
}

export interface ChaincodeRegistryOptions {
  /** This peer's organization: picks the package id from its approval. */
  readonly mspId: string;
}

interface ChannelView {
  readonly policies: ChannelPolicies;
  readonly chaincodes: ReadonlyMap<string, ChaincodeInfo>;
}

export function createChaincodeRegistry(options: ChaincodeRegistryOptions): ChaincodeRegistry {
  const channels = new Map<string, ChannelView>();

  const collection = (channel: string, ns: string, coll: string): CollectionConfig | undefined => {
    const view = channels.get(channel);
    if (!view) return undefined;
    const org = implicitCollectionOrg(coll);
    if (org !== undefined) {
      const defined = ns === LIFECYCLE_NAMESPACE || view.chaincodes.has(ns);
      return defined && view.policies.orgIds.includes(org) ? implicitCollection(org) : undefined;
    }
    return view.chaincodes.get(ns)?.collections.find((c) => c.name === coll);
  };

  const registry: ChaincodeRegistry = {
    async load(channel, state, policies) {
      const chaincodes = new Map<string, ChaincodeInfo>();
      const reader = { ...state, putState: () => undefined } satisfies LifecycleState;
      for (const def of await queryAllCommitted(reader)) {
        // My org's latest approval of the committed sequence names the package (it may be made after the commit).
        const mine = await queryApproved(reader, def.name, options.mspId, def.sequence);
        const packageId =
          mine && mine.definitionHash === def.definitionHash ? mine.packageId : def.packageIdsByOrg[options.mspId];
        chaincodes.set(def.name, {
          name: def.name,
          version: def.version,
          sequence: def.sequence,
          packageId: packageId ? packageId : undefined,
          endorsementPolicy: resolveApplicationPolicy(def.endorsementPolicy, policies),
          endorsementPolicyRef: def.endorsementPolicy,
          collections: def.collections,
          initRequired: def.initRequired,
          definition: def,
        });
      }
      channels.set(channel, { policies, chaincodes });
    },

    get: (channel, name) => channels.get(channel)?.chaincodes.get(name),

    list: (channel) => [...(channels.get(channel)?.chaincodes.values() ?? [])],

    endorsementPolicyFor(channel, ns) {
      const view = channels.get(channel);
      if (!view) return undefined;
      if (ns === LIFECYCLE_NAMESPACE) return lifecycleEndorsementPolicy(view.policies);
      return view.chaincodes.get(ns)?.endorsementPolicy;
    },

    collectionPolicyFor(channel, ns, coll) {
      const view = channels.get(channel);
      const c = collection(channel, ns, coll);
      if (!view || !c?.endorsementPolicy) return undefined;
      return resolveApplicationPolicy(c.endorsementPolicy, view.policies);
    },

    collection,

    endorsementPolicyTexts: (channel) => ({
      chaincode: (ns) => registry.endorsementPolicyFor(channel, ns),
      collection: (ns, coll) => registry.collectionPolicyFor(channel, ns, coll),
    }),
  };
  return registry;
}

/** The committed `_lifecycle` namespace of a ledger as a read-only `LifecycleState`. */
export function lifecycleStateFromLedger(reader: Pick<StateReader, 'getState' | 'rangeScan'>): LifecycleState {
  return {
    getState: async (key) => (await reader.getState(LIFECYCLE_NAMESPACE, key))?.value,
    putState: () => {
      throw new Error('the committed lifecycle state is read-only');
    },
    async *getStateByRange(start, end) {
      for await (const e of reader.rangeScan(LIFECYCLE_NAMESPACE, start, end)) yield { key: e.key, value: e.value };
    },
  };
}

/** Whether a block's state updates wrote `_lifecycle` (the registry must be reloaded). */
export function touchesLifecycle(updates: Iterable<{ readonly namespace: string }>): boolean {
  for (const u of updates) if (u.namespace === LIFECYCLE_NAMESPACE) return true;
  return false;
}

/** The part of the endorser's `TxSimulator` the lifecycle uses (structural, so either side can evolve). */
export interface LifecycleSimulator {
  getState(ns: string, key: string): Promise<Uint8Array | undefined>;
  setState(ns: string, key: string, value: Uint8Array): void;
  getStateRange(
    ns: string,
    startKey: string,
    endKey: string,
  ): Promise<{
    iterator: {
      next(max: number): Promise<{ results: { key: string; value: Uint8Array }[]; hasMore: boolean }>;
      close(): Promise<void>;
    };
  }>;
}

/** The `_lifecycle` namespace of a transaction simulation: reads and writes go into its rwset. */
export function lifecycleStateFromSimulator(sim: LifecycleSimulator): LifecycleState {
  return {
    getState: (key) => sim.getState(LIFECYCLE_NAMESPACE, key),
    putState: (key, value) => sim.setState(LIFECYCLE_NAMESPACE, key, value),
    async *getStateByRange(start, end) {
      const { iterator } = await sim.getStateRange(LIFECYCLE_NAMESPACE, start, end);
      try {
        for (;;) {
          const { results, hasMore } = await iterator.next(100);
          yield* results;
          if (!hasMore) break;
        }
      } finally {
        await iterator.close();
      }
    },
  };
}
