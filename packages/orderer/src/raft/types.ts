/** Data types of the Raft core. Everything here is plain data, so it can be encoded by `codec.ts`. */

export type EntryType = 'normal' | 'confChange';

export interface Entry {
  readonly term: number;
  readonly index: number;
  readonly type: EntryType;
  readonly data: Uint8Array;
}

/** What must be durable before a node sends the messages of the same Ready. `vote` is '' for none. */
export interface HardState {
  readonly term: number;
  readonly vote: string;
  readonly commit: number;
}

export interface ConfState {
  readonly voters: readonly string[];
  readonly learners: readonly string[];
}

export interface SnapshotMetadata {
  readonly index: number;
  readonly term: number;
  readonly confState: ConfState;
}

export interface Snapshot {
  readonly metadata: SnapshotMetadata;
  /** The application's state-machine snapshot; opaque to Raft. */
  readonly data: Uint8Array;
}

/**
 * One membership change at a time. `addVoter` only appears in the bootstrap entries a fresh
 * cluster writes for its initial members; callers add a node as a learner and then promote it.
 */
export type ConfChangeType = 'addLearner' | 'promote' | 'remove' | 'addVoter';

export interface ConfChange {
  readonly type: ConfChangeType;
  readonly nodeId: string;
}

export type Role = 'follower' | 'preCandidate' | 'candidate' | 'leader';

/** Volatile state the caller may want to observe; `leader` is '' when unknown. */
export interface SoftState {
  readonly leader: string;
  readonly role: Role;
}

interface MessageBase {
  readonly from: string;
  readonly to: string;
  readonly term: number;
}

export interface VoteRequest extends MessageBase {
  readonly type: 'preVote' | 'vote';
  readonly lastLogIndex: number;
  readonly lastLogTerm: number;
  /** Set on the vote a leader transfer triggers, so voters ignore their leader lease. */
  readonly transfer?: boolean;
}

export interface VoteResponse extends MessageBase {
  readonly type: 'preVoteResp' | 'voteResp';
  readonly reject: boolean;
}

export interface AppendRequest extends MessageBase {
  readonly type: 'app';
  readonly prevIndex: number;
  readonly prevTerm: number;
  readonly entries: readonly Entry[];
  readonly commit: number;
}

export interface AppendResponse extends MessageBase {
  readonly type: 'appResp';
  /** On success the follower's last matching index; on reject the rejected `prevIndex`. */
  readonly index: number;
  readonly reject: boolean;
  /** On reject: an index at or below which the follower's log may match, and its term there. */
  readonly rejectHint: number;
  readonly hintTerm: number;
}

export interface Heartbeat extends MessageBase {
  readonly type: 'heartbeat';
  readonly commit: number;
}

export interface HeartbeatResponse extends MessageBase {
  readonly type: 'heartbeatResp';
}

export interface InstallSnapshot extends MessageBase {
  readonly type: 'snapshot';
  readonly snapshot: Snapshot;
}

export interface TimeoutNow extends MessageBase {
  readonly type: 'timeoutNow';
}

export type Message =
  | VoteRequest
  | VoteResponse
  | AppendRequest
  | AppendResponse
  | Heartbeat
  | HeartbeatResponse
  | InstallSnapshot
  | TimeoutNow;

export type MessageType = Message['type'];

export interface Ready {
  /** Present when leader or role changed since the last Ready. */
  readonly softState?: SoftState;
  /** Present when it changed: persist it before sending `messages`. */
  readonly hardState?: HardState;
  /** Append to stable storage (replacing any suffix from `entries[0].index`) before sending `messages`. */
  readonly entries: readonly Entry[];
  /** A snapshot received from the leader: persist it and restore the state machine from it. */
  readonly snapshot?: Snapshot;
  /** Send only after `entries`, `hardState` and `snapshot` are durable. */
  readonly messages: readonly Message[];
  /** Apply in order, after persisting. Call `applyConfChange` for `confChange` entries. */
  readonly committedEntries: readonly Entry[];
}

export type ProgressState = 'probe' | 'replicate' | 'snapshot';

export interface ProgressStatus {
  readonly match: number;
  readonly next: number;
  readonly state: ProgressState;
  readonly isLearner: boolean;
  readonly inflight: number;
}

export interface RaftStatus {
  readonly id: string;
  readonly term: number;
  readonly vote: string;
  readonly commit: number;
  readonly applied: number;
  readonly leader: string;
  readonly role: Role;
  readonly firstIndex: number;
  readonly lastIndex: number;
  readonly confState: ConfState;
  readonly leadTransferee: string;
  /** Per-member replication progress; only on the leader. */
  readonly progress?: Readonly<Record<string, ProgressStatus>>;
}

export type RaftErrorCode =
  | 'NOT_LEADER'
  | 'LEADER_TRANSFER_IN_PROGRESS'
  | 'CONF_CHANGE_PENDING'
  | 'INVALID_CONF_CHANGE'
  | 'INVALID_ARGUMENT'
  | 'COMPACTED'
  | 'UNAVAILABLE';

/** The core's only error type; `code` is machine-readable, `leader` names the known leader if any. */
export class RaftError extends Error {
  readonly code: RaftErrorCode;
  readonly leader: string;
  constructor(code: RaftErrorCode, message: string, leader = '') {
    super(message);
    this.name = 'RaftError';
    this.code = code;
    this.leader = leader;
  }
}

const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder();

/** The data of a `confChange` entry: `type ':' nodeId` in UTF-8 (node ids never start with the type). */
export function encodeConfChange(cc: ConfChange): Uint8Array {
  return textEncoder.encode(`${cc.type}:${cc.nodeId}`);
}

export function decodeConfChange(data: Uint8Array): ConfChange {
  const text = textDecoder.decode(data);
  const colon = text.indexOf(':');
  const type = text.slice(0, colon);
  const nodeId = text.slice(colon + 1);
  if (colon <= 0 || nodeId === '') throw new RaftError('INVALID_CONF_CHANGE', `malformed conf change: ${text}`);
  if (type !== 'addLearner' && type !== 'promote' && type !== 'remove' && type !== 'addVoter') {
    throw new RaftError('INVALID_CONF_CHANGE', `unknown conf change type: ${type}`);
  }
  return { type, nodeId };
}
