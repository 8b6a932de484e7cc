/*
 * Fault injection for tests (test/e2e/chaincode-faults.test.ts): each transaction fails in one of
 * the ways a chaincode can fail, and a few healthy ones show that the peer keeps serving and that
 * the runtime started a fresh chaincode process after a crash or a timeout.
 *
 *   Crash(code)     the process exits in the middle of the transaction (process.exit)
 *   Loop()          an endless synchronous loop: only the peer's execute timeout ends it
 *   Throw(message)  a thrown Error: the chaincode answers an error response
 *   Put(key, value) / Get(key)   ordinary state access
 *   Pid()           the chaincode process id (evaluate only), to tell a restarted process apart
 */
import { type Context, Contract, Info, Transaction } from '@loom/chaincode-sdk';

@Info({ title: 'Faulty', description: 'Chaincode that fails on request' })
export class FaultyContract extends Contract {
  @Transaction()
  public async Crash(ctx: Context, code: string): Promise<void> {
    // A read first, so the crash happens mid-transaction with the stream in use.
    await ctx.stub.getState('crash-marker');
    process.stderr.write(`faulty: exiting with code ${code} on purpose\n`);
    process.exit(Number(code) || 1);
  }

  @Transaction()
  public async Loop(ctx: Context): Promise<void> {
    await ctx.stub.getState('loop-marker');
    // Never yields to the event loop: the chaincode cannot even answer the peer any more.
    for (;;) {
      // spin
    }
  }

  @Transaction()
  public async Throw(_ctx: Context, message: string): Promise<void> {
    throw new Error(message);
  }

  @Transaction()
  public async Put(ctx: Context, key: string, value: string): Promise<void> {
    await ctx.stub.putState(key, Buffer.from(value));
  }

  @Transaction(false)
  public async Get(ctx: Context, key: string): Promise<string> {
    const v = await ctx.stub.getState(key);
    return Buffer.from(v).toString();
  }

  @Transaction(false)
  public async Pid(_ctx: Context): Promise<string> {
    return String(process.pid);
  }
}
