export * from './deliver-client.js';
export * from './frames.js';
