export * from './config.js';
export * from './peer-node.js';
export * from './routes.js';
export * from './ledger-feeds.js';
