/**
 * The sample chaincode (chaincode/basic) as Fabric's asset-transfer-basic clients use it. Its
 * sources are compiled here with TypeScript itself (decorators + emitDecoratorMetadata, as its own
 * tsconfig does) so parameter types come from `design:paramtypes` exactly as in a real build, then
 * loaded through the start-chaincode loader (package.json `main` → `contracts`).
 */
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type ChaincodeConnection, Shim } from '@loom/chaincode-sdk';
import ts from 'typescript';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadChaincode, startChaincode } from '../src/bin/start-chaincode.js';
import { FakePeer, type TxOutcome } from './fake-peer.js';

const sampleDir = resolve(fileURLToPath(new URL('.', import.meta.url)), '../../../chaincode/basic');

let buildDir: string;
let peer: FakePeer;
let conn: ChaincodeConnection;

function compileSample(): string {
  const dir = mkdtempSync(join(tmpdir(), 'loom-basic-'));
  const srcDir = join(sampleDir, 'src');
  const tsconfig = JSON.parse(readFileSync(join(sampleDir, 'tsconfig.json'), 'utf8')) as {
    compilerOptions: Record<string, unknown>;
  };
  expect(tsconfig.compilerOptions['experimentalDecorators']).toBe(true);
  expect(tsconfig.compilerOptions['emitDecoratorMetadata']).toBe(true);
  writeFileSync(
    join(dir, 'package.json'),
    JSON.stringify({ name: 'asset-transfer-basic', version: '1.0.0', main: 'index.js' }),
  );
  for (const f of readdirSync(srcDir).filter((n) => n.endsWith('.ts'))) {
    const out = ts.transpileModule(readFileSync(join(srcDir, f), 'utf8'), {
      compilerOptions: {
        target: ts.ScriptTarget.ES2022,
        module: ts.ModuleKind.ESNext,
        experimentalDecorators: true,
        emitDecoratorMetadata: true,
      },
    });
    writeFileSync(join(dir, f.replace(/\.ts$/, '.js')), out.outputText);
  }
  return dir;
}

beforeAll(async () => {
  buildDir = compileSample();
  peer = new FakePeer();
  const address = await peer.listen();
  const { chaincode } = await loadChaincode(buildDir);
  conn = Shim.start(chaincode, { peerAddress: address, chaincodeId: 'basic:1.0' });
  await conn.registered;
});

afterAll(async () => {
  conn?.close();
  await peer?.close();
  if (buildDir) rmSync(buildDir, { recursive: true, force: true });
});

let n = 0;
async function submit(
  ...args: string[]
): Promise<{ status: number; message: string; text: string; outcome: TxOutcome }> {
  const outcome = await peer.invoke(args, { txId: `basic-${++n}` });
  if (outcome.type !== 'COMPLETED') throw new Error(`ERROR: ${outcome.payload.message}`);
  const r = outcome.payload.response;
  return { status: r.status, message: r.message, text: Buffer.from(r.payload).toString(), outcome };
}

describe('asset-transfer-basic on the Loom SDK', () => {
  it('InitLedger writes six assets as sorted-key JSON', async () => {
    expect((await submit('InitLedger')).status).toBe(200);
    expect(peer.get('asset1')).toBe(
      '{"AppraisedValue":300,"Color":"blue","ID":"asset1","Owner":"Tomoko","Size":5,"docType":"asset"}',
    );
    const all = JSON.parse((await submit('GetAllAssets')).text) as Array<{ ID: string }>;
    expect(all.map((a) => a.ID)).toEqual(['asset1', 'asset2', 'asset3', 'asset4', 'asset5', 'asset6']);
  });

  it('CreateAsset converts numeric parameters from design:paramtypes; ReadAsset returns the JSON', async () => {
    expect((await submit('CreateAsset', 'asset7', 'purple', '20', 'Ann', '900')).status).toBe(200);
    const read = await submit('ReadAsset', 'asset7');
    expect(read.text).toBe(
      '{"AppraisedValue":900,"Color":"purple","ID":"asset7","Owner":"Ann","Size":20,"docType":"asset"}',
    );
    const dup = await submit('CreateAsset', 'asset7', 'purple', '20', 'Ann', '900');
    expect(dup).toMatchObject({ status: 500, message: 'The asset asset7 already exists' });
    const bad = await submit('CreateAsset', 'asset8', 'purple', 'big', 'Ann', '900');
    expect(bad.status).toBe(500);
    expect(bad.message).toMatch(/Unable to validate parameter/);
  });

  it('AssetExists, UpdateAsset and DeleteAsset', async () => {
    expect((await submit('AssetExists', 'asset7')).text).toBe('true');
    expect((await submit('UpdateAsset', 'asset7', 'gold', '21', 'Ann', '950')).status).toBe(200);
    expect(JSON.parse((await submit('ReadAsset', 'asset7')).text)).toMatchObject({ Color: 'gold', Size: 21 });
    expect(await submit('UpdateAsset', 'nope', 'x', '1', 'y', '2')).toMatchObject({
      status: 500,
      message: 'The asset nope does not exist',
    });
    expect((await submit('DeleteAsset', 'asset7')).status).toBe(200);
    expect((await submit('AssetExists', 'asset7')).text).toBe('false');
    expect(await submit('ReadAsset', 'asset7')).toMatchObject({
      status: 500,
      message: 'The asset asset7 does not exist',
    });
  });

  it('TransferAsset returns the old owner and emits the TransferAsset event', async () => {
    const r = await submit('TransferAsset', 'asset1', 'Christopher');
    expect(r.text).toBe('Tomoko');
    if (r.outcome.type !== 'COMPLETED') throw new Error('not completed');
    expect(r.outcome.payload.event?.eventName).toBe('TransferAsset');
    expect(Buffer.from(r.outcome.payload.event!.payload).toString()).toBe(peer.get('asset1'));
    expect(JSON.parse(peer.get('asset1')!)).toMatchObject({ Owner: 'Christopher' });
  });

  it('QueryAssetsByOwner runs the owner rich query', async () => {
    const r = await submit('QueryAssetsByOwner', 'Christopher');
    expect((JSON.parse(r.text) as Array<{ ID: string }>).map((a) => a.ID)).toEqual(['asset1']);
    const q = peer.received.find((m) => m.type === 'GET_QUERY_RESULT');
    expect(q?.payload).toMatchObject({ query: '{"selector":{"docType":"asset","Owner":"Christopher"}}' });
    const index = JSON.parse(readFileSync(join(sampleDir, 'META-INF/statedb/couchdb/indexes/indexOwner.json'), 'utf8'));
    expect(index.index.fields).toEqual(['docType', 'Owner']);
  });

  it('GetAssetHistory lists every committed change', async () => {
    const history = JSON.parse((await submit('GetAssetHistory', 'asset7')).text) as Array<{
      isDelete: boolean;
      asset: { Color: string } | null;
    }>;
    expect(history.map((h) => [h.isDelete, h.asset?.Color ?? null])).toEqual([
      [false, 'purple'],
      [false, 'gold'],
      [true, null],
    ]);
  });

  it('GetMetadata describes the contract with types from emitDecoratorMetadata', async () => {
    const md = JSON.parse((await submit('org.hyperledger.fabric:GetMetadata')).text);
    expect(md.info).toEqual({ title: 'asset-transfer-basic', version: '1.0.0' });
    const c = md.contracts.AssetTransferContract;
    expect(c.contractInstance).toEqual({ name: 'AssetTransferContract', default: true });
    expect(c.info).toMatchObject({ title: 'AssetTransfer', description: 'Smart contract for trading assets' });
    const create = c.transactions.find((t: { name: string }) => t.name === 'CreateAsset');
    expect(create).toEqual({
      name: 'CreateAsset',
      tag: ['submitTx'],
      parameters: [
        { name: 'id', description: '', schema: { type: 'string' } },
        { name: 'color', description: '', schema: { type: 'string' } },
        { name: 'size', description: '', schema: { type: 'number' } },
        { name: 'owner', description: '', schema: { type: 'string' } },
        { name: 'appraisedValue', description: '', schema: { type: 'number' } },
      ],
    });
    const read = c.transactions.find((t: { name: string }) => t.name === 'ReadAsset');
    expect(read.tag).toEqual(['evaluate']);
    expect(read.returns).toEqual({ type: 'string' });
    expect(md.components.schemas.Asset.properties).toEqual({
      docType: { type: 'string' },
      ID: { type: 'string' },
      Color: { type: 'string' },
      Size: { type: 'number' },
      Owner: { type: 'string' },
      AppraisedValue: { type: 'number' },
    });
  });
});

describe('start-chaincode', () => {
  it('dial-out: --peer.address and CORE_CHAINCODE_ID_NAME', async () => {
    const p = new FakePeer();
    const address = await p.listen();
    const running = await startChaincode(['start', '--peer.address', address, '--module-path', buildDir], {
      CORE_CHAINCODE_ID_NAME: 'basic:2.0',
    });
    try {
      expect(p.registeredAs).toBe('basic:2.0');
      const o = await p.invoke(['AssetExists', 'x']);
      expect(o.type).toBe('COMPLETED');
    } finally {
      if ('close' in running && typeof running.close === 'function') running.close();
      await p.close();
    }
  });

  it('server mode: CHAINCODE_SERVER_ADDRESS, the peer dials in', async () => {
    const running = await startChaincode(['--module-path', buildDir], {
      CHAINCODE_SERVER_ADDRESS: '127.0.0.1:0',
      CORE_CHAINCODE_ID_NAME: 'basic_1.0:hash',
    });
    const p = new FakePeer();
    try {
      if (!('address' in running)) throw new Error('expected a server');
      await p.dial(running.address);
      await p.registered();
      expect(p.registeredAs).toBe('basic_1.0:hash');
    } finally {
      await p.close();
      if ('stop' in running) await running.stop();
    }
  });

  it('fails clearly without a peer address or chaincode id', async () => {
    await expect(startChaincode(['start', '--module-path', buildDir], {})).rejects.toThrow(/peer.address/);
    await expect(
      startChaincode(['start', '--module-path', buildDir, '--peer.address', '127.0.0.1:1'], {}),
    ).rejects.toThrow(/CORE_CHAINCODE_ID_NAME/);
  });
});
