/** Test fixtures shared by every package: `import { createTestOrg } from '@loom/common/testing/index'`. */
export {
  createTestCa,
  createTestOrg,
  type IssueOptions,
  type TestCa,
  type TestCaOptions,
  type TestIdentity,
  type TestOrg,
} from './test-ca.js';
export { type MspSource, writeMspDir } from '../msp/msp-dir.js';
export { seededRandom } from './random.js';
