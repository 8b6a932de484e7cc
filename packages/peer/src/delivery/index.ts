export * from './deliver-client.js';
export * from './frames.js';
export * from './tls-fetch.js';
