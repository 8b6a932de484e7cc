/** The broadcast routes' answer when the chain refuses admission (the chain's rule is tested in test/chain.test.ts). */
import { LoomError } from '@loom/common';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { OrdererErrorCode } from '../chain.js';
import type { Registrar } from '../registrar.js';
import { createPublicServer } from './http-server.js';

const logger = pino({ level: 'silent' });
let closers: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  await Promise.all(closers.map((c) => c()));
  closers = [];
});

/** A registrar whose one chain is overloaded: admit() refuses, and nothing else may be reached. */
function busyRegistrar(seen: Array<{ count: number; arrivedAt: number | undefined }>): Registrar {
  const chain = {
    admit(count: number, arrivedAt?: number) {
      seen.push({ count, arrivedAt });
      throw new LoomError(OrdererErrorCode.BUSY, 'busy; retry', {
        httpStatus: 503,
        details: { retryAfterSeconds: 1, pending: 2000, maxPending: 2000 },
      });
    },
    get resources(): never {
      throw new Error('an envelope was checked after admission was refused');
    },
  };
  return { require: () => chain } as unknown as Registrar;
}

describe('broadcast admission control', () => {
  it('answers 503 ORDERER_BUSY with Retry-After before checking anything, on both routes', async () => {
    const seen: Array<{ count: number; arrivedAt: number | undefined }> = [];
    const app = createPublicServer(busyRegistrar(seen), logger);
    closers.push(() => app.close());
    const before = Date.now();
    const single = await app.inject({
      method: 'POST',
      url: '/v1/channels/ch/broadcast',
      headers: { 'content-type': 'application/octet-stream' },
      payload: Buffer.from('not even an envelope'),
    });
    expect(single.statusCode).toBe(503);
    expect(single.headers['retry-after']).toBe('1');
    expect(single.json()).toMatchObject({ code: 'ORDERER_BUSY' });

    const frames = Buffer.alloc(2 * (4 + 3));
    frames.writeUInt32BE(3, 0);
    frames.writeUInt32BE(3, 7);
    const batch = await app.inject({
      method: 'POST',
      url: '/v1/channels/ch/broadcast/batch',
      headers: { 'content-type': 'application/vnd.loom.envelopes' },
      payload: frames,
    });
    expect(batch.statusCode).toBe(503);
    expect(batch.headers['retry-after']).toBe('1');
    expect(batch.json()).toMatchObject({ code: 'ORDERER_BUSY' });
    // The whole batch is weighed at once, with the time the request arrived.
    expect(seen.map((s) => s.count)).toEqual([1, 2]);
    for (const s of seen) expect(s.arrivedAt).toBeGreaterThanOrEqual(before);
  });
});
