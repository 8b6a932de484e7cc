import { AssetTransferContract } from './assetTransfer.js';

export { Asset } from './asset.js';
export { AssetTransferContract } from './assetTransfer.js';

export const contracts: (typeof AssetTransferContract)[] = [AssetTransferContract];
