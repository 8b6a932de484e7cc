/** Length-prefixed framing, shared with the peer's gossip: see @loom/common/p2p/frames. */
export { FrameReader, frame, MAX_FRAME_BYTES } from '@loom/common/p2p/frames';
