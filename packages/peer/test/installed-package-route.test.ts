/**
 * `GET /v1/admin/chaincodes/:packageId` (what `loom chaincode getinstalledpackage` downloads): a
 * real peer node on loopback answers an installed package's exact bytes and a coded 404 otherwise.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger, utf8 } from '@loom/common';
import { writeMspDir } from '@loom/common/testing/index';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildPackage, packageIdOf } from '../src/chaincode/package/package.js';
import { type PeerNode, startPeer } from '../src/node/peer-node.js';
import { createTestNetwork } from './fixtures.js';

let dir: string;
let peer: PeerNode;

beforeAll(async () => {
  const net = await createTestNetwork('pkgchannel');
  dir = await mkdtemp(join(tmpdir(), 'loom-peer-pkg-'));
  await writeMspDir(join(dir, 'msp'), net.org1.ca, net.org1.peer);
  peer = await startPeer(
    {
      id: 'peer0.org1',
      mspId: 'Org1MSP',
      mspDir: join(dir, 'msp'),
      dataDir: join(dir, 'data'),
      listen: { host: '127.0.0.1', port: 0 },
      operations: { host: '127.0.0.1', port: 0 },
      orderers: ['http://127.0.0.1:1'],
      channels: [],
      logLevel: 'warn',
    },
    { logger: createLogger({ component: 'peer', level: 'warn' }) },
  );
}, 60_000);

afterAll(async () => {
  await peer?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('installed package route', () => {
  it("answers an installed package's bytes, and CHAINCODE_NOT_INSTALLED (404) for others", async () => {
    const pkg = buildPackage({
      label: 'tiny_1',
      type: 'node',
      files: [
        { path: 'src/package.json', content: utf8(JSON.stringify({ name: 'tiny', main: 'index.js' })) },
        { path: 'src/index.js', content: utf8('export const contracts = [];\n') },
      ],
    });
    const id = packageIdOf('tiny_1', pkg);
    const installed = await fetch(`${peer.url}/v1/admin/chaincodes`, {
      method: 'POST',
      headers: { 'content-type': 'application/octet-stream' },
      body: pkg,
    });
    expect(installed.status).toBe(201);

    const got = await fetch(`${peer.url}/v1/admin/chaincodes/${encodeURIComponent(id)}`);
    expect(got.status).toBe(200);
    expect(got.headers.get('content-type')).toContain('application/octet-stream');
    expect(new Uint8Array(await got.arrayBuffer())).toEqual(pkg);

    const other = await fetch(`${peer.url}/v1/admin/chaincodes/${encodeURIComponent(`tiny_2:${'0'.repeat(64)}`)}`);
    expect(other.status).toBe(404);
    expect(((await other.json()) as { code: string }).code).toBe('CHAINCODE_NOT_INSTALLED');
    const malformed = await fetch(`${peer.url}/v1/admin/chaincodes/not-an-id`);
    expect(malformed.status).toBe(404);
  }, 120_000);
});
