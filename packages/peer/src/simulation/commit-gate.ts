/**
 * The simulation window's consistency guard: a readers/writer lock between transaction simulation
 * (shared) and block commit (exclusive), as Fabric's transaction manager holds a read lock on the
 * state DB from `NewTxSimulator` until `Done()` while commit takes the write lock.
 *
 * Every read of a simulation happens while it holds the shared side, so no block's state updates
 * land in the middle of it: all its reads come from the state at one height. A committer that wants
 * this guarantee applies each block inside `exclusive()`. Writers are preferred: once a commit is
 * waiting, new simulations queue behind it, so a steady stream of proposals cannot starve commits.
 * (A simulation is bounded by the chaincode execute timeout, so a commit waits at most that long.)
 */
export class CommitGate {
  #readers = 0;
  #writer = false;
  readonly #writersWaiting: Array<() => void> = [];
  readonly #readersWaiting: Array<() => void> = [];

  /** Enters the shared side; resolves with the release function (idempotent). */
  async acquireShared(): Promise<() => void> {
    if (this.#writer || this.#writersWaiting.length > 0) {
      await new Promise<void>((resolve) => this.#readersWaiting.push(resolve));
    } else {
      this.#readers++;
    }
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.#readers--;
      this.#wake();
    };
  }

  /** Runs `fn` with no simulation in its window (a block commit). */
  async exclusive<T>(fn: () => Promise<T> | T): Promise<T> {
    if (this.#writer || this.#readers > 0 || this.#writersWaiting.length > 0) {
      await new Promise<void>((resolve) => this.#writersWaiting.push(resolve));
    } else {
      this.#writer = true;
    }
    try {
      return await fn();
    } finally {
      this.#writer = false;
      this.#wake();
    }
  }

  /** Simulations currently inside the gate (for metrics and tests). */
  get activeSimulations(): number {
    return this.#readers;
  }

  #wake(): void {
    if (this.#writer || this.#readers > 0) return;
    const w = this.#writersWaiting.shift();
    if (w !== undefined) {
      this.#writer = true;
      w();
      return;
    }
    while (this.#readersWaiting.length > 0) {
      this.#readers++;
      this.#readersWaiting.shift()!();
    }
  }
}
