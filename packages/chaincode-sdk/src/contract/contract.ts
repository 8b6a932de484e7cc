import { Context } from './context.js';

const CONTRACT_MARKER = Symbol.for('loom.chaincode.contract');

/**
 * Base class of a smart contract, as in fabric-contract-api. Its transaction functions take the
 * Context first, then the transaction's arguments converted to their declared types.
 */
export class Contract {
  readonly #name: string;

  constructor(name?: string) {
    const n = name?.trim() || new.target.name;
    if (!/^[A-Za-z0-9._-]+$/.test(n)) throw new Error(`invalid contract name "${n}"`);
    this.#name = n;
    Object.defineProperty(this, CONTRACT_MARKER, { value: true });
  }

  /** True for Contract instances, also across copies of this module. */
  static _isContract(obj: unknown): obj is Contract {
    return obj instanceof Contract || (typeof obj === 'object' && obj !== null && CONTRACT_MARKER in obj);
  }

  getName(): string {
    return this.#name;
  }

  /** Runs before every transaction function of this contract. */
  async beforeTransaction(_ctx: Context): Promise<void> {}

  /** Runs after every transaction function of this contract that did not throw, with its result. */
  async afterTransaction(_ctx: Context, _result: unknown): Promise<void> {}

  /** Runs instead of a transaction function that does not exist. */
  async unknownTransaction(ctx: Context): Promise<unknown> {
    const { fcn } = ctx.stub.getFunctionAndParameters();
    throw new Error(`You've asked to invoke a function that does not exist: ${fcn}`);
  }

  createContext(): Context {
    return new Context();
  }
}
