/**
 * Length-prefixed framing (4-byte big-endian length, then the bytes), the layout of
 * @loom/common/p2p/frames. The reader here keeps the chunks it was given and copies each frame out
 * once: a Raft append of a whole block arrives in many noise/yamux chunks, and merging the held
 * bytes with every chunk (then slicing the frame out) copied a block of n chunks ≈ n/2 + 1 times.
 */
import { MAX_FRAME_BYTES } from '@loom/common/p2p/frames';

export { frame, MAX_FRAME_BYTES } from '@loom/common/p2p/frames';

/** Accumulates chunks and yields complete frames (each its own copy); throws on a frame over the limit. */
export class FrameReader {
  readonly #max: number;
  #chunks: Uint8Array[] = [];
  /** Bytes of #chunks[0] already consumed. */
  #head = 0;
  /** Unconsumed bytes held. */
  #held = 0;
  /** Length of the frame being collected, once its prefix is read. */
  #need: number | undefined;

  constructor(max = MAX_FRAME_BYTES) {
    this.#max = max;
  }

  /** Bytes received and not yet returned as frames (a read length prefix included). */
  get buffered(): number {
    return this.#held + (this.#need === undefined ? 0 : 4);
  }

  push(chunk: Uint8Array): Uint8Array[] {
    const frames: Uint8Array[] = [];
    if (chunk.length > 0) {
      this.#chunks.push(chunk);
      this.#held += chunk.length;
    }
    for (;;) {
      if (this.#need === undefined) {
        if (this.#held < 4) break;
        const len = this.#readPrefix();
        if (len > this.#max) throw new Error(`frame of ${len} bytes exceeds ${this.#max}`);
        this.#need = len;
      }
      const need = this.#need;
      if (this.#held < need) break;
      frames.push(this.#take(need));
      this.#need = undefined;
    }
    return frames;
  }

  #readPrefix(): number {
    const p = this.#take(4);
    return ((p[0]! << 24) | (p[1]! << 16) | (p[2]! << 8) | p[3]!) >>> 0;
  }

  /** Removes the next `n` held bytes (n ≤ #held) into a new array. */
  #take(n: number): Uint8Array {
    const out = new Uint8Array(n);
    let o = 0;
    while (o < n) {
      const c = this.#chunks[0]!;
      const avail = c.length - this.#head;
      const k = Math.min(avail, n - o);
      out.set(c.subarray(this.#head, this.#head + k), o);
      o += k;
      if (k === avail) {
        this.#chunks.shift();
        this.#head = 0;
      } else this.#head += k;
    }
    this.#held -= n;
    return out;
  }
}
