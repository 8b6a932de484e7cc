/**
 * Views of a ChannelConfig for the components that enforce it: the MSP configs a channel trusts,
 * and the policies of its application and orderer sections. Pure.
 */
import type { MspConfig } from '../msp/types.js';
import { ChannelPolicies } from '../policy/channel-policies.js';
import type { ChannelConfig, OrgConfig, PolicyDef } from '../protocol/channel-config.js';

export function mspConfigOf(org: OrgConfig): MspConfig {
  return {
    mspId: org.mspId,
    rootCerts: org.msp.rootCerts,
    intermediateCerts: org.msp.intermediateCerts,
    admins: org.msp.admins,
    revocationList: org.msp.crls,
    nodeOUs: { enable: org.msp.nodeOUs },
    tlsRootCerts: org.msp.tlsRootCerts,
    tlsIntermediateCerts: org.msp.tlsIntermediateCerts,
  };
}

/** Every MSP of the channel: application organizations and orderer organizations. */
export function mspConfigsOf(config: ChannelConfig): MspConfig[] {
  const out = new Map<string, MspConfig>();
  for (const org of Object.values(config.orgs)) out.set(org.mspId, mspConfigOf(org));
  for (const org of Object.values(config.orderer.orgs)) out.set(org.mspId, mspConfigOf(org));
  return [...out.values()];
}

const rules = (defs: Record<string, PolicyDef>) =>
  Object.fromEntries(Object.entries(defs).map(([k, v]) => [k, v.rule]));

/** The application section's policies (Readers, Writers, Admins, Endorsement, LifecycleEndorsement, ...). */
export function applicationPoliciesOf(config: ChannelConfig): ChannelPolicies {
  return new ChannelPolicies({
    orgs: Object.fromEntries(Object.values(config.orgs).map((o) => [o.mspId, rules(o.policies)])),
    channel: rules(config.policies),
  });
}

/** The orderer section's policies, evaluated over the orderer organizations. */
export function ordererPoliciesOf(config: ChannelConfig): ChannelPolicies {
  return new ChannelPolicies({
    orgs: Object.fromEntries(Object.values(config.orderer.orgs).map((o) => [o.mspId, rules(o.policies)])),
    channel: rules(config.orderer.policies),
  });
}

/**
 * Who may write to / read from a channel at the ordering service: Fabric lets both the application
 * `Writers` and the orderer organizations' members broadcast, and the same for `Readers` on deliver.
 */
export function channelAccessPolicies(config: ChannelConfig): {
  application: ChannelPolicies;
  orderer: ChannelPolicies;
} {
  return { application: applicationPoliciesOf(config), orderer: ordererPoliciesOf(config) };
}
