/**
 * What turns the peer's ledgers into a full peer: the chaincode install store and runtime, per
 * channel a commit gate and the `_lifecycle` chaincode registry, the endorser (with `_lifecycle` as
 * a system chaincode run over the simulator), and the gateway's dependencies (local and remote
 * endorsers, endorsement planning, the orderer broadcaster, commit status, events, proofs).
 *
 * Peers of a channel are found from the channel config's anchor peers (`host:port` of each peer's
 * API, same scheme as this peer's) and the peer config's `peers` list.
 */
import {
  applicationPoliciesOf,
  childLogger,
  type Bytes,
  type ChannelConfig,
  type ChannelPolicies,
  encodeSerializedIdentity,
  isLoomError,
  type Logger,
  LoomError,
  MspManager,
  mspConfigsOf,
  type Policy,
  parsePolicy,
  type SerializedIdentity,
  type SignaturePolicy,
  decodeChannelHeader,
  decodeHeader,
  decodeProposal,
  decodeSignedProposal,
} from '@loom/common';
import type { ChaincodeEventFrame, GatewayTransport, SignedLedgerDigest } from '@loom/common/gateway/index';
import { encodeLedgerDigest } from '../ledger/accumulator.js';
import { privateNamespace } from '../ledger/state-db.js';
import {
  type ChaincodeRegistry as LifecycleRegistry,
  definitionKey,
  invokeLifecycle,
  LIFECYCLE_NAMESPACE,
  lifecycleEndorsementPolicy,
  lifecycleStateFromLedger,
  lifecycleStateFromSimulator,
  approvingOrgOf,
} from '../chaincode/lifecycle/index.js';
import type { ChaincodeInstallStore } from '../chaincode/package/index.js';
import { executeGovernance, GOVERNANCE_NAMESPACE, governanceEndorsementPolicyOf } from '../governance/index.js';
import type { ChaincodeRuntime } from '../chaincode/runtime/runtime.js';
import type { ExecuteRequest, ExecuteResult } from '../chaincode/runtime/types.js';
import type { ChannelLedger } from '../committer/ledger.js';
import {
  type ChaincodeDefinition,
  createEndorser,
  type Endorser,
  type EndorserChannel,
  type EndorserOptions,
} from '../endorser/index.js';
import { type EndorserTarget, planEndorsement } from '../gateway/endorsement-plan.js';
import type { EndorserOutcome, GatewayAction, GatewayDependencies } from '../gateway/gateway-plugin.js';
import { createOrdererBroadcaster } from '../gateway/orderer-broadcaster.js';
import { createRemoteEndorser } from '../gateway/remote-endorser.js';
import type { CommitGate } from '../simulation/commit-gate.js';
import {
  createHttpPrivateDataTransport,
  createPrivateDataService,
  type PrivateDataService,
  type TransientStore,
} from '../privdata/index.js';
import { commitStatus, committedBlocks, committedChaincodeEvents } from './ledger-feeds.js';

/** The endpoint name of this peer's own endorser in endorsement plans. */
export const LOCAL_ENDPOINT = 'local';

export interface ServiceChannel {
  readonly ledger: ChannelLedger;
  readonly gate: CommitGate;
}

interface ChannelView {
  readonly config: ChannelConfig;
  readonly msp: MspManager;
  readonly policies: ChannelPolicies;
}

export interface PeerServicesOptions {
  readonly mspId: string;
  readonly identity: SerializedIdentity;
  readonly sign: (m: Bytes) => Bytes | Promise<Bytes>;
  /** Told of each endorsement this peer signs (the endorser's `onEndorsementSigned`). */
  readonly onEndorsementSigned?: EndorserOptions['onEndorsementSigned'];
  readonly channel: (channelId: string) => ServiceChannel | undefined;
  readonly registry: LifecycleRegistry;
  readonly runtime: ChaincodeRuntime;
  readonly installs: ChaincodeInstallStore;
  /** This peer's API base URL (known once listening). */
  readonly selfUrl: () => string | undefined;
  /** Host names that are this peer (its id, e.g. `peer0.org1.example.com`), for spotting itself among anchor peers. */
  readonly selfNames?: readonly string[];
  /** `https` when this peer serves TLS (anchor peers are assumed to speak the same). */
  readonly scheme: 'http' | 'https';
  readonly staticPeers: readonly { readonly mspId: string; readonly url: string }[];
  readonly orderers: readonly string[];
  /** Transport for peer-to-peer and orderer calls (trusting the channels' TLS roots). */
  readonly transport: (channelId: string | undefined) => GatewayTransport;
  readonly executeTimeoutMs?: number | undefined;
  /**
   * How long a proposal forwarded by another peer's gateway may wait for this peer to commit the
   * blocks that gateway had committed (`?minHeight`). Default 5 s.
   */
  readonly endorsementCatchUpMs?: number | undefined;
  readonly logger: Logger;
  /** The transient store: enables private data (dissemination, commit, reconciliation). */
  readonly transient?: TransientStore | undefined;
}

export interface PeerServices {
  readonly endorser: Endorser;
  readonly gateway: GatewayDependencies;
  /** Private data collections (present when `transient` was given). */
  readonly privateData: PrivateDataService | undefined;
  /** Reloads a channel's chaincode definitions from its committed `_lifecycle` state. */
  reload(channelId: string): Promise<void>;
  /** Creates the rich-query indexes of the installed packages the channel's definitions name. */
  createIndexes(channelId: string, names?: readonly string[]): Promise<void>;
}

const notJoined = (channelId: string) =>
  new LoomError('PEER_CHANNEL_NOT_JOINED', `this peer has not joined channel ${channelId}`, {
    httpStatus: 404,
    details: { channelId },
  });

export function createPeerServices(o: PeerServicesOptions): PeerServices {
  const log = o.logger;
  const views = new Map<string, ChannelView>();

  /** The channel's MSPs and policies, rebuilt when its config changes. */
  const viewOf = (channelId: string): ChannelView => {
    const ch = o.channel(channelId);
    const config = ch?.ledger.config();
    if (!ch || !config) throw notJoined(channelId);
    const cached = views.get(channelId);
    if (cached && cached.config === config) return cached;
    const view = { config, msp: new MspManager(mspConfigsOf(config)), policies: applicationPoliciesOf(config) };
    views.set(channelId, view);
    return view;
  };

  const reload = async (channelId: string) => {
    const ch = o.channel(channelId);
    if (!ch?.ledger.config()) return;
    await o.registry.load(channelId, lifecycleStateFromLedger(ch.ledger.stores().state), viewOf(channelId).policies);
  };

  const createIndexes = async (channelId: string, names?: readonly string[]) => {
    const ch = o.channel(channelId);
    if (!ch) return;
    for (const info of o.registry.list(channelId)) {
      if (names && !names.includes(info.name)) continue;
      if (!info.packageId || !(await o.installs.getInstalled(info.packageId))) continue;
      for (const idx of await o.installs.indexes(info.packageId)) {
        // A collection's index covers its private values, which live in the state DB under the
        // collection's private namespace (on member peers; elsewhere it stays empty).
        const ns = idx.collection === undefined ? info.name : privateNamespace(info.name, idx.collection);
        try {
          const r = await ch.gate.exclusive(() => ch.ledger.stores().state.createIndex(ns, idx.definition));
          if (r.created) log.info({ channel: channelId, chaincode: info.name, index: idx.path }, 'index created');
        } catch (e) {
          log.warn({ channel: channelId, chaincode: info.name, index: idx.path, err: (e as Error).message }, 'index');
        }
      }
    }
  };

  const endorserChannel = (channelId: string): EndorserChannel | undefined => {
    const ch = o.channel(channelId);
    if (!ch?.ledger.config()) return undefined;
    const view = viewOf(channelId);
    const stores = ch.ledger.stores();
    return {
      msp: view.msp,
      policies: view.policies,
      ledger: {
        state: stores.state,
        history: stores.history,
        gate: ch.gate,
        isTxIdCommitted: async (txId) => (await ch.ledger.getTxLocation(txId)) !== undefined,
      },
    };
  };

  const lifecycleDefinition = (channelId: string): ChaincodeDefinition => ({
    name: LIFECYCLE_NAMESPACE,
    version: '1',
    packageId: LIFECYCLE_NAMESPACE,
    endorsementPolicy: lifecycleEndorsementPolicy(viewOf(channelId).policies),
    initRequired: false,
  });

  /** `_lifecycle` runs in the peer (a system chaincode); every other chaincode in the runtime. */
  const runtime = {
    async execute(req: ExecuteRequest): Promise<ExecuteResult> {
      if (req.chaincodeName === GOVERNANCE_NAMESPACE) {
        const view = viewOf(req.channelId);
        return executeGovernance({
          args: req.input.args,
          creator: { mspId: req.input.creator.mspId, idBytes: req.input.creator.idBytes },
          txId: req.txId,
          txTimestamp: req.input.txTimestamp,
          simulator: req.simulator,
          config: view.config,
          msp: view.msp,
          ledger: o.channel(req.channelId)?.ledger,
          nowMs: Date.now(),
        });
      }
      if (req.chaincodeName !== LIFECYCLE_NAMESPACE) {
        if (req.packageId === '') {
          throw new LoomError(
            'CHAINCODE_NOT_INSTALLED',
            `${o.mspId} named no package for chaincode ${req.chaincodeName} on channel ${req.channelId}: approve the committed definition again with the installed package id`,
            { httpStatus: 404, details: { channelId: req.channelId, chaincodeName: req.chaincodeName } },
          );
        }
        return o.runtime.execute(req);
      }
      const view = viewOf(req.channelId);
      try {
        const creator = view.msp.deserialize({ mspId: req.input.creator.mspId, idBytes: req.input.creator.idBytes });
        const payload = await invokeLifecycle(
          { state: lifecycleStateFromSimulator(req.simulator), policies: view.policies },
          req.input.args,
          { mspId: creator.mspId, isAdmin: creator.isAdmin },
          { myMspId: o.mspId },
        );
        return { response: { status: 200, message: '', payload }, event: null };
      } catch (e) {
        const message = isLoomError(e) ? `${e.code}: ${e.message}` : (e as Error).message;
        return { response: { status: 500, message, payload: new Uint8Array(0) }, event: null };
      }
    },
  };

  const privateData = o.transient
    ? createPrivateDataService({
        mspId: o.mspId,
        transient: o.transient,
        transport: createHttpPrivateDataTransport({
          transport: () => o.transport(undefined),
          signer: { identity: o.identity, sign: o.sign },
        }),
        channel: (channelId) => {
          const ch = o.channel(channelId);
          if (!ch?.ledger.config()) return undefined;
          return { ledger: ch.ledger, msp: viewOf(channelId).msp };
        },
        collection: (channelId, ns, coll) => o.registry.collection(channelId, ns, coll),
        peers: (channelId) =>
          peersOf(channelId)
            .filter((p) => p.endpoint !== LOCAL_ENDPOINT)
            .map((p) => ({ mspId: p.mspId, endpoint: p.endpoint })),
        logger: childLogger(log, 'privdata'),
      })
    : undefined;

  const endorser = createEndorser({
    onEndorsementSigned: o.onEndorsementSigned,
    privateData: privateData
      ? {
          mspId: o.mspId,
          collection: (channelId, ns, coll) => o.registry.collection(channelId, ns, coll),
          distribute: (channelId, txId, pvt, height) => privateData.distribute(channelId, txId, pvt, height),
        }
      : undefined,
    channels: endorserChannel,
    registry: {
      get(channelId, name) {
        if (!o.channel(channelId)) return undefined;
        if (name === LIFECYCLE_NAMESPACE) return lifecycleDefinition(channelId);
        if (name === GOVERNANCE_NAMESPACE) {
          return {
            ...lifecycleDefinition(channelId),
            name: GOVERNANCE_NAMESPACE,
            packageId: GOVERNANCE_NAMESPACE,
            endorsementPolicy: governanceEndorsementPolicyOf(viewOf(channelId).config),
          };
        }
        const info = o.registry.get(channelId, name);
        if (!info) return undefined;
        return {
          name: info.name,
          version: info.version,
          packageId: info.packageId ?? '',
          endorsementPolicy: info.endorsementPolicy,
          collections: info.collections,
          initRequired: info.initRequired,
          definitionKey: { namespace: LIFECYCLE_NAMESPACE, key: definitionKey(info.name) },
        };
      },
    },
    runtime,
    signer: { identity: o.identity, sign: o.sign },
    executeTimeoutMs: o.executeTimeoutMs,
    logger: log,
  });

  // ---- gateway ------------------------------------------------------------------------------

  const normalize = (u: string) => u.replace(/\/+$/, '');
  const isSelf = (url: string) => {
    const self = o.selfUrl();
    if (!self) return false;
    try {
      const a = new URL(url);
      const b = new URL(self);
      const loopback = (h: string) => ['127.0.0.1', 'localhost', '[::1]', '::1', '0.0.0.0'].includes(h);
      return (
        a.port === b.port &&
        (a.hostname === b.hostname ||
          (loopback(a.hostname) && loopback(b.hostname)) ||
          (o.selfNames ?? []).includes(a.hostname))
      );
    } catch {
      return false;
    }
  };

  /** Every peer that can endorse on the channel: this one first, then the others by org. */
  const peersOf = (channelId: string): EndorserTarget[] => {
    const view = viewOf(channelId);
    const out: EndorserTarget[] = [{ mspId: o.mspId, endpoint: LOCAL_ENDPOINT }];
    const seen = new Set<string>();
    const add = (mspId: string, url: string) => {
      const u = normalize(url);
      if (isSelf(u) || seen.has(u) || !view.policies.orgIds.includes(mspId)) return;
      seen.add(u);
      out.push({ mspId, endpoint: u });
    };
    for (const p of o.staticPeers) add(p.mspId, p.url);
    for (const org of Object.values(view.config.orgs)) {
      for (const a of org.anchorPeers) add(org.mspId, `${o.scheme}://${a.host}:${a.port}`);
    }
    return out;
  };

  const policyOf = (channelId: string, chaincode: string): { policy: Policy; text: string } => {
    const text =
      chaincode === LIFECYCLE_NAMESPACE
        ? lifecycleEndorsementPolicy(viewOf(channelId).policies)
        : chaincode === GOVERNANCE_NAMESPACE
          ? governanceEndorsementPolicyOf(viewOf(channelId).config)
          : o.registry.endorsementPolicyFor(channelId, chaincode);
    if (text === undefined) {
      throw new LoomError('CHAINCODE_NOT_FOUND', `chaincode ${chaincode} is not defined on channel ${channelId}`, {
        httpStatus: 404,
        details: { channelId, chaincodeName: chaincode },
      });
    }
    return { policy: parsePolicy(text), text };
  };

  const orgSubPolicies = (config: ChannelConfig, subPolicy: string): Record<string, SignaturePolicy> => {
    const out: Record<string, SignaturePolicy> = {};
    for (const org of Object.values(config.orgs)) {
      const rule = org.policies[subPolicy]?.rule;
      if (!rule) continue;
      try {
        const p = parsePolicy(rule);
        if (p.type !== 'implicitMeta') out[org.mspId] = p;
      } catch {
        // An org policy that does not parse cannot be satisfied.
      }
    }
    return out;
  };

  const remote = createRemoteEndorser({
    transport: {
      request: (r) => o.transport(undefined).request(r),
      stream: (r) => o.transport(undefined).stream(r),
      close: () => undefined,
    },
  });

  /** The channel a signed proposal names (it has been checked by the gateway before it gets here). */
  const channelOfProposal = (signedProposal: Bytes): string =>
    decodeChannelHeader(
      decodeHeader(decodeProposal(decodeSignedProposal(signedProposal).proposalBytes).header).channelHeader,
    ).channelId;

  /** This peer's committed height on the proposal's channel; undefined when it cannot tell. */
  const localHeightFor = (signedProposal: Bytes): number | undefined => {
    try {
      return o.channel(channelOfProposal(signedProposal))?.ledger.height();
    } catch {
      return undefined;
    }
  };

  /**
   * A remote gateway's peer had committed `minHeight` blocks when it forwarded the proposal: wait
   * (at most `endorsementCatchUpMs`) until this peer has too, so a client that submits, waits for
   * the commit and submits again is never endorsed against state older than its own last commit.
   * When the wait runs out the proposal is simulated anyway; a stale read then shows up as
   * endorsers disagreeing, never as a wrong commit.
   */
  const catchUp = async (signedProposal: Bytes, minHeight: number): Promise<void> => {
    let ledger: ChannelLedger | undefined;
    try {
      ledger = o.channel(channelOfProposal(signedProposal))?.ledger;
    } catch {
      return; // the endorser reports the malformed proposal
    }
    // Not `height()`: a block counts there once written, before the hooks that reload the chaincode
    // registry have run; `waitForBlock` resolves once they have.
    if (!ledger || minHeight <= 0) return;
    const signal = AbortSignal.timeout(o.endorsementCatchUpMs ?? 5_000);
    await ledger.waitForBlock(minHeight - 1, signal);
  };

  const endorseAt = async (signedProposal: Bytes, target: EndorserTarget): Promise<EndorserOutcome> => {
    if (target.endpoint !== LOCAL_ENDPOINT) return remote(signedProposal, target, localHeightFor(signedProposal));
    try {
      const r = await endorser.processProposal(signedProposal);
      return { ...target, ok: true, proposalResponse: r.bytes };
    } catch (e) {
      const code = isLoomError(e) ? e.code : 'ENDORSER_FAILED';
      return { ...target, ok: false, code, message: (e as Error).message };
    }
  };

  const broadcast = createOrdererBroadcaster({
    transport: {
      request: (r) => o.transport(undefined).request(r),
      stream: (r) => o.transport(undefined).stream(r),
      close: () => undefined,
    },
    orderers: (channelId) => {
      if (o.orderers.length > 0) return o.orderers;
      const config = o.channel(channelId)?.ledger.config();
      return config ? config.orderer.consenters.map((c) => `http://${c.host}:${c.port}`) : [];
    },
  });

  const ledgerOf = (channelId: string): ChannelLedger => {
    const ch = o.channel(channelId);
    if (!ch) throw notJoined(channelId);
    return ch.ledger;
  };

  const gateway: GatewayDependencies = {
    localMspId: o.mspId,
    planEndorsers(channelId, chaincode, options) {
      const peers = peersOf(channelId);
      // An approval (`_lifecycle` ApproveChaincodeDefinitionForMyOrg) is endorsed by one peer of the
      // approving org alone, as in Fabric, whatever else was asked (validation requires exactly that).
      const approver =
        chaincode === LIFECYCLE_NAMESPACE && options.signedProposal
          ? approvingOrgOf(options.signedProposal)
          : undefined;
      if (approver !== undefined) {
        const target = peers.find((p) => p.mspId === approver);
        if (!target) {
          throw new LoomError(
            'NO_ENDORSEMENT_PLAN',
            `no reachable peer of ${approver}, the approving org, to endorse its approval on channel ${channelId}`,
            { httpStatus: 503, details: { mspId: approver } },
          );
        }
        return [target];
      }
      if (options.organizations && options.organizations.length > 0) {
        return options.organizations.map((mspId) => {
          const p = peers.find((x) => x.mspId === mspId);
          if (!p) {
            throw new LoomError('NO_ENDORSEMENT_PLAN', `no reachable peer of ${mspId} on channel ${channelId}`, {
              httpStatus: 503,
              details: { mspId },
            });
          }
          return p;
        });
      }
      const { policy } = policyOf(channelId, chaincode);
      const config = viewOf(channelId).config;
      return planEndorsement({
        policy,
        peers,
        localMspId: o.mspId,
        ...(policy.type === 'implicitMeta' ? { orgSubPolicies: orgSubPolicies(config, policy.subPolicy) } : {}),
      });
    },
    endorse: (signedProposal, targets) => Promise.all(targets.map((t) => endorseAt(signedProposal, t))),
    evaluate(signedProposal, organizations) {
      if (organizations.length === 0 || organizations.includes(o.mspId)) {
        return endorseAt(signedProposal, { mspId: o.mspId, endpoint: LOCAL_ENDPOINT });
      }
      // A peer of one of the named orgs, found among the proposal's channel's peers.
      return (async () => {
        const target = peersOf(channelOfProposal(signedProposal)).find((p) => organizations.includes(p.mspId));
        if (!target) {
          return {
            mspId: organizations[0]!,
            endpoint: '',
            ok: false as const,
            code: 'NO_ENDORSEMENT_PLAN',
            message: `no reachable peer of ${organizations.join(', ')}`,
          };
        }
        return endorseAt(signedProposal, target);
      })();
    },
    broadcast: (envelope) => broadcast(envelope),
    commitStatus: (channelId, txId, timeoutMs, signal) => commitStatus(ledgerOf(channelId), txId, timeoutMs, signal),
    blockEvents: (channelId, start, signal) => committedBlocks(ledgerOf(channelId), start, signal),
    chaincodeEvents(channelId, chaincode, start, signal) {
      const ledger = ledgerOf(channelId);
      return (async function* (): AsyncGenerator<ChaincodeEventFrame> {
        for await (const e of committedChaincodeEvents(ledger, chaincode, start, signal)) {
          yield {
            blockNumber: e.blockNum,
            txNum: e.txNum,
            txId: e.txId,
            chaincodeId: e.chaincodeId,
            eventName: e.eventName,
            payload: e.payload,
          };
        }
      })();
    },
    async digest(channelId): Promise<SignedLedgerDigest> {
      const digest = ledgerOf(channelId).digest();
      return {
        digest,
        signature: await o.sign(encodeLedgerDigest(digest)),
        signer: encodeSerializedIdentity(o.identity),
      };
    },
    txProof: (channelId, txId) => ledgerOf(channelId).proveTx(txId),
    keyProof: (channelId, namespace, key) => ledgerOf(channelId).proveKey(namespace, key),
    processProposal: async (signedProposal, minHeight) => {
      if (minHeight !== undefined) await catchUp(signedProposal, minHeight);
      return (await endorser.processProposal(signedProposal)).bytes;
    },
    authorize(action: GatewayAction, channelId: string, creator: SerializedIdentity) {
      const view = viewOf(channelId);
      const id = view.msp.deserialize(creator);
      const policy = action === 'submit' ? 'Writers' : 'Readers';
      const r = view.policies.evaluate(policy, [id]);
      if (!r.satisfied) {
        throw new LoomError(
          'ACCESS_DENIED',
          `access denied: ${creator.mspId} does not satisfy ${policy} of channel ${channelId}`,
          { httpStatus: 403, details: { channelId, mspId: creator.mspId } },
        );
      }
    },
  };

  return { endorser, gateway, privateData, reload, createIndexes };
}

/** A GatewayTransport over plain HTTP (`fetch`), for peers and orderers without TLS. */
export function createPlainHttpTransport(defaultTimeoutMs = 30_000): GatewayTransport {
  const call = async (r: Parameters<GatewayTransport['request']>[0]) => {
    const signals = [AbortSignal.timeout(r.timeoutMs ?? defaultTimeoutMs), ...(r.signal ? [r.signal] : [])];
    try {
      return await fetch(r.url, {
        method: r.method,
        headers: r.headers,
        ...(r.body ? { body: r.body } : {}),
        signal: AbortSignal.any(signals),
      });
    } catch (e) {
      throw new LoomError('HTTP_UNAVAILABLE', `${new URL(r.url).origin} unreachable: ${(e as Error).message}`, {
        httpStatus: 503,
        cause: e,
      });
    }
  };
  const headersOf = (res: Response) => Object.fromEntries(res.headers.entries());
  return {
    async request(r) {
      const res = await call(r);
      return { status: res.status, headers: headersOf(res), body: new Uint8Array(await res.arrayBuffer()) };
    },
    async stream(r) {
      const res = await call({ ...r, timeoutMs: r.timeoutMs ?? 24 * 3600_000 });
      const body = res.body;
      return {
        status: res.status,
        headers: headersOf(res),
        body: (async function* () {
          if (!body) return;
          for await (const chunk of body as unknown as AsyncIterable<Uint8Array>) yield chunk;
        })(),
      };
    },
    close: () => undefined,
  };
}

/** Dispatches `https://` URLs to `https` (when given) and everything else to plain HTTP. */
export function createMixedTransport(plain: GatewayTransport, https: GatewayTransport | undefined): GatewayTransport {
  const pick = (url: string) => (url.startsWith('https:') && https ? https : plain);
  return {
    request: (r) => pick(r.url).request(r),
    stream: (r) => pick(r.url).stream(r),
    close: () => {
      plain.close();
      https?.close();
    },
  };
}
