import type { ClientIdentity } from '../shim/client-identity.js';
import { type ChaincodeLogger, newLogger, setDefaultLogLevel } from '../shim/logger.js';
import type { ChaincodeStub } from '../shim/stub.js';

export interface ContextLogging {
  getLogger(name?: string): ChaincodeLogger;
  setLevel(level: string): void;
}

/**
 * The transaction context handed to every transaction function, as in fabric-contract-api.
 * Subclass it (and override `Contract.createContext`) to carry application state.
 */
export class Context {
  stub!: ChaincodeStub;
  clientIdentity!: ClientIdentity;
  logging: ContextLogging;

  constructor() {
    const loggers = new Map<string, ChaincodeLogger>();
    this.logging = {
      getLogger: (name?: string) => {
        const n = name ? `contract:${name}` : 'contract';
        let l = loggers.get(n);
        if (l === undefined) loggers.set(n, (l = newLogger(n)));
        return l;
      },
      setLevel: (level: string) => {
        setDefaultLogLevel(level);
        for (const l of loggers.values()) l.level = level as ChaincodeLogger['level'];
      },
    };
  }

  setChaincodeStub(stub: ChaincodeStub): void {
    this.stub = stub;
  }

  setClientIdentity(clientIdentity: ClientIdentity): void {
    this.clientIdentity = clientIdentity;
  }
}
