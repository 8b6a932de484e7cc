/**
 * Turns contract classes (what a Fabric chaincode's index.ts exports as `contracts`) into a
 * chaincode: routes `ContractName:function` (or a bare function name, to the default contract),
 * converts arguments by declared type, runs beforeTransaction → function → afterTransaction, and
 * serves `org.hyperledger.fabric:GetMetadata`.
 */
import { ClientIdentity } from '../shim/client-identity.js';
import { newLogger } from '../shim/logger.js';
import { Shim } from '../shim/shim.js';
import type { ChaincodeStub } from '../shim/stub.js';
import type { ChaincodeInterface, ChaincodeResponse } from '../shim/types.js';
import type { Context } from './context.js';
import { Contract } from './contract.js';
import {
  type ContractInfo,
  declaredInfo,
  declaredParams,
  declaredReturns,
  declaredTransactions,
  designParamTypes,
  designReturnType,
  isDeclaredDefault,
  registeredObjects,
} from './decorators.js';
import { parameterNames } from './param-names.js';
import { SCHEMA_REF_PREFIX, type Schema, toSchema, validateValue } from './schema.js';
import { JSONSerializer } from './serializer.js';

export const SYSTEM_CONTRACT_NAME = 'org.hyperledger.fabric';
export const METADATA_SCHEMA_URL = 'https://hyperledger.github.io/fabric-chaincode-node/main/api/contract-schema.json';

export interface ParameterMetadata {
  name: string;
  description: string;
  schema: Schema;
}
export interface TransactionMetadata {
  name: string;
  tag: string[];
  parameters: ParameterMetadata[];
  returns?: Schema;
}
export interface ContractMetadata {
  name: string;
  contractInstance: { name: string; default?: true };
  transactions: TransactionMetadata[];
  info: ContractInfo;
}
export interface ChaincodeMetadata {
  $schema: string;
  info: ContractInfo;
  contracts: Record<string, ContractMetadata>;
  components: { schemas: Record<string, Schema> };
}

export interface ChaincodeFromContractOptions {
  /** The chaincode's title and version in the metadata (the bin takes them from package.json). */
  title?: string;
  version?: string;
  serializer?: JSONSerializer;
}

interface TransactionEntry {
  name: string;
  commit: boolean;
  parameters: ParameterMetadata[];
  /** Declared per parameter: conversion applies only to what is declared. */
  declared: boolean[];
  returns: Schema | undefined;
}

interface ContractEntry {
  instance: Contract;
  name: string;
  transactions: Map<string, TransactionEntry>;
  info: ContractInfo;
  isDefault: boolean;
}

type ContractClass = new () => Contract;

const baseMembers = new Set(Object.getOwnPropertyNames(Contract.prototype));

export class ChaincodeFromContract implements ChaincodeInterface {
  readonly #contracts = new Map<string, ContractEntry>();
  readonly #default: ContractEntry;
  readonly #serializer: JSONSerializer;
  readonly #opts: ChaincodeFromContractOptions;
  readonly #logger = newLogger('contract');
  #metadata: ChaincodeMetadata | undefined;

  constructor(contractClasses: ContractClass[], opts: ChaincodeFromContractOptions = {}) {
    if (!Array.isArray(contractClasses) || contractClasses.length === 0) {
      throw new Error('at least one contract class is required');
    }
    this.#opts = opts;
    this.#serializer = opts.serializer ?? new JSONSerializer();
    let declaredDefault: ContractEntry | undefined;
    for (const cls of contractClasses) {
      if (typeof cls !== 'function' || !(cls.prototype instanceof Contract || cls === Contract)) {
        throw new Error(`${(cls as { name?: string })?.name ?? String(cls)} is not a Contract class`);
      }
      const instance = new cls();
      const entry = describeContract(cls, instance, opts);
      if (this.#contracts.has(entry.name) || entry.name === SYSTEM_CONTRACT_NAME) {
        throw new Error(`duplicate contract name ${entry.name}`);
      }
      this.#contracts.set(entry.name, entry);
      if (isDeclaredDefault(cls)) {
        if (declaredDefault !== undefined) throw new Error('more than one contract is marked @Default()');
        declaredDefault = entry;
      }
    }
    this.#default = declaredDefault ?? [...this.#contracts.values()][0]!;
    this.#default.isDefault = true;
  }

  async Init(stub: ChaincodeStub): Promise<ChaincodeResponse> {
    const { fcn } = stub.getFunctionAndParameters();
    if (fcn === '') return Shim.success();
    return this.Invoke(stub);
  }

  async Invoke(stub: ChaincodeStub): Promise<ChaincodeResponse> {
    const { fcn, params } = stub.getFunctionAndParameters();
    const sep = fcn.indexOf(':');
    const contractName = sep < 0 ? undefined : fcn.slice(0, sep);
    const txName = sep < 0 ? fcn : fcn.slice(sep + 1);
    if (contractName === SYSTEM_CONTRACT_NAME) {
      if (txName === 'GetMetadata') return Shim.success(JSON.stringify(this.getMetadata()));
      return Shim.error(`You've asked to invoke a function that does not exist: ${fcn}`);
    }
    const entry = contractName === undefined ? this.#default : this.#contracts.get(contractName);
    if (entry === undefined) return Shim.error(`Contract name is not known: ${contractName}`);
    try {
      const ctx = entry.instance.createContext();
      ctx.setChaincodeStub(stub);
      try {
        ctx.setClientIdentity(new ClientIdentity(stub));
      } catch (e) {
        this.#logger.debug('no client identity for tx %s: %s', stub.getTxID(), (e as Error).message);
      }
      const tx = entry.transactions.get(txName);
      if (tx === undefined) {
        const r = await entry.instance.unknownTransaction(ctx);
        return Shim.success(this.#serializer.toBuffer(r));
      }
      const args = this.#convertArguments(tx, stub.getBufferArgs().slice(1), params.length);
      await entry.instance.beforeTransaction(ctx);
      const fn = (entry.instance as unknown as Record<string, (ctx: Context, ...a: unknown[]) => unknown>)[tx.name]!;
      const result = await fn.call(entry.instance, ctx, ...args);
      await entry.instance.afterTransaction(ctx, result);
      return Shim.success(this.#serializer.toBuffer(result, tx.returns));
    } catch (e) {
      const message = e instanceof Error ? e.message : String(e);
      this.#logger.info('%s failed in tx %s: %s', fcn, stub.getTxID(), message);
      return Shim.error(message);
    }
  }

  #convertArguments(tx: TransactionEntry, raw: Uint8Array[], count: number): unknown[] {
    if (tx.declared.some((d) => d) && count !== tx.parameters.length) {
      throw new Error(`Expected ${tx.parameters.length} parameters, but ${count} have been supplied`);
    }
    const resolve = (ref: string) => registeredObjects().get(ref.slice(SCHEMA_REF_PREFIX.length))?.schema;
    return raw.map((arg, i) => {
      const p = tx.parameters[i];
      if (p === undefined || !tx.declared[i]) return Buffer.from(arg).toString('utf8');
      let value: unknown;
      try {
        value = this.#serializer.fromBuffer(arg, p.schema);
      } catch (e) {
        throw new Error(`Unable to validate parameter due to error: ${p.name}: ${(e as Error).message}`);
      }
      const errors = validateValue(value, p.schema, resolve, p.name);
      if (errors.length > 0) throw new Error(`Unable to validate parameter due to error: ${errors.join('; ')}`);
      return value;
    });
  }

  /** The contract metadata in Fabric's shape (what `org.hyperledger.fabric:GetMetadata` returns). */
  getMetadata(): ChaincodeMetadata {
    if (this.#metadata !== undefined) return this.#metadata;
    const contracts: Record<string, ContractMetadata> = {};
    for (const c of this.#contracts.values()) {
      contracts[c.name] = {
        name: c.name,
        contractInstance: c.isDefault ? { name: c.name, default: true } : { name: c.name },
        transactions: [...c.transactions.values()].map((t) => ({
          name: t.name,
          tag: t.commit ? ['submitTx'] : ['evaluate'],
          parameters: t.parameters,
          ...(t.returns === undefined ? {} : { returns: t.returns }),
        })),
        info: c.info,
      };
    }
    contracts[SYSTEM_CONTRACT_NAME] = {
      name: SYSTEM_CONTRACT_NAME,
      contractInstance: { name: SYSTEM_CONTRACT_NAME },
      transactions: [{ name: 'GetMetadata', tag: ['evaluate'], parameters: [], returns: { type: 'string' } }],
      info: { title: 'Fabric system contract', version: '' },
    };
    const schemas: Record<string, Schema> = {};
    for (const [name, o] of [...registeredObjects()].sort((a, b) => (a[0] < b[0] ? -1 : 1))) {
      schemas[name] = o.schema;
    }
    this.#metadata = {
      $schema: METADATA_SCHEMA_URL,
      info: { title: this.#opts.title ?? '', version: this.#opts.version ?? '' },
      contracts,
      components: { schemas },
    };
    return this.#metadata;
  }
}

function describeContract(cls: ContractClass, instance: Contract, opts: ChaincodeFromContractOptions): ContractEntry {
  const proto = Object.getPrototypeOf(instance) as object;
  const name = instance.getName();
  let decls = declaredTransactions(proto);
  if (decls.length === 0) {
    // No @Transaction anywhere: every public method is a submit transaction, as in Fabric.
    decls = publicMethods(proto).map((m) => ({ name: m, commit: true }));
  }
  const transactions = new Map<string, TransactionEntry>();
  for (const d of decls) {
    const fn = (proto as Record<string, unknown>)[d.name];
    if (typeof fn !== 'function') throw new Error(`${name}.${d.name} is not a function`);
    transactions.set(d.name, describeTransaction(proto, d.name, d.commit, fn));
  }
  const info = declaredInfo(cls);
  return {
    instance,
    name,
    transactions,
    info: { title: info?.title ?? name, version: info?.version ?? opts.version ?? '', ...info },
    isDefault: false,
  };
}

function describeTransaction(proto: object, method: string, commit: boolean, fn: Function): TransactionEntry {
  const explicit = declaredParams(proto, method);
  const designTypes = designParamTypes(proto, method)?.slice(1);
  const names = parameterNames(fn)?.slice(1) ?? explicit.map((p) => p.name);
  const parameters: ParameterMetadata[] = [];
  const declared: boolean[] = [];
  names.forEach((pname, i) => {
    const ex = explicit.find((p) => p.name === pname);
    const schema = toSchema(ex?.type) ?? toSchema(designTypes?.[i]);
    parameters.push({ name: pname, description: ex?.description ?? '', schema: schema ?? { type: 'string' } });
    declared.push(schema !== undefined);
  });
  const returns = toSchema(declaredReturns(proto, method)) ?? toSchema(designReturnType(proto, method));
  return { name: method, commit, parameters, declared, returns };
}

function publicMethods(proto: object): string[] {
  const out: string[] = [];
  for (
    let p: object | null = proto;
    p !== null && p !== Contract.prototype && p !== Object.prototype;
    p = Object.getPrototypeOf(p)
  ) {
    for (const k of Object.getOwnPropertyNames(p)) {
      if (k === 'constructor' || k.startsWith('_') || baseMembers.has(k) || out.includes(k)) continue;
      const d = Object.getOwnPropertyDescriptor(p, k);
      if (d !== undefined && typeof d.value === 'function') out.push(k);
    }
  }
  return out;
}
