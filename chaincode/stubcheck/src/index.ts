export { chaincode } from './stubcheck.js';
