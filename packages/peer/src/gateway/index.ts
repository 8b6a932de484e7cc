// The peer gateway: fastify plugin built from @loom/common/gateway's routes, and endorser planning.
export { type EndorsementPlanInput, type EndorserTarget, planEndorsement } from './endorsement-plan.js';
export {
  type EndorserOutcome,
  type GatewayAction,
  type GatewayDependencies,
  type GatewayPluginOptions,
  gatewayPlugin,
  registerGateway,
} from './gateway-plugin.js';
export { createRemoteEndorser, type RemoteEndorserOptions } from './remote-endorser.js';
export {
  type BroadcastResult,
  createOrdererBroadcaster,
  type OrdererBroadcasterOptions,
} from './orderer-broadcaster.js';
