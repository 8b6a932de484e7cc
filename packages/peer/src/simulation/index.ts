// Public surface of transaction simulation.
export { CommitGate } from './commit-gate.js';
export {
  type Pagination,
  type QueryPage,
  type QueryRecord,
  type ResultIterator,
  SimulationErrorCode,
  type SimulationLedger,
  type SimulationResults,
  startSimulation,
  TxSimulator,
  type TxSimulatorOptions,
} from './tx-simulator.js';
