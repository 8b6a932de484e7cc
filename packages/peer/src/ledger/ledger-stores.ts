/**
 * The ledger's stores on one KV store, each in its own sublevel, so that a single batch commits a
 * block with everything derived from it:
 *
 *   const batch = stores.kv.batch();
 *   await stores.blocks.addBlock(batch, blockBytes, codes);
 *   await stores.state.applyUpdates(batch, updates, blockNum + 1);
 *   stores.history.addEntries(batch, historyWrites);
 *   await batch.write();   // all or nothing
 *
 * On disk (`openLedgerKV`) the block bytes are the exception: they live in a level database of their
 * own, in the `blocks` subdirectory (kv.ts `splitBackend`), and a batch writes them first. Block
 * keys only grow and a block is megabytes, so there LevelDB moves its files down the levels as they
 * are instead of recompacting them with the state's and indexes' random small keys (which cost about
 * as much CPU per block as one signature worker). A crash between the two writes leaves bytes
 * beyond the height, which nothing reads (the height is in the main database) and the next commit
 * of that block overwrites.
 */
import { concatBytes } from '@loom/common';
import { BLOCK_BYTES_TAG, type BlockStore, createBlockStore } from './block-store.js';
import { createHistoryIndex, type HistoryIndex } from './history.js';
import type { KV } from './kv.js';
import { openLevelKV } from './level-kv.js';
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

const BLOCKS_SUBLEVEL = 'blocks';

/** The absolute key prefix of block bytes in a ledger's root store. */
export const BLOCK_BYTES_PREFIX = concatBytes(
  new TextEncoder().encode(BLOCKS_SUBLEVEL),
  new Uint8Array([0, BLOCK_BYTES_TAG.charCodeAt(0)]),
);

/**
 * Opens a ledger's root store on disk at `path`, with block bytes in `<path>/blocks`. Block bytes
 * are flushed to disk (fdatasync) before the batch that indexes them is written, so after a power
 * loss the main database is never ahead of the blocks it indexes: at worst it lost its last
 * batches, and the peer commits those blocks again.
 */
export function openLedgerKV(path: string): Promise<KV> {
  return openLevelKV(path, { split: { prefix: BLOCK_BYTES_PREFIX, dir: 'blocks', sync: true } });
}

export async function openLedgerStores(kv: KV): Promise<LedgerStores> {
  const blocks = createBlockStore(kv.sublevel(BLOCKS_SUBLEVEL));
  const state = await openStateDB(kv.sublevel('state'));
  const history = createHistoryIndex(kv.sublevel('history'), blocks);
  return { kv, blocks, state, history, reader: createStateReader(state, blocks), close: () => kv.close() };
}
