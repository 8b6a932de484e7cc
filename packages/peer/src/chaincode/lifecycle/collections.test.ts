import { describe, expect, it } from 'vitest';
import {
  checkCollectionsUpgrade,
  implicitCollection,
  implicitCollectionName,
  implicitCollectionOrg,
  parseCollectionsConfig,
} from './collections.js';

const channelOrgs = ['Org1MSP', 'Org2MSP', 'Org3MSP'];
const channelPolicyNames = ['Readers', 'Writers', 'Admins', 'Endorsement', 'LifecycleEndorsement'];
const parse = (v: unknown) => parseCollectionsConfig(v, { channelOrgs, channelPolicyNames });

// Fabric's asset-transfer-private-data collections_config.json.
const FABRIC_SAMPLE = `[
  { "name": "assetCollection", "policy": "OR('Org1MSP.member', 'Org2MSP.member')",
    "requiredPeerCount": 1, "maxPeerCount": 1, "blockToLive": 1000000,
    "memberOnlyRead": true, "memberOnlyWrite": true },
  { "name": "Org1MSPPrivateCollection", "policy": "OR('Org1MSP.member')",
    "requiredPeerCount": 0, "maxPeerCount": 1, "blockToLive": 3,
    "memberOnlyRead": true, "memberOnlyWrite": false,
    "endorsementPolicy": { "signaturePolicy": "OR('Org1MSP.member')" } },
  { "name": "shared", "policy": "OR('Org1MSP.member','Org3MSP.member')",
    "endorsementPolicy": { "channelConfigPolicy": "/Channel/Application/Endorsement" } }
]`;

describe('collection configs', () => {
  it("parses Fabric's JSON format", () => {
    const cs = parse(FABRIC_SAMPLE);
    expect(cs.map((c) => c.name)).toEqual(['Org1MSPPrivateCollection', 'assetCollection', 'shared']);
    expect(cs[1]).toEqual({
      name: 'assetCollection',
      memberPolicy: "OR('Org1MSP.member', 'Org2MSP.member')",
      memberOrgs: ['Org1MSP', 'Org2MSP'],
      requiredPeerCount: 1,
      maxPeerCount: 1,
      blockToLive: 1000000,
      memberOnlyRead: true,
      memberOnlyWrite: true,
      endorsementPolicy: undefined,
    });
    expect(cs[0]!.endorsementPolicy).toEqual({ signaturePolicy: "OR('Org1MSP.member')" });
    expect(cs[2]).toMatchObject({
      requiredPeerCount: 0,
      maxPeerCount: 0,
      blockToLive: 0,
      memberOnlyRead: false,
      endorsementPolicy: { channelConfigPolicy: 'Endorsement' },
    });
    expect(parse(undefined)).toEqual([]);
    expect(parse('')).toEqual([]);
    expect(parse(new TextEncoder().encode('[]'))).toEqual([]);
  });

  it.each([
    ['not JSON', '[{', /not JSON/],
    ['not an array', '{"name":"a"}', /JSON array/],
    ['no name', [{ policy: "OR('Org1MSP.member')" }], /has no name/],
    ['reserved name', [{ name: '_implicit_org_Org1MSP', policy: "OR('Org1MSP.member')" }], /reserved/],
    ['bad name', [{ name: 'a b', policy: "OR('Org1MSP.member')" }], /invalid name/],
    [
      'duplicate',
      [
        { name: 'a', policy: "OR('Org1MSP.member')" },
        { name: 'a', policy: "OR('Org1MSP.member')" },
      ],
      /twice/,
    ],
    ['no policy', [{ name: 'a' }], /policy .* is required/],
    ['implicit meta member policy', [{ name: 'a', policy: 'ANY Readers' }], /member policy/],
    ['foreign org', [{ name: 'a', policy: "OR('Org9MSP.member')" }], /not in the channel: Org9MSP/],
    ['negative count', [{ name: 'a', policy: "OR('Org1MSP.member')", requiredPeerCount: -1 }], /non-negative integer/],
    [
      'max < required',
      [{ name: 'a', policy: "OR('Org1MSP.member')", requiredPeerCount: 2, maxPeerCount: 1 }],
      /maxPeerCount/,
    ],
    ['fractional btl', [{ name: 'a', policy: "OR('Org1MSP.member')", blockToLive: 1.5 }], /blockToLive/],
    ['string bool', [{ name: 'a', policy: "OR('Org1MSP.member')", memberOnlyRead: 'yes' }], /memberOnlyRead/],
    ['unknown field', [{ name: 'a', policy: "OR('Org1MSP.member')", colour: 'red' }], /unknown field/],
    [
      'two endorsement policies',
      [
        {
          name: 'a',
          policy: "OR('Org1MSP.member')",
          endorsementPolicy: { signaturePolicy: "OR('Org1MSP.peer')", channelConfigPolicy: 'Endorsement' },
        },
      ],
      /exactly one/,
    ],
    [
      'unknown channel policy',
      [{ name: 'a', policy: "OR('Org1MSP.member')", endorsementPolicy: { channelConfigPolicy: 'Nope' } }],
      /no policy named 'Nope'/,
    ],
    [
      'bad endorsement policy',
      [{ name: 'a', policy: "OR('Org1MSP.member')", endorsementPolicy: { signaturePolicy: 'OR(' } }],
      /endorsementPolicy/,
    ],
  ])('rejects %s with COLLECTION_CONFIG_INVALID', (_what, input, message) => {
    expect(() => parse(input)).toThrow(message);
    expect(() => parse(input)).toThrow(expect.objectContaining({ code: 'COLLECTION_CONFIG_INVALID', httpStatus: 400 }));
  });

  it('names implicit collections per org', () => {
    expect(implicitCollectionName('Org1MSP')).toBe('_implicit_org_Org1MSP');
    expect(implicitCollectionOrg('_implicit_org_Org1MSP')).toBe('Org1MSP');
    expect(implicitCollectionOrg('assetCollection')).toBeUndefined();
    expect(implicitCollectionOrg('_implicit_org_')).toBeUndefined();
    expect(implicitCollection('Org2MSP')).toMatchObject({
      memberOrgs: ['Org2MSP'],
      memberOnlyRead: true,
      endorsementPolicy: { signaturePolicy: "OR('Org2MSP.peer')" },
    });
  });

  it('allows adding collections and changing membership in an upgrade, not removing or changing blockToLive', () => {
    const before = parse(FABRIC_SAMPLE);
    const added = parse([...JSON.parse(FABRIC_SAMPLE), { name: 'extra', policy: "OR('Org2MSP.member')" }]);
    expect(() => checkCollectionsUpgrade(before, added)).not.toThrow();
    const widened = JSON.parse(FABRIC_SAMPLE);
    widened[0].policy = "OR('Org1MSP.member','Org2MSP.member','Org3MSP.member')";
    expect(() => checkCollectionsUpgrade(before, parse(widened))).not.toThrow();
    expect(() => checkCollectionsUpgrade(before, before.slice(1))).toThrow(/cannot be removed/);
    const btl = JSON.parse(FABRIC_SAMPLE);
    btl[0].blockToLive = 5;
    expect(() => checkCollectionsUpgrade(before, parse(btl))).toThrow(/blockToLive cannot change/);
  });
});
