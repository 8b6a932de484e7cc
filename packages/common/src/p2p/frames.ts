/** Length-prefixed framing (4-byte big-endian length, then the bytes) over a byte stream (libp2p streams of the orderer cluster and peer gossip). */

export const MAX_FRAME_BYTES = 128 * 1024 * 1024;

export function frame(data: Uint8Array): Uint8Array {
  const out = new Uint8Array(4 + data.length);
  new DataView(out.buffer).setUint32(0, data.length);
  out.set(data, 4);
  return out;
}

/**
 * The reader keeps the chunks it was given and copies each frame out once: a message of a whole
 * block (a Raft append, a gossiped range) arrives in many noise/yamux chunks, and merging the held
 * bytes with every chunk (then slicing the frame out) copied such a frame about n/2 + 1 times.
 */
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
