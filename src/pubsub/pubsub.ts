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
 * of its matching subscriptions. Consecutive messages to one topic and the
 * same nodes travel as one PUBLISH run (wire/run.ts): those handed over
 * together (publishRun, a light client's GW_SEND run), and publish() calls
 * of one event-loop turn without headers, inbox or queue groups.
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
 * - Queue groups: a message goes to every plain subscription and to at most
 *   one member of each matching queue group in the mesh (exactly one while
 *   the chosen member is up): the publisher picks the member node
 *   round-robin per group (see #pickMembers), that node one local member.
 * - Requests: `request()` publishes with a reply inbox of this node;
 *   subscribers answer with `msg.respond()` (REPLY, one-way).
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
import { LRUCache } from 'lru-cache';
import { ConfigError, LimitExceededError, QueueFullError, StoppedError, TimeoutError } from '../util/errors.js';
import { checkHeaders, type Headers } from '../wire/headers.js';
import { encodeBody, encodeMessage, type EncodedMessage, type MessageFields } from '../wire/codec.js';
import type { HandlerRegistry } from '../wire/messages.js';
import { Announcer, type AnnouncerDht, type AnnouncerStats } from './announcer.js';
import { relaxedLimits } from './announcement.js';
import { InvalidPayloadError, NoRespondersError } from './errors.js';
import { Fanout, type FanoutMessenger, type FanoutStats, type FanoutTarget, type Peer, type Send } from './fanout.js';
import { LocalSubscriptions, type DeliveryTotals } from './local-subscriptions.js';
import { DEFAULT_REQUEST_TIMEOUT_MS, MAX_INBOX, MAX_REQUEST_REPLIES, MAX_REQUEST_TIMEOUT_MS, PUBLISH, REPLY, UNSUBSCRIBED } from './messages.js';
import { resolvePubSubOptions, type PubSubInit, type PubSubOptions } from './options.js';
import { Receiver, type ReceiverStats } from './receiver.js';
import { SlowConsumers, type SlowConsumer } from './slow-consumers.js';
import { SubscriberCache, type SubscriberCacheDht, type SubscriberCacheStats, type TopicTargets } from './subscriber-cache.js';
import { PubSubRun, SubscriptionIterator, type MessageHandler, type PubSubMessage, type RunHandler, type Subscription } from './subscription.js';
import { validateTopic, type TopicLimits } from './topic.js';
import { runHasRoom } from '../wire/run.js';
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
  /** Delivered unchanged with the message (bounds in wire/headers.ts). */
  headers?: Headers;
}

export interface SubscribeOptions {
  /** Called once when the subscription closes. */
  onClose?: () => void;
  /** Queue group: each message goes to one member of the group across the mesh instead of to all. */
  queue?: string;
  /** Node ID (hex) of the light client the subscription forwards to (the gateway sets it); named in slow-consumer reports. */
  client?: string;
  /** Takes runs (consecutive messages of one publisher, see PubSubRun) whole instead of message by message. */
  onRun?: RunHandler;
}

export interface RequestOptions {
  /** How long to gather replies. Default 5000 ms. */
  timeoutMs?: number;
  /** Resolve as soon as this many replies arrived. Default 1. */
  max?: number;
  headers?: Headers;
  origin?: string;
}

/** One answer to a request. */
export interface Reply {
  data: unknown;
  headers?: Headers;
  /** Node ID (hex) of the answering node. */
  responder: string;
}

export { DEFAULT_REQUEST_TIMEOUT_MS, MAX_REQUEST_REPLIES, MAX_REQUEST_TIMEOUT_MS } from './messages.js';
/** Requests of this node waiting for replies at once. */
export const MAX_PENDING_REQUESTS = 10_000;
/** Queue groups whose round-robin turn is remembered (LRU). */
const MAX_GROUP_TURNS = 10_000;

interface Inbox {
  readonly replies: Reply[];
  readonly max: number;
  /** Nodes the request was sent to: a REPLY from any other node is refused (inbox numbers are easy to guess). */
  readonly asked: Set<string>;
  readonly resolve: (replies: Reply[]) => void;
  readonly reject: (err: unknown) => void;
  timer: NodeJS.Timeout | undefined;
}

export interface PublishResult {
  /** Remote subscriber nodes the message was queued for. */
  nodes: number;
  /** Local subscriptions it was handed to. */
  local: number;
}

/** What publishRun() did: `local` counts deliveries (messages × subscriptions). */
export interface RunResult extends PublishResult {
  /** Messages of the run refused one by one (their payload), by index; the others were published. */
  refused: { index: number; error: unknown }[] | undefined;
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
  /** Copies sent to a node chosen for a queue group (one per publish and group), and local picks. */
  queueCopies: number;
  /** Queue-group copies re-sent to another member because their node was down or the send failed. */
  queueFailovers: number;
  /** Queue-group copies with no member left to fail over to (lost). */
  queueLost: number;
  requests: number;
  requestsNoResponders: number;
  requestsTimedOut: number;
  /** Requests waiting for replies now. */
  requestsPending: number;
  repliesReceived: number;
  /** Replies for no pending request (late, or after `max`). */
  repliesUnmatched: number;
  /** REPLYs refused: from a node the request was not sent to. */
  repliesRefused: number;
  repliesSent: number;
  /** PUBLISH runs written to subscriber nodes (one per node per run; their messages count one by one elsewhere). */
  runsSent: number;
  /** Top 10 subscriptions and subscriber nodes by drops in the last minute. */
  slowConsumers: SlowConsumer[];
  /** Consumers with drops tracked now (at most 1000). */
  slowConsumersTracked: number;
  announce: AnnouncerStats;
  cache: SubscriberCacheStats;
  fanout: FanoutStats;
}

/** A publish on its way: what every copy and local delivery is built from. */
interface Outgoing {
  readonly topic: string;
  readonly segs: readonly string[];
  readonly data: unknown;
  /** `data` encoded, once: by the size check when it had to measure, else by the first copy. */
  payload: Uint8Array | undefined;
  readonly headers: Headers | undefined;
  readonly origin: string | undefined;
  readonly inbox: number | undefined;
}

/** A run on its way (publishRun): consecutive messages of one topic, without headers or inbox. */
interface OutgoingRun {
  readonly topic: string;
  readonly segs: readonly string[];
  readonly data: readonly unknown[];
  /** Each payload's encoding when its size check made one. */
  readonly payloads: (Uint8Array | undefined)[];
  readonly origin: string | undefined;
}

/**
 * Publishes of this turn to one topic and the same subscriber nodes,
 * without headers, inbox or queue groups: sent as one PUBLISH run at the
 * end of the turn (or as soon as a publish that cannot join comes).
 */
interface OpenRun {
  readonly topic: string;
  readonly peers: readonly Peer[];
  readonly origin: string | undefined;
  /** The number of its first message. */
  readonly seq: number;
  readonly payloads: Uint8Array[];
  bytes: number;
  /** Settles once the run is queued for every node: what its publishes resolve with. */
  readonly queued: Promise<void>;
  resolve(): void;
  reject(err: unknown): void;
}

/** This node as a queue-group candidate. */
const SELF = Symbol('self');

export class PubSub {
  readonly options: PubSubOptions;
  readonly #selfId: string;
  readonly #limits: Required<TopicLimits>;
  readonly #announcer: Announcer;
  readonly #local: LocalSubscriptions;
  readonly #cache: SubscriberCache;
  /** Per topic: settles once the last publish that waited for a subscriber lookup was sent (publishes keep their order). */
  readonly #lookupTails = new Map<string, Promise<void>>();
  readonly #fanout: Fanout;
  readonly #receiver: Receiver;
  readonly #messenger: PubSubComponents['messenger'];
  readonly #isDown: (nodeId: string) => boolean;
  readonly #turns = new LRUCache<string, number>({ max: MAX_GROUP_TURNS });
  readonly #slow = new SlowConsumers();
  readonly #inboxes = new Map<number, Inbox>();
  #nextInbox = 0;
  #seq = Date.now() * 1000;
  #open: OpenRun | undefined;
  #openScheduled = false;
  /** The last end-of-turn run still waiting for room in the fan-out queue: publishes wait behind it. */
  #turnWait: Promise<void> | undefined;
  #stopped = false;
  #n = {
    published: 0,
    publishesNoSubscribers: 0,
    publishesDropped: 0,
    localDeliveries: 0,
    queueCopies: 0,
    queueFailovers: 0,
    queueLost: 0,
    requests: 0,
    requestsNoResponders: 0,
    requestsTimedOut: 0,
    repliesReceived: 0,
    repliesUnmatched: 0,
    repliesRefused: 0,
    repliesSent: 0,
    runsSent: 0,
  };

  constructor(components: PubSubComponents, init: PubSubInit = {}) {
    const o = (this.options = resolvePubSubOptions(init));
    const clock = components.clock ?? systemClock;
    const messenger = (this.#messenger = components.messenger);
    const liveness = components.liveness;
    this.#isDown = liveness ? (id) => liveness.isDown(id) : () => false;
    this.#selfId = components.identity.nodeIdHex;
    this.#limits = { maxBytes: o.maxTopicBytes, maxSegments: o.maxTopicSegments };
    this.#announcer = new Announcer(components, { ttlMs: o.announceTtlMs, maxAnnounceBytes: o.maxAnnounceBytes });
    this.#local = new LocalSubscriptions(
      {
        announcer: this.#announcer,
        onHandlerError: components.onHandlerError,
        onDrop: (sub, n) =>
          this.#slow.record(`s${sub.id}`, () => ({
            kind: 'subscription',
            node: this.#selfId,
            pattern: sub.pattern,
            subscription: sub.id,
            ...(sub.queue !== undefined && { queue: sub.queue }),
            ...(sub.client !== undefined && { client: sub.client }),
          }), n),
      },
      { limits: this.#limits, bufferSize: o.subscriptionBufferSize, maxSubscriptions: o.maxSubscriptions },
    );
    this.#fanout = new Fanout(
      {
        messenger,
        clock,
        liveness: components.liveness,
        onPeerDown: components.liveness ? undefined : (peer: Peer) => this.#cache.forget(peer.nodeId),
        onDrop: (peer, n) => this.#slow.record(`n${peer.nodeId}`, () => ({ kind: 'node', node: peer.nodeId }), n),
      },
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
      { local: this.#local, announcer: this.#announcer, cache: this.#cache, messenger, clock: components.clock, respond: this.#respondRemote },
      { limits: this.#limits, maxPublishers: o.maxPublishers, unsubscribedIntervalMs: o.unsubscribedIntervalMs },
    );
    // Down: out of every cached answer at once. Up: answers are rebuilt (from the DHT) with it.
    components.liveness?.onChange((nodeId, up) => (up ? this.#cache.up(nodeId) : this.#cache.down(nodeId)));
    messenger.handle(PUBLISH, this.#receiver.onPublish);
    messenger.handle(UNSUBSCRIBED, this.#receiver.onUnsubscribed);
    messenger.handle(REPLY, (msg, peer) => {
      const inbox = this.#inboxes.get(msg.r);
      if (inbox !== undefined && !inbox.asked.has(peer.nodeIdHex)) {
        // Only a node the request went to may answer it: another could otherwise slip a forged reply in.
        this.#n.repliesRefused++;
        return undefined;
      }
      this.#reply(msg.r, { data: msg.d, ...(msg.h !== undefined && { headers: msg.h }), responder: peer.nodeIdHex });
      return undefined;
    });
  }

  /**
   * Subscribes `handler` to every topic matching `pattern`. Local publishes
   * reach it at once; remote publishers see it once its announcement is
   * stored (`subscription.ready`) and their cached answer expires (at most
   * the cache TTL). With `queue`, the subscription is a member of that
   * queue group: each message goes to one member of the group in the whole
   * mesh (see ARCHITECTURE.md, queue groups).
   * @throws InvalidTopicError, InvalidQueueGroupError, LimitExceededError (maxSubscriptions), StoppedError
   */
  subscribe(pattern: string, handler: MessageHandler, options: SubscribeOptions = {}): Subscription {
    if (this.#stopped) throw StoppedError.of('pub/sub');
    return this.#local.add(pattern, handler, options);
  }

  /** Subscribes and returns an async iterator over the messages; `return()` (or `break`) unsubscribes. */
  messages(pattern: string, options: { queue?: string } = {}): SubscriptionIterator {
    const it = new SubscriptionIterator();
    it.subscription = this.subscribe(pattern, it.handler, { onClose: it.end, ...options });
    return it;
  }

  /**
   * Publishes `data` with a reply inbox and gathers the answers of
   * subscribers that respond (`msg.respond(data)`): resolves with `max`
   * replies as soon as they arrived, or with those that arrived within
   * `timeoutMs` (at least one).
   * @throws NoRespondersError at once when no subscription matches the topic; TimeoutError when none answered in time;
   *   LimitExceededError (too many pending requests), and what publish() throws — as rejections
   */
  request(topic: string, data: unknown, options: RequestOptions = {}): Promise<Reply[]> {
    if (this.#stopped) return Promise.reject(StoppedError.of('pub/sub'));
    const timeoutMs = options.timeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    const max = options.max ?? 1;
    if (!Number.isInteger(timeoutMs) || timeoutMs < 1 || timeoutMs > MAX_REQUEST_TIMEOUT_MS) {
      return Promise.reject(new ConfigError(`request timeout must be an integer in 1..${MAX_REQUEST_TIMEOUT_MS} ms, got ${timeoutMs}`));
    }
    if (!Number.isInteger(max) || max < 1 || max > MAX_REQUEST_REPLIES) {
      return Promise.reject(new ConfigError(`request max replies must be an integer in 1..${MAX_REQUEST_REPLIES}, got ${max}`));
    }
    if (this.#inboxes.size >= MAX_PENDING_REQUESTS) {
      return Promise.reject(new LimitExceededError('pending requests on this node', MAX_PENDING_REQUESTS, 'wait for some to finish or lower their timeout'));
    }
    this.#n.requests++;
    do this.#nextInbox = (this.#nextInbox + 1) % (MAX_INBOX + 1);
    while (this.#inboxes.has(this.#nextInbox));
    const id = this.#nextInbox;
    return new Promise<Reply[]>((resolve, reject) => {
      const inbox: Inbox = { replies: [], max, asked: new Set(), resolve, reject, timer: undefined };
      this.#inboxes.set(id, inbox);
      inbox.timer = setTimeout(() => {
        this.#inboxes.delete(id);
        if (inbox.replies.length > 0) resolve(inbox.replies);
        else {
          this.#n.requestsTimedOut++;
          reject(new TimeoutError(`the request on ${JSON.stringify(topic)}`, timeoutMs, { message: `no reply to the request on ${JSON.stringify(topic)} within ${timeoutMs} ms; the responders may be slow or gone (raise the timeout)` }));
        }
      }, timeoutMs);
      const publishOptions: PublishOptions = { ...(options.headers !== undefined && { headers: options.headers }), ...(options.origin !== undefined && { origin: options.origin }) };
      this.#publish(topic, data, publishOptions, id).then(
        (result) => {
          if (result.nodes > 0 || result.local > 0 || !this.#inboxes.has(id)) return;
          this.#n.requestsNoResponders++;
          this.#closeInbox(id, inbox);
          reject(new NoRespondersError(topic));
        },
        (err: unknown) => {
          this.#closeInbox(id, inbox);
          reject(err);
        },
      );
    });
  }

  /**
   * Publishes `data` (any CBOR-encodable value except undefined) to `topic`.
   * Resolves once the message is handed to local subscriptions and queued
   * for every remote subscriber node, or placed in this turn's open run
   * while the fan-out has room for it (the run is queued at the end of the
   * turn; see #join).
   * @throws InvalidTopicError, InvalidPayloadError, QueueFullError (noWait), StoppedError — as rejections
   */
  publish(topic: string, data: unknown, options: PublishOptions = {}): Promise<PublishResult> {
    return this.#publish(topic, data, options, undefined);
  }

  #publish(topic: string, data: unknown, options: PublishOptions, inbox: number | undefined): Promise<PublishResult> {
    if (this.#stopped) return Promise.reject(StoppedError.of('pub/sub'));
    let segs: readonly string[];
    let payload: Uint8Array | undefined;
    let headers: Headers | undefined;
    try {
      segs = validateTopic(topic, this.#limits);
      payload = this.#checkPayload(data);
      headers = checkHeaders(options.headers);
    } catch (err) {
      return Promise.reject(err);
    }
    const out: Outgoing = { topic, segs, data, payload, headers, origin: options.origin, inbox };
    const noWait = options.noWait === true;
    return this.#withTargets(topic, segs, (targets) => this.#send(out, targets, noWait));
  }

  /**
   * Publishes a run (wire/run.ts): consecutive messages of this publisher to
   * `topic`, without headers, as publish() would one by one, with one topic
   * check, one subscriber lookup and one PUBLISH run per subscriber node
   * (cut at MAX_RUN messages or MAX_RUN_BYTES; queue groups are served
   * message by message). A message whose payload
   * is refused is left out and reported in `refused`; the others are
   * published, numbered consecutively.
   * @throws InvalidTopicError, QueueFullError (noWait), StoppedError — as rejections
   */
  publishRun(topic: string, data: readonly unknown[], options: Pick<PublishOptions, 'origin' | 'noWait'> = {}): Promise<RunResult> {
    if (this.#stopped) return Promise.reject(StoppedError.of('pub/sub'));
    let segs: readonly string[];
    try {
      segs = validateTopic(topic, this.#limits);
    } catch (err) {
      return Promise.reject(err);
    }
    let refused: RunResult['refused'];
    let kept: unknown[] | undefined;
    const payloads: (Uint8Array | undefined)[] = [];
    for (let i = 0; i < data.length; i++) {
      try {
        payloads.push(this.#checkPayload(data[i]));
        kept?.push(data[i]);
      } catch (error) {
        (refused ??= []).push({ index: i, error });
        kept ??= data.slice(0, i);
      }
    }
    const run: OutgoingRun = { topic, segs, data: kept ?? data, payloads, origin: options.origin };
    if (run.data.length === 0) return Promise.resolve({ nodes: 0, local: 0, refused });
    const noWait = options.noWait === true;
    return this.#withTargets(topic, segs, (targets) => this.#sendRun(run, targets, noWait)).then((r) => ({ ...r, refused }));
  }

  /**
   * Calls `send` with the topic's subscribers, at once when they are cached
   * and no earlier publish to the topic waits for them.
   */
  #withTargets<R>(topic: string, segs: readonly string[], send: (targets: TopicTargets) => Promise<R>): Promise<R> {
    const targets = this.#cache.lookup(topic, segs);
    const before = this.#lookupTails.get(topic);
    if (!(targets instanceof Promise) && before === undefined) return send(targets);
    // Waiting for the topic's subscribers to be looked up. The cache may hold the answer
    // before this publish resumes, so later publishes to the topic wait their turn:
    // they would overtake it when they arrive in between (a burst read off one stream).
    const sent = (before === undefined ? Promise.resolve(targets) : before.then(() => targets)).then((t) => ({ result: send(t) }));
    const tail = sent.then(
      () => undefined,
      () => undefined,
    );
    this.#lookupTails.set(topic, tail);
    void tail.then(() => {
      if (this.#lookupTails.get(topic) === tail) this.#lookupTails.delete(topic);
    });
    return sent.then((s) => s.result);
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
      requestsPending: this.#inboxes.size,
      slowConsumers: this.#slow.top(10),
      slowConsumersTracked: this.#slow.size,
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
    this.#sendOpen(); // accepted publishes: their sends finish like every other one
    this.#stopped = true;
    this.#local.closeAll();
    this.#receiver.stop();
    for (const [id, inbox] of this.#inboxes) {
      this.#closeInbox(id, inbox);
      inbox.reject(StoppedError.of('pub/sub'));
    }
    await Promise.all([this.#announcer.stop(options.withdraw ?? true), this.#fanout.close()]);
    this.#cache.clear();
  }

  /**
   * The message is encoded once per distinct set of fields, only when there
   * are subscriber nodes: nodes without a queue-group pick share one
   * encoding, and every encoding reuses the payload bytes.
   */
  #send(out: Outgoing, targets: TopicTargets, noWait: boolean): Promise<PublishResult> {
    if (this.#stopped) return Promise.reject(StoppedError.of('pub/sub'));
    if (!noWait && out.headers === undefined && out.inbox === undefined && targets.groups === undefined && !this.#local.hasQueues && targets.nodes.length > 0) {
      return this.#join(out, targets.nodes);
    }
    // Numbers stay consecutive within a run and sends in publish order: the open run goes first.
    this.#sendOpen();
    const seq = this.#seq;
    const picks = targets.groups !== undefined || this.#local.hasQueues ? this.#pickMembers(out, targets) : undefined;
    const peers = targets.nodes;
    // Built only when some node gets a copy: a publish with local subscribers alone needs no message.
    const base = peers.length > 0 || picks?.remote !== undefined ? this.#fields(out, seq) : undefined;
    let sends: Send[] | undefined;
    let nodes = peers.length;
    let msg: EncodedMessage | undefined;
    if (picks?.remote !== undefined) {
      sends = [];
      for (const p of peers) {
        const groups = picks.remote.get(p);
        if (groups === undefined) sends.push({ peer: p, msg: (msg ??= this.#encode(out, base!)) });
        else {
          sends.push(this.#groupSend(out, base!, p, groups, false, targets));
          picks.remote.delete(p);
        }
      }
      for (const [p, groups] of picks.remote) sends.push(this.#groupSend(out, base!, p, groups, true, targets));
      nodes = sends.length;
    } else if (peers.length > 0) msg = this.#encode(out, base!);
    if (out.inbox !== undefined) this.#asked(out.inbox, sends !== undefined ? sends.map((x) => x.peer) : peers);
    if (noWait && nodes > 0) {
      const ok = sends !== undefined ? this.#fanout.trySubmitSends(sends) : this.#fanout.trySubmitAll(peers, msg!);
      if (!ok) {
        this.#n.publishesDropped++;
        const what = `the pub/sub fan-out queue (no room for ${nodes} sends; nothing was sent)`;
        return Promise.reject(new QueueFullError(what, this.#fanout.pool.maxQueue));
      }
    }
    // Numbered only once accepted: a refused publish leaves no gap to be mistaken for a loss.
    this.#seq = seq + 1;
    this.#n.published++;
    // No local subscription: no message object to build for nobody.
    const local = this.#local.size === 0 ? 0 : this.#local.deliver(this.#delivered(out, seq, this.#selfId), out.segs, true, picks?.self);
    this.#n.localDeliveries += local;
    const result: PublishResult = { nodes, local };
    if (nodes === 0) {
      if (local === 0) this.#n.publishesNoSubscribers++;
      return Promise.resolve(result);
    }
    if (noWait) return Promise.resolve(result);
    const waiting = sends !== undefined ? this.#fanout.submitSends(sends) : this.#fanout.submit(peers, msg!);
    return waiting === undefined ? Promise.resolve(result) : waiting.then(() => result);
  }

  /**
   * A run goes to each subscriber node as PUBLISH runs (each encoded once
   * for every node) and to local subscriptions with one trie walk;
   * with queue groups in play, message by message throughout (each message
   * has its own picks).
   */
  #sendRun(run: OutgoingRun, targets: TopicTargets, noWait: boolean): Promise<PublishResult> {
    if (this.#stopped) return Promise.reject(StoppedError.of('pub/sub'));
    this.#sendOpen();
    const { topic, segs, data, payloads, origin } = run;
    const k = data.length;
    if (targets.groups !== undefined || this.#local.hasQueues) {
      const results: Promise<PublishResult>[] = [];
      for (let i = 0; i < k; i++) results.push(this.#send({ topic, segs, data: data[i], payload: payloads[i], headers: undefined, origin, inbox: undefined }, targets, noWait));
      return Promise.all(results).then((all) => ({ nodes: all[0]!.nodes, local: all.reduce((sum, r) => sum + r.local, 0) }));
    }
    const seq = this.#seq;
    const peers = targets.nodes;
    const toLocal = this.#local.size > 0;
    if (peers.length === 0 && !toLocal) {
      this.#seq = seq + k;
      this.#n.published += k;
      this.#n.publishesNoSubscribers += k;
      return Promise.resolve({ nodes: 0, local: 0 });
    }
    // Cut as every sender cuts runs (a caller may hand over more than one run holds): each part
    // one PUBLISH for the nodes, and one PubSubRun for local subscriptions (a light client's is sent on as one GW_MSG).
    const encoded = payloads.map((p, i) => p ?? encodeBody(data[i]));
    const parts: { from: number; to: number }[] = [];
    for (let from = 0, bytes = 0, i = 0; i <= k; i++) {
      if (i < k && (i === from || runHasRoom(i - from, bytes, encoded[i]!.length))) {
        bytes += encoded[i]!.length;
        continue;
      }
      parts.push({ from, to: i });
      from = i;
      bytes = i < k ? encoded[i]!.length : 0;
    }
    if (noWait && peers.length > 0 && this.#fanout.room() < peers.length * parts.length) {
      this.#n.publishesDropped += k;
      return Promise.reject(new QueueFullError(`the pub/sub fan-out queue (no room for ${peers.length * parts.length} sends; nothing was sent)`, this.#fanout.pool.maxQueue));
    }
    this.#seq = seq + k;
    this.#n.published += k;
    let local = 0;
    const waits: Promise<void>[] = [];
    for (const { from, to } of parts) {
      if (toLocal) local += this.#local.deliverRun(new PubSubRun(topic, parts.length === 1 ? data : data.slice(from, to), this.#selfId, seq + from, origin), segs) * (to - from);
      if (peers.length === 0) continue;
      const msg = this.#publishMessage(topic, seq + from, encoded.slice(from, to), origin);
      if (to - from > 1) this.#n.runsSent += peers.length;
      if (noWait) this.#fanout.trySubmitAll(peers, msg, to - from);
      else {
        const waiting = this.#fanout.submit(peers, msg, to - from);
        if (waiting !== undefined) waits.push(waiting);
      }
    }
    this.#n.localDeliveries += local;
    const result: PublishResult = { nodes: peers.length, local };
    if (peers.length === 0 && local === 0) this.#n.publishesNoSubscribers += k;
    return waits.length === 0 ? Promise.resolve(result) : Promise.all(waits).then(() => result);
  }

  /** One PUBLISH of `payloads` numbered from `seq`: a run when there is more than one. */
  #publishMessage(topic: string, seq: number, payloads: readonly Uint8Array[], origin: string | undefined): EncodedMessage {
    const k = payloads.length;
    const fields: MessageFields = { t: PUBLISH.type, tp: topic, s: seq, ...(k > 1 && { k }), ...(origin !== undefined && { o: fromHex(origin) }) };
    return encodeMessage(fields, { d: k > 1 ? payloads : payloads[0]! });
  }

  /**
   * A publish that may travel in a run (no headers, inbox, queue groups or
   * noWait, some subscriber node): numbered and handed to local
   * subscriptions at once, its copy for the nodes added to the turn's open
   * run (a new one when the topic, the nodes or the origin differ, or the
   * run is full). Resolves once the run is queued for every node.
   */
  #join(out: Outgoing, peers: readonly Peer[]): Promise<PublishResult> {
    const payload = (out.payload ??= encodeBody(out.data));
    let run = this.#open;
    if (run !== undefined && (run.topic !== out.topic || run.peers !== peers || run.origin !== out.origin || !runHasRoom(run.payloads.length, run.bytes, payload.length))) {
      this.#sendOpen();
      run = undefined;
    }
    const seq = this.#seq;
    if (run === undefined) {
      let resolve!: () => void;
      let reject!: (err: unknown) => void;
      const queued = new Promise<void>((res, rej) => ((resolve = res), (reject = rej)));
      // Its publishes may all have resolved already (see below): a failure is theirs to see, not unhandled.
      queued.catch(() => undefined);
      run = this.#open = { topic: out.topic, peers, origin: out.origin, seq, payloads: [], bytes: 0, queued, resolve, reject };
      if (!this.#openScheduled) {
        this.#openScheduled = true;
        setImmediate(this.#endOfTurn);
      }
    }
    run.payloads.push(payload);
    run.bytes += payload.length;
    this.#seq = seq + 1;
    this.#n.published++;
    const local = this.#local.size === 0 ? 0 : this.#local.deliver(this.#delivered(out, seq, this.#selfId), out.segs);
    this.#n.localDeliveries += local;
    const result: PublishResult = { nodes: peers.length, local };
    // In the open run the message is as good as queued while the fan-out has room for the run and
    // nothing sent earlier waits for room: publishes awaited one by one then gather into runs too.
    if (this.#turnWait === undefined && this.#fanout.room() >= peers.length) return Promise.resolve(result);
    return run.queued.then(() => result);
  }

  readonly #endOfTurn = (): void => {
    this.#openScheduled = false;
    const waiting = this.#sendOpen();
    if (waiting === undefined) return;
    // Nobody awaits this send (its publishes resolved): later publishes wait until it is queued.
    this.#turnWait = waiting;
    const done = (): void => {
      if (this.#turnWait === waiting) this.#turnWait = undefined;
    };
    waiting.then(done, done);
  };

  /**
   * Queues the open run for its nodes: one PUBLISH, a run when it holds more
   * than one message. Returns the wait for room in the fan-out queue, if any.
   */
  #sendOpen(): Promise<void> | undefined {
    const run = this.#open;
    if (run === undefined) return undefined;
    this.#open = undefined;
    const k = run.payloads.length;
    const msg = this.#publishMessage(run.topic, run.seq, run.payloads, run.origin);
    if (k > 1) this.#n.runsSent += run.peers.length;
    const waiting = this.#fanout.submit(run.peers, msg, k);
    if (waiting === undefined) run.resolve();
    else waiting.then(run.resolve, run.reject);
    return waiting;
  }

  #fields(out: Outgoing, seq: number): MessageFields {
    return {
      t: PUBLISH.type,
      tp: out.topic,
      s: seq,
      ...(out.origin !== undefined && { o: fromHex(out.origin) }),
      ...(out.headers !== undefined && { h: out.headers }),
      ...(out.inbox !== undefined && { r: out.inbox }),
    };
  }

  #encode(out: Outgoing, fields: MessageFields): EncodedMessage {
    out.payload ??= encodeBody(out.data);
    return encodeMessage(fields, { d: out.payload });
  }

  /** The message as local subscribers see it (`from`: the publisher). */
  #delivered(out: Pick<Outgoing, 'topic' | 'data' | 'origin' | 'headers' | 'inbox'>, seq: number, from: string): PubSubMessage {
    const m: PubSubMessage = { topic: out.topic, data: out.data, publisher: from, seq };
    if (out.origin !== undefined) m.origin = out.origin;
    if (out.headers !== undefined) m.headers = out.headers;
    const inbox = out.inbox;
    if (inbox !== undefined) m.respond = (data, options) => this.#respondLocal(inbox, data, options?.headers);
    return m;
  }

  /**
   * The selection rule: for each queue group matching the topic, its
   * candidates are the member nodes of the subscriber cache that the failure
   * detection does not hold down, plus this node when it has a member, in
   * node ID order; the group's turn counter (per group, on this publisher)
   * picks one, round-robin.
   */
  #pickMembers(out: Outgoing, targets: TopicTargets): { self: string[] | undefined; remote: Map<Peer, string[]> | undefined } {
    const localGroups = this.#local.hasQueues ? this.#local.groupsMatching(out.topic, out.segs) : undefined;
    let self: string[] | undefined;
    let remote: Map<Peer, string[]> | undefined;
    const names = new Set<string>(targets.groups?.keys());
    if (localGroups !== undefined) for (const g of localGroups) names.add(g);
    for (const group of names) {
      const candidates = this.#candidates(targets.groups?.get(group), localGroups?.has(group) === true, undefined);
      const pick = this.#turn(group, candidates);
      if (pick === undefined) continue;
      this.#n.queueCopies++;
      if (pick === SELF) (self ??= []).push(group);
      else {
        remote ??= new Map();
        const groups = remote.get(pick);
        if (groups === undefined) remote.set(pick, [group]);
        else groups.push(group);
      }
    }
    return { self, remote };
  }

  #candidates(members: readonly Peer[] | undefined, withSelf: boolean, tried: ReadonlySet<string> | undefined): (Peer | typeof SELF)[] {
    const out: (Peer | typeof SELF)[] = [];
    let selfPlaced = !withSelf;
    for (const p of members ?? []) {
      if (this.#isDown(p.nodeId) || tried?.has(p.nodeId)) continue;
      if (!selfPlaced && this.#selfId < p.nodeId) {
        out.push(SELF);
        selfPlaced = true;
      }
      out.push(p);
    }
    if (!selfPlaced) out.push(SELF);
    return out;
  }

  #turn<T>(group: string, candidates: readonly T[]): T | undefined {
    if (candidates.length === 0) return undefined;
    const turn = this.#turns.get(group) ?? 0;
    this.#turns.set(group, turn + 1);
    return candidates[turn % candidates.length];
  }

  /** A copy for a node chosen for `groups`; when it cannot go there, each group fails over to another member. */
  #groupSend(out: Outgoing, base: MessageFields, peer: Peer, groups: string[], queueOnly: boolean, targets: TopicTargets): Send {
    const msg = this.#encode(out, { ...base, g: groups, ...(queueOnly && { qo: true }) });
    return { peer, msg, failover: () => this.#failover(out, base, groups, targets, new Set([peer.nodeId])) };
  }

  /**
   * Re-sends the copy of `groups` to the next candidates. It takes a new
   * sequence number: a receiver drops a number not above the last one it
   * accepted from this publisher, and newer messages may have reached it
   * meanwhile.
   */
  #failover(out: Outgoing, original: MessageFields, groups: readonly string[], targets: TopicTargets, tried: Set<string>): void {
    if (this.#stopped) return;
    this.#sendOpen();
    const seq = this.#seq++;
    const base = { ...original, s: seq };
    const sends: Send[] = [];
    for (const group of groups) {
      const withSelf = this.#local.hasQueues && this.#local.groupsMatching(out.topic, out.segs).has(group);
      const pick = this.#turn(group, this.#candidates(targets.groups?.get(group), withSelf, tried));
      if (pick === undefined) {
        this.#n.queueLost++;
        continue;
      }
      this.#n.queueFailovers++;
      if (pick === SELF) this.#local.deliver(this.#delivered(out, seq, this.#selfId), out.segs, false, [group]);
      else sends.push({ peer: pick, msg: this.#encode(out, { ...base, g: [group], qo: true }), failover: () => this.#failover(out, base, [group], targets, new Set([...tried, pick.nodeId])) });
    }
    if (out.inbox !== undefined) this.#asked(out.inbox, sends.map((x) => x.peer));
    if (sends.length > 0) this.#fanout.submitSends(sends)?.catch(() => undefined);
  }

  /** The REPLY sender given to the receiver: answers the requesting node. */
  readonly #respondRemote = (to: FanoutTarget, inbox: number, data: unknown, headers: Headers | undefined): Promise<void> => {
    try {
      const payload = this.#checkPayload(data);
      const h = checkHeaders(headers);
      this.#n.repliesSent++;
      const msg = encodeMessage({ t: REPLY.type, r: inbox, ...(h !== undefined && { h }) }, { d: payload ?? encodeBody(data) });
      return this.#messenger.notify(to, msg);
    } catch (err) {
      return Promise.reject(err);
    }
  };

  #respondLocal(inbox: number, data: unknown, headers: Headers | undefined): Promise<void> {
    try {
      this.#checkPayload(data);
      const h = checkHeaders(headers);
      this.#n.repliesSent++;
      this.#reply(inbox, { data, ...(h !== undefined && { headers: h }), responder: this.#selfId });
      return Promise.resolve();
    } catch (err) {
      return Promise.reject(err);
    }
  }

  #reply(id: number, reply: Reply): void {
    const inbox = this.#inboxes.get(id);
    if (inbox === undefined) {
      this.#n.repliesUnmatched++;
      return;
    }
    this.#n.repliesReceived++;
    inbox.replies.push(reply);
    if (inbox.replies.length < inbox.max) return;
    this.#closeInbox(id, inbox);
    inbox.resolve(inbox.replies);
  }

  /** Records the nodes a request is sent to: they alone may answer it. */
  #asked(id: number, peers: readonly Peer[]): void {
    const inbox = this.#inboxes.get(id);
    if (inbox !== undefined) for (const p of peers) inbox.asked.add(p.nodeId);
  }

  #closeInbox(id: number, inbox: Inbox): void {
    clearTimeout(inbox.timer);
    if (this.#inboxes.get(id) === inbox) this.#inboxes.delete(id);
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
