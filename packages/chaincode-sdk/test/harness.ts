import { type ChaincodeConnection, type ChaincodeInterface, type ChaincodeStub, Shim } from '@loom/chaincode-sdk';
import { FakePeer } from './fake-peer.js';

/** A chaincode whose transactions run closures the test registers per txId. */
export class ScriptedChaincode implements ChaincodeInterface {
  readonly scripts = new Map<string, (stub: ChaincodeStub) => Promise<unknown>>();
  readonly results = new Map<string, unknown>();

  async Init(stub: ChaincodeStub) {
    return this.Invoke(stub);
  }

  async Invoke(stub: ChaincodeStub) {
    const script = this.scripts.get(stub.getTxID());
    if (script === undefined) return Shim.error(`no script for ${stub.getTxID()}`);
    const r = await script(stub);
    this.results.set(stub.getTxID(), r);
    return Shim.success(Buffer.from('ok'));
  }
}

export interface Harness {
  peer: FakePeer;
  chaincode: ScriptedChaincode;
  conn: ChaincodeConnection;
  /** Runs `fn` as the body of one transaction; resolves with its result and the peer's view. */
  run<T>(
    fn: (stub: ChaincodeStub) => Promise<T>,
    opts?: Omit<NonNullable<Parameters<FakePeer['invoke']>[1]>, 'args'> & { args?: string[] },
  ): Promise<{ result: T; txId: string; outcome: Awaited<ReturnType<FakePeer['invoke']>> }>;
  close(): Promise<void>;
}

let counter = 0;

export async function startHarness(): Promise<Harness> {
  const peer = new FakePeer();
  const address = await peer.listen();
  const chaincode = new ScriptedChaincode();
  const conn = Shim.start(chaincode, { peerAddress: address, chaincodeId: 'basic:1.0' });
  await conn.registered;
  return {
    peer,
    chaincode,
    conn,
    async run(fn, opts = {}) {
      const txId = opts.txId ?? `tx-${++counter}`;
      chaincode.scripts.set(txId, fn);
      const outcome = await peer.invoke(opts.args ?? ['fn'], { ...opts, txId });
      if (outcome.type === 'ERROR') throw new Error(`transaction failed: ${outcome.payload.message}`);
      return { result: chaincode.results.get(txId) as Awaited<ReturnType<typeof fn>>, txId, outcome };
    },
    async close() {
      conn.close();
      await peer.close();
    },
  };
}
