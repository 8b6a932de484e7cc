export * from './error-handler.js';
export * from './operations-server.js';
