/**
 * Tunables of PubSub, each with its default. Every bound here exists so that
 * memory stays bounded whatever the publish rate or the number of peers.
 */
import { intOption } from '../util/options.js';
import { DEFAULT_CONCURRENCY, DEFAULT_MAX_QUEUE } from '../util/worker-pool.js';
import { MAX_WIRE_TOPIC_CHARS } from './messages.js';
import { DEFAULT_MAX_TOPIC_BYTES, DEFAULT_MAX_TOPIC_SEGMENTS } from './topic.js';

export const DEFAULT_FANOUT_CONCURRENCY = DEFAULT_CONCURRENCY;
export const DEFAULT_FANOUT_QUEUE = DEFAULT_MAX_QUEUE;
export const DEFAULT_SUBSCRIBER_CACHE_TTL_MS = 5_000;
export const DEFAULT_SUBSCRIBER_CACHE_MAX = 10_000;
export const DEFAULT_ANNOUNCE_TTL_MS = 300_000;
export const DEFAULT_SUBSCRIPTION_BUFFER_SIZE = 1_000;
export const DEFAULT_MAX_SUBSCRIPTIONS = 100_000;
export const DEFAULT_MAX_PAYLOAD_BYTES = 256 * 1024;
/** The DHT's default value limit (record-store maxRecordSize). */
export const DEFAULT_MAX_ANNOUNCE_BYTES = 16 * 1024;
export const DEFAULT_NODE_BACKLOG = 1_000;
export const DEFAULT_DOWN_BACKOFF_MS = 5_000;
export const DEFAULT_MAX_DOWN_BACKOFF_MS = 60_000;
export const DEFAULT_SEND_STALL_MS = 3_000;
export const DEFAULT_MAX_PUBLISHERS = 10_000;
export const DEFAULT_UNSUBSCRIBED_INTERVAL_MS = 1_000;

export interface PubSubInit {
  /** Most PUBLISH sends in flight at once. Default 64. */
  fanoutConcurrency?: number;
  /** Most sends queued behind them; then publish() waits (or fails with `noWait`). Default 10,000. */
  fanoutQueue?: number;
  /** How long a resolved subscriber list (and an empty one) is reused. Default 5000 ms. */
  subscriberCacheTtlMs?: number;
  /** Most entries in each subscriber cache (topics; DHT prefix keys). Default 10,000. */
  subscriberCacheMax?: number;
  /** TTL of our subscription records in the DHT, which re-announces them before expiry. Default 300 s. */
  announceTtlMs?: number;
  /** Messages waiting for a subscription's handler; past it they are dropped and counted. Default 1000. */
  subscriptionBufferSize?: number;
  /** Most live subscriptions on this node. Default 100,000. */
  maxSubscriptions?: number;
  /** Longest topic or pattern in UTF-8 bytes (at most 256, the wire limit). Default 256. */
  maxTopicBytes?: number;
  /** Most segments in a topic or pattern. Default 16. */
  maxTopicSegments?: number;
  /** Largest payload (CBOR-encoded) publish() accepts; must fit the 1 MiB frame. Default 256 KiB. */
  maxPayloadBytes?: number;
  /**
   * Largest subscription record; a prefix whose patterns do not fit is
   * announced as `<prefix>.#` instead (see announcer.ts). Keep it at or under
   * the DHT's maxRecordSize. Default 16 KiB.
   */
  maxAnnounceBytes?: number;
  /** Messages held per subscriber node while its connection is being dialed. Default 1000. */
  nodeBacklog?: number;
  /** Without shared failure detection (a MeshNode has one, `liveness`): a node whose send failed is skipped this long; doubles on repeated failures. Default 5000 ms. */
  downBackoffMs?: number;
  /** Ceiling of that backoff. Default 60 s. */
  maxDownBackoffMs?: number;
  /** A connection with sends in flight and none completing for this long is closed. Default 3000 ms. */
  sendStallMs?: number;
  /** Publishers whose last sequence number is remembered (LRU). Default 10,000. */
  maxPublishers?: number;
  /** At most one UNSUBSCRIBED per (publisher, topic) per this interval. Default 1000 ms. */
  unsubscribedIntervalMs?: number;
}

export type PubSubOptions = Required<PubSubInit>;

function int(name: string, value: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
  return intOption(`pub/sub option ${name}`, value, min, max);
}

export function resolvePubSubOptions(init: PubSubInit = {}): PubSubOptions {
  return {
    fanoutConcurrency: int('fanoutConcurrency', init.fanoutConcurrency ?? DEFAULT_FANOUT_CONCURRENCY, 1),
    fanoutQueue: int('fanoutQueue', init.fanoutQueue ?? DEFAULT_FANOUT_QUEUE, 0),
    subscriberCacheTtlMs: int('subscriberCacheTtlMs', init.subscriberCacheTtlMs ?? DEFAULT_SUBSCRIBER_CACHE_TTL_MS, 1),
    subscriberCacheMax: int('subscriberCacheMax', init.subscriberCacheMax ?? DEFAULT_SUBSCRIBER_CACHE_MAX, 1),
    announceTtlMs: int('announceTtlMs', init.announceTtlMs ?? DEFAULT_ANNOUNCE_TTL_MS, 1000),
    subscriptionBufferSize: int('subscriptionBufferSize', init.subscriptionBufferSize ?? DEFAULT_SUBSCRIPTION_BUFFER_SIZE, 1),
    maxSubscriptions: int('maxSubscriptions', init.maxSubscriptions ?? DEFAULT_MAX_SUBSCRIPTIONS, 1),
    maxTopicBytes: int('maxTopicBytes', init.maxTopicBytes ?? DEFAULT_MAX_TOPIC_BYTES, 1, MAX_WIRE_TOPIC_CHARS),
    maxTopicSegments: int('maxTopicSegments', init.maxTopicSegments ?? DEFAULT_MAX_TOPIC_SEGMENTS, 1),
    // 1 MiB frames carry the topic and envelope too; stay well under.
    maxPayloadBytes: int('maxPayloadBytes', init.maxPayloadBytes ?? DEFAULT_MAX_PAYLOAD_BYTES, 1, 1024 * 1024 - 4096),
    maxAnnounceBytes: int('maxAnnounceBytes', init.maxAnnounceBytes ?? DEFAULT_MAX_ANNOUNCE_BYTES, 512),
    nodeBacklog: int('nodeBacklog', init.nodeBacklog ?? DEFAULT_NODE_BACKLOG, 1),
    downBackoffMs: int('downBackoffMs', init.downBackoffMs ?? DEFAULT_DOWN_BACKOFF_MS, 0),
    maxDownBackoffMs: int('maxDownBackoffMs', init.maxDownBackoffMs ?? DEFAULT_MAX_DOWN_BACKOFF_MS, 0),
    sendStallMs: int('sendStallMs', init.sendStallMs ?? DEFAULT_SEND_STALL_MS, 100),
    maxPublishers: int('maxPublishers', init.maxPublishers ?? DEFAULT_MAX_PUBLISHERS, 1),
    unsubscribedIntervalMs: int('unsubscribedIntervalMs', init.unsubscribedIntervalMs ?? DEFAULT_UNSUBSCRIBED_INTERVAL_MS, 1),
  };
}

/** Pub/sub's defaults, each defined once above. */
export const PUBSUB_DEFAULTS: PubSubOptions = Object.freeze(resolvePubSubOptions());
