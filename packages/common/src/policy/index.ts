export * from './ast.js';
export * from './channel-policies.js';
export * from './evaluate.js';
export * from './parse.js';
