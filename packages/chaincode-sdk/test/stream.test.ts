/** Stream-level behaviour of the shim: registration refused, a broken stream, an oversize frame. */
import { type Socket, createServer } from 'node:net';
import { type ChaincodeStub, Shim } from '@loom/chaincode-sdk';
import { type ChaincodeMessage, FrameDecoder, encodeChaincodeFrame } from '@loom/common/chaincode-protocol';
import { describe, expect, it } from 'vitest';

const enc = (s: string) => new TextEncoder().encode(s);

/** A scripted raw peer: `onMessage` gets each decoded message and the socket. */
async function rawPeer(onMessage: (m: ChaincodeMessage, s: Socket) => void) {
  let socket: Socket | undefined;
  const server = createServer((s) => {
    socket = s;
    const d = new FrameDecoder();
    s.on('data', (c: Uint8Array) => {
      for (const m of d.pushMessages(c)) onMessage(m, s);
    });
    s.on('error', () => {});
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const a = server.address() as { port: number };
  return {
    address: `127.0.0.1:${a.port}`,
    close: () =>
      new Promise<void>((r) => {
        socket?.destroy();
        server.close(() => r());
      }),
  };
}

const send = (s: Socket, m: ChaincodeMessage) => s.write(encodeChaincodeFrame(m));

describe('chaincode stream', () => {
  it('rejects `registered` when the peer answers REGISTER with ERROR', async () => {
    const peer = await rawPeer((m, s) => {
      if (m.type === 'REGISTER')
        send(s, { type: 'ERROR', txId: '', channelId: '', payload: { message: 'unknown chaincode' } });
    });
    const conn = Shim.start(
      { Init: async () => Shim.success(), Invoke: async () => Shim.success() },
      {
        peerAddress: peer.address,
        chaincodeId: 'nope:1',
      },
    );
    await expect(conn.registered).rejects.toMatchObject({
      code: 'CHAINCODE_REGISTER_FAILED',
      message: 'peer refused registration: unknown chaincode',
    });
    conn.close();
    await peer.close();
  });

  it('an oversize frame from the peer fails the stream and rejects outstanding requests', async () => {
    let pending: Promise<unknown> | undefined;
    const peer = await rawPeer((m, s) => {
      if (m.type === 'REGISTER') {
        send(s, { type: 'REGISTERED', txId: '', channelId: '', payload: {} });
        send(s, {
          type: 'TRANSACTION',
          txId: 't1',
          channelId: 'ch',
          payload: {
            args: [enc('f')],
            transientMap: new Map(),
            signedProposal: new Uint8Array(0),
            creator: { mspId: 'Org1MSP', idBytes: enc('x') },
            txTimestamp: { seconds: 1, nanos: 0 },
          },
        });
      } else if (m.type === 'GET_STATE') {
        s.write(new Uint8Array([0, 1, 0, 0]));
      }
    });
    const conn = Shim.start(
      {
        Init: async () => Shim.success(),
        Invoke: async (stub: ChaincodeStub) => {
          pending = stub.getState('k');
          await pending;
          return Shim.success();
        },
      },
      { peerAddress: peer.address, chaincodeId: 'cc:1', maxFrameBytes: 1024 },
    );
    await conn.registered;
    await conn.closed;
    await expect(pending).rejects.toMatchObject({ code: 'CHAINCODE_STREAM_CLOSED' });
    await expect(pending).rejects.toThrow(/exceeds the limit of 1024 bytes/);
    await peer.close();
  });

  it('rejects an unreachable peer address', async () => {
    const conn = Shim.start(
      { Init: async () => Shim.success(), Invoke: async () => Shim.success() },
      {
        peerAddress: '127.0.0.1:1',
        chaincodeId: 'cc:1',
      },
    );
    await expect(conn.registered).rejects.toThrow();
  });
});
