export * from './ca-client.js';
export { type MspFolderContents, writeMspFolder } from './msp-folder.js';
