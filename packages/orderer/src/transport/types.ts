/** How consenters of a channel reach each other. Implementations: libp2p (production), memory (tests). */

/** A consenter as the transport needs it (from the channel config's consenter set). */
export interface ClusterMember {
  readonly id: string;
  readonly host: string;
  readonly raftPort: number;
  /** PEM of the consenter's orderer signing certificate; binds its transport identity. */
  readonly identityCert: string;
}

/** Called with a frame from an authenticated consenter of the channel. */
export type FrameHandler = (from: string, data: Uint8Array) => void;

export interface ClusterTransport {
  /** Starts (or updates) participation in a channel: who may talk, and where frames go. */
  join(channel: string, self: string, members: readonly ClusterMember[], handler: FrameHandler): void;
  /** New consenter set from a config block; connections to removed members are dropped. */
  updateMembers(channel: string, members: readonly ClusterMember[]): void;
  leave(channel: string): void;
  /** Best effort, never blocks: Raft tolerates lost messages. */
  send(channel: string, to: string, data: Uint8Array): void;
  stop(): Promise<void>;
}
