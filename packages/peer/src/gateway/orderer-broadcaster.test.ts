import { buildProposal, encodeEnvelope, encodePayload } from '@loom/common';
import type { GatewayTransport, TransportRequest } from '@loom/common/gateway/index';
import { createTestOrg } from '@loom/common/testing/index';
import { describe, expect, it } from 'vitest';
import { createOrdererBroadcaster } from './orderer-broadcaster.js';

const json = (status: number, body: unknown) => ({
  status,
  headers: {},
  body: new TextEncoder().encode(JSON.stringify(body)),
});

/** An in-test transport answering per orderer from a script, recording the calls. */
function scriptedTransport(script: Record<string, Array<ReturnType<typeof json> | Error>>) {
  const calls: string[] = [];
  const transport: GatewayTransport = {
    async request(req: TransportRequest) {
      const origin = new URL(req.url).origin;
      calls.push(`${origin}${new URL(req.url).pathname}`);
      const next = script[origin]?.shift() ?? new Error('connection refused');
      if (next instanceof Error) throw next;
      return next;
    },
    stream: () => Promise.reject(new Error('unused')),
    close: () => undefined,
  };
  return { transport, calls };
}

async function envelopeOn(channel: string) {
  const org = await createTestOrg('Org1MSP');
  const p = buildProposal({
    channelId: channel,
    chaincodeName: 'cc',
    args: ['f'],
    creator: org.client.serialized,
    nonce: new Uint8Array(24),
    timestamp: 1,
  });
  return encodeEnvelope({
    payload: encodePayload({ header: p.headerBytes, data: new Uint8Array() }),
    signature: new Uint8Array(),
  });
}

describe('orderer broadcaster', () => {
  it('fails over on 503 and connection errors, then sticks with the orderer that answered', async () => {
    const env = await envelopeOn('ch1');
    const { transport, calls } = scriptedTransport({
      'https://o1:7050': [json(503, { code: 'NOT_LEADER', message: 'no leader' })],
      'https://o2:7050': [new Error('ECONNREFUSED')],
      'https://o3:7050': [
        json(200, { status: 200, blockNumber: 7, txIndex: 0 }),
        json(200, { status: 200, blockNumber: 8, txIndex: 1 }),
      ],
    });
    const broadcast = createOrdererBroadcaster({
      transport,
      orderers: () => ['https://o1:7050', 'https://o2:7050', 'https://o3:7050'],
      sleep: async () => undefined,
    });
    expect(await broadcast(env)).toEqual({ orderer: 'https://o3:7050', blockNumber: 7, txIndex: 0 });
    expect(calls).toEqual([
      'https://o1:7050/v1/channels/ch1/broadcast',
      'https://o2:7050/v1/channels/ch1/broadcast',
      'https://o3:7050/v1/channels/ch1/broadcast',
    ]);
    expect(await broadcast(env)).toMatchObject({ orderer: 'https://o3:7050', blockNumber: 8 });
  });

  it('does not retry a refusal, and gives up after its rounds with ORDERER_UNAVAILABLE', async () => {
    const env = await envelopeOn('ch1');
    const refused = scriptedTransport({
      'https://o1:7050': [json(403, { code: 'POLICY_NOT_SATISFIED', message: 'no' })],
    });
    await expect(
      createOrdererBroadcaster({
        transport: refused.transport,
        orderers: () => ['https://o1:7050', 'https://o2:7050'],
      })(env),
    ).rejects.toMatchObject({ code: 'POLICY_NOT_SATISFIED' });
    expect(refused.calls).toHaveLength(1);

    const down = scriptedTransport({});
    const waits: number[] = [];
    await expect(
      createOrdererBroadcaster({
        transport: down.transport,
        orderers: () => ['https://o1:7050'],
        rounds: 3,
        sleep: async (ms) => {
          waits.push(ms);
        },
      })(env),
    ).rejects.toMatchObject({ code: 'ORDERER_UNAVAILABLE', httpStatus: 503 });
    expect(down.calls).toHaveLength(3);
    expect(waits).toEqual([200, 400]);
  });

  it('waits out orderers that shed load (503 ORDERER_BUSY, Retry-After) past its rounds, up to its busy deadline', async () => {
    const env = await envelopeOn('ch1');
    const busy = () => ({ ...json(503, { code: 'ORDERER_BUSY', message: 'busy' }), headers: { 'retry-after': '2' } });
    let clock = 0;
    const waits: number[] = [];
    const fake = {
      now: () => clock,
      sleep: async (ms: number) => {
        waits.push(ms);
        clock += ms;
      },
    };
    // Busy for five rounds (more than `rounds`), then accepted.
    const later = scriptedTransport({
      'https://o1:7050': [
        busy(),
        busy(),
        busy(),
        busy(),
        busy(),
        json(200, { status: 200, blockNumber: 3, txIndex: 0 }),
      ],
      'https://o2:7050': [busy(), busy(), busy(), busy(), busy()],
    });
    const broadcast = createOrdererBroadcaster({
      transport: later.transport,
      orderers: () => ['https://o1:7050', 'https://o2:7050'],
      rounds: 3,
      ...fake,
    });
    expect(await broadcast(env)).toMatchObject({ orderer: 'https://o1:7050', blockNumber: 3 });
    expect(waits).toEqual([2000, 2000, 2000, 2000, 2000]);

    // Still busy at the deadline: ORDERER_UNAVAILABLE naming the busy answers.
    clock = 0;
    waits.length = 0;
    const always = scriptedTransport({
      'https://o1:7050': Array.from({ length: 50 }, busy),
    });
    await expect(
      createOrdererBroadcaster({
        transport: always.transport,
        orderers: () => ['https://o1:7050'],
        busyDeadlineMs: 5_000,
        ...fake,
      })(env),
    ).rejects.toMatchObject({ code: 'ORDERER_UNAVAILABLE', message: expect.stringMatching(/ORDERER_BUSY/) });
    expect(waits).toEqual([2000, 2000, 1000]);
    expect(always.calls).toHaveLength(4);

    // A busy orderer next to an unreachable one: the usual rounds and backoff only.
    waits.length = 0;
    const mixed = scriptedTransport({ 'https://o1:7050': [busy(), busy(), busy()] });
    await expect(
      createOrdererBroadcaster({
        transport: mixed.transport,
        orderers: () => ['https://o1:7050', 'https://o2:7050'],
        rounds: 3,
        ...fake,
      })(env),
    ).rejects.toMatchObject({ code: 'ORDERER_UNAVAILABLE' });
    expect(waits).toEqual([200, 400]);
  });
});
