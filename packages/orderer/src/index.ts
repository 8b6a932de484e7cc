// Public surface of @loom/orderer.
export {
  type BatchLimits,
  type BlockCutter,
  createBlockCutter,
  isConfigEnvelope,
  type OrderedResult,
} from './blockcutter.js';
export { Chain, type ChainOptions, type ChainStatus, type OrderedAt, OrdererErrorCode } from './chain.js';
export { channelResources, type ChannelResources } from './channel-resources.js';
export { loadOrdererConfig, type OrdererConfig, type OrdererHandle, startOrderer } from './orderer.js';
export { type ChannelInfo, Registrar } from './registrar.js';
export { authorizeBroadcast, checkEnvelope } from './server/envelope-checks.js';
export {
  type BroadcastResponse,
  DELIVER_CONTENT_TYPE,
  ordererRoutes,
  participationRoutes,
  routeUrl,
} from './server/routes.js';
export { type BlockStore, openBlockStore } from './storage/block-store.js';
export { type KvStore, LevelKv, MemoryKv } from './storage/kv.js';
export { DurableRaftStorage } from './storage/raft-log.js';
export { FrameReader, frame } from './transport/frames.js';
export { MemoryHub } from './transport/memory.js';
export type { ClusterMember, ClusterTransport } from './transport/types.js';
