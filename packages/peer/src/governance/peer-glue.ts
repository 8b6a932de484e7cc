/**
 * Where `_governance` meets the peer: its state in a transaction simulation or the committed
 * ledger, the lookup of the config block that applied an update (walking config blocks back through
 * the consenter metadata's `lastConfig`), the system-chaincode execute step, and the task that
 * broadcasts approved proposals' CONFIG_UPDATE envelopes to the orderers after a block.
 */
import {
  type Block,
  bytesEqual,
  type ChannelConfig,
  decodeChannelHeader,
  decodeConfigEnvelope,
  decodeConfigUpdate,
  decodeConfigUpdateEnvelope,
  decodeConsenterMetadata,
  decodeEnvelope,
  decodeHeader,
  decodePayload,
  fromBase64,
  fromUtf8,
  HeaderType,
  isLoomError,
  type Logger,
  type SerializedIdentity,
} from '@loom/common';
import type { ValidatedIdentity } from '@loom/common/msp/types';
import type { LifecycleSimulator } from '../chaincode/lifecycle/registry.js';
import { GOVERNANCE_NAMESPACE, type GovernanceState, invokeGovernance, type ProposalRecord } from './governance.js';

export function governanceStateFromSimulator(sim: LifecycleSimulator): GovernanceState {
  return {
    getState: (key) => sim.getState(GOVERNANCE_NAMESPACE, key),
    putState: (key, value) => sim.setState(GOVERNANCE_NAMESPACE, key, value),
    async *getStateByRange(start, end) {
      const { iterator } = await sim.getStateRange(GOVERNANCE_NAMESPACE, start, end);
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

/** The part of a channel ledger the lookups read. */
export interface GovernanceLedger {
  height(): number;
  getBlock(blockNum: number): Promise<Block | undefined>;
  config(): ChannelConfig | undefined;
  stores(): {
    state: {
      rangeScan(ns: string, start: string, end: string): AsyncIterable<{ key: string; value: Uint8Array }>;
    };
  };
}

/** The config update a config block carries (its ConfigEnvelope.lastUpdate), with the new sequence. */
function configBlockUpdate(block: Block): { sequence: number; update: Uint8Array | undefined } | undefined {
  if (block.data.length !== 1) return undefined;
  const payload = decodePayload(decodeEnvelope(block.data[0]!).payload);
  if (decodeChannelHeader(decodeHeader(payload.header).channelHeader).type !== HeaderType.CONFIG) return undefined;
  const ce = decodeConfigEnvelope(payload.data);
  if (!ce.lastUpdate) return { sequence: 0, update: undefined };
  const cue = decodeConfigUpdateEnvelope(decodePayload(decodeEnvelope(ce.lastUpdate).payload).data);
  return { sequence: decodeConfigUpdate(cue.configUpdate).baseSequence + 1, update: cue.configUpdate };
}

/**
 * The number of the committed config block that applied exactly `configUpdate` (bytes), which can
 * only be the one at sequence baseSequence + 1; undefined when there is none (yet).
 */
export async function findAppliedConfigUpdate(
  ledger: GovernanceLedger,
  configUpdate: Uint8Array,
  baseSequence: number,
): Promise<number | undefined> {
  const current = ledger.config();
  if (!current || current.sequence <= baseSequence) return undefined;
  let at = ledger.height() - 1;
  for (let hops = 0; hops < 10_000 && at > 0; hops++) {
    const head = await ledger.getBlock(at);
    if (!head) return undefined;
    const lastConfig = decodeConsenterMetadata(head.metadata.consenterMetadata).lastConfig;
    const block = lastConfig === at ? head : await ledger.getBlock(lastConfig);
    if (!block || lastConfig === 0) return undefined;
    const u = configBlockUpdate(block);
    if (!u) return undefined;
    if (u.sequence === baseSequence + 1) return u.update && bytesEqual(u.update, configUpdate) ? lastConfig : undefined;
    if (u.sequence <= baseSequence) return undefined;
    at = lastConfig - 1;
  }
  return undefined;
}

export interface GovernanceExecuteInput {
  readonly args: readonly Uint8Array[];
  readonly creator: SerializedIdentity;
  readonly txId: string;
  readonly txTimestamp: { readonly seconds: number; readonly nanos: number };
  readonly simulator: LifecycleSimulator;
  readonly config: ChannelConfig;
  readonly msp: { deserialize(s: SerializedIdentity): ValidatedIdentity };
  readonly ledger: GovernanceLedger | undefined;
  readonly nowMs: number;
}

/** The system chaincode's execute step: a chaincode response (500 with `CODE: message` on a refusal). */
export async function executeGovernance(i: GovernanceExecuteInput) {
  try {
    const caller = i.msp.deserialize(i.creator);
    const ledger = i.ledger;
    const payload = await invokeGovernance(
      {
        state: governanceStateFromSimulator(i.simulator),
        config: i.config,
        msp: i.msp,
        txId: i.txId,
        txTimeMs: i.txTimestamp.seconds * 1000 + Math.floor(i.txTimestamp.nanos / 1e6),
        nowMs: i.nowMs,
        ...(ledger ? { appliedAt: (u: Uint8Array, base: number) => findAppliedConfigUpdate(ledger, u, base) } : {}),
      },
      i.args,
      { serialized: i.creator, mspId: caller.mspId, isAdmin: caller.isAdmin },
    );
    return { response: { status: 200, message: '', payload }, event: null };
  } catch (e) {
    const message = isLoomError(e) ? `${e.code}: ${e.message}` : (e as Error).message;
    return { response: { status: 500, message, payload: new Uint8Array(0) }, event: null };
  }
}

/** The endorsement policy of `_governance` writes: the channel's `LifecycleEndorsement`, like `_lifecycle`. */
export function governanceEndorsementPolicyOf(config: ChannelConfig): string {
  return config.policies.LifecycleEndorsement?.rule ?? 'MAJORITY Endorsement';
}

/**
 * After a block that wrote `_governance` (or changed the config): broadcasts the CONFIG_UPDATE
 * envelope of every APPROVED proposal whose base sequence is the channel's current one. Every
 * member peer does this; the orderer orders identical bytes once and refuses them once the
 * sequence moved on (ORDERER_CONFIG_SEQUENCE), so a proposal applies at most once.
 */
export async function submitApprovedProposals(
  ledger: GovernanceLedger,
  broadcast: (envelope: Uint8Array) => Promise<unknown>,
  log: Logger,
): Promise<number> {
  const config = ledger.config();
  if (!config) return 0;
  let sent = 0;
  for await (const { value } of ledger.stores().state.rangeScan(GOVERNANCE_NAMESPACE, 'proposals/', 'proposals0')) {
    let p: ProposalRecord;
    try {
      p = JSON.parse(fromUtf8(value)) as ProposalRecord;
    } catch {
      continue;
    }
    if (p.status !== 'APPROVED' || !p.applyEnvelope || p.baseSequence !== config.sequence) continue;
    try {
      await broadcast(fromBase64(p.applyEnvelope));
      sent++;
      log.info({ channel: config.channelId, proposal: p.id }, 'approved proposal: config update broadcast');
    } catch (e) {
      log.warn(
        { channel: config.channelId, proposal: p.id, err: (e as Error).message },
        'approved proposal: config update not accepted',
      );
    }
  }
  return sent;
}
