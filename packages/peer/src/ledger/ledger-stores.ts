/**
 * The ledger's stores on one KV store, each in its own sublevel, so that a single batch commits a
 * block with everything derived from it:
 *
 *   const batch = stores.kv.batch();
 *   await stores.blocks.addBlock(batch, blockBytes, codes);
 *   await stores.state.applyUpdates(batch, updates, blockNum + 1);
 *   stores.history.addEntries(batch, historyWrites);
 *   await batch.write();   // all or nothing
 */
import { type BlockStore, createBlockStore } from './block-store.js';
import { createHistoryIndex, type HistoryIndex } from './history.js';
import type { KV } from './kv.js';
import { openStateDB, type StateDB } from './state-db.js';
import { createStateReader, type LedgerStateReader } from './state-reader.js';

export interface LedgerStores {
  kv: KV;
  blocks: BlockStore;
  state: StateDB;
  history: HistoryIndex;
  /** The state DB plus the txId index: what block validation reads. */
  reader: LedgerStateReader;
  close(): Promise<void>;
}

export async function openLedgerStores(kv: KV): Promise<LedgerStores> {
  const blocks = createBlockStore(kv.sublevel('blocks'));
  const state = await openStateDB(kv.sublevel('state'));
  const history = createHistoryIndex(kv.sublevel('history'));
  return { kv, blocks, state, history, reader: createStateReader(state, blocks), close: () => kv.close() };
}
