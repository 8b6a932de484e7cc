/**
 * Verifying what a peer's ledger accumulator proves: that a transaction, or a version of a key, is in
 * the ledger a signed digest describes. Pure and browser-portable (imports only ./portable.ts, no
 * node: modules), so the peer and the client SDK check proofs with the same code; the hash function
 * is passed in, so a browser passes @noble/hashes' SHA-256 and a peer node:crypto's.
 *
 * The peer's accumulator (packages/peer/src/ledger/accumulator.ts) is an RFC 6962 Merkle tree over every transaction of the channel in
 * ledger order — block by block, transaction by transaction, valid or not. Leaf i is
 *
 *   merkleLeafHash(CBOR[ sha256(envelope bytes), blockNum, txNum, validationCode ])
 *
 * (0x00-prefixed leaf hash, merkle.ts), so a leaf pins the exact envelope bytes, where it sits in the
 * ledger and whether it was valid. A digest is {channelId, height (blocks), txCount, root}; the peer
 * signs `encodeLedgerDigest(digest)`.
 *
 * Two answers per check: `verify…` returns a boolean; `assert…` throws LoomError PROOF_INVALID with
 * the reason.
 */
import {
  type Bytes,
  bytesEqual,
  decodeChannelHeader,
  decodeEnvelope,
  decodeHeader,
  decodePayload,
  encodeValue,
  endorserTxRwSet,
  type HashFn,
  LoomError,
  merkleLeafHash,
  merkleNodeHash,
  TxValidationCode,
  type Version,
  verifyMerkleAuditPath,
} from './portable.js';

export const ProofErrorCode = {
  INVALID: 'PROOF_INVALID',
} as const;

/** The state of a channel's ledger a peer vouches for by signing `encodeLedgerDigest`. */
export interface LedgerDigest {
  readonly channelId: string;
  /** Blocks in the ledger. */
  readonly height: number;
  /** Transactions (accumulator leaves) in the ledger. */
  readonly txCount: number;
  /** Root of the accumulator over `txCount` leaves. */
  readonly root: Bytes;
}

const DIGEST_DOMAIN = 'loom/ledger-digest/v1';

/** The bytes a peer signs for a digest; domain-separated from every other signed structure. */
export function encodeLedgerDigest(d: LedgerDigest): Bytes {
  return encodeValue([DIGEST_DOMAIN, d.channelId, d.height, d.txCount, d.root]);
}

/** Leaf input for one transaction (see the module comment). */
export function txLeafData(envelopeHash: Bytes, blockNum: number, txNum: number, validationCode: number): Bytes {
  return encodeValue([envelopeHash, blockNum, txNum, validationCode]);
}

export function txLeafHash(
  hash: HashFn,
  envelopeHash: Bytes,
  blockNum: number,
  txNum: number,
  validationCode: number,
): Bytes {
  return merkleLeafHash(hash, txLeafData(envelopeHash, blockNum, txNum, validationCode));
}

/** A transaction is leaf `leafIndex` of the tree a digest with `txCount === treeSize` describes. */
export interface TxProof {
  readonly channelId: string;
  readonly txId: string;
  readonly blockNum: number;
  readonly txNum: number;
  readonly validationCode: number;
  /** The transaction's envelope bytes as stored in its block. */
  readonly envelope: Bytes;
  readonly leafIndex: number;
  readonly treeSize: number;
  /** RFC 6962 audit path, leaf to root. */
  readonly auditPath: readonly Bytes[];
}

/** A key's version: the history entry, proven through the write in its transaction's rwset. */
export interface KeyProof {
  readonly namespace: string;
  readonly key: string;
  readonly version: Version;
  readonly isDelete: boolean;
  /** hash(value) of the write; empty for a delete. */
  readonly valueHash: Bytes;
  /** The writing transaction; must be VALID at `version`. */
  readonly tx: TxProof;
}

function invalid(reason: string): LoomError {
  return new LoomError(ProofErrorCode.INVALID, `proof invalid: ${reason}`, { details: { reason }, httpStatus: 400 });
}

const isIndex = (n: unknown): n is number => typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;

/** Throws PROOF_INVALID unless `proof` shows its transaction in the ledger `digest` describes. */
export function assertTxProof(proof: TxProof, digest: LedgerDigest, hash: HashFn, expectedTxId?: string): void {
  if (proof.channelId !== digest.channelId) throw invalid('proof is for another channel than the digest');
  if (expectedTxId !== undefined && proof.txId !== expectedTxId) throw invalid('proof is for another transaction');
  if (![proof.blockNum, proof.txNum, proof.leafIndex, proof.treeSize, proof.validationCode].every(isIndex)) {
    throw invalid('malformed numbers');
  }
  if (proof.treeSize !== digest.txCount) throw invalid('proof is against another digest (tree size differs)');
  if (proof.blockNum >= digest.height) throw invalid('block is beyond the digest height');
  if (proof.leafIndex >= proof.treeSize) throw invalid('leaf index beyond tree size');
  // The envelope must carry the claimed txId on the digest's channel.
  let channelId: string;
  let txId: string;
  try {
    const payload = decodePayload(decodeEnvelope(proof.envelope).payload);
    const ch = decodeChannelHeader(decodeHeader(payload.header).channelHeader);
    channelId = ch.channelId;
    txId = ch.txId;
  } catch (e) {
    throw invalid(`envelope unreadable: ${(e as Error).message}`);
  }
  if (channelId !== digest.channelId) throw invalid('envelope is for another channel');
  if (txId !== proof.txId) throw invalid('envelope carries another txId');
  const leaf = txLeafHash(hash, hash(proof.envelope), proof.blockNum, proof.txNum, proof.validationCode);
  if (!verifyMerkleAuditPath(hash, leaf, proof.leafIndex, proof.treeSize, proof.auditPath, digest.root)) {
    throw invalid('audit path does not lead to the digest root');
  }
}

export function verifyTxProof(proof: TxProof, digest: LedgerDigest, hash: HashFn, expectedTxId?: string): boolean {
  try {
    assertTxProof(proof, digest, hash, expectedTxId);
    return true;
  } catch {
    return false;
  }
}

/**
 * Throws PROOF_INVALID unless the key proof's transaction is a VALID transaction of the ledger at
 * exactly `version`, and its read-write set writes `key` in `namespace` with a value hashing to
 * `valueHash` (or deletes it). Pass `value` to also check the value itself.
 */
export function assertKeyProof(proof: KeyProof, digest: LedgerDigest, hash: HashFn, value?: Bytes): void {
  const { tx } = proof;
  if (tx.blockNum !== proof.version.blockNum || tx.txNum !== proof.version.txNum) {
    throw invalid('transaction is not at the claimed key version');
  }
  if (tx.validationCode !== TxValidationCode.VALID) throw invalid('the writing transaction was not valid');
  assertTxProof(tx, digest, hash);
  let writes: { key: string; isDelete: boolean; value: Bytes }[];
  try {
    const { rwset } = endorserTxRwSet(tx.envelope);
    writes = rwset.nsRwsets.filter((n) => n.namespace === proof.namespace).flatMap((n) => n.rwset.writes);
  } catch (e) {
    throw invalid(`transaction unreadable: ${(e as Error).message}`);
  }
  const w = writes.filter((x) => x.key === proof.key).at(-1);
  if (!w) throw invalid('the transaction does not write this key');
  if (w.isDelete !== proof.isDelete) throw invalid('the write is not the claimed put/delete');
  if (!w.isDelete && !bytesEqual(hash(w.value), proof.valueHash)) throw invalid('the written value has another hash');
  if (w.isDelete && proof.valueHash.length !== 0) throw invalid('a delete has no value hash');
  if (value !== undefined && (w.isDelete || !bytesEqual(hash(value), proof.valueHash))) {
    throw invalid('value does not match the proven write');
  }
}

export function verifyKeyProof(proof: KeyProof, digest: LedgerDigest, hash: HashFn, value?: Bytes): boolean {
  try {
    assertKeyProof(proof, digest, hash, value);
    return true;
  } catch {
    return false;
  }
}

/**
 * RFC 9162 §2.1.4.2: does `proof` show that the tree behind `older` is a prefix of the tree behind
 * `newer`? (Same channel; a ledger only appends.)
 */
export function verifyConsistency(
  older: LedgerDigest,
  newer: LedgerDigest,
  proof: readonly Bytes[],
  hash: HashFn,
): boolean {
  if (older.channelId !== newer.channelId) return false;
  const m = older.txCount;
  const n = newer.txCount;
  if (!isIndex(m) || !isIndex(n) || m > n || older.height > newer.height) return false;
  if (m === n) return proof.length === 0 && bytesEqual(older.root, newer.root);
  if (m === 0) return proof.length === 0;
  const path = (m & (m - 1)) === 0 ? [older.root, ...proof] : [...proof];
  if (path.length === 0) return false;
  let fn = m - 1;
  let sn = n - 1;
  while (fn % 2 === 1) {
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  let fr = path[0]!;
  let sr = path[0]!;
  for (const c of path.slice(1)) {
    if (sn === 0) return false;
    if (fn % 2 === 1 || fn === sn) {
      fr = merkleNodeHash(hash, c, fr);
      sr = merkleNodeHash(hash, c, sr);
      while (fn % 2 === 0 && fn !== 0) {
        fn = Math.floor(fn / 2);
        sn = Math.floor(sn / 2);
      }
    } else {
      sr = merkleNodeHash(hash, sr, c);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return sn === 0 && bytesEqual(fr, older.root) && bytesEqual(sr, newer.root);
}

export function assertConsistency(
  older: LedgerDigest,
  newer: LedgerDigest,
  proof: readonly Bytes[],
  hash: HashFn,
): void {
  if (!verifyConsistency(older, newer, proof, hash)) throw invalid('digests are not consistent');
}
