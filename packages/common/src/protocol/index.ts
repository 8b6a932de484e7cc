export * from './channel-config.js';
export * from './merkle.js';
export * from './messages.js';
export * from './transactions.js';
export * from './validation-codes.js';
