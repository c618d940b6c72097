/**
 * This node's subscription records in the DHT: one record per literal
 * prefix, listing the distinct patterns subscribed under it (see
 * announcement.ts for the key scheme and the value).
 *
 * Changes are coalesced per key: subscribe/unsubscribe only update the
 * pattern counts and mark the key dirty; one loop per key then puts the
 * current set (or withdraws the record when the set is empty), one DHT
 * operation at a time, and repeats while changes arrived meanwhile. So a
 * thousand subscribe calls in a row cost a couple of puts, and the record in
 * the DHT always ends up at the latest state.
 *
 * A failed update (the node not listening yet, the DHT stopped) is retried
 * with backoff (1 s doubling to 30 s); the promises of the changes it carried
 * resolve only once an update succeeds, or on stop(). An update the mesh
 * refused (NotStoredError: the nodes that answered mostly refused the
 * record) rejects them with that error at once: the record stays ours and
 * the DHT keeps re-announcing it early, so it may still get in later, but
 * "subscribed" must not be claimed meanwhile.
 *
 * A prefix whose patterns do not fit one record (`maxAnnounceBytes`) is
 * announced as `<prefix>.#` instead: publishers then send every topic under
 * the prefix and this node filters locally. `coversBroadly` lets the receiver
 * tell those expected misses from real ones (which trigger UNSUBSCRIBED).
 */
import type { PeerAddress } from '../transport/types.js';
import { dhtKey } from '../dht/key.js';
import type { RecordAuth } from '../auth/record-auth.js';
import { NotStoredError } from '../dht/errors.js';
import { announcementKeyNamespace, encodeAnnouncement } from './announcement.js';
import { literalPrefix, prefixesOf } from './topic.js';

/** What the announcer needs from the DHT (Dht implements it). */
export interface AnnouncerDht {
  put(key: Uint8Array, value: Uint8Array, options: { ttlMs: number }): Promise<unknown>;
  withdraw(key: Uint8Array): Promise<unknown>;
}

export interface AnnouncerComponents {
  dht: AnnouncerDht;
  realm: string;
  advertisedAddress: () => PeerAddress;
  /** In a secured realm: the credential put into every announcement. */
  auth?: RecordAuth;
}

export interface AnnouncerInit {
  ttlMs: number;
  maxAnnounceBytes: number;
}

export interface AnnouncerStats {
  /** Prefix keys with a record in the DHT (or about to have one). */
  keys: number;
  puts: number;
  withdrawals: number;
  failures: number;
  /** Keys currently announced as `<prefix>.#` because their patterns did not fit. */
  broadened: number;
}

interface KeyState {
  readonly prefix: string;
  readonly key: Uint8Array;
  /** entry (see entryKey) → number of local subscriptions using it */
  readonly patterns: Map<string, number>;
  dirty: boolean;
  running: boolean;
  /** A record (not a tombstone) of ours is in the DHT. */
  announced: boolean;
  broadened: boolean;
  /** Why the mesh refused the last put of this key, if it did. */
  refused: NotStoredError | undefined;
  waiters: Waiter[];
  retryMs: number;
}

interface Waiter {
  resolve(): void;
  reject(err: unknown): void;
}

const RESOLVED: Promise<void> = Promise.resolve();
/** Separates group and pattern in a queue entry's key: a group name cannot contain it. */
const QUEUE_SEPARATOR = '\n';

/** `p<pattern>` for a plain subscription, `q<group>\n<pattern>` for a queue member. */
function entryKey(pattern: string, queue: string | undefined): string {
  return queue === undefined ? 'p' + pattern : 'q' + queue + QUEUE_SEPARATOR + pattern;
}
const MIN_RETRY_MS = 1_000;
const MAX_RETRY_MS = 30_000;

export class Announcer {
  readonly #dht: AnnouncerDht;
  readonly #namespace: string;
  readonly #address: () => PeerAddress;
  readonly #auth: RecordAuth | undefined;
  readonly #ttlMs: number;
  readonly #maxBytes: number;
  readonly #keys = new Map<string, KeyState>();
  readonly #broadened = new Set<string>();
  readonly #timers = new Set<NodeJS.Timeout>();
  #stopped = false;
  #puts = 0;
  #withdrawals = 0;
  #failures = 0;

  constructor(components: AnnouncerComponents, init: AnnouncerInit) {
    this.#dht = components.dht;
    this.#namespace = announcementKeyNamespace(components.realm);
    this.#address = components.advertisedAddress;
    this.#auth = components.auth;
    this.#ttlMs = init.ttlMs;
    this.#maxBytes = init.maxAnnounceBytes;
  }

  /**
   * Counts one more subscription with `pattern` (a member of queue group
   * `queue`, if given); resolves once the DHT holds a record with it.
   */
  add(pattern: string, queue?: string): Promise<void> {
    const s = this.#state(literalPrefix(pattern));
    const entry = entryKey(pattern, queue);
    const n = s.patterns.get(entry) ?? 0;
    s.patterns.set(entry, n + 1);
    return n === 0 || s.refused ? this.#schedule(s) : this.#settled(s);
  }

  /** One subscription with `pattern` (and `queue`) fewer; resolves once the DHT no longer lists it (if it was the last). */
  remove(pattern: string, queue?: string): Promise<void> {
    const s = this.#keys.get(literalPrefix(pattern));
    const entry = entryKey(pattern, queue);
    const n = s?.patterns.get(entry);
    if (s === undefined || n === undefined) return RESOLVED;
    if (n > 1) {
      s.patterns.set(entry, n - 1);
      return RESOLVED;
    }
    s.patterns.delete(entry);
    return this.#schedule(s);
  }

  /** This node's address changed (it moved behind relays, or back): every announcement is put again with the new one. */
  addressChanged(): void {
    if (this.#stopped) return;
    for (const s of this.#keys.values()) if (s.patterns.size > 0) this.#kick(s);
  }

  /** Whether `topic` is under a prefix announced as `<prefix>.#` (O(segments)). */
  coversBroadly(topic: string): boolean {
    if (this.#broadened.size === 0) return false;
    for (const p of prefixesOf(topic)) if (this.#broadened.has(p)) return true;
    return false;
  }

  stats(): AnnouncerStats {
    let keys = 0;
    for (const s of this.#keys.values()) if (s.patterns.size > 0 || s.announced) keys++;
    return { keys, puts: this.#puts, withdrawals: this.#withdrawals, failures: this.#failures, broadened: this.#broadened.size };
  }

  /**
   * Stops announcing; with `withdraw`, withdraws every record of ours (in
   * parallel, failures ignored). Pending add/remove promises resolve.
   */
  async stop(withdraw: boolean): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
    const states = [...this.#keys.values()];
    this.#keys.clear();
    this.#broadened.clear();
    for (const s of states) this.#release(s);
    if (!withdraw) return;
    await Promise.all(states.filter((s) => s.announced).map((s) => this.#dht.withdraw(s.key).catch(() => undefined)));
  }

  #state(prefix: string): KeyState {
    let s = this.#keys.get(prefix);
    if (s === undefined) {
      s = {
        prefix,
        key: dhtKey(this.#namespace, prefix),
        patterns: new Map(),
        dirty: false,
        running: false,
        announced: false,
        broadened: false,
        refused: undefined,
        waiters: [],
        retryMs: 0,
      };
      this.#keys.set(prefix, s);
    }
    return s;
  }

  #schedule(s: KeyState): Promise<void> {
    if (this.#stopped) return RESOLVED;
    const done = new Promise<void>((resolve, reject) => s.waiters.push({ resolve, reject }));
    this.#kick(s);
    return done;
  }

  #kick(s: KeyState): void {
    s.dirty = true;
    if (s.running) return;
    s.running = true;
    // Start after the current tick so that every change made in it shares one put.
    queueMicrotask(() => void this.#run(s));
  }

  /** Resolves when the state in flight (which already includes this pattern) is settled. */
  #settled(s: KeyState): Promise<void> {
    if (this.#stopped || (!s.running && s.waiters.length === 0)) return RESOLVED;
    return new Promise<void>((resolve, reject) => s.waiters.push({ resolve, reject }));
  }

  async #run(s: KeyState): Promise<void> {
    let failed = false;
    while (s.dirty && !this.#stopped) {
      s.dirty = false;
      const waiters = s.waiters;
      s.waiters = [];
      try {
        if (s.patterns.size > 0) await this.#put(s);
        else if (s.announced) {
          this.#setBroadened(s, false);
          await this.#dht.withdraw(s.key);
          s.announced = false;
          s.refused = undefined;
          this.#withdrawals++;
        }
      } catch (err) {
        this.#failures++;
        if (err instanceof NotStoredError) {
          s.refused = err.about(`the subscription record of prefix "${s.prefix}"`);
          for (const w of waiters) w.reject(s.refused);
          continue;
        }
        s.waiters = waiters.concat(s.waiters);
        this.#retry(s);
        failed = true;
        break;
      }
      s.retryMs = 0;
      for (const w of waiters) w.resolve();
    }
    s.running = false;
    // Left: waiters of `#settled`, for the state just stored (or of a failed one, kept for the retry).
    if (this.#stopped || !failed) this.#release(s);
    if (!this.#stopped && s.patterns.size === 0 && !s.announced && s.waiters.length === 0 && this.#keys.get(s.prefix) === s) this.#keys.delete(s.prefix);
  }

  #retry(s: KeyState): void {
    s.retryMs = Math.min(MAX_RETRY_MS, Math.max(MIN_RETRY_MS, s.retryMs * 2));
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      if (!this.#stopped) this.#kick(s);
    }, s.retryMs);
    timer.unref();
    this.#timers.add(timer);
  }

  async #put(s: KeyState): Promise<void> {
    const address = this.#address();
    const credential = this.#auth?.credential;
    const patterns: string[] = [];
    const queues: [string, string][] = [];
    for (const entry of s.patterns.keys()) {
      if (entry[0] === 'p') patterns.push(entry.slice(1));
      else {
        const sep = entry.indexOf(QUEUE_SEPARATOR);
        queues.push([entry.slice(sep + 1), entry.slice(1, sep)]);
      }
    }
    let value = encodeAnnouncement(address, patterns, credential, queues);
    // Queue entries stay exact (a group member cannot be announced broadly); only plain patterns are broadened.
    const broadened = value.length > this.#maxBytes && patterns.length > 0;
    if (broadened) value = encodeAnnouncement(address, [s.prefix === '' ? '#' : `${s.prefix}.#`], credential, queues);
    // Marked before the put: a PUBLISH answering the broad record may arrive before the put returns.
    this.#setBroadened(s, broadened);
    s.announced = true;
    await this.#dht.put(s.key, value, { ttlMs: this.#ttlMs });
    s.refused = undefined;
    this.#puts++;
  }

  #setBroadened(s: KeyState, on: boolean): void {
    s.broadened = on;
    if (on) this.#broadened.add(s.prefix);
    else this.#broadened.delete(s.prefix);
  }

  #release(s: KeyState): void {
    const waiters = s.waiters;
    s.waiters = [];
    const refused = this.#stopped ? undefined : s.refused;
    for (const w of waiters) {
      if (refused) w.reject(refused);
      else w.resolve();
    }
  }
}
