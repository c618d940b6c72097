/** Pub/sub: topics and patterns, the local index, and the PubSub service. */
export { PubSub, type PubSubComponents, type PubSubStats, type PublishOptions, type PublishResult, type Reply, type RequestOptions, type RunResult, type SubscribeOptions } from './pubsub.js';
export { PubSubRun, Subscription, SubscriptionIterator, type MessageHandler, type PubSubMessage, type RunHandler } from './subscription.js';
export { resolvePubSubOptions, type PubSubInit, type PubSubOptions } from './options.js';
export { InvalidPayloadError, NoRespondersError } from './errors.js';
export { InvalidQueueGroupError, validateQueueGroup } from './queue.js';
export { PUBLISH, REPLY, UNSUBSCRIBED } from './messages.js';
export { TopicTrie } from './topic-trie.js';
export {
  InvalidTopicError,
  literalPrefix,
  matches,
  prefixesOf,
  validatePattern,
  validateTopic,
  type TopicLimits,
  type TopicRule,
} from './topic.js';
