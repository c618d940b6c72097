/**
 * Iterative Kademlia lookup (FIND_NODE / FIND_VALUE).
 *
 * Up to α requests are in flight; each answer feeds closer contacts into a
 * shortlist sorted by XOR distance, and the next request goes to the closest
 * contact not asked yet. The lookup ends when the k closest contacts that did
 * not fail have all answered, or (FIND_VALUE) when `valuePeers` holders
 * answered with records, or at the deadline. A request that fails or exceeds
 * its timeout marks its contact failed, frees its slot, and the lookup goes
 * on without it; a guard timer enforces the timeout even if the network
 * never settles the request, so a silent peer cannot stall a lookup.
 *
 * Multi-valued keys: records are merged by publisher (highest seq wins) from
 * every holder that answers until `valuePeers` holders did. One holder may
 * have missed a recent STORE (it was down, or joined later), so a few
 * holders give a near-complete set at the cost of about one extra wave.
 *
 * Rounds: a request's wave is 1 + the highest wave among the requests that
 * completed before it was sent. With α in flight and similar latencies each
 * wave holds up to α requests, i.e. the sequential rounds of the classic
 * formulation, without waiting for a whole round before sending more.
 */
import { TimeoutError } from '../util/errors.js';
import type { Contact } from './contact.js';
import { fromWireContact, type WireContact } from './contact.js';
import { bytesEqual, compareDistance, distancePrefix, idKey, isId } from './id.js';
import { FIND_NODE, FIND_VALUE, NODES, VALUE, type DhtMessage } from './messages.js';
import { fromWireRecord, isTombstone, type DhtRecord } from './record.js';

export type LookupKind = 'node' | 'value';
/** node lookups: ok | empty | deadline; value lookups: found | not_found | deadline. */
export type LookupOutcome = 'ok' | 'empty' | 'found' | 'not_found' | 'deadline';

export interface LookupStats {
  kind: LookupKind;
  outcome: LookupOutcome;
  /** Waves until the lookup first had its answer (closest node reached / first value). */
  rounds: number;
  /** Waves until the lookup terminated. */
  roundsToTerminate: number;
  /** Requests sent. */
  messages: number;
  timeouts: number;
  /** Failed requests other than timeouts (errors, wrong response type). */
  failures: number;
  /** Contacts in responses that were ignored: malformed, ourselves, or beyond k per response. */
  rejectedContacts: number;
  /** Records in responses that were ignored: wrong key, bad signature, expired. */
  rejectedRecords: number;
  /** Contacts not asked because the failure detection holds their node down. */
  skippedDown: number;
  /** Wall time from start to end, ms (performance.now(): real time, also under a simulated Clock). */
  durationMs: number;
}

export interface LookupResult {
  /** Up to k closest contacts that answered, closest first. */
  closest: Contact[];
  /** FIND_VALUE: live records merged by publisher (highest seq), tombstones removed. */
  records: DhtRecord[];
  stats: LookupStats;
}

export interface LookupPeers {
  selfId: Uint8Array;
  request(to: Contact, msg: DhtMessage, timeoutMs: number): Promise<DhtMessage>;
  /** The contact answered a request (it is alive). */
  onResponse(contact: Contact): void;
  /** A request to the contact failed or timed out. */
  onFailure(contact: Contact, timedOut: boolean): void;
  /** Whether the node is known to be down now (the failure detection): such contacts are not asked, so a lookup does not wait out dead nodes. */
  isDown?(id: Uint8Array): boolean;
}

export interface LookupParams {
  kind: LookupKind;
  target: Uint8Array;
  /** Where to start: usually the k closest contacts of the routing table. */
  seeds: readonly Contact[];
  k: number;
  alpha: number;
  requestTimeoutMs: number;
  deadlineMs: number;
  /** FIND_VALUE stops once this many holders answered with records. */
  valuePeers: number;
  /** Checks signature and expiry of a record received for `target`. */
  acceptRecord(record: DhtRecord): boolean;
  /** Records already held locally; they count as one holder found in wave 0. */
  localRecords?: readonly DhtRecord[];
}

/** How long after the request timeout the lookup gives up on a request the network did not settle. */
const GUARD_GRACE_MS = 25;

const NEW = 0;
const PENDING = 1;
const ANSWERED = 2;
const FAILED = 3;

interface Candidate {
  contact: Contact;
  /** distancePrefix(contact.id, target): most shortlist comparisons are one number compare. */
  d: number;
  state: number;
  wave: number;
}

export function lookup(peers: LookupPeers, params: LookupParams): Promise<LookupResult> {
  return new Lookup(peers, params).run();
}

function isTimeout(err: unknown): boolean {
  return err instanceof TimeoutError || (err as { code?: unknown } | undefined)?.code === 'MACULA_ERR_TIMEOUT';
}

class Lookup {
  readonly #peers: LookupPeers;
  readonly #p: LookupParams;
  readonly #maxCandidates: number;
  /** Shortlist, closest first; de-duplicated by ID through the binary search. */
  readonly #list: Candidate[] = [];
  readonly #records = new Map<string, DhtRecord>();
  readonly #guards = new Set<NodeJS.Timeout>();
  readonly #stats: LookupStats;
  #inFlight = 0;
  #maxCompletedWave = 0;
  #firstValueWave = -1;
  #holders = 0;
  #done = false;
  #deadline: NodeJS.Timeout | undefined;
  #startedAt = 0;
  #resolve!: (r: LookupResult) => void;

  constructor(peers: LookupPeers, params: LookupParams) {
    this.#peers = peers;
    this.#p = params;
    // Farther candidates only matter if nearly all nearer ones fail.
    this.#maxCandidates = params.k * 8;
    this.#stats = {
      kind: params.kind,
      outcome: 'empty',
      rounds: 0,
      roundsToTerminate: 0,
      messages: 0,
      timeouts: 0,
      failures: 0,
      rejectedContacts: 0,
      rejectedRecords: 0,
      skippedDown: 0,
      durationMs: 0,
    };
  }

  run(): Promise<LookupResult> {
    this.#startedAt = performance.now();
    for (const c of this.#p.seeds) this.#offer(c);
    if (this.#p.localRecords && this.#p.localRecords.length > 0) {
      for (const r of this.#p.localRecords) this.#records.set(idKey(r.publisher), r);
      this.#holders = 1;
      this.#firstValueWave = 0;
    }
    return new Promise((resolve) => {
      this.#resolve = resolve;
      this.#deadline = setTimeout(() => this.#finish(true), this.#p.deadlineMs);
      this.#pump();
    });
  }

  /**
   * Where a contact with `id` goes in the shortlist, or -1 when it is there
   * already or too far to matter.
   */
  #slot(id: Uint8Array): number {
    const list = this.#list;
    const target = this.#p.target;
    const d = distancePrefix(id, target);
    let lo = 0;
    let hi = list.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const cand = list[mid]!;
      const cmp = cand.d !== d ? cand.d - d : compareDistance(cand.contact.id, id, target);
      if (cmp === 0) return -1;
      if (cmp < 0) lo = mid + 1;
      else hi = mid;
    }
    return lo < this.#maxCandidates ? lo : -1;
  }

  #insert(slot: number, contact: Contact): void {
    const list = this.#list;
    list.splice(slot, 0, { contact, d: distancePrefix(contact.id, this.#p.target), state: NEW, wave: 0 });
    if (list.length > this.#maxCandidates) list.pop();
  }

  #offer(contact: Contact): void {
    if (bytesEqual(contact.id, this.#peers.selfId) || this.#down(contact.id)) return;
    const slot = this.#slot(contact.id);
    if (slot >= 0) this.#insert(slot, contact);
  }

  #down(id: Uint8Array): boolean {
    if (this.#peers.isDown?.(id) !== true) return false;
    this.#stats.skippedDown++;
    return true;
  }

  #pump(): void {
    if (this.#done) return;
    if (this.#p.kind === 'value' && this.#holders >= this.#p.valuePeers) return this.#finish(false);
    let counted = 0;
    let unfinished = false;
    const list = this.#list;
    for (let i = 0; i < list.length && counted < this.#p.k; i++) {
      const cand = list[i]!;
      if (cand.state === FAILED) continue;
      counted++;
      if (cand.state === NEW) {
        unfinished = true;
        if (this.#inFlight < this.#p.alpha) this.#send(cand);
      } else if (cand.state === PENDING) {
        unfinished = true;
      }
    }
    if (!unfinished) this.#finish(false);
  }

  #send(cand: Candidate): void {
    const { kind, target, requestTimeoutMs } = this.#p;
    cand.state = PENDING;
    cand.wave = this.#maxCompletedWave + 1;
    if (cand.wave > this.#stats.roundsToTerminate) this.#stats.roundsToTerminate = cand.wave;
    this.#inFlight++;
    this.#stats.messages++;
    const msg: DhtMessage = kind === 'node' ? { t: FIND_NODE.type, target } : { t: FIND_VALUE.type, key: target };
    let settled = false;
    const settle = (res: DhtMessage | undefined, err: unknown): void => {
      if (settled) return;
      settled = true;
      clearTimeout(guard);
      this.#guards.delete(guard);
      this.#settled(cand, res, err);
    };
    let pending: Promise<DhtMessage>;
    try {
      pending = this.#peers.request(cand.contact, msg, requestTimeoutMs);
    } catch (err) {
      pending = Promise.reject(err);
    }
    // The network enforces the timeout; this guard is the backstop for one
    // that does not, and fires a little later so the network's own timeout
    // (counted where it happens) normally comes first.
    const guard = setTimeout(() => settle(undefined, new TimeoutError('DHT request', requestTimeoutMs)), requestTimeoutMs + GUARD_GRACE_MS);
    this.#guards.add(guard);
    pending.then(
      (res) => settle(res, undefined),
      (err) => settle(undefined, err ?? new Error('request failed')),
    );
  }

  #settled(cand: Candidate, res: DhtMessage | undefined, err: unknown): void {
    this.#inFlight--;
    if (cand.wave > this.#maxCompletedWave) this.#maxCompletedWave = cand.wave;
    if (this.#done) return;
    if (res !== undefined && this.#absorb(cand, res)) {
      cand.state = ANSWERED;
      this.#peers.onResponse(cand.contact);
    } else {
      cand.state = FAILED;
      const timedOut = res === undefined && isTimeout(err);
      if (timedOut) this.#stats.timeouts++;
      else this.#stats.failures++;
      this.#peers.onFailure(cand.contact, timedOut);
    }
    this.#pump();
  }

  /** Takes in a response; false when it is not a valid answer to our request. */
  #absorb(cand: Candidate, res: DhtMessage): boolean {
    const expected = this.#p.kind === 'node' ? NODES.type : VALUE.type;
    if (res.t !== expected || !Array.isArray(res.nodes)) return false;
    const nodes = res.nodes as unknown[];
    // A peer gets at most k contacts into the shortlist per answer, so one
    // liar cannot flood it; the rest are counted and dropped.
    const n = Math.min(nodes.length, this.#p.k);
    this.#stats.rejectedContacts += nodes.length - n;
    for (let i = 0; i < n; i++) {
      const w = nodes[i] as WireContact | null;
      const id = w?.id;
      if (!isId(id) || bytesEqual(id, this.#peers.selfId)) {
        this.#stats.rejectedContacts++;
        continue;
      }
      // Most contacts of later answers are known already: look before converting.
      const slot = this.#slot(id);
      if (slot < 0) continue; // duplicates (a peer naming itself again, say) end here
      const c = fromWireContact(w);
      if (!c) this.#stats.rejectedContacts++;
      else if (!this.#down(c.id)) this.#insert(slot, c);
    }
    if (this.#p.kind === 'value') {
      if (!Array.isArray(res.records)) return false;
      if (this.#mergeRecords(res.records as unknown[]) > 0) {
        this.#holders++;
        if (this.#firstValueWave < 0) this.#firstValueWave = cand.wave;
      }
    }
    return true;
  }

  /** Merges records by publisher, verifying only those that would win; returns how many were valid. */
  #mergeRecords(wire: unknown[]): number {
    let valid = 0;
    for (const w of wire) {
      const r = fromWireRecord(w);
      if (!r || !bytesEqual(r.key, this.#p.target)) {
        this.#stats.rejectedRecords++;
        continue;
      }
      const pub = idKey(r.publisher);
      const held = this.#records.get(pub);
      if (held && held.seq >= r.seq) {
        // Same or older copy of a record we hold: valid only if identical to it.
        if (held.seq === r.seq && bytesEqual(held.signature, r.signature)) valid++;
        continue;
      }
      if (!this.#p.acceptRecord(r)) {
        this.#stats.rejectedRecords++;
        continue;
      }
      this.#records.set(pub, r);
      valid++;
    }
    return valid;
  }

  #finish(deadlineHit: boolean): void {
    if (this.#done) return;
    this.#done = true;
    clearTimeout(this.#deadline);
    for (const g of this.#guards) clearTimeout(g);
    this.#guards.clear();
    const stats = this.#stats;
    stats.durationMs = performance.now() - this.#startedAt;
    const answered: Candidate[] = [];
    for (const cand of this.#list) {
      if (cand.state !== ANSWERED) continue;
      answered.push(cand);
      if (answered.length >= this.#p.k) break;
    }
    const records: DhtRecord[] = [];
    for (const r of this.#records.values()) if (!isTombstone(r)) records.push(r);
    if (this.#p.kind === 'node') {
      stats.outcome = deadlineHit ? 'deadline' : answered.length > 0 ? 'ok' : 'empty';
      stats.rounds = answered.length > 0 ? answered[0]!.wave : stats.roundsToTerminate;
    } else {
      stats.outcome = records.length > 0 ? 'found' : deadlineHit ? 'deadline' : 'not_found';
      stats.rounds = this.#firstValueWave >= 0 ? this.#firstValueWave : stats.roundsToTerminate;
    }
    this.#resolve({ closest: answered.map((c) => c.contact), records, stats });
  }
}
