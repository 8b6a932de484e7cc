/** Messages between the benchmark driver and its worker client processes (over the fork IPC channel). */
import type { Workload } from './options.js';

export interface WorkerSetup {
  readonly index: number;
  readonly endpoint: string;
  readonly mspId: string;
  readonly certPem: string;
  readonly keyPem: string;
  /** TLS roots of the network, or undefined without TLS. */
  readonly tlsRoots: readonly string[] | undefined;
  readonly channel: string;
  readonly chaincode: string;
  readonly workload: Workload;
  /** Transactions this worker keeps in flight. */
  readonly concurrency: number;
  /** Prefix of every asset id this run creates (unique per run). */
  readonly idPrefix: string;
  /** Seconds the SDK waits at most for one call (commit status included). */
  readonly callTimeoutS: number;
}

export type ToWorker =
  | { readonly type: 'setup'; readonly setup: WorkerSetup }
  /** Create the pool assets with these indices, stop at `deadline` (epoch ms). */
  | { readonly type: 'pool'; readonly indices: readonly number[]; readonly deadline: number }
  /** Run the workload until `endAt`; report operations that complete from `measureFrom` on. */
  | {
      readonly type: 'run';
      readonly pool: readonly number[];
      readonly measureFrom: number;
      readonly endAt: number;
    }
  /** Submit one transaction and evaluate it (starts the chaincode on the peers), retrying until `deadline`. */
  | { readonly type: 'prime'; readonly deadline: number }
  | { readonly type: 'stop' };

/**
 * One finished operation: completion time (epoch ms), latency (ms), outcome code (`VALID` or a
 * validation code for a submit, `OK` for an evaluate, else the error's code), block number or -1,
 * whether it was a submit (`s`) or an evaluate (`e`), and for submits the time of each phase.
 */
export type OpRecord = [
  end: number,
  latencyMs: number,
  code: string,
  block: number,
  kind: 's' | 'e',
  /** Submits that got that far: ms in endorse, and in submit (the rest is the commit-status wait). */
  endorseMs?: number,
  submitMs?: number,
];

export type FromWorker =
  /** Sent once the worker listens (messages sent before would be lost). */
  | { readonly type: 'ready' }
  | { readonly type: 'configured' }
  | { readonly type: 'primed'; readonly ok: boolean; readonly seconds: number; readonly lastError?: string }
  | { readonly type: 'pool-done'; readonly created: readonly number[]; readonly failures: Record<string, number> }
  | { readonly type: 'ops'; readonly ops: readonly OpRecord[] }
  /** First message seen for each failure code (for the report). */
  | { readonly type: 'samples'; readonly samples: Record<string, string> }
  | { readonly type: 'done'; readonly warmupOps: number }
  | { readonly type: 'error'; readonly message: string };
