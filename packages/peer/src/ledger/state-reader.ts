/**
 * The read side of the committed ledger that validation and simulation depend on. The state DB
 * provides it; `createStateReader` adds the block store's txId index (for DUPLICATE_TXID), which
 * makes it the validator's `StateReader` (validation/state-reader.ts).
 */
import type { Version } from '@loom/common';
import type { CommittedKey, StateReader as ValidationStateReader } from '../validation/state-reader.js';

export interface VersionedValue {
  value: Uint8Array;
  version: Version;
  /** Key-level metadata, e.g. `VALIDATION_PARAMETER` (a key-level endorsement policy); empty when none. */
  metadata: Map<string, Uint8Array>;
}

export interface StateEntry extends VersionedValue {
  key: string;
}

export interface StateReader {
  getState(ns: string, key: string): Promise<VersionedValue | undefined>;
  getVersion(ns: string, key: string): Promise<Version | undefined>;
  /** Many keys of one namespace in one read (level's getMany); undefined for an absent key. */
  getStates(ns: string, keys: readonly string[]): Promise<(VersionedValue | undefined)[]>;
  /** Undefined when the key does not exist or has no metadata. */
  getMetadata(ns: string, key: string): Promise<Map<string, Uint8Array> | undefined>;
  /**
   * Committed entries with `startKey <= key < endKey` in code point (UTF-8 byte) order; an empty
   * `endKey` means to the end of the namespace. A raw scan: composite keys included.
   */
  rangeScan(ns: string, startKey: string, endKey: string): AsyncIterable<StateEntry>;
  /** The number of blocks the state reflects (the savepoint). */
  height(): Promise<number>;
}

export interface LedgerStateReader extends StateReader {
  isTxIdCommitted(txId: string): Promise<boolean>;
  getVersionsAndMetadata(ns: string, keys: readonly string[]): Promise<(CommittedKey | undefined)[]>;
}

/** Joins the state DB and the block store's txId index into the reader validation needs. */
export function createStateReader(
  state: StateReader,
  blocks: { isTxIdCommitted(txId: string): Promise<boolean> },
): LedgerStateReader {
  const reader: LedgerStateReader = {
    getState: (ns, key) => state.getState(ns, key),
    getVersion: (ns, key) => state.getVersion(ns, key),
    getStates: (ns, keys) => state.getStates(ns, keys),
    getMetadata: (ns, key) => state.getMetadata(ns, key),
    getVersionsAndMetadata: (ns, keys) => readCommittedKeys(state, ns, keys),
    rangeScan: (ns, start, end) => state.rangeScan(ns, start, end),
    height: () => state.height(),
    isTxIdCommitted: (txId) => blocks.isTxIdCommitted(txId),
  };
  return reader satisfies ValidationStateReader;
}

/** The validator's batch read (versions and key-level metadata of many keys) on one `getStates`. */
export async function readCommittedKeys(
  state: Pick<StateReader, 'getStates'>,
  ns: string,
  keys: readonly string[],
): Promise<(CommittedKey | undefined)[]> {
  return (await state.getStates(ns, keys)).map((v) =>
    v === undefined ? undefined : { version: v.version, metadata: v.metadata.size === 0 ? undefined : v.metadata },
  );
}
