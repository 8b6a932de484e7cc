/** Length-prefixed framing (4-byte big-endian length, then the bytes) over a byte stream (libp2p streams of the orderer cluster and peer gossip). */

export const MAX_FRAME_BYTES = 128 * 1024 * 1024;

export function frame(data: Uint8Array): Uint8Array {
  const out = new Uint8Array(4 + data.length);
  new DataView(out.buffer).setUint32(0, data.length);
  out.set(data, 4);
  return out;
}

/** Accumulates chunks and yields complete frames; throws on a frame over the limit. */
export class FrameReader {
  #buf: Uint8Array = new Uint8Array(0);
  readonly #max: number;

  constructor(max = MAX_FRAME_BYTES) {
    this.#max = max;
  }

  push(chunk: Uint8Array): Uint8Array[] {
    if (this.#buf.length === 0) this.#buf = chunk;
    else {
      const merged = new Uint8Array(this.#buf.length + chunk.length);
      merged.set(this.#buf);
      merged.set(chunk, this.#buf.length);
      this.#buf = merged;
    }
    const frames: Uint8Array[] = [];
    let off = 0;
    while (this.#buf.length - off >= 4) {
      const len = new DataView(this.#buf.buffer, this.#buf.byteOffset + off, 4).getUint32(0);
      if (len > this.#max) throw new Error(`frame of ${len} bytes exceeds ${this.#max}`);
      if (this.#buf.length - off - 4 < len) break;
      frames.push(this.#buf.slice(off + 4, off + 4 + len));
      off += 4 + len;
    }
    this.#buf = off === this.#buf.length ? new Uint8Array(0) : this.#buf.slice(off);
    return frames;
  }

  get buffered(): number {
    return this.#buf.length;
  }
}
