export {
  decodeEntry,
  decodeHardState,
  decodeMessage,
  decodeSnapshot,
  encodeEntry,
  encodeHardState,
  encodeMessage,
  encodeSnapshot,
} from './codec.js';
export { RaftNode, type RaftNodeConfig } from './raft-node.js';
export { EMPTY_CONF_STATE, MemoryRaftStorage, type RaftStorage } from './storage.js';
export * from './types.js';
