export * from './network-config.js';
export * from './schema.js';
export * from './units.js';
