/** The Node 20 `Promise.withResolvers` polyfill libp2p needs, shared with the peer: see @loom/common/p2p/node-compat. */
import '@loom/common/p2p/node-compat';
