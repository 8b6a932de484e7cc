/**
 * fabric-contract-api compatibility: decorators, routing, argument conversion, hooks, metadata and
 * client identity, run through the real shim against the fake peer.
 */
import {
  ChaincodeFromContract,
  Context,
  Contract,
  Default,
  Info,
  Object as DataType,
  Param,
  Property,
  Returns,
  Shim,
  Transaction,
} from '@loom/chaincode-sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeUserCert } from './certs.js';
import { FakePeer, type TxOutcome } from './fake-peer.js';

const calls: string[] = [];

@DataType()
class Car {
  @Property('make', 'string')
  make = '';
  @Property('doors', 'number')
  doors = 0;
}

class CarContext extends Context {
  readonly startedAt = 'custom';
}

@Info({ title: 'Car contract', version: '2.1.0', description: 'cars' })
@Default()
class CarContract extends Contract {
  constructor() {
    super('cars');
  }

  override createContext(): Context {
    return new CarContext();
  }

  override async beforeTransaction(ctx: Context): Promise<void> {
    calls.push(`before:${ctx.stub.getFunctionAndParameters().fcn}`);
  }

  override async afterTransaction(_ctx: Context, result: unknown): Promise<void> {
    calls.push(`after:${JSON.stringify(result)}`);
  }

  @Transaction()
  @Param('id', 'string', 'the car id')
  @Param('car', 'Car')
  async addCar(ctx: Context, id: string, car: Car): Promise<void> {
    calls.push('addCar');
    await ctx.stub.putState(id, Buffer.from(JSON.stringify(car)));
  }

  @Transaction(false)
  @Returns('Car')
  async getCar(ctx: Context, id: string): Promise<Car> {
    return JSON.parse((await ctx.stub.getState(id)).toString()) as Car;
  }

  @Transaction(false)
  @Returns('string')
  async echo(_ctx: Context, text: string): Promise<string> {
    return text;
  }

  @Transaction(false)
  @Param('a', 'number')
  @Param('b', 'number')
  @Param('neg', 'boolean')
  @Returns('number')
  async add(_ctx: Context, a: number, b: number, neg: boolean): Promise<number> {
    return neg ? -(a + b) : a + b;
  }

  @Transaction(false)
  async whoAmI(ctx: Context): Promise<object> {
    const id = ctx.clientIdentity;
    return {
      id: id.getID(),
      msp: id.getMSPID(),
      role: id.getAttributeValue('role'),
      missing: id.getAttributeValue('nope'),
      isAdmin: id.assertAttributeValue('role', 'admin'),
      isAuditor: id.assertAttributeValue('role', 'auditor'),
      idBytes: Buffer.from(id.getIDBytes()).toString().startsWith('-----BEGIN CERTIFICATE-----'),
      ctxClass: (ctx as CarContext).startedAt,
    };
  }

  @Transaction()
  async fails(_ctx: Context): Promise<void> {
    throw new Error('deliberate failure');
  }

  helperNotATransaction(): string {
    return 'x';
  }
}

/** No decorators at all: every public method is a transaction, as in Fabric. */
class PlainContract extends Contract {
  async ping(_ctx: Context, who: string): Promise<string> {
    return `pong ${who}`;
  }
  async _private(): Promise<void> {}
}

class FallbackContract extends Contract {
  constructor() {
    super('fallback');
  }
  override async unknownTransaction(ctx: Context): Promise<string> {
    return `no such function ${ctx.stub.getFunctionAndParameters().fcn}`;
  }
}

let peer: FakePeer;
let chaincode: ChaincodeFromContract;
let closeConn: () => void;

beforeAll(async () => {
  peer = new FakePeer();
  const address = await peer.listen();
  chaincode = new ChaincodeFromContract([PlainContract, CarContract, FallbackContract], {
    title: 'cars-cc',
    version: '1.0.0',
  });
  const conn = Shim.start(chaincode, { peerAddress: address, chaincodeId: 'cars:1' });
  closeConn = () => conn.close();
  await conn.registered;
});
afterAll(async () => {
  closeConn();
  await peer.close();
});

function payloadOf(o: TxOutcome): { status: number; message: string; text: string } {
  if (o.type !== 'COMPLETED') throw new Error(`expected COMPLETED, got ERROR ${o.payload.message}`);
  const r = o.payload.response;
  return { status: r.status, message: r.message, text: Buffer.from(r.payload).toString() };
}

const call = async (args: string[], opts: Parameters<FakePeer['invoke']>[1] = {}) =>
  payloadOf(await peer.invoke(args, opts));

describe('routing', () => {
  it('routes bare names to the @Default() contract and ContractName:fn to the named one', async () => {
    expect(await call(['echo', 'hi'])).toEqual({ status: 200, message: '', text: 'hi' });
    expect(await call(['cars:echo', 'hi'])).toMatchObject({ status: 200, text: 'hi' });
    expect(await call(['PlainContract:ping', 'me'])).toMatchObject({ status: 200, text: '"pong me"' });
  });

  it("answers an unknown function with Fabric's message", async () => {
    expect(await call(['nope'])).toEqual({
      status: 500,
      message: "You've asked to invoke a function that does not exist: nope",
      text: '',
    });
    expect(await call(['cars:helperNotATransaction'])).toMatchObject({
      status: 500,
      message: "You've asked to invoke a function that does not exist: cars:helperNotATransaction",
    });
    expect(await call(['PlainContract:_private'])).toMatchObject({ status: 500 });
    expect(await call(['fallback:whatever'])).toMatchObject({
      status: 200,
      text: '"no such function fallback:whatever"',
    });
    expect(await call(['Nobody:fn'])).toMatchObject({ status: 500, message: 'Contract name is not known: Nobody' });
  });

  it('a transaction that throws returns status 500 with its message', async () => {
    expect(await call(['fails'])).toMatchObject({ status: 500, message: 'deliberate failure' });
  });

  it('Init with no function succeeds without calling a contract', async () => {
    expect(payloadOf(await peer.invoke([], { init: true }))).toMatchObject({ status: 200 });
  });
});

describe('hooks and conversion', () => {
  it('runs beforeTransaction, the function, then afterTransaction with the result', async () => {
    calls.length = 0;
    await call(['addCar', 'car1', JSON.stringify({ make: 'Volvo', doors: 5 })]);
    expect(calls).toEqual(['before:addCar', 'addCar', 'after:undefined']);
    calls.length = 0;
    await call(['echo', 'x']);
    expect(calls).toEqual(['before:echo', 'after:"x"']);
    calls.length = 0;
    await call(['nope']);
    expect(calls).toEqual([]);
  });

  it('converts arguments by declared type and serializes results by declared return type', async () => {
    expect(await call(['add', '2', '3.5', 'false'])).toMatchObject({ status: 200, text: '5.5' });
    expect(await call(['add', '2', '3', 'true'])).toMatchObject({ status: 200, text: '-5' });
    expect(await call(['getCar', 'car1'])).toMatchObject({ status: 200, text: '{"make":"Volvo","doors":5}' });
  });

  it('rejects arguments that do not match their declared types', async () => {
    const notNumber = await call(['add', 'two', '3', 'false']);
    expect(notNumber.status).toBe(500);
    expect(notNumber.message).toMatch(/^Unable to validate parameter/);
    expect((await call(['add', '1', '2', 'maybe'])).message).toMatch(/not a boolean/);
    expect((await call(['addCar', 'c2', '{"make":"Saab"}'])).message).toMatch(/required property 'doors'/);
    expect((await call(['addCar', 'c2', '{"make":"Saab","doors":"four"}'])).message).toMatch(
      /car\.doors should be number/,
    );
    expect((await call(['addCar', 'c2', 'not json'])).message).toMatch(/not valid JSON/);
    expect((await call(['add', '1', '2'])).message).toBe('Expected 3 parameters, but 2 have been supplied');
  });
});

describe('client identity', () => {
  it('parses the creator certificate: x509 id, MSP and attributes', async () => {
    const cert = await makeUserCert({ role: 'admin', 'hf.EnrollmentID': 'user1' });
    const r = await call(['whoAmI'], { creator: { mspId: 'Org1MSP', idBytes: Buffer.from(cert.pem) } });
    expect(r.status).toBe(200);
    expect(JSON.parse(r.text)).toEqual({
      id: 'x509::/C=US/ST=North Carolina/O=Hyperledger/OU=client/CN=user1::/C=US/ST=North Carolina/O=org1.example.com/CN=ca.org1.example.com',
      msp: 'Org1MSP',
      role: 'admin',
      missing: null,
      isAdmin: true,
      isAuditor: false,
      idBytes: true,
      ctxClass: 'custom',
    });
  });

  it('a certificate without the attribute extension has no attributes', async () => {
    const cert = await makeUserCert(null);
    const r = await call(['whoAmI'], { creator: { mspId: 'Org2MSP', idBytes: Buffer.from(cert.pem) } });
    expect(JSON.parse(r.text)).toMatchObject({ msp: 'Org2MSP', role: null, isAdmin: false });
  });
});

describe('metadata', () => {
  it('org.hyperledger.fabric:GetMetadata returns Fabric-shaped contract metadata', async () => {
    const r = await call(['org.hyperledger.fabric:GetMetadata']);
    expect(r.status).toBe(200);
    const md = JSON.parse(r.text);
    expect(md.$schema).toBe('https://hyperledger.github.io/fabric-chaincode-node/main/api/contract-schema.json');
    expect(md.info).toEqual({ title: 'cars-cc', version: '1.0.0' });
    expect(Object.keys(md.contracts)).toEqual(['PlainContract', 'cars', 'fallback', 'org.hyperledger.fabric']);
    const cars = md.contracts.cars;
    expect(cars.name).toBe('cars');
    expect(cars.contractInstance).toEqual({ name: 'cars', default: true });
    expect(md.contracts.PlainContract.contractInstance).toEqual({ name: 'PlainContract' });
    expect(cars.info).toEqual({ title: 'Car contract', version: '2.1.0', description: 'cars' });
    const tx = (name: string) => cars.transactions.find((t: { name: string }) => t.name === name);
    expect(cars.transactions.map((t: { name: string }) => t.name)).toEqual([
      'addCar',
      'getCar',
      'echo',
      'add',
      'whoAmI',
      'fails',
    ]);
    expect(tx('addCar')).toEqual({
      name: 'addCar',
      tag: ['submitTx'],
      parameters: [
        { name: 'id', description: 'the car id', schema: { type: 'string' } },
        { name: 'car', description: '', schema: { $ref: '#/components/schemas/Car' } },
      ],
    });
    expect(tx('getCar')).toEqual({
      name: 'getCar',
      tag: ['evaluate'],
      parameters: [{ name: 'id', description: '', schema: { type: 'string' } }],
      returns: { $ref: '#/components/schemas/Car' },
    });
    expect(tx('add').parameters.map((p: { schema: unknown }) => p.schema)).toEqual([
      { type: 'number' },
      { type: 'number' },
      { type: 'boolean' },
    ]);
    expect(md.contracts.PlainContract.transactions).toEqual([
      { name: 'ping', tag: ['submitTx'], parameters: [{ name: 'who', description: '', schema: { type: 'string' } }] },
    ]);
    expect(md.components.schemas.Car).toEqual({
      $id: 'Car',
      type: 'object',
      additionalProperties: false,
      properties: { make: { type: 'string' }, doors: { type: 'number' } },
      required: ['make', 'doors'],
    });
  });

  it('rejects two @Default() contracts and non-contracts', () => {
    @Default()
    class D1 extends Contract {}
    @Default()
    class D2 extends Contract {}
    expect(() => new ChaincodeFromContract([D1, D2])).toThrow(/more than one contract/);
    expect(() => new ChaincodeFromContract([class NotAContract {} as never])).toThrow(/is not a Contract class/);
    expect(() => new ChaincodeFromContract([PlainContract, PlainContract])).toThrow(/duplicate contract name/);
  });

  it('Contract defaults: name from the class, unknownTransaction throws', async () => {
    const c = new PlainContract();
    expect(c.getName()).toBe('PlainContract');
    expect(new CarContract().getName()).toBe('cars');
    expect(Contract._isContract(c)).toBe(true);
  });
});
