export * from './errors.js';
export * from './identity-types.js';
