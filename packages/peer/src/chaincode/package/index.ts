// Chaincode packages (Fabric's layout) and the peer's install store.
export {
  createInstallStore,
  ChaincodeInstallErrorCode,
  type ChaincodeInstallStore,
  findPeerNodeModules,
  type InstallResult,
  type InstallStoreOptions,
  type InstalledChaincode,
  type LaunchSpec,
  type RuntimeLaunchSpec,
} from './install-store.js';
export {
  buildPackage,
  type CcaasConnection,
  CHAINCODE_TYPES,
  ChaincodePackageErrorCode,
  type ChaincodeType,
  checkLabel,
  indexDefinitions,
  LABEL_PATTERN,
  MAX_PACKAGE_BYTES,
  type PackageContents,
  type PackagedIndex,
  type ParsedPackage,
  packageIdOf,
  parsePackage,
  parsePackageId,
} from './package.js';
export { createPackage, readChaincodeDir } from './package-dir.js';
export { DEFAULT_TAR_LIMITS, readTar, type TarEntry, type TarLimits, writeTar } from './tar.js';
