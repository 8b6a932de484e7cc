import { describe, expect, it } from 'vitest';
import { buildCli } from '../index.js';
import { parseCtor } from './chaincode.js';

describe('loom chaincode', () => {
  it("parses Fabric's -c forms", () => {
    expect(parseCtor('{"function":"CreateAsset","Args":["a1","blue"]}')).toEqual({
      fn: 'CreateAsset',
      args: ['a1', 'blue'],
    });
    expect(parseCtor('{"Args":["ReadAsset","a1"]}')).toEqual({ fn: 'ReadAsset', args: ['a1'] });
    expect(parseCtor('{"function":"GetAllAssets"}')).toEqual({ fn: 'GetAllAssets', args: [] });
    expect(() => parseCtor('nope')).toThrow(/-c must be JSON/);
    expect(() => parseCtor('{"Args":[1]}')).toThrow(/list of strings/);
    expect(() => parseCtor('{"Args":[]}')).toThrow(/name the function/);
  });

  it('registers every subcommand under the shared chaincode group', () => {
    const cc = buildCli().commands.find((c) => c.name() === 'chaincode')!;
    expect(cc.commands.map((c) => c.name()).sort()).toEqual(
      [
        'approve',
        'calculatepackageid',
        'checkcommitreadiness',
        'commit',
        'deploy',
        'install',
        'invoke',
        'package',
        'query',
        'querycommitted',
        'queryinstalled',
      ].sort(),
    );
  });
});
