/**
 * `loom ledger verify`: re-walks a channel's stored ledger and names the first block whose bytes
 * no longer match what the chain commits to. For each block in order:
 *
 *   1. its stored bytes decode and its header number is its position;
 *   2. previousHash is the hash of the previous stored header (the hash chain);
 *   3. dataHash is the Merkle root of its envelopes;
 *   4. (blocks after the genesis) an orderer signature satisfying the channel's BlockValidation
 *      policy, under the config in force at that block;
 *   5. the accumulator: leaves recomputed from the envelopes and the stored validation codes give,
 *      after this block, the same root as the stored accumulator nodes.
 *
 * Any header change breaks 1–3 at that very block (every header field is checked against an
 * independent value), so the block named is the one altered, not its successor.
 *
 * Offline: the ledger's level database must not be open in a running peer (level holds a lock).
 */
import {
  bytesEqual,
  type Block,
  computeBlockHash,
  decodeBlock,
  decodeConfigEnvelopeFromBlock,
  GENESIS_PREVIOUS_HASH,
  type HashFn,
  LoomError,
  MspManager,
  mspConfigsOf,
  ordererPoliciesOf,
  sha256,
  toHex,
  TxValidationCode,
} from '@loom/common';
import { createMemoryAccumulatorStore, LedgerAccumulator } from '../ledger/accumulator.js';
import type { KV } from '../ledger/kv.js';
import { openLedgerKV, openLedgerStores } from '../ledger/ledger-stores.js';
import { createKvAccumulatorStore } from './accumulator-store.js';
import { checkBlockContinues, checkOrdererSignatures, readBlockHeader } from './block-checks.js';
import { channelLedgerPath } from './ledger.js';

export type LedgerVerification =
  | {
      readonly ok: true;
      readonly channelId: string;
      readonly height: number;
      readonly txCount: number;
      readonly root: string;
    }
  | {
      readonly ok: false;
      readonly channelId: string;
      readonly height: number;
      /** The first block that fails a check. */
      readonly blockNum: number;
      readonly reason: string;
    };

export interface VerifyOptions {
  readonly hash?: HashFn;
  /** Certificate validity is judged at this time (default now); a very old ledger may want its own. */
  readonly clock?: () => Date;
}

/** Verifies the ledger of `channelId` under a peer's data dir (offline). */
export async function verifyLedger(
  dataDir: string,
  channelId: string,
  options: VerifyOptions = {},
): Promise<LedgerVerification> {
  let kv: KV;
  try {
    kv = await openLedgerKV(channelLedgerPath(dataDir, channelId));
  } catch (e) {
    throw new LoomError(
      'LEDGER_UNAVAILABLE',
      `cannot open the ledger of ${channelId}: ${(e as Error).message} (is the peer running?)`,
      {
        details: { channelId },
        cause: e,
        httpStatus: 409,
      },
    );
  }
  try {
    return await verifyLedgerOnKv(kv, channelId, options);
  } finally {
    await kv.close();
  }
}

export async function verifyLedgerOnKv(
  kv: KV,
  channelId: string,
  options: VerifyOptions = {},
): Promise<LedgerVerification> {
  const hash = options.hash ?? sha256;
  const stores = await openLedgerStores(kv);
  const height = await stores.blocks.height();
  const savepoint = await stores.state.height();
  const fail = (blockNum: number, reason: string): LedgerVerification => ({
    ok: false,
    channelId,
    height,
    blockNum,
    reason,
  });

  const stored = await LedgerAccumulator.open(createKvAccumulatorStore(kv.sublevel('acc')), {
    channelId,
    hash,
    height: savepoint,
  }).catch((e: Error) => e);
  const rebuilt = await LedgerAccumulator.open(createMemoryAccumulatorStore(), { channelId, hash, height: 0 });

  let prevHash: Uint8Array = GENESIS_PREVIOUS_HASH;
  let view: { msps: MspManager; orderer: ReturnType<typeof ordererPoliciesOf>; ordererMspIds: string[] } | undefined;
  for (let n = 0; n < height; n++) {
    const bytes = await stores.blocks.getBlockBytes(n);
    if (!bytes) return fail(n, 'block missing from the block store');
    let block: Block;
    try {
      block = decodeBlock(bytes);
      const header = readBlockHeader(block);
      checkBlockContinues(block, header, { number: n, previousHash: prevHash }, hash);
    } catch (e) {
      return fail(n, (e as Error).message);
    }
    let config: ReturnType<typeof decodeConfigEnvelopeFromBlock>;
    try {
      config = decodeConfigEnvelopeFromBlock(block);
    } catch (e) {
      config = undefined;
      if (n === 0) return fail(0, `genesis config unreadable: ${(e as Error).message}`);
    }
    if (n === 0 && !config) return fail(0, 'block 0 is not a config block');
    if (n > 0) {
      try {
        checkOrdererSignatures(block, n, view!.msps, view!.orderer, view!.ordererMspIds);
      } catch (e) {
        return fail(n, (e as Error).message);
      }
    }
    const codes = await stores.blocks.getValidationCodes(n);
    if (!codes || codes.length !== block.data.length) return fail(n, 'validation codes missing or of the wrong length');
    if (config && codes[0] === TxValidationCode.VALID) {
      view = {
        msps: new MspManager(mspConfigsOf(config), options.clock ? { clock: options.clock } : {}),
        orderer: ordererPoliciesOf(config),
        ordererMspIds: Object.values(config.orderer.orgs).map((o) => o.mspId),
      };
    }
    await rebuilt.appendBlock(
      n,
      block.data.map((env, i) => ({ envelopeHash: hash(env), validationCode: codes[i]! })),
    );
    if (n < savepoint) {
      if (stored instanceof Error) return fail(n, `accumulator unreadable: ${stored.message}`);
      try {
        const d = await stored.digestAt(n + 1);
        const r = rebuilt.digest();
        if (d.txCount !== r.txCount)
          return fail(n, `accumulator counts ${d.txCount} transactions, the blocks ${r.txCount}`);
        if (!bytesEqual(d.root, r.root)) return fail(n, 'accumulator root does not match the stored transactions');
      } catch (e) {
        return fail(n, `accumulator: ${(e as Error).message}`);
      }
    }
    prevHash = computeBlockHash(block, hash);
  }
  if (savepoint > height) return fail(height, `state savepoint ${savepoint} is beyond the block height ${height}`);
  const d = rebuilt.digest();
  return { ok: true, channelId, height, txCount: d.txCount, root: toHex(d.root) };
}
