/**
 * A benchmark worker: one client process with its own `@loom/client` connection, keeping
 * `concurrency` transactions in flight (closed loop) and streaming what finished to the driver.
 * Started by the driver with `fork()`; talks only over the IPC channel (protocol.ts).
 */
import { connect, type Contract, type Gateway, signers } from '@loom/client';
import type { FromWorker, OpRecord, ToWorker, WorkerSetup } from './protocol.js';

const send = (m: FromWorker) => process.send?.(m);
const OWNERS = ['Tomoko', 'Brad', 'Jin Soo', 'Max', 'Adriana', 'Michel'];
const COLORS = ['blue', 'red', 'green', 'yellow', 'black', 'white'];

let setup: WorkerSetup | undefined;
let gateway: Gateway | undefined;
let contract: Contract | undefined;
const samples: Record<string, string> = {};
let samplesSent = 0;

function codeOf(e: unknown): string {
  const code = (e as { code?: unknown }).code;
  const name = typeof code === 'string' && code !== '' ? code : 'ERROR';
  if (!(name in samples)) samples[name] = e instanceof Error ? e.message.slice(0, 300) : String(e);
  return name;
}

const pick = <T>(xs: readonly T[]): T => xs[Math.floor(Math.random() * xs.length)]!;

function createArgs(id: string): string[] {
  return [
    id,
    pick(COLORS),
    String(1 + Math.floor(Math.random() * 20)),
    pick(OWNERS),
    String(100 + Math.floor(Math.random() * 900)),
  ];
}

/** Endorse, submit and wait for the commit: the outcome's code (VALID, MVCC_READ_CONFLICT, …) and block. */
async function submit(name: string, args: string[], phases?: number[]): Promise<{ code: string; block: number }> {
  const t0 = performance.now();
  const tx = await contract!.newProposal(name, { arguments: args }).endorse();
  const t1 = performance.now();
  phases?.push(t1 - t0);
  const submitted = await tx.submit();
  phases?.push(performance.now() - t1);
  const status = await submitted.getStatus();
  return { code: status.codeName, block: status.blockNumber };
}

async function pool(indices: readonly number[], deadline: number): Promise<void> {
  const s = setup!;
  const created: number[] = [];
  const failures: Record<string, number> = {};
  let next = 0;
  const loop = async () => {
    while (next < indices.length && Date.now() < deadline) {
      const i = indices[next++]!;
      try {
        const r = await submit('CreateAsset', createArgs(`${s.idPrefix}-p${i}`));
        if (r.code === 'VALID') created.push(i);
        else failures[r.code] = (failures[r.code] ?? 0) + 1;
      } catch (e) {
        const c = codeOf(e);
        failures[c] = (failures[c] ?? 0) + 1;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(s.concurrency, indices.length) }, loop));
  send({ type: 'pool-done', created, failures });
}

async function run(poolIds: readonly number[], measureFrom: number, endAt: number): Promise<void> {
  const s = setup!;
  let buffer: OpRecord[] = [];
  let warmupOps = 0;
  let counter = 0;
  const flush = () => {
    if (buffer.length > 0) send({ type: 'ops', ops: buffer });
    buffer = [];
    if (Object.keys(samples).length > samplesSent) {
      samplesSent = Object.keys(samples).length;
      send({ type: 'samples', samples: { ...samples } });
    }
  };
  const timer = setInterval(flush, 250);
  const poolId = () => `${s.idPrefix}-p${pick(poolIds)}`;

  const one = async (phases: number[]): Promise<{ code: string; block: number; kind: 's' | 'e' }> => {
    let op: 'create' | 'read' | 'transfer' = s.workload === 'mixed' ? 'read' : s.workload;
    if (s.workload === 'mixed') {
      const r = Math.random();
      op = r < 0.5 ? 'read' : r < 0.75 ? 'create' : 'transfer';
    }
    try {
      if (op === 'read') {
        await contract!.evaluate('ReadAsset', { arguments: [poolId()] });
        return { code: 'OK', block: -1, kind: 'e' };
      }
      if (op === 'create')
        return {
          ...(await submit('CreateAsset', createArgs(`${s.idPrefix}-w${s.index}-${counter++}`), phases)),
          kind: 's',
        };
      return { ...(await submit('TransferAsset', [poolId(), pick(OWNERS)], phases)), kind: 's' };
    } catch (e) {
      return { code: codeOf(e), block: -1, kind: op === 'read' ? 'e' : 's' };
    }
  };

  const loop = async () => {
    while (Date.now() < endAt) {
      const t0 = performance.now();
      const phases: number[] = [];
      const r = await one(phases);
      const latency = performance.now() - t0;
      const end = Date.now();
      const ms = (x: number) => Math.round(x * 100) / 100;
      if (end < measureFrom) warmupOps++;
      else if (end <= endAt) buffer.push([end, ms(latency), r.code, r.block, r.kind, ...phases.map(ms)] as OpRecord);
      // A failing network answers at once: do not spin on errors.
      if (r.code !== 'OK' && r.code !== 'VALID' && r.block < 0) await new Promise((res) => setTimeout(res, 20));
    }
  };
  await Promise.all(Array.from({ length: s.concurrency }, loop));
  clearInterval(timer);
  flush();
  send({ type: 'done', warmupOps });
}

/** One create + one read, retried until both work or `deadline`: the chaincode is up on the peers. */
async function prime(deadline: number): Promise<void> {
  const s = setup!;
  const t0 = Date.now();
  let lastError: string | undefined;
  for (let attempt = 0; attempt < 1000 && Date.now() < deadline; attempt++) {
    const id = `${s.idPrefix}-prime-w${s.index}-${attempt}`;
    try {
      const r = await submit('CreateAsset', createArgs(id));
      if (r.code !== 'VALID') throw new Error(`CreateAsset committed ${r.code}`);
      await contract!.evaluate('ReadAsset', { arguments: [id] });
      send({ type: 'primed', ok: true, seconds: (Date.now() - t0) / 1000 });
      return;
    } catch (e) {
      lastError = `${codeOf(e)}: ${e instanceof Error ? e.message : String(e)}`;
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
  send({ type: 'primed', ok: false, seconds: (Date.now() - t0) / 1000, ...(lastError ? { lastError } : {}) });
}

process.on('disconnect', () => process.exit(0));
process.on('message', (m: ToWorker) => {
  const fail = (e: unknown) => {
    send({ type: 'error', message: e instanceof Error ? e.message : String(e) });
  };
  try {
    if (m.type === 'setup') {
      setup = m.setup;
      gateway = connect({
        endpoint: setup.endpoint,
        identity: { mspId: setup.mspId, credentials: new TextEncoder().encode(setup.certPem) },
        signer: signers.newPrivateKeySigner(setup.keyPem),
        ...(setup.tlsRoots ? { tls: { rootCerts: [...setup.tlsRoots] } } : {}),
        evaluateOptions: { timeoutMs: setup.callTimeoutS * 1000 },
        endorseOptions: { timeoutMs: setup.callTimeoutS * 1000 },
        submitOptions: { timeoutMs: setup.callTimeoutS * 1000 },
        commitStatusOptions: { timeoutMs: setup.callTimeoutS * 1000 },
      });
      contract = gateway.getNetwork(setup.channel).getContract(setup.chaincode);
      send({ type: 'configured' });
    } else if (m.type === 'prime') {
      prime(m.deadline).catch(fail);
    } else if (m.type === 'pool') {
      pool(m.indices, m.deadline).catch(fail);
    } else if (m.type === 'run') {
      run(m.pool, m.measureFrom, m.endAt).catch(fail);
    } else if (m.type === 'stop') {
      gateway?.close();
      process.exit(0);
    }
  } catch (e) {
    fail(e);
  }
});
send({ type: 'ready' });
