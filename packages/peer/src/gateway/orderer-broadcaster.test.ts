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
});
