import { FaultyContract } from './faulty.js';

export { FaultyContract } from './faulty.js';

export const contracts: (typeof FaultyContract)[] = [FaultyContract];
