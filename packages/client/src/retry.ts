/**
 * Retrying a transaction that lost an optimistic-concurrency race: MVCC_READ_CONFLICT (a key it read
 * changed before it committed) and PHANTOM_READ_CONFLICT (a range it read changed). Retrying runs
 * the whole transaction again — a new proposal, simulated against the newer state. Portable.
 */
import { CommitError } from './errors.js';

export interface RetryOptions {
  /** Tries in all, the first included. Default 3. */
  readonly attempts?: number;
  /** Milliseconds to wait before try `n + 1` (n ≥ 1), or a fixed wait. Default 100·2^(n−1) with jitter. */
  readonly backoff?: number | ((attempt: number) => number);
}

const CONFLICTS = new Set(['MVCC_READ_CONFLICT', 'PHANTOM_READ_CONFLICT']);

export function isMvccConflict(e: unknown): e is CommitError {
  return e instanceof CommitError && CONFLICTS.has(e.code);
}

/** Runs `fn` until it does not fail with a read conflict, at most `attempts` times. */
export async function retryOnMvccConflict<T>(
  fn: (attempt: number) => Promise<T>,
  options: RetryOptions = {},
): Promise<T> {
  const attempts = Math.max(1, options.attempts ?? 3);
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (e) {
      if (!isMvccConflict(e) || attempt >= attempts) throw e;
      const b = options.backoff;
      const wait =
        typeof b === 'function'
          ? b(attempt)
          : typeof b === 'number'
            ? b
            : 100 * 2 ** (attempt - 1) * (0.5 + Math.random());
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    }
  }
}
