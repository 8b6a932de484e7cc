import { PrivateAssetContract } from './private-asset.js';

export { PrivateAssetContract } from './private-asset.js';

export const contracts: (typeof PrivateAssetContract)[] = [PrivateAssetContract];
