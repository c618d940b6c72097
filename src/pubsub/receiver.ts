/**
 * The receiving side of pub/sub: PUBLISH and UNSUBSCRIBED handlers.
 *
 * PUBLISH: the topic is checked against our limits, the publisher is the
 * verified peer of the connection, and its sequence number must be above the
 * last one accepted from it (an LRU of `maxPublishers` entries), otherwise
 * the message is a duplicate or arrived out of order and is dropped
 * (counted). Accepted messages go to every matching local subscription.
 * A message no subscription matches means the publisher's cache is stale:
 * it gets UNSUBSCRIBED, at most once per (publisher, topic) per interval.
 */
import { LRUCache } from 'lru-cache';
import type { Clock } from '../util/clock.js';
import { toHex } from '../identity/identity.js';
import type { PeerInfo } from '../session/peer-session.js';
import type { MessageOf } from '../wire/messages.js';
import type { Announcer } from './announcer.js';
import type { FanoutMessenger, FanoutTarget } from './fanout.js';
import type { Headers } from '../wire/headers.js';
import type { LocalSubscriptions } from './local-subscriptions.js';
import { UNSUBSCRIBED, type PUBLISH } from './messages.js';
import type { SubscriberCache } from './subscriber-cache.js';
import { PubSubRun, type PubSubMessage } from './subscription.js';
import { validateTopic, type TopicLimits } from './topic.js';

export interface ReceiverComponents {
  local: LocalSubscriptions;
  announcer: Announcer;
  cache: SubscriberCache;
  messenger: FanoutMessenger;
  /** Injected in tests; the default is the system clock. */
  clock?: Clock;
  /** Sends a subscriber's answer to a request back to the requesting node. */
  respond: (to: FanoutTarget, inbox: number, data: unknown, headers: Headers | undefined) => Promise<void>;
}

export interface ReceiverInit {
  limits: TopicLimits;
  maxPublishers: number;
  unsubscribedIntervalMs: number;
}

export interface ReceiverStats {
  /** PUBLISH messages received from other nodes. */
  received: number;
  /** Received with a sequence number not above the publisher's last one (replays, reordering). */
  duplicates: number;
  /** Messages with a topic that breaks our limits. */
  invalidReceived: number;
  /** Received for a topic no local subscription matches. */
  unmatchedReceived: number;
  /** Queue-only copies for a group without a matching member here (while plain subscriptions match). */
  queueUnmatched: number;
  unsubscribedSent: number;
  unsubscribedReceived: number;
  /** PUBLISH runs received (their messages count one by one in `received`). */
  runsReceived: number;
}

export class Receiver {
  readonly #c: ReceiverComponents;
  readonly #limits: TopicLimits;
  /** Last accepted sequence number per publisher. */
  readonly #lastSeq: LRUCache<string, number>;
  /** (publisher, topic) pairs answered with UNSUBSCRIBED recently. */
  readonly #notices: LRUCache<string, true>;
  #stopped = false;
  readonly #s: ReceiverStats = { received: 0, duplicates: 0, invalidReceived: 0, unmatchedReceived: 0, queueUnmatched: 0, unsubscribedSent: 0, unsubscribedReceived: 0, runsReceived: 0 };

  constructor(components: ReceiverComponents, init: ReceiverInit) {
    this.#c = components;
    this.#limits = init.limits;
    this.#lastSeq = new LRUCache({ max: init.maxPublishers });
    const timing = components.clock ? { perf: components.clock, ttlResolution: 0 } : {};
    this.#notices = new LRUCache({ max: init.maxPublishers, ttl: init.unsubscribedIntervalMs, ...timing });
  }

  stats(): ReceiverStats {
    return { ...this.#s };
  }

  stop(): void {
    this.#stopped = true;
    this.#lastSeq.clear();
    this.#notices.clear();
  }

  /** The PUBLISH handler (one-way: returns nothing). */
  readonly onPublish = (msg: MessageOf<typeof PUBLISH>, peer: PeerInfo): undefined => {
    if (this.#stopped) return undefined;
    this.#s.received++;
    const topic = msg.tp;
    const segs = this.#topic(topic);
    if (segs === undefined) return undefined;
    const from = peer.nodeIdHex;
    const seq = msg.s;
    const last = this.#lastSeq.get(from);
    if (msg.k !== undefined) return this.#run(msg, msg.k, segs, peer, last);
    if (last !== undefined && seq <= last) {
      this.#s.duplicates++;
      return undefined;
    }
    this.#lastSeq.set(from, seq);
    const delivered: PubSubMessage = { topic, data: msg.d, publisher: from, seq };
    if (msg.o !== undefined) delivered.origin = toHex(msg.o);
    if (msg.h !== undefined) delivered.headers = msg.h;
    if (msg.r !== undefined) {
      const inbox = msg.r;
      const to = { address: peer.address, nodeId: from };
      delivered.respond = (data, options) => this.#c.respond(to, inbox, data, options?.headers);
    }
    const queueOnly = msg.qo === true;
    if (this.#c.local.deliver(delivered, segs, !queueOnly, msg.g) > 0) return undefined;
    // A queue-only copy whose group left this node: UNSUBSCRIBED would also drop our plain patterns from the publisher's cache.
    if (queueOnly && this.#c.local.hasMatch(topic, segs)) this.#s.queueUnmatched++;
    else this.#unmatched(topic, peer);
    return undefined;
  };

  /**
   * A run of k messages (wire/run.ts), numbered s … s + k - 1, without
   * headers, inbox or queue groups: one sequence check and one trie walk for
   * all of them; a light client's subscription gets it whole.
   */
  #run(msg: MessageOf<typeof PUBLISH>, k: number, segs: readonly string[], peer: PeerInfo, last: number | undefined): undefined {
    this.#s.received += k - 1; // onPublish counted the first
    const from = peer.nodeIdHex;
    const data = msg.d as readonly unknown[];
    // Those not above the last accepted number are duplicates, as single messages would be.
    const skip = last === undefined ? 0 : Math.min(k, Math.max(0, last - msg.s + 1));
    this.#s.duplicates += skip;
    if (skip === k) return undefined;
    this.#lastSeq.set(from, msg.s + k - 1);
    this.#s.runsReceived++;
    const run = new PubSubRun(msg.tp, skip === 0 ? data : data.slice(skip), from, msg.s + skip, msg.o !== undefined ? toHex(msg.o) : undefined);
    if (this.#c.local.deliverRun(run, segs) === 0) this.#unmatched(msg.tp, peer);
    return undefined;
  }

  /** The UNSUBSCRIBED handler: the peer no longer wants `tp`. */
  readonly onUnsubscribed = (msg: MessageOf<typeof UNSUBSCRIBED>, peer: PeerInfo): undefined => {
    if (this.#stopped) return undefined;
    const topic = msg.tp;
    const segs = this.#topic(topic);
    if (segs === undefined) return undefined;
    this.#s.unsubscribedReceived++;
    this.#c.cache.unsubscribed(peer.nodeIdHex, topic, segs);
    return undefined;
  };

  #topic(topic: string): readonly string[] | undefined {
    try {
      return validateTopic(topic, this.#limits);
    } catch {
      this.#s.invalidReceived++;
      return undefined;
    }
  }

  #unmatched(topic: string, peer: PeerInfo): void {
    this.#s.unmatchedReceived++;
    // Expected when a prefix is announced as `<prefix>.#` (too many patterns for one record);
    // a light client (port 0) cannot be sent to.
    if (this.#c.announcer.coversBroadly(topic) || peer.address.port === 0) return;
    const key = peer.nodeIdHex + topic; // node IDs have a fixed length: no separator needed
    if (this.#notices.has(key)) return;
    this.#notices.set(key, true);
    this.#s.unsubscribedSent++;
    this.#c.messenger.notify({ address: peer.address, nodeId: peer.nodeIdHex }, { t: UNSUBSCRIBED.type, tp: topic }).catch(() => undefined);
  }
}
