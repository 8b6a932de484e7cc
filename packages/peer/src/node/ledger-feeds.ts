/**
 * What a channel ledger offers to the peer's APIs (its own routes and the gateway's
 * `GatewayDependencies`): committed blocks and chaincode events from a start block on, waiting for
 * blocks not yet committed, and a transaction's commit status.
 */
import { type Bytes, encodeBlock, LoomError } from '@loom/common';
import type { ChannelLedger } from '../committer/ledger.js';
import { type ChaincodeEventRecord, chaincodeEventsOf } from './routes.js';

/** Encoded committed blocks (validation codes filled) from `start` (null: the next one) until aborted. */
export async function* committedBlocks(
  ledger: ChannelLedger,
  start: number | null,
  signal: AbortSignal,
): AsyncGenerator<Bytes> {
  for (let n = start ?? ledger.height(); !signal.aborted; n++) {
    if (!(await ledger.waitForBlock(n, signal))) return;
    const block = await ledger.getBlock(n);
    if (!block) return;
    yield encodeBlock(block);
  }
}

/** Chaincode events of `chaincode`'s valid transactions from `start` (null: the next block) on. */
export async function* committedChaincodeEvents(
  ledger: ChannelLedger,
  chaincode: string,
  start: number | null,
  signal: AbortSignal,
): AsyncGenerator<ChaincodeEventRecord> {
  for (let n = start ?? ledger.height(); !signal.aborted; n++) {
    if (!(await ledger.waitForBlock(n, signal))) return;
    const block = await ledger.getBlock(n);
    if (!block) return;
    for (const e of chaincodeEventsOf(n, block.data, block.metadata.txValidationCodes)) {
      if (e.chaincodeId === chaincode) yield e;
    }
  }
}

/**
 * Resolves with where and how `txId` committed, or undefined after `timeoutMs` or on abort. A
 * transaction committed twice (the second DUPLICATE_TXID) reports its first commit.
 */
export async function commitStatus(
  ledger: ChannelLedger,
  txId: string,
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<{ blockNumber: number; validationCode: number } | undefined> {
  if (!/^[0-9a-f]{64}$/.test(txId)) {
    throw new LoomError('PEER_BAD_REQUEST', 'txId must be 64 lowercase hex digits', { httpStatus: 400 });
  }
  const found = (loc: { blockNum: number; validationCode: number } | undefined) =>
    loc && { blockNumber: loc.blockNum, validationCode: loc.validationCode };
  return new Promise((resolve, reject) => {
    let done = false;
    const finish = (v: { blockNumber: number; validationCode: number } | undefined) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      unsubscribe();
      signal?.removeEventListener('abort', onAbort);
      resolve(v);
    };
    const onAbort = () => finish(undefined);
    // Subscribe before the first look-up, so a commit in between is not missed.
    const unsubscribe = ledger.onCommit((b) => {
      const tx = b.transactions.find((t) => t.txId === txId);
      if (tx) ledger.getTxLocation(txId).then((loc) => finish(found(loc)), reject);
    });
    const timer = setTimeout(() => finish(undefined), Math.max(0, timeoutMs));
    signal?.addEventListener('abort', onAbort, { once: true });
    ledger.getTxLocation(txId).then((loc) => {
      if (loc) finish(found(loc));
    }, reject);
  });
}
