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
import { Subscription, type MessageHandler, type PubSubMessage, type PubSubRun, type RunHandler } from './subscription.js';
import { TopicTrie } from './topic-trie.js';
import { validateQueueGroup } from './queue.js';
import { validatePattern, type TopicLimits } from './topic.js';

export interface LocalSubscriptionsComponents {
  announcer: Announcer;
  onHandlerError?: ((err: unknown, sub: Subscription) => void) | undefined;
  onDrop?: ((sub: Subscription, n: number) => void) | undefined;
}

export interface AddOptions {
  onClose?: (() => void) | undefined;
  /** Queue group to join. */
  queue?: string | undefined;
  /** The light client the subscription forwards to (for reports). */
  client?: string | undefined;
  /** Takes runs whole (see PubSubRun). */
  onRun?: RunHandler | undefined;
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

const NOTHING = (): void => undefined;

export class LocalSubscriptions {
  readonly #announcer: Announcer;
  readonly #onHandlerError: LocalSubscriptionsComponents['onHandlerError'];
  readonly #onDrop: LocalSubscriptionsComponents['onDrop'];
  readonly #init: LocalSubscriptionsInit;
  readonly #trie: TopicTrie<Subscription>;
  readonly #subs = new Set<Subscription>();
  #nextId = 0;
  /** The message being dispatched by forEachMatch; a field rather than a closure per message. */
  #current: PubSubMessage | undefined;
  /** The run being dispatched by deliverRun, likewise. */
  #currentRun: PubSubRun | undefined;
  #plain = true;
  #groups: readonly string[] | undefined;
  #pushed = 0;
  /** Matching members per group of the message being dispatched. */
  readonly #candidates = new Map<string, Subscription[]>();
  /** Queue group → live local members; the round-robin turn of each group. */
  readonly #queueMembers = new Map<string, number>();
  readonly #turns = new Map<string, number>();
  #ready: Subscription[] = [];
  #spare: Subscription[] = [];
  #readyScheduled = false;
  /** Counts of subscriptions already closed, so totals never go down. */
  readonly #closed: DeliveryTotals = { delivered: 0, dropped: 0, handlerErrors: 0 };

  constructor(components: LocalSubscriptionsComponents, init: LocalSubscriptionsInit) {
    this.#announcer = components.announcer;
    this.#onHandlerError = components.onHandlerError;
    this.#onDrop = components.onDrop;
    this.#init = init;
    this.#trie = new TopicTrie(init.limits);
  }

  get size(): number {
    return this.#subs.size;
  }

  get patternCount(): number {
    return this.#trie.patternCount;
  }

  /** Whether any local subscription is a queue group member. */
  get hasQueues(): boolean {
    return this.#queueMembers.size > 0;
  }

  /**
   * @throws InvalidTopicError, InvalidQueueGroupError, LimitExceededError
   */
  add(pattern: string, handler: MessageHandler, options: AddOptions = {}): Subscription {
    const { onClose, queue, client, onRun } = options;
    validatePattern(pattern, this.#init.limits);
    if (queue !== undefined) validateQueueGroup(queue);
    const max = this.#init.maxSubscriptions;
    if (this.#subs.size >= max) throw new LimitExceededError('subscriptions on this node', max, 'unsubscribe unused ones or raise maxSubscriptions');
    const sub = new Subscription(
      {
        handler,
        schedule: this.#schedule,
        unsubscribe: this.#remove,
        ...(this.#onHandlerError ? { onHandlerError: this.#onHandlerError } : {}),
        ...(onClose ? { onClose } : {}),
        ...(this.#onDrop ? { onDrop: this.#onDrop } : {}),
        ...(onRun ? { onRun } : {}),
      },
      { id: ++this.#nextId, pattern, bufferSize: this.#init.bufferSize, ...(queue !== undefined && { queue }), ...(client !== undefined && { client }) },
    );
    this.#trie.add(pattern, sub);
    this.#subs.add(sub);
    if (queue !== undefined) this.#queueMembers.set(queue, (this.#queueMembers.get(queue) ?? 0) + 1);
    sub.ready = this.#announcer.add(pattern, queue);
    // A refusal by the mesh reaches whoever awaits `ready`; nobody awaiting it is not an error.
    sub.ready.catch(() => undefined);
    return sub;
  }

  /**
   * Pushes `msg` to every matching plain subscription (unless `plain` is
   * false) and to one matching member of each group in `groups`, chosen
   * round-robin per group; returns how many subscriptions got it. Never runs
   * a handler synchronously.
   */
  deliver(msg: PubSubMessage, segs: readonly string[], plain = true, groups?: readonly string[]): number {
    this.#current = msg;
    if (this.#queueMembers.size === 0) {
      const n = plain ? this.#trie.forEachMatch(msg.topic, this.#pushCurrent, segs) : 0;
      this.#current = undefined;
      return n;
    }
    this.#plain = plain;
    this.#groups = groups;
    this.#pushed = 0;
    this.#trie.forEachMatch(msg.topic, this.#visit, segs);
    let n = this.#pushed;
    for (const [group, members] of this.#candidates) {
      const turn = this.#turns.get(group) ?? 0;
      this.#turns.set(group, turn + 1);
      members[turn % members.length]!.push(msg);
      n++;
    }
    this.#candidates.clear();
    this.#current = undefined;
    this.#groups = undefined;
    return n;
  }

  /**
   * Pushes a run to every matching plain subscription (queue groups take
   * messages one by one, with their picks): one walk of the trie for the
   * whole run. Returns how many subscriptions got it.
   */
  deliverRun(run: PubSubRun, segs: readonly string[]): number {
    this.#currentRun = run;
    this.#pushed = 0;
    this.#trie.forEachMatch(run.topic, this.#pushRun, segs);
    this.#currentRun = undefined;
    return this.#pushed;
  }

  readonly #pushRun = (sub: Subscription): void => {
    if (sub.queue !== undefined) return;
    sub.pushRun(this.#currentRun!);
    this.#pushed++;
  };

  /** Whether any local subscription matches the topic. */
  hasMatch(topic: string, segs: readonly string[]): boolean {
    return this.#trie.forEachMatch(topic, NOTHING, segs) > 0;
  }

  /** The queue groups with a local member whose pattern matches the topic. */
  groupsMatching(topic: string, segs: readonly string[]): Set<string> {
    const groups = new Set<string>();
    if (this.#queueMembers.size === 0) return groups;
    this.#trie.forEachMatch(topic, (sub) => sub.queue !== undefined && groups.add(sub.queue), segs);
    return groups;
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
    this.#queueMembers.clear();
    this.#turns.clear();
    this.#trie.clear();
  }

  readonly #pushCurrent = (sub: Subscription): void => sub.push(this.#current!);

  readonly #visit = (sub: Subscription): void => {
    const queue = sub.queue;
    if (queue === undefined) {
      if (this.#plain) {
        sub.push(this.#current!);
        this.#pushed++;
      }
      return;
    }
    if (this.#groups === undefined || !this.#groups.includes(queue)) return;
    const members = this.#candidates.get(queue);
    if (members === undefined) this.#candidates.set(queue, [sub]);
    else members.push(sub);
  };

  readonly #remove = (sub: Subscription): Promise<void> => {
    if (!this.#subs.delete(sub)) return Promise.resolve();
    this.#trie.remove(sub.pattern, sub);
    this.#close(sub);
    if (sub.queue !== undefined) this.#leaveGroup(sub.queue);
    return this.#announcer.remove(sub.pattern, sub.queue);
  };

  #leaveGroup(queue: string): void {
    const n = (this.#queueMembers.get(queue) ?? 1) - 1;
    if (n > 0) this.#queueMembers.set(queue, n);
    else {
      this.#queueMembers.delete(queue);
      this.#turns.delete(queue);
    }
  }

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
