// The gateway's HTTP contract (routes, bodies, errors) shared by the peer and the client SDK. Portable.
export * from './certificate-key.js';
export * from './frames.js';
export * from './messages.js';
export * from './routes.js';
