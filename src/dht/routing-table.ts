/**
 * Kademlia routing table over `k-bucket`, with ping-then-evict.
 *
 * k-bucket keeps each bucket in least-recently-seen order and, when a bucket
 * that may not split is full, emits `ping(oldest, candidate)`. We check the
 * oldest contacts and evict only those that are dead; the candidate takes a
 * freed slot. Old, proven contacts are preferred over newcomers (Kademlia's
 * defence against table flushing), so a contact that answers stays.
 *
 * No timers here: liveness is judged from `lastSeen` (set on every message
 * from the contact) and from failed requests reported by lookups, so a
 * table of thousands of contacts costs no background work.
 */
import KBucket from 'k-bucket';
import type { Clock } from '../util/clock.js';
import { systemClock } from '../util/clock.js';
import { ID_BITS, K } from './constants.js';
import type { Contact, WireContact } from './contact.js';
import { bytesEqual, commonPrefixLength, compareDistance, distancePrefix, idKey, randomIdWithPrefix } from './id.js';

export const DEFAULT_PING_COUNT = 3;
/**
 * Long enough that a busy mesh (where newcomers reach full buckets all the
 * time) does not spend its traffic re-pinging contacts that are obviously
 * alive; dead contacts are mostly found sooner anyway, by failed requests.
 */
export const DEFAULT_PING_FRESH_MS = 5 * 60_000;
export const DEFAULT_MAX_FAILURES = 2;
export const DEFAULT_MAX_PENDING_EVICTIONS = 16;

export const ROUTING_TABLE_DEFAULTS = Object.freeze({
  pingCount: DEFAULT_PING_COUNT,
  pingFreshMs: DEFAULT_PING_FRESH_MS,
  maxFailures: DEFAULT_MAX_FAILURES,
  maxPendingEvictions: DEFAULT_MAX_PENDING_EVICTIONS,
});

export interface TableContact extends Contact {
  /** Required by k-bucket's typings; unused, our arbiter always keeps the newest sighting. */
  vectorClock: number;
  /** When we last heard from this contact (clock ms). */
  lastSeen: number;
  /** Consecutive failed requests since we last heard from it. */
  fails: number;
  /** Wire form, built once: the same contacts go into many responses. */
  wire: WireContact;
}

export interface RoutingTableComponents {
  localId: Uint8Array;
  /** Resolves true when the contact answers a PING (false or rejection: dead). */
  ping(contact: Contact): Promise<boolean>;
  clock?: Clock;
}

export interface RoutingTableInit {
  /** Bucket size. Default 20. */
  k?: number;
  /** How many of the oldest contacts of a full bucket are checked for a newcomer. Default 3. */
  pingCount?: number;
  /** A contact heard from this recently counts as alive without a ping. Default 5 min. */
  pingFreshMs?: number;
  /** Consecutive failed requests after which a contact is dropped. Default 2. */
  maxFailures?: number;
  /** Most newcomers waiting for eviction pings at once; more are dropped (Kademlia keeps old contacts). Default 16. */
  maxPendingEvictions?: number;
}

/** k-bucket's internal tree node (its published typings misdescribe it). */
interface TreeNode {
  contacts: TableContact[] | null;
  left: TreeNode | null;
  right: TreeNode | null;
}

export class RoutingTable {
  readonly localId: Uint8Array;
  readonly k: number;
  readonly pingFreshMs: number;
  readonly maxFailures: number;
  readonly maxPendingEvictions: number;

  readonly #kb: KBucket<TableContact>;
  readonly #ping: (contact: Contact) => Promise<boolean>;
  readonly #clock: Clock;
  readonly #pings = new Map<string, Promise<boolean>>();
  readonly #pendingCandidates = new Set<string>();
  /** Bucket index → last lookup time; sparse, only buckets that were ever looked up. */
  readonly #lastLookup = new Map<number, number>();
  readonly #createdAt: number;
  #size = 0;
  #evictions = 0;

  constructor(components: RoutingTableComponents, init: RoutingTableInit = {}) {
    this.localId = components.localId;
    this.#ping = components.ping;
    this.#clock = components.clock ?? systemClock;
    this.k = init.k ?? K;
    this.pingFreshMs = init.pingFreshMs ?? DEFAULT_PING_FRESH_MS;
    this.maxFailures = init.maxFailures ?? DEFAULT_MAX_FAILURES;
    this.maxPendingEvictions = init.maxPendingEvictions ?? DEFAULT_MAX_PENDING_EVICTIONS;
    this.#createdAt = this.#clock.now();
    this.#kb = new KBucket<TableContact>({
      localNodeId: this.localId,
      numberOfNodesPerKBucket: this.k,
      numberOfNodesToPing: init.pingCount ?? DEFAULT_PING_COUNT,
      // The newest sighting always wins: it carries the current address and
      // resets the failure count; k-bucket then moves it to the bucket's tail.
      arbiter: (_incumbent, candidate) => candidate,
    });
    this.#kb.on('added', () => this.#size++);
    this.#kb.on('removed', () => this.#size--);
    this.#kb.on('ping', (oldest, candidate) => this.#onBucketFull(oldest, candidate));
  }

  get size(): number {
    return this.#size;
  }

  /** Contacts evicted after failing a liveness check. */
  get evictions(): number {
    return this.#evictions;
  }

  /**
   * Records that we heard from `contact` (its ID verified by the connection).
   * Contacts without a listening port (light clients) and ourselves are ignored.
   */
  add(contact: Contact): void {
    if (contact.port <= 0 || bytesEqual(contact.id, this.localId)) return;
    const now = this.#clock.now();
    const known = this.#kb.get(contact.id);
    if (known && known.host === contact.host && known.port === contact.port) {
      // Called for every message received: refresh in place (no allocation).
      // Re-adding the same object moves it to the bucket's tail; within a
      // second the order hardly matters and the move is skipped.
      const stale = now - known.lastSeen >= 1000;
      known.lastSeen = now;
      known.fails = 0;
      if (stale) this.#kb.add(known);
      return;
    }
    // Keep the 32 bytes only, not the decoded frame a subarray may point into
    // (copied with the constructor: Buffer#slice would return a view).
    const id = contact.id.byteLength === contact.id.buffer.byteLength ? contact.id : new Uint8Array(contact.id);
    const { host, port } = contact;
    this.#kb.add({ id, host, port, vectorClock: 0, lastSeen: now, fails: 0, wire: { id, h: host, p: port } });
  }

  get(id: Uint8Array): TableContact | undefined {
    return this.#kb.get(id) ?? undefined;
  }

  remove(id: Uint8Array): void {
    this.#kb.remove(id);
  }

  /** A request to the contact failed; after maxFailures in a row it is dropped. */
  markFailed(id: Uint8Array): void {
    const c = this.#kb.get(id);
    if (!c) return;
    if (++c.fails >= this.maxFailures) this.#kb.remove(id);
  }

  /** Up to `n` contacts closest to `target` by XOR distance, closest first. */
  closest(target: Uint8Array, n: number = this.k): TableContact[] {
    const out: TableContact[] = [];
    if (n <= 0) return out;
    // Depth-first, nearer subtree first: every leaf visited is closer to the
    // target than any leaf not yet visited, so once n contacts are collected
    // they include the n closest.
    const nodes: TreeNode[] = [this.#kb.root as unknown as TreeNode];
    const depths: number[] = [0];
    while (nodes.length > 0 && out.length < n) {
      const node = nodes.pop()!;
      const depth = depths.pop()!;
      if (node.contacts === null) {
        const bit = (target[depth >> 3]! >> (7 - (depth & 7))) & 1;
        const near = bit ? node.right! : node.left!;
        const far = bit ? node.left! : node.right!;
        nodes.push(far, near);
        depths.push(depth + 1, depth + 1);
      } else {
        for (const c of node.contacts) out.push(c);
      }
    }
    sortByDistance(out, target);
    if (out.length > n) out.length = n;
    return out;
  }

  toArray(): TableContact[] {
    return this.#kb.toArray();
  }

  /** Bucket index of `id`: the length of the prefix it shares with our ID (0..255). */
  bucketIndex(id: Uint8Array): number {
    return Math.min(commonPrefixLength(this.localId, id), ID_BITS - 1);
  }

  /** Notes a lookup of `target`, which refreshes the bucket it falls in. */
  touch(target: Uint8Array): void {
    this.#lastLookup.set(this.bucketIndex(target), this.#clock.now());
  }

  /**
   * Buckets that had no lookup for `intervalMs` (all of them when `intervalMs`
   * is 0), from bucket 0 up to the bucket of our closest contact: buckets
   * beyond it are empty and a lookup of our own ID covers them. With
   * `skipFull`, buckets that already hold k contacts are left out (after a
   * join, a lookup there would teach us nothing new).
   */
  staleBuckets(intervalMs: number, options: { skipFull?: boolean } = {}): number[] {
    const nearest = this.closest(this.localId, 1)[0];
    if (!nearest) return [];
    const max = this.bucketIndex(nearest.id);
    let counts: Uint16Array | undefined;
    if (options.skipFull) {
      counts = new Uint16Array(max + 1);
      for (const c of this.toArray()) {
        const i = this.bucketIndex(c.id);
        if (i <= max) counts[i]++;
      }
    }
    const now = this.#clock.now();
    const out: number[] = [];
    for (let i = 0; i <= max; i++) {
      if (counts && counts[i]! >= this.k) continue;
      if (now - (this.#lastLookup.get(i) ?? this.#createdAt) >= intervalMs) out.push(i);
    }
    return out;
  }

  /** A random ID in bucket `i` (sharing exactly i leading bits with our ID). */
  randomIdInBucket(i: number): Uint8Array {
    return randomIdWithPrefix(this.localId, i);
  }

  #onBucketFull(oldest: TableContact[], candidate: TableContact): void {
    // Common case in a busy mesh: the oldest contacts were heard from
    // recently, so the newcomer is dropped without any ping.
    const now = this.#clock.now();
    if (oldest.every((c) => c.fails === 0 && now - c.lastSeen < this.pingFreshMs)) return;
    const key = idKey(candidate.id);
    if (this.#pendingCandidates.has(key) || this.#pendingCandidates.size >= this.maxPendingEvictions) return;
    this.#pendingCandidates.add(key);
    void this.#evictDead(oldest, candidate).finally(() => this.#pendingCandidates.delete(key));
  }

  async #evictDead(oldest: TableContact[], candidate: TableContact): Promise<void> {
    const alive = await Promise.all(oldest.map((c) => this.#isAlive(c)));
    let evicted = 0;
    for (let i = 0; i < oldest.length; i++) {
      const c = oldest[i]!;
      // Only evict the very sighting we judged: if the contact was heard from
      // meanwhile, k-bucket holds a newer object for it and it stays.
      if (!alive[i] && this.#kb.get(c.id) === c) {
        this.#kb.remove(c.id);
        this.#evictions++;
        evicted++;
      }
    }
    if (evicted > 0) this.#kb.add(candidate);
  }

  #isAlive(c: TableContact): boolean | Promise<boolean> {
    if (c.fails > 0) return false;
    if (this.#clock.now() - c.lastSeen < this.pingFreshMs) return true;
    const key = idKey(c.id);
    let pending = this.#pings.get(key);
    if (!pending) {
      pending = this.#ping(c)
        .catch(() => false)
        .then((ok) => {
          this.#pings.delete(key);
          if (ok && this.#kb.get(c.id) === c) {
            c.lastSeen = this.#clock.now();
            this.#kb.add(c); // moves it to the bucket's tail (most recently seen)
          }
          return ok;
        });
      this.#pings.set(key, pending);
    }
    return pending;
  }
}

/** Scratch space for sortByDistance (single-threaded, so one buffer serves every table). */
let scratch = new Float64Array(64);

/**
 * Sorts contacts by XOR distance to `target`. The first 6 bytes of each
 * distance are read once into a number (exact below 2^53), so most
 * comparisons are one float compare; equal prefixes fall back to the bytes.
 * Insertion sort: the arrays are a few dozen contacts long.
 */
function sortByDistance(contacts: TableContact[], target: Uint8Array): void {
  const n = contacts.length;
  if (scratch.length < n) scratch = new Float64Array(n * 2);
  const d = scratch;
  for (let i = 0; i < n; i++) d[i] = distancePrefix(contacts[i]!.id, target);
  for (let i = 1; i < n; i++) {
    const c = contacts[i]!;
    const key = d[i]!;
    let j = i - 1;
    while (j >= 0 && (d[j]! > key || (d[j] === key && compareDistance(contacts[j]!.id, c.id, target) > 0))) {
      contacts[j + 1] = contacts[j]!;
      d[j + 1] = d[j]!;
      j--;
    }
    contacts[j + 1] = c;
    d[j + 1] = key;
  }
}
