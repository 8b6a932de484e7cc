/**
 * Length-prefixed framing of block streams (the orderer's deliver stream and this peer's event
 * streams): each frame is a 4-byte big-endian length, then that many bytes (one encoded Block, or
 * one encoded event). Content type `application/vnd.loom.blocks`.
 */
import { LoomError } from '@loom/common';

export const BLOCK_STREAM_CONTENT_TYPE = 'application/vnd.loom.blocks';
export const MAX_FRAME_BYTES = 128 * 1024 * 1024;

export function encodeFrame(data: Uint8Array): Uint8Array {
  const out = new Uint8Array(4 + data.length);
  new DataView(out.buffer).setUint32(0, data.length);
  out.set(data, 4);
  return out;
}

/** Accumulates chunks of a stream and hands back complete frames. */
export class FrameReader {
  #chunks: Uint8Array[] = [];
  #buffered = 0;
  readonly #max: number;

  constructor(maxFrameBytes = MAX_FRAME_BYTES) {
    this.#max = maxFrameBytes;
  }

  /** Bytes received but not yet part of a complete frame. */
  get buffered(): number {
    return this.#buffered;
  }

  push(chunk: Uint8Array): Uint8Array[] {
    if (chunk.length > 0) {
      this.#chunks.push(chunk);
      this.#buffered += chunk.length;
    }
    const frames: Uint8Array[] = [];
    while (this.#buffered >= 4) {
      const head = this.#peek(4);
      const len = new DataView(head.buffer, head.byteOffset, 4).getUint32(0);
      if (len > this.#max) {
        throw new LoomError('STREAM_FRAME_TOO_LARGE', `frame of ${len} bytes exceeds ${this.#max}`, {
          details: { length: len, max: this.#max },
        });
      }
      if (this.#buffered < 4 + len) break;
      frames.push(this.#take(4 + len).subarray(4));
    }
    return frames;
  }

  #peek(n: number): Uint8Array {
    const first = this.#chunks[0]!;
    if (first.length >= n) return first.subarray(0, n);
    this.#chunks = [this.#concat()];
    return this.#chunks[0]!.subarray(0, n);
  }

  #take(n: number): Uint8Array {
    let first = this.#chunks[0]!;
    if (first.length < n) {
      first = this.#concat();
      this.#chunks = [first];
    }
    const out = first.slice(0, n);
    if (first.length === n) this.#chunks.shift();
    else this.#chunks[0] = first.subarray(n);
    this.#buffered -= n;
    return out;
  }

  #concat(): Uint8Array {
    const out = new Uint8Array(this.#buffered);
    let off = 0;
    for (const c of this.#chunks) {
      out.set(c, off);
      off += c.length;
    }
    return out;
  }
}

/** Reads frames from a byte stream (a fetch body, say) until it ends. */
export async function* readFrames(
  body: AsyncIterable<Uint8Array>,
  maxFrameBytes = MAX_FRAME_BYTES,
): AsyncGenerator<Uint8Array> {
  const reader = new FrameReader(maxFrameBytes);
  for await (const chunk of body) {
    for (const f of reader.push(chunk)) yield f;
  }
  if (reader.buffered > 0) {
    throw new LoomError('STREAM_TRUNCATED', `stream ended inside a frame (${reader.buffered} bytes pending)`);
  }
}
