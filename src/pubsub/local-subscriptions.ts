/**
 * The subscriptions of this node: the topic trie that finds them, their
 * announcement, and the shared microtask that runs their handlers.
 *
 * A message matching k subscriptions is pushed into k buffers while the trie
 * is walked; handlers run afterwards, from one microtask per turn shared by
 * every subscription that became ready (not one per subscription per
 * message), so a publish to 1000 subscriptions costs 1000 buffer pushes and
 * one scheduling.
 */
import { LimitExceededError } from '../util/errors.js';
import type { Announcer } from './announcer.js';
import { Subscription, type MessageHandler, type PubSubMessage } from './subscription.js';
import { TopicTrie } from './topic-trie.js';
import { validatePattern, type TopicLimits } from './topic.js';

export interface LocalSubscriptionsComponents {
  announcer: Announcer;
  onHandlerError?: ((err: unknown, sub: Subscription) => void) | undefined;
}

export interface LocalSubscriptionsInit {
  limits: TopicLimits;
  bufferSize: number;
  maxSubscriptions: number;
}

export interface DeliveryTotals {
  /** Messages handed to handlers, dropped on full buffers, and handler failures, over every subscription ever. */
  delivered: number;
  dropped: number;
  handlerErrors: number;
}

export class LocalSubscriptions {
  readonly #announcer: Announcer;
  readonly #onHandlerError: LocalSubscriptionsComponents['onHandlerError'];
  readonly #init: LocalSubscriptionsInit;
  readonly #trie: TopicTrie<Subscription>;
  readonly #subs = new Set<Subscription>();
  #nextId = 0;
  /** The message being dispatched by forEachMatch; a field rather than a closure per message. */
  #current: PubSubMessage | undefined;
  #ready: Subscription[] = [];
  #spare: Subscription[] = [];
  #readyScheduled = false;
  /** Counts of subscriptions already closed, so totals never go down. */
  readonly #closed: DeliveryTotals = { delivered: 0, dropped: 0, handlerErrors: 0 };

  constructor(components: LocalSubscriptionsComponents, init: LocalSubscriptionsInit) {
    this.#announcer = components.announcer;
    this.#onHandlerError = components.onHandlerError;
    this.#init = init;
    this.#trie = new TopicTrie(init.limits);
  }

  get size(): number {
    return this.#subs.size;
  }

  get patternCount(): number {
    return this.#trie.patternCount;
  }

  /**
   * @throws InvalidTopicError, LimitExceededError
   */
  add(pattern: string, handler: MessageHandler, onClose?: () => void): Subscription {
    validatePattern(pattern, this.#init.limits);
    const max = this.#init.maxSubscriptions;
    if (this.#subs.size >= max) throw new LimitExceededError('subscriptions on this node', max, 'unsubscribe unused ones or raise maxSubscriptions');
    const sub = new Subscription(
      {
        handler,
        schedule: this.#schedule,
        unsubscribe: this.#remove,
        ...(this.#onHandlerError ? { onHandlerError: this.#onHandlerError } : {}),
        ...(onClose ? { onClose } : {}),
      },
      { id: ++this.#nextId, pattern, bufferSize: this.#init.bufferSize },
    );
    this.#trie.add(pattern, sub);
    this.#subs.add(sub);
    sub.ready = this.#announcer.add(pattern);
    // A refusal by the mesh reaches whoever awaits `ready`; nobody awaiting it is not an error.
    sub.ready.catch(() => undefined);
    return sub;
  }

  /** Pushes `msg` to every matching subscription; returns how many matched. Never runs a handler synchronously. */
  deliver(msg: PubSubMessage, segs: readonly string[]): number {
    this.#current = msg;
    const n = this.#trie.forEachMatch(msg.topic, this.#pushCurrent, segs);
    this.#current = undefined;
    return n;
  }

  totals(): DeliveryTotals {
    const t = { ...this.#closed };
    for (const s of this.#subs) {
      t.delivered += s.delivered;
      t.dropped += s.dropped;
      t.handlerErrors += s.errors;
    }
    return t;
  }

  /** Closes every subscription (their announcements are the announcer's to withdraw). */
  closeAll(): void {
    for (const sub of this.#subs) this.#close(sub);
    this.#subs.clear();
    this.#trie.clear();
  }

  readonly #pushCurrent = (sub: Subscription): void => sub.push(this.#current!);

  readonly #remove = (sub: Subscription): Promise<void> => {
    if (!this.#subs.delete(sub)) return Promise.resolve();
    this.#trie.remove(sub.pattern, sub);
    this.#close(sub);
    return this.#announcer.remove(sub.pattern);
  };

  #close(sub: Subscription): void {
    sub.close();
    this.#closed.delivered += sub.delivered;
    this.#closed.dropped += sub.dropped;
    this.#closed.handlerErrors += sub.errors;
  }

  readonly #schedule = (sub: Subscription): void => {
    this.#ready.push(sub);
    if (this.#readyScheduled) return;
    this.#readyScheduled = true;
    queueMicrotask(this.#runReady);
  };

  readonly #runReady = (): void => {
    this.#readyScheduled = false;
    // Two arrays used in turn: a handler that publishes locally schedules into the other one.
    const ready = this.#ready;
    this.#ready = this.#spare;
    for (let i = 0; i < ready.length; i++) ready[i]!.drain();
    ready.length = 0;
    this.#spare = ready;
  };
}
