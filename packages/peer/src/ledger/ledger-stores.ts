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
 * The ledger database's LevelDB memtable, in MB, unless a peer's config says otherwise
 * (`ledgerWriteBufferMB`). LevelDB's own default, 4 MB, flushed a file to level 0 every ≈ 30 blocks
 * of 500 transactions; with a state of random keys each such file overlaps the whole of the next
 * level, and LevelDB compacts it there within a block or two (its reads charge the file, and it
 * compacts a file after ≈ 100 such reads), rewriting all of that level: at 1 M keys that was ≈ 30–80 ms of
 * CPU per block, measured over 200-block windows (bench/README.md). 16 MB makes those rewrites four
 * times rarer, for 16 MB of memory per channel (32 MB while one memtable is being flushed).
 */
export const DEFAULT_LEDGER_WRITE_BUFFER_MB = 16;

export interface LedgerKVOptions {
  /** LevelDB memtable of the main database, in MB (default DEFAULT_LEDGER_WRITE_BUFFER_MB). */
  readonly writeBufferMB?: number;
}

/**
 * Opens a ledger's root store on disk at `path`, with block bytes in `<path>/blocks`. Block bytes
 * are flushed to disk (fdatasync) before the batch that indexes them is written, so after a power
 * loss the main database is never ahead of the blocks it indexes: at worst it lost its last
 * batches, and the peer commits those blocks again.
 */
export function openLedgerKV(path: string, options: LedgerKVOptions = {}): Promise<KV> {
  const mb = options.writeBufferMB ?? DEFAULT_LEDGER_WRITE_BUFFER_MB;
  return openLevelKV(path, {
    split: { prefix: BLOCK_BYTES_PREFIX, dir: 'blocks', sync: true },
    writeBufferSize: mb * 1024 * 1024,
  });
}

export async function openLedgerStores(kv: KV): Promise<LedgerStores> {
  const blocks = createBlockStore(kv.sublevel(BLOCKS_SUBLEVEL));
  const state = await openStateDB(kv.sublevel('state'));
  const history = createHistoryIndex(kv.sublevel('history'), blocks);
  return { kv, blocks, state, history, reader: createStateReader(state, blocks), close: () => kv.close() };
}
