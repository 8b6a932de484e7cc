/**
 * Length-prefixed frames of the gateway's event streams: a 4-byte big-endian length, then that many
 * bytes (one encoded item). The same framing as the peer's deliver streams, restated here so the
 * portable contract depends on nothing outside @loom/common.
 */
import { LoomError } from '../errors.js';

export const FRAME_STREAM_CONTENT_TYPE = 'application/vnd.loom.frames';
export const MAX_GATEWAY_FRAME_BYTES = 128 * 1024 * 1024;

export function encodeGatewayFrame(data: Uint8Array): Uint8Array {
  const out = new Uint8Array(4 + data.length);
  new DataView(out.buffer).setUint32(0, data.length);
  out.set(data, 4);
  return out;
}

/** Splits a byte stream into frames; throws STREAM_TRUNCATED if the stream ends inside one. */
export async function* readGatewayFrames(
  body: AsyncIterable<Uint8Array>,
  maxFrameBytes = MAX_GATEWAY_FRAME_BYTES,
): AsyncGenerator<Uint8Array> {
  let buf = new Uint8Array(0);
  for await (const chunk of body) {
    const next = new Uint8Array(buf.length + chunk.length);
    next.set(buf, 0);
    next.set(chunk, buf.length);
    buf = next;
    while (buf.length >= 4) {
      const len = new DataView(buf.buffer, buf.byteOffset, 4).getUint32(0);
      if (len > maxFrameBytes) {
        throw new LoomError('STREAM_FRAME_TOO_LARGE', `frame of ${len} bytes exceeds ${maxFrameBytes}`, {
          details: { length: len, max: maxFrameBytes },
        });
      }
      if (buf.length < 4 + len) break;
      yield buf.slice(4, 4 + len);
      buf = buf.subarray(4 + len);
    }
  }
  if (buf.length > 0) {
    throw new LoomError('STREAM_TRUNCATED', `stream ended inside a frame (${buf.length} bytes pending)`, {
      httpStatus: 502,
    });
  }
}
