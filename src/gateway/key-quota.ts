/**
 * What light clients make this node store in the mesh: a record under one
 * DHT key per distinct subscription prefix (the announcement of its
 * patterns) and one per served procedure (its registration). Every such
 * record is signed by the node, so remote stores count all of them against
 * the node as one publisher (record-store.ts: 1000 records, 1 MiB). Without
 * a bound per client, one client could use that up and every other client
 * of the node would be refused by the mesh.
 *
 * So each client may cause at most `maxKeys` distinct keys and `maxBytes`
 * of records, and all clients together at most `allKeys` distinct keys and
 * `allBytes` (a key shared by several clients counts once among the keys;
 * bytes are summed per client, which over-counts shared records and so errs
 * on the safe side). The defaults keep the clients' total under the remote
 * per-publisher bounds with room left for the node's own records. A client's
 * share is released when it unsubscribes, stops serving or leaves.
 */
import { RECORD_OVERHEAD_BYTES } from '../dht/record-store.js';
import { LimitExceededError } from '../util/errors.js';
import { ClientLimitError } from './errors.js';

/** One client's share: its keys (→ how many of its subscriptions or served procedures use each) and their bytes. */
export interface HeldKeys {
  readonly keys: Map<string, number>;
  bytes: number;
}

export interface ClientKeyQuotaLimits {
  maxKeys: number;
  maxBytes: number;
  allKeys: number;
  allBytes: number;
}

const REFUSAL_HINT = 'use patterns that share a prefix (e.g. "sensors.*" instead of one subscription per topic), or connect another client';

export class ClientKeyQuota {
  readonly limits: Readonly<ClientKeyQuotaLimits>;
  /** key → number of clients holding it. */
  readonly #clients = new Map<string, number>();
  #bytes = 0;
  #refused = 0;

  constructor(limits: ClientKeyQuotaLimits) {
    this.limits = Object.freeze({ ...limits });
  }

  static empty(): HeldKeys {
    return { keys: new Map(), bytes: 0 };
  }

  /** Distinct keys held by all clients. */
  get keys(): number {
    return this.#clients.size;
  }

  /** Bytes charged to all clients. */
  get bytes(): number {
    return this.#bytes;
  }

  /** Requests refused because a bound was reached. */
  get refused(): number {
    return this.#refused;
  }

  /**
   * Charges one more use of `key` and `bytes` to a client (plus the record
   * overhead when the key is new to it); throws when that passes a bound.
   * Returns what was charged, for release().
   */
  take(held: HeldKeys, key: string, bytes: number): number {
    const uses = held.keys.get(key) ?? 0;
    const charge = bytes + (uses === 0 ? RECORD_OVERHEAD_BYTES : 0);
    const { maxKeys, maxBytes, allKeys, allBytes } = this.limits;
    if ((uses === 0 && held.keys.size >= maxKeys) || held.bytes + charge > maxBytes) {
      this.#refused++;
      const what = uses === 0 && held.keys.size >= maxKeys ? ['DHT keys (distinct subscription prefixes and served procedures)', maxKeys] : ['bytes of DHT records', maxBytes];
      throw new ClientLimitError('MACULA_ERR_LIMIT', what[0] as string, what[1] as number, REFUSAL_HINT);
    }
    const clients = this.#clients.get(key) ?? 0;
    if ((uses === 0 && clients === 0 && this.#clients.size >= allKeys) || this.#bytes + charge > allBytes) {
      this.#refused++;
      const all = this.#bytes + charge > allBytes ? ['bytes of DHT records of all light clients of this node', allBytes] : ['DHT keys of all light clients of this node', allKeys];
      throw new LimitExceededError(all[0] as string, all[1] as number, 'try again later or connect to another node');
    }
    if (uses === 0) this.#clients.set(key, clients + 1);
    held.keys.set(key, uses + 1);
    held.bytes += charge;
    this.#bytes += charge;
    return charge;
  }

  /** Returns one use of `key` by a client, with what take() charged for it. */
  release(held: HeldKeys, key: string, charge: number): void {
    const uses = held.keys.get(key);
    if (uses === undefined) return;
    held.bytes -= charge;
    this.#bytes -= charge;
    if (uses > 1) {
      held.keys.set(key, uses - 1);
      return;
    }
    held.keys.delete(key);
    const clients = this.#clients.get(key)! - 1;
    if (clients > 0) this.#clients.set(key, clients);
    else this.#clients.delete(key);
  }

  /** Returns everything a client held (it left). */
  releaseAll(held: HeldKeys): void {
    this.#bytes -= held.bytes;
    held.bytes = 0;
    for (const key of held.keys.keys()) {
      const clients = this.#clients.get(key)! - 1;
      if (clients > 0) this.#clients.set(key, clients);
      else this.#clients.delete(key);
    }
    held.keys.clear();
  }
}

/** The quota key of a subscription (its announcement prefix) and of a served procedure. */
export const subscriptionKey = (prefix: string): string => `sub:${prefix}`;
export const servedKey = (procedure: string): string => `rpc:${procedure}`;

/** Bytes a pattern adds to its announcement record, and a procedure's registration record (name, address, metadata). */
export const patternBytes = (pattern: string): number => Buffer.byteLength(pattern) + 2;
export const registrationBytes = (procedure: string): number => Buffer.byteLength(procedure) + 128;
