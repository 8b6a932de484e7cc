import { isLoomError, parsePolicy, parseSignaturePolicy } from '@loom/common';
import { describe, expect, it } from 'vitest';
import { type EndorserTarget, planEndorsement } from './endorsement-plan.js';

const peer = (mspId: string, n = 0): EndorserTarget => ({ mspId, endpoint: `https://peer${n}.${mspId}:7051` });
const peers = [peer('Org1MSP'), peer('Org1MSP', 1), peer('Org2MSP'), peer('Org3MSP')];
const orgsOf = (plan: EndorserTarget[]) => plan.map((p) => p.mspId);

describe('planEndorsement', () => {
  it('takes every organization an AND names, one peer each, local first', () => {
    const plan = planEndorsement({
      policy: parsePolicy("AND('Org2MSP.peer','Org1MSP.peer')"),
      peers,
      localMspId: 'Org2MSP',
    });
    expect(plan).toEqual([peer('Org2MSP'), peer('Org1MSP')]);
  });

  it('answers an OR with the local organization alone', () => {
    const plan = planEndorsement({
      policy: parsePolicy("OR('Org1MSP.peer','Org2MSP.peer','Org3MSP.peer')"),
      peers,
      localMspId: 'Org3MSP',
    });
    expect(plan).toEqual([peer('Org3MSP')]);
  });

  it('picks the fewest organizations for OutOf, preferring the local one', () => {
    const plan = planEndorsement({
      policy: parsePolicy("OutOf(2, 'Org1MSP.member', 'Org2MSP.peer', 'Org3MSP.peer')"),
      peers,
      localMspId: 'Org3MSP',
    });
    expect(orgsOf(plan)).toEqual(['Org3MSP', 'Org1MSP']);
  });

  it('asks two peers of one organization when the policy needs two of its signatures', () => {
    const plan = planEndorsement({
      policy: parsePolicy("AND('Org1MSP.peer','Org1MSP.peer')"),
      peers,
      localMspId: 'Org1MSP',
    });
    expect(plan).toEqual([peer('Org1MSP'), peer('Org1MSP', 1)]);
  });

  it('plans an implicit meta policy over the organizations’ own Endorsement policies', () => {
    const plan = planEndorsement({
      policy: parsePolicy('MAJORITY Endorsement'),
      peers,
      localMspId: 'Org2MSP',
      orgSubPolicies: {
        Org1MSP: parseSignaturePolicy("OR('Org1MSP.peer')"),
        Org2MSP: parseSignaturePolicy("OR('Org2MSP.peer')"),
        Org3MSP: parseSignaturePolicy("OR('Org3MSP.peer')"),
      },
    });
    expect(orgsOf(plan)).toEqual(['Org2MSP', 'Org1MSP']);
  });

  it('fails with NO_ENDORSEMENT_PLAN when the reachable peers cannot satisfy the policy', () => {
    let err: unknown;
    try {
      planEndorsement({ policy: parsePolicy("AND('Org1MSP.peer','Org4MSP.peer')"), peers, localMspId: 'Org1MSP' });
    } catch (e) {
      err = e;
    }
    expect(isLoomError(err, 'NO_ENDORSEMENT_PLAN')).toBe(true);
    // A role peers never have (admin) cannot be planned either.
    expect(() => planEndorsement({ policy: parsePolicy("OR('Org1MSP.admin')"), peers, localMspId: 'Org1MSP' })).toThrow(
      /no set of reachable peers/,
    );
  });
});
