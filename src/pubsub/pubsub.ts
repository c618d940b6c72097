/**
 * Publish/subscribe across the mesh, without a broker.
 *
 * Topics are dot-separated segments (`sensors.site1.temp`); subscription
 * patterns may use `*` (exactly one segment) and a final `#` (zero or more
 * segments). Limits: 256 UTF-8 bytes, 16 segments, no empty segments,
 * wildcards only in patterns, payloads up to 256 KiB (CBOR-encoded).
 * Everything stays inside the node's realm: DHT keys include the realm and
 * nodes of different realms never connect.
 *
 * How a message travels. A subscriber announces its patterns in the DHT,
 * keyed by each pattern's literal prefix (the segments before the first
 * wildcard). A publisher of `a.b.c` looks up the keys of '', `a`, `a.b` and
 * `a.b.c` (segments + 1 lookups, in parallel, cached 5 s) and keeps the nodes
 * with a pattern matching the topic. It sends one PUBLISH per subscriber
 * *node*, through a bounded worker pool; the receiving node hands it to each
 * of its matching subscriptions.
 *
 * Delivery semantics:
 * - At most once. A message can be lost (a node going down, a full buffer,
 *   a full queue with `noWait`, an overflowing per-node backlog while a node
 *   is dialed) and is then counted, never retried. It is never delivered
 *   twice to one subscription.
 * - Per-publisher order for each subscriber: every message carries the
 *   publisher's sequence number and a receiver drops any message not newer
 *   than the last one it accepted from that publisher (counted as
 *   duplicates). Order is the order in which publish() calls reach the
 *   fan-out: publishes of one topic keep their call order; publishes of
 *   different topics keep it when each is awaited before the next (a
 *   publish whose subscriber lookup is still pending may be overtaken by a
 *   later one of another topic whose subscribers are cached).
 * - No order across publishers.
 * - A new subscription is seen by a publisher within the cache TTL (5 s) of
 *   its announcement; an unsubscribed node is dropped from a publisher's
 *   cache by its UNSUBSCRIBED notice, on the first message it receives.
 * - Each subscription has a bounded buffer (1000 messages) in front of its
 *   handler, which gets one message at a time; when the buffer is full new
 *   messages are dropped and counted on that subscription only. A slow
 *   subscription never slows down another one or the publisher.
 * - publish() resolves once the sends are queued, not delivered. When the
 *   fan-out queue is full it waits (backpressure), or with `noWait` fails at
 *   once with QueueFullError, nothing sent, the drop counted.
 *
 * Sequence numbers start at the publisher's clock in microseconds
 * (Date.now() × 1000) and count up by one per publish: a restarted
 * publisher starts above its previous numbers, so its new messages are not
 * mistaken for replays, unless it published more than 1000 messages per
 * millisecond on average before restarting.
 */
import type { Liveness } from '../liveness/liveness.js';
import type { Clock } from '../util/clock.js';
import { systemClock } from '../util/clock.js';
import type { PeerInfo } from '../session/peer-session.js';
import type { PeerAddress } from '../transport/types.js';
import { QueueFullError, StoppedError } from '../util/errors.js';
import { encodeBody, encodeMessage, type EncodedMessage } from '../wire/codec.js';
import type { HandlerRegistry } from '../wire/messages.js';
import { Announcer, type AnnouncerDht, type AnnouncerStats } from './announcer.js';
import { relaxedLimits } from './announcement.js';
import { InvalidPayloadError } from './errors.js';
import { Fanout, type FanoutMessenger, type FanoutStats, type Peer } from './fanout.js';
import { LocalSubscriptions, type DeliveryTotals } from './local-subscriptions.js';
import { PUBLISH, UNSUBSCRIBED } from './messages.js';
import { resolvePubSubOptions, type PubSubInit, type PubSubOptions } from './options.js';
import { Receiver, type ReceiverStats } from './receiver.js';
import { SubscriberCache, type SubscriberCacheDht, type SubscriberCacheStats } from './subscriber-cache.js';
import { SubscriptionIterator, type MessageHandler, type Subscription } from './subscription.js';
import { validateTopic, type TopicLimits } from './topic.js';
import type { RecordAuth } from '../auth/record-auth.js';
import { fromHex } from '../identity/identity.js';

export interface PubSubComponents {
  identity: { readonly nodeIdHex: string };
  dht: AnnouncerDht & SubscriberCacheDht;
  messenger: FanoutMessenger & HandlerRegistry<PeerInfo, undefined>;
  realm: string;
  /** Where other nodes reach this one (put in subscription records). Called when announcing, not at construction. */
  advertisedAddress: () => PeerAddress;
  clock?: Clock;
  /** Receives what subscription handlers throw (they are counted either way). */
  onHandlerError?: (err: unknown, sub: Subscription) => void;
  /** In a secured realm: credentials in announcements (see RecordAuth). */
  auth?: RecordAuth;
  /** Shared failure detection (the fan-out reports failed sends; down nodes leave the subscriber cache). */
  liveness?: Liveness;
}

export interface PublishOptions {
  /** Fail at once with QueueFullError (nothing sent, drop counted) instead of waiting when the fan-out queue is full. */
  noWait?: boolean;
  /** Node ID (hex) of the light client this node publishes for (the gateway sets it); subscribers see it as `origin`. */
  origin?: string;
}

export interface PublishResult {
  /** Remote subscriber nodes the message was queued for. */
  nodes: number;
  /** Local subscriptions it was handed to. */
  local: number;
}

export interface PubSubStats extends ReceiverStats, DeliveryTotals {
  subscriptions: number;
  /** Distinct patterns subscribed. */
  patterns: number;
  published: number;
  publishesNoSubscribers: number;
  /** publish() calls refused with QueueFullError (`noWait`). */
  publishesDropped: number;
  localDeliveries: number;
  announce: AnnouncerStats;
  cache: SubscriberCacheStats;
  fanout: FanoutStats;
}

export class PubSub {
  readonly options: PubSubOptions;
  readonly #selfId: string;
  readonly #limits: Required<TopicLimits>;
  readonly #announcer: Announcer;
  readonly #local: LocalSubscriptions;
  readonly #cache: SubscriberCache;
  readonly #fanout: Fanout;
  readonly #receiver: Receiver;
  #seq = Date.now() * 1000;
  #stopped = false;
  #n = { published: 0, publishesNoSubscribers: 0, publishesDropped: 0, localDeliveries: 0 };

  constructor(components: PubSubComponents, init: PubSubInit = {}) {
    const o = (this.options = resolvePubSubOptions(init));
    const clock = components.clock ?? systemClock;
    const messenger = components.messenger;
    this.#selfId = components.identity.nodeIdHex;
    this.#limits = { maxBytes: o.maxTopicBytes, maxSegments: o.maxTopicSegments };
    this.#announcer = new Announcer(components, { ttlMs: o.announceTtlMs, maxAnnounceBytes: o.maxAnnounceBytes });
    this.#local = new LocalSubscriptions(
      { announcer: this.#announcer, onHandlerError: components.onHandlerError },
      { limits: this.#limits, bufferSize: o.subscriptionBufferSize, maxSubscriptions: o.maxSubscriptions },
    );
    this.#fanout = new Fanout(
      { messenger, clock, liveness: components.liveness, onPeerDown: components.liveness ? undefined : (peer: Peer) => this.#cache.forget(peer.nodeId) },
      {
        concurrency: o.fanoutConcurrency,
        maxQueue: o.fanoutQueue,
        nodeBacklog: o.nodeBacklog,
        downBackoffMs: o.downBackoffMs,
        maxDownBackoffMs: o.maxDownBackoffMs,
        sendStallMs: o.sendStallMs,
        maxPeers: o.subscriberCacheMax,
      },
    );
    this.#cache = new SubscriberCache(
      { dht: components.dht, realm: components.realm, selfId: this.#selfId, clock: components.clock, peer: (id, a) => this.#fanout.peer(id, a), auth: components.auth, isDown: components.liveness && ((id) => components.liveness!.isDown(id)) },
      { ttlMs: o.subscriberCacheTtlMs, max: o.subscriberCacheMax, limits: relaxedLimits(this.#limits) },
    );
    this.#receiver = new Receiver(
      { local: this.#local, announcer: this.#announcer, cache: this.#cache, messenger, clock: components.clock },
      { limits: this.#limits, maxPublishers: o.maxPublishers, unsubscribedIntervalMs: o.unsubscribedIntervalMs },
    );
    // Down: out of every cached answer at once. Up: answers are rebuilt (from the DHT) with it.
    components.liveness?.onChange((nodeId, up) => (up ? this.#cache.up(nodeId) : this.#cache.down(nodeId)));
    messenger.handle(PUBLISH, this.#receiver.onPublish);
    messenger.handle(UNSUBSCRIBED, this.#receiver.onUnsubscribed);
  }

  /**
   * Subscribes `handler` to every topic matching `pattern`. Local publishes
   * reach it at once; remote publishers see it once its announcement is
   * stored (`subscription.ready`) and their cached answer expires (at most
   * the cache TTL).
   * @throws InvalidTopicError, LimitExceededError (maxSubscriptions), StoppedError
   */
  subscribe(pattern: string, handler: MessageHandler, options: { onClose?: () => void } = {}): Subscription {
    if (this.#stopped) throw StoppedError.of('pub/sub');
    return this.#local.add(pattern, handler, options.onClose);
  }

  /** Subscribes and returns an async iterator over the messages; `return()` (or `break`) unsubscribes. */
  messages(pattern: string): SubscriptionIterator {
    const it = new SubscriptionIterator();
    it.subscription = this.subscribe(pattern, it.handler, { onClose: it.end });
    return it;
  }

  /**
   * Publishes `data` (any CBOR-encodable value except undefined) to `topic`.
   * Resolves once the message is handed to local subscriptions and queued
   * for every remote subscriber node.
   * @throws InvalidTopicError, InvalidPayloadError, QueueFullError (noWait), StoppedError — as rejections
   */
  publish(topic: string, data: unknown, options: PublishOptions = {}): Promise<PublishResult> {
    if (this.#stopped) return Promise.reject(StoppedError.of('pub/sub'));
    let segs: string[];
    let payload: Uint8Array | undefined;
    try {
      segs = validateTopic(topic, this.#limits);
      payload = this.#checkPayload(data);
    } catch (err) {
      return Promise.reject(err);
    }
    const peers = this.#cache.lookup(topic, segs);
    if (Array.isArray(peers)) return this.#send(topic, segs, data, payload, peers as readonly Peer[], options);
    return (peers as Promise<readonly Peer[]>).then((p) => this.#send(topic, segs, data, payload, p, options));
  }

  /** This node's advertised address changed: subscription records are announced again with it. */
  addressChanged(): void {
    this.#announcer.addressChanged();
  }

  /** The fan-out worker pool (its depth, for metrics and tests). */
  get fanoutPool(): Fanout['pool'] {
    return this.#fanout.pool;
  }

  stats(): PubSubStats {
    return {
      subscriptions: this.#local.size,
      patterns: this.#local.patternCount,
      ...this.#n,
      ...this.#receiver.stats(),
      ...this.#local.totals(),
      announce: this.#announcer.stats(),
      cache: this.#cache.stats(),
      fanout: this.#fanout.stats(),
    };
  }

  /**
   * Closes every subscription, withdraws this node's subscription records
   * (unless `withdraw: false`, e.g. to simulate a crash), drops pending
   * backlogs and lets accepted sends finish (at most 2 s). Later calls
   * reject with StoppedError.
   */
  async stop(options: { withdraw?: boolean } = {}): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#local.closeAll();
    this.#receiver.stop();
    await Promise.all([this.#announcer.stop(options.withdraw ?? true), this.#fanout.close()]);
    this.#cache.clear();
  }

  /**
   * `payload`: `data` already encoded by the size check, if it had to be.
   * The message is encoded once, only when there are subscriber nodes, and
   * every one of them gets these bytes.
   */
  #send(topic: string, segs: readonly string[], data: unknown, payload: Uint8Array | undefined, peers: readonly Peer[], options: PublishOptions): Promise<PublishResult> {
    if (this.#stopped) return Promise.reject(StoppedError.of('pub/sub'));
    const noWait = options.noWait === true;
    const seq = this.#seq;
    let msg: EncodedMessage | undefined;
    if (peers.length > 0) {
      const fields = { t: PUBLISH.type, tp: topic, s: seq, ...(options.origin !== undefined && { o: fromHex(options.origin) }) };
      msg = encodeMessage(fields, { d: payload ?? encodeBody(data) });
    }
    if (noWait && msg !== undefined && !this.#fanout.trySubmitAll(peers, msg)) {
      this.#n.publishesDropped++;
      const what = `the pub/sub fan-out queue (no room for ${peers.length} sends; nothing was sent)`;
      return Promise.reject(new QueueFullError(what, this.#fanout.pool.maxQueue));
    }
    // Numbered only once accepted: a refused publish leaves no gap to be mistaken for a loss.
    this.#seq = seq + 1;
    this.#n.published++;
    const local = this.#local.deliver({ topic, data, publisher: this.#selfId, seq, ...(options.origin !== undefined && { origin: options.origin }) }, segs);
    this.#n.localDeliveries += local;
    const result: PublishResult = { nodes: peers.length, local };
    if (msg === undefined) {
      if (local === 0) this.#n.publishesNoSubscribers++;
      return Promise.resolve(result);
    }
    if (noWait) return Promise.resolve(result);
    const waiting = this.#fanout.submit(peers, msg);
    return waiting === undefined ? Promise.resolve(result) : waiting.then(() => result);
  }

  /** Checks the payload's size; returns its encoding when measuring it took one (the sends reuse it). */
  #checkPayload(data: unknown): Uint8Array | undefined {
    const max = this.options.maxPayloadBytes;
    let size: number;
    let bytes: Uint8Array | undefined;
    if (data === undefined) throw new InvalidPayloadError('the payload is undefined, which a message cannot carry; publish null instead');
    if (data === null || typeof data === 'number' || typeof data === 'boolean') return undefined;
    if (data instanceof Uint8Array) size = data.byteLength;
    else if (typeof data === 'string') {
      // A UTF-16 unit is at most 3 UTF-8 bytes: short strings need no count.
      if (data.length * 3 <= max) return undefined;
      size = Buffer.byteLength(data, 'utf8');
    } else {
      try {
        bytes = encodeBody(data);
      } catch (err) {
        throw new InvalidPayloadError(`the payload cannot be encoded as CBOR: ${(err as Error)?.message ?? err}`, { cause: err });
      }
      size = bytes.length;
    }
    if (size > max) throw new InvalidPayloadError(`payload of ${size} bytes exceeds the limit of ${max} bytes (maxPayloadBytes); send smaller messages`);
    return bytes;
  }
}
