/**
 * A checkpointer kept in a JSON file, so an application that restarts resumes its event listening
 * where it stopped. Node only (node:fs): import it from `@loom/client/file-checkpointer`.
 * Writes go to a temporary file renamed over the old one, so a crash never leaves half a checkpoint.
 */
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { type CheckpointState, InMemoryCheckpointer } from './checkpointer.js';

export class FileCheckpointer extends InMemoryCheckpointer {
  readonly #path: string;

  private constructor(path: string) {
    super();
    this.#path = path;
  }

  /** Opens (or starts) the checkpoint file at `path`. */
  static async open(path: string): Promise<FileCheckpointer> {
    const cp = new FileCheckpointer(path);
    let text: string | undefined;
    try {
      text = await readFile(path, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
    if (text !== undefined && text.trim() !== '') {
      const s = JSON.parse(text) as { blockNumber?: unknown; transactionId?: unknown };
      cp.restore({
        blockNumber: typeof s.blockNumber === 'number' ? s.blockNumber : undefined,
        transactionId: typeof s.transactionId === 'string' ? s.transactionId : undefined,
      });
    }
    return cp;
  }

  protected override async save(state: CheckpointState): Promise<void> {
    await mkdir(dirname(this.#path), { recursive: true });
    const tmp = `${this.#path}.${process.pid}.tmp`;
    await writeFile(tmp, JSON.stringify(state));
    await rename(tmp, this.#path);
    await super.save(state);
  }
}

/** fabric-gateway's `checkpointers.file(path)`. */
export function fileCheckpointer(path: string): Promise<FileCheckpointer> {
  return FileCheckpointer.open(path);
}
