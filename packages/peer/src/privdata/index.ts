export { txCollectionHashes, txIdsOf, validCollectionHashes } from './block-hashes.js';
export {
  type CollectionInfo,
  keyHashHex,
  type MissingEntry,
  PrivateDataStore,
  type TxCollectionHashes,
  writesMatchHashes,
} from './private-store.js';
export { createPrivateDataService, type PrivateDataService, type PrivateDataServiceOptions } from './service.js';
export {
  type ChannelTransientStore,
  createTransientStoreOnKv,
  openTransientStore,
  type TransientEntry,
  type TransientStore,
} from './transient-store.js';
export {
  createHttpPrivateDataTransport,
  type PrivateDataPeer,
  PrivateDataErrorCode,
  privateDataRoutes,
  type PrivateDataTransport,
  type PulledItem,
  type PullItem,
  type PushMessage,
} from './transport.js';
