/** The gateway that lets light clients (the shell commands, MaculaClient) use a node. */
export { Gateway, type ClientInfo } from './gateway.js';
export {
  DEFAULT_MAX_CLIENTS,
  DEFAULT_MAX_SUBSCRIPTIONS_PER_CLIENT,
  DEFAULT_MAX_CALLS_PER_CLIENT,
  DEFAULT_MAX_SERVED_PER_CLIENT,
  DEFAULT_MAX_PENDING_FORWARDS,
  DEFAULT_SUBSCRIBE_READY_TIMEOUT_MS,
  DEFAULT_REFUSAL_GRACE_MS,
  type GatewayInit,
  type GatewayStats,
} from './options.js';
export type { GatewayComponents, GatewayPubSub, GatewaySubscription, PeersSnapshot } from './snapshot.js';
export { ClientLimitError, PubSubUnavailableError, TooManyClientsError } from './errors.js';
export { NotAClientError } from '../util/errors.js';
export * from './messages.js';
