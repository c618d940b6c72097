import type { PeerAddress } from '../transport/types.js';

/** What a node reports about itself: `macula stats`, `/health`, GW_STATS. */
export interface NodeStatus {
  nodeId: string;
  realm: string;
  listen: PeerAddress | undefined;
  transport: string;
  connections: number;
  routingTableSize: number;
  joined: boolean;
  /** Started and not stopped. */
  running: boolean;
  /** Bootstrap addresses the node was given (0: the first node of a mesh). */
  bootstrapNodes: number;
  startedAt: number;
}
