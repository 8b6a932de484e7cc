/** The hashed private writes of a block's valid endorser transactions, read from the envelopes. Pure. */
import {
  type Block,
  decodeChannelHeader,
  decodeEnvelope,
  decodeHeader,
  decodePayload,
  endorserTxRwSet,
  HeaderType,
  TxValidationCode,
} from '@loom/common';
import type { TxCollectionHashes } from './private-store.js';

/** Every transaction's (txId) of a block, valid or not, that could be read. */
export function txIdsOf(block: Block): string[] {
  const out: string[] = [];
  for (const env of block.data) {
    try {
      const payload = decodePayload(decodeEnvelope(env).payload);
      out.push(decodeChannelHeader(decodeHeader(payload.header).channelHeader).txId);
    } catch {
      // unreadable envelope: no transient data can belong to it
    }
  }
  return out;
}

/** The collection hashes of one transaction of the block (any validation code), or [] when it has none. */
export function txCollectionHashes(block: Block, txNum: number): TxCollectionHashes[] {
  const env = block.data[txNum];
  if (env === undefined) return [];
  try {
    const payload = decodePayload(decodeEnvelope(env).payload);
    if (decodeChannelHeader(decodeHeader(payload.header).channelHeader).type !== HeaderType.ENDORSER_TRANSACTION) {
      return [];
    }
    const { channelHeader: ch, rwset } = endorserTxRwSet(env);
    const out: TxCollectionHashes[] = [];
    for (const ns of rwset.nsRwsets) {
      for (const c of ns.collectionHashedRwsets) {
        out.push({
          txNum,
          txId: ch.txId,
          namespace: ns.namespace,
          collection: c.collectionName,
          pvtRwsetHash: c.pvtRwsetHash,
          hashedWrites: c.hashedRwset.hashedWrites,
        });
      }
    }
    return out;
  } catch {
    return [];
  }
}

/** The collection hashes of the block's VALID transactions, in block order. */
export function validCollectionHashes(block: Block, codes: Uint8Array): TxCollectionHashes[] {
  const out: TxCollectionHashes[] = [];
  for (let i = 0; i < block.data.length; i++) {
    if (codes[i] !== TxValidationCode.VALID) continue;
    out.push(...txCollectionHashes(block, i));
  }
  return out;
}
