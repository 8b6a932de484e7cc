/**
 * What block validation is given and what it hands back. Everything that touches the world (state,
 * identities, policies, signature checking) is injected, so `validateBlock` stays a pure function of
 * the block and these inputs.
 */
import type {
  Bytes,
  ChaincodeEvent,
  HashFn,
  HeaderType,
  SerializedIdentity,
  SignerIdentity,
  TxValidationCode,
  Version,
} from '@loom/common';
import type { SignatureVerifier } from './signature-verifier.js';
import type { StateReader } from './state-reader.js';

/**
 * A validated identity with the key material signatures are checked against. `MspManager`'s
 * `ValidatedIdentity` (certPem) satisfies it; a test MSP may hand out a bare SPKI key instead.
 */
export interface ValidationIdentity extends SignerIdentity {
  readonly certPem?: string;
  readonly publicKeyDer?: Bytes;
}

/** Turns a wire identity into a validated one, or throws (unknown MSP, wrong CA, revoked, expired, ...). */
export interface IdentityDeserializer {
  deserialize(serialized: SerializedIdentity): ValidationIdentity | Promise<ValidationIdentity>;
}

/** A parsed endorsement policy, evaluated over the distinct verified endorsers of one transaction. */
export interface EndorsementPolicy {
  evaluate(endorsers: readonly SignerIdentity[]): boolean;
}

/**
 * Where endorsement policies come from (the chaincode definitions and collection configs committed
 * on the channel). Lookups may be async; results are used within one block only.
 */
export interface EndorsementPolicySource {
  /** The chaincode-level policy of a namespace; undefined when no such chaincode is defined (INVALID_CHAINCODE). */
  chaincodePolicy(namespace: string): EndorsementPolicy | undefined | Promise<EndorsementPolicy | undefined>;
  /** A collection's own endorsement policy; undefined when the collection has none (the chaincode's applies). */
  collectionPolicy(
    namespace: string,
    collection: string,
  ): EndorsementPolicy | undefined | Promise<EndorsementPolicy | undefined>;
  /** Parses a key's `VALIDATION_PARAMETER` metadata; throws when it is malformed (the write then fails policy). */
  keyLevelPolicy(validationParameter: Bytes): EndorsementPolicy;
  /**
   * A system namespace's rule for one public key, which replaces every other policy for a write of
   * that key: `_lifecycle`'s `approvals/<name>/<sequence>/<mspId>` needs a peer of `<mspId>`.
   * Undefined: no rule (the usual key-level/chaincode policies apply).
   */
  keyRule?(
    namespace: string,
    key: string,
  ): { readonly policy: EndorsementPolicy; readonly requirement: string } | undefined;
}

export interface BlockValidationContext {
  readonly channelId: string;
  readonly stateReader: StateReader;
  readonly msp: IdentityDeserializer;
  readonly policies: EndorsementPolicySource;
  readonly signatureVerifier: SignatureVerifier;
  /** SHA-256 (node:crypto's on a peer). */
  readonly hash: HashFn;
}

/**
 * One change to world state from a valid transaction. Public writes carry the chaincode namespace
 * and the key; hashed private writes carry `collection`, the key as lowercase hex of its hash and the
 * value hash, and belong in `hashedNamespace(namespace, collection)`.
 */
export interface StateUpdate {
  readonly namespace: string;
  /** Undefined for public state; the collection name for a hashed private write. */
  readonly collection: string | undefined;
  readonly key: string;
  /**
   * `put`: set the value (metadata unchanged); `delete`: remove the key and its metadata;
   * `metadata`: replace the key's metadata entries and set its version (value unchanged); emitted
   * only for keys that exist at that point, as Fabric ignores metadata of missing keys.
   */
  readonly kind: 'put' | 'delete' | 'metadata';
  /** The value (public) or value hash (hashed private) for `put`; undefined otherwise. */
  readonly value: Bytes | undefined;
  readonly metadata: ReadonlyMap<string, Bytes> | undefined;
  /** For a hashed private delete: the value must be purged from the private store and its history. */
  readonly isPurge: boolean;
  readonly version: Version;
}

/** One history index entry: a public key written (or deleted) by a valid transaction. */
export interface HistoryEntry {
  readonly namespace: string;
  readonly key: string;
  readonly version: Version;
  readonly isDelete: boolean;
}

export interface TransactionValidationInfo {
  readonly txNum: number;
  /** Empty when the envelope was too malformed to read one. */
  readonly txId: string;
  readonly code: TxValidationCode;
  /** Undefined when the channel header could not be read. */
  readonly headerType: HeaderType | undefined;
  /** The channel header's timestamp (ms since the epoch); 0 when it could not be read. */
  readonly timestamp: number;
  /**
   * A CONFIG transaction: accepted as VALID here without any checks beyond the channel id, and
   * contributing no state updates. The committer must validate and apply it through the config path.
   */
  readonly isConfig: boolean;
  /** hash(envelope bytes): the accumulator's leaf input. */
  readonly envelopeHash: Bytes;
  /** The chaincode event of a valid endorser transaction, if it set one. */
  readonly chaincodeEvent: ChaincodeEvent | undefined;
  /** Why the transaction is invalid, for logs; undefined when VALID. */
  readonly reason: string | undefined;
}

export interface BlockValidationResult {
  readonly blockNum: number;
  /** One TxValidationCode per transaction: what goes into `metadata.txValidationCodes`. */
  readonly codes: Uint8Array;
  readonly updates: StateUpdate[];
  readonly history: HistoryEntry[];
  readonly transactions: TransactionValidationInfo[];
}
