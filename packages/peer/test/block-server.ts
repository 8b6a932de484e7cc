/**
 * A minimal deliver-compatible block source for peer tests: `POST /v1/channels/:channel/deliver`
 * with a signed DELIVER_SEEK_INFO envelope answers with the length-prefixed stream of pre-built,
 * orderer-signed blocks from the requested start, waiting for blocks not yet added. It checks the
 * request's signature against the creator's certificate (not channel membership: that is the
 * orderer's job). A test fixture standing in for the ordering service, not a mock of the peer.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  type Bytes,
  decodeChannelHeader,
  decodeEnvelope,
  decodeHeader,
  decodePayload,
  decodeSeekInfo,
  decodeSerializedIdentity,
  decodeSignatureHeader,
  fromUtf8,
  HeaderType,
  verify,
} from '@loom/common';

export interface BlockServer {
  readonly url: string;
  /** Blocks served (index = block number); push more at any time. */
  readonly blocks: Bytes[];
  add(block: Bytes): void;
  /** Deliver requests received, with their start block. */
  readonly requests: { channelId: string; start: number }[];
  close(): Promise<void>;
}

function frame(b: Bytes): Buffer {
  const out = Buffer.alloc(4 + b.length);
  out.writeUInt32BE(b.length, 0);
  out.set(b, 4);
  return out;
}

export async function startBlockServer(options: {
  channelId: string;
  blocks?: Bytes[];
  /** Pause before each block, to spread a stream over time. */
  delayMs?: number;
}): Promise<BlockServer> {
  const blocks: Bytes[] = [...(options.blocks ?? [])];
  const waiting = new Set<() => void>();
  const requests: { channelId: string; start: number }[] = [];
  const server: Server = createServer((req, res) => {
    const m = /^\/v1\/channels\/([^/]+)\/deliver$/.exec(req.url ?? '');
    if (req.method !== 'POST' || !m) {
      res.writeHead(404).end();
      return;
    }
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      let start: number;
      try {
        const env = decodeEnvelope(new Uint8Array(Buffer.concat(chunks)));
        const payload = decodePayload(env.payload);
        const header = decodeHeader(payload.header);
        const ch = decodeChannelHeader(header.channelHeader);
        if (ch.type !== HeaderType.DELIVER_SEEK_INFO || ch.channelId !== options.channelId)
          throw new Error('wrong header');
        const creator = decodeSerializedIdentity(decodeSignatureHeader(header.signatureHeader).creator);
        if (!verify(fromUtf8(creator.idBytes), env.payload, env.signature)) throw new Error('bad signature');
        const seek = decodeSeekInfo(payload.data);
        start = seek.start.kind === 'specified' ? seek.start.number : 0;
      } catch (e) {
        res.writeHead(400, { 'content-type': 'application/json' }).end(JSON.stringify({ message: String(e) }));
        return;
      }
      requests.push({ channelId: m[1]!, start });
      res.writeHead(200, { 'content-type': 'application/vnd.loom.blocks' });
      let closed = false;
      res.on('close', () => {
        closed = true;
      });
      void (async () => {
        for (let n = start; !closed; n++) {
          while (n >= blocks.length && !closed) {
            await new Promise<void>((resolve) => {
              const t = setTimeout(done, 1000);
              function done() {
                clearTimeout(t);
                waiting.delete(done);
                resolve();
              }
              waiting.add(done);
            });
          }
          if (closed) return;
          if (options.delayMs) await new Promise((r) => setTimeout(r, options.delayMs));
          if (closed) return;
          res.write(frame(blocks[n]!));
        }
      })();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    blocks,
    requests,
    add(block) {
      blocks.push(block);
      for (const w of [...waiting]) w();
    },
    async close() {
      for (const w of [...waiting]) w();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
