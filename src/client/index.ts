/** The light client: use a running node as gateway without joining the mesh. */
export {
  MaculaClient,
  NodeUnreachableError,
  PublishError,
  type PublishStats,
  DEFAULT_NODE,
  DEFAULT_CLIENT_TIMEOUT_MS,
  type AttachInfo,
  type ClientMessage,
  type ClientProvider,
  type ClientSubscription,
  type MaculaClientComponents,
  type MaculaClientInit,
  type ServeContext,
  type ServeHandler,
  type ServedProcedure,
} from './client.js';
export type { PeersSnapshot } from '../gateway/snapshot.js';
