/**
 * fabric-contract-api's decorators, for TypeScript's legacy `experimentalDecorators` with
 * `emitDecoratorMetadata` (parameter and property types then come from `design:*` metadata; the
 * explicit forms `@Param(name, type)`, `@Returns(type)`, `@Property(name, type)` work without it).
 * They only record metadata; ChaincodeFromContract reads it.
 */
import 'reflect-metadata';
import { type Schema, toSchema } from './schema.js';

const TRANSACTIONS = 'loom:contract:transactions';
const PARAMS = 'loom:contract:params';
const RETURNS = 'loom:contract:returns';
const INFO = 'loom:contract:info';
const DEFAULT = 'loom:contract:default';
const PROPERTIES = 'loom:object:properties';

export interface TransactionDeclaration {
  name: string;
  /** Submit (true) or evaluate-only (false). */
  commit: boolean;
}
export interface ParamDeclaration {
  name: string;
  type: unknown;
  description: string;
}

export interface ContractInfo {
  title?: string;
  description?: string;
  version?: string;
  license?: { name: string; url?: string };
  contact?: { name?: string; url?: string; email?: string };
  [key: string]: unknown;
}

/** The @Object classes, by name: their schemas land in the metadata's `components.schemas`. */
export interface ObjectDeclaration {
  name: string;
  constructor: Function;
  schema: Schema;
}
const objectRegistry = new Map<string, ObjectDeclaration>();

export function registeredObjects(): ReadonlyMap<string, ObjectDeclaration> {
  return objectRegistry;
}

type Proto = object;

function ownList<T>(key: string, target: Proto): T[] {
  const own = Reflect.getOwnMetadata(key, target) as T[] | undefined;
  if (own !== undefined) return own;
  const inherited = (Reflect.getMetadata(key, target) as T[] | undefined) ?? [];
  const copy = [...inherited];
  Reflect.defineMetadata(key, copy, target);
  return copy;
}

/** Marks a method as a transaction; `commit = false` makes it evaluate-only. */
export function Transaction(commit = true): MethodDecorator {
  return (target, propertyKey) => {
    const list = ownList<TransactionDeclaration>(TRANSACTIONS, target);
    const name = String(propertyKey);
    const existing = list.findIndex((t) => t.name === name);
    if (existing >= 0) list.splice(existing, 1);
    list.push({ name, commit });
  };
}

/** The transaction's return type (`'string'`, `'boolean'`, `'Asset'`, `'Asset[]'`, ...). */
export function Returns(returnType: string): MethodDecorator {
  return (target, propertyKey) => {
    Reflect.defineMetadata(RETURNS, returnType, target, propertyKey);
  };
}

/** Names a transaction parameter's type (and description), overriding `design:paramtypes`. */
export function Param(paramName: string, paramType: string, description?: string): MethodDecorator {
  return (target, propertyKey) => {
    const list = (Reflect.getOwnMetadata(PARAMS, target, propertyKey) as ParamDeclaration[] | undefined) ?? [];
    list.push({ name: paramName, type: paramType, description: description ?? '' });
    Reflect.defineMetadata(PARAMS, list, target, propertyKey);
  };
}

/** Contract information for the metadata (`title`, `version`, ...). */
export function Info(info: ContractInfo = {}): ClassDecorator {
  return (target) => {
    Reflect.defineMetadata(INFO, { ...info }, target);
  };
}

/** Marks the contract that gets calls without a `ContractName:` prefix. */
export function Default(): ClassDecorator {
  return (target) => {
    Reflect.defineMetadata(DEFAULT, true, target);
  };
}

/** Declares a data type: its @Property fields become a schema in `components.schemas`. */
function ObjectDecorator(): ClassDecorator {
  return (target) => {
    const props =
      (Reflect.getMetadata(PROPERTIES, target.prototype) as Record<string, Schema> | undefined) ??
      ({} as Record<string, Schema>);
    const name = target.name;
    objectRegistry.set(name, {
      name,
      constructor: target,
      schema: {
        $id: name,
        type: 'object',
        additionalProperties: false,
        properties: { ...props },
        required: Object.keys(props),
      },
    });
  };
}
export { ObjectDecorator as Object };

/** Declares a field of an @Object type; `type` defaults to the field's `design:type`. */
export function Property(name?: string, type?: string): PropertyDecorator {
  return (target, propertyKey) => {
    const propName = name ?? String(propertyKey);
    const declared = type ?? Reflect.getMetadata('design:type', target, propertyKey);
    const own =
      (Reflect.getOwnMetadata(PROPERTIES, target) as Record<string, Schema> | undefined) ??
      ({ ...((Reflect.getMetadata(PROPERTIES, target) as Record<string, Schema> | undefined) ?? {}) } as Record<
        string,
        Schema
      >);
    own[propName] = toSchema(declared) ?? {};
    Reflect.defineMetadata(PROPERTIES, own, target);
  };
}

// ---- readers for ChaincodeFromContract ----

export function declaredTransactions(proto: Proto): TransactionDeclaration[] {
  return (Reflect.getMetadata(TRANSACTIONS, proto) as TransactionDeclaration[] | undefined) ?? [];
}
export function declaredParams(proto: Proto, method: string): ParamDeclaration[] {
  return (Reflect.getMetadata(PARAMS, proto, method) as ParamDeclaration[] | undefined) ?? [];
}
export function declaredReturns(proto: Proto, method: string): unknown {
  return Reflect.getMetadata(RETURNS, proto, method) ?? undefined;
}
export function designParamTypes(proto: Proto, method: string): unknown[] | undefined {
  return Reflect.getMetadata('design:paramtypes', proto, method) as unknown[] | undefined;
}
export function designReturnType(proto: Proto, method: string): unknown {
  return Reflect.getMetadata('design:returntype', proto, method);
}
export function declaredInfo(cls: Function): ContractInfo | undefined {
  return Reflect.getMetadata(INFO, cls) as ContractInfo | undefined;
}
export function isDeclaredDefault(cls: Function): boolean {
  return Reflect.getOwnMetadata(DEFAULT, cls) === true;
}
