/**
 * The DHT keys light clients make this node publish records under: one per
 * distinct subscription prefix (the announcement key of its patterns) and one
 * per served procedure (its registration). Every such record is signed by the
 * node, so the mesh counts it against the node as one publisher (the record
 * store's per-publisher bounds). Without a bound per client, one client could
 * use up that quota and every other client of the node would be refused by
 * the mesh; so each client may cause at most `perClient` distinct keys, and
 * all clients together at most `allClients` (a key shared by several clients
 * counts once), which leaves the rest of the node's quota to its own records.
 * A client's keys are released when it unsubscribes, stops serving or leaves.
 */
import { LimitExceededError } from '../util/errors.js';
import { ClientLimitError } from './errors.js';

/** One client's keys → how many of its subscriptions or served procedures use each. */
export type HeldKeys = Map<string, number>;

export class ClientKeyQuota {
  readonly perClient: number;
  readonly allClients: number;
  /** key → number of clients holding it. */
  readonly #clients = new Map<string, number>();
  #refused = 0;

  constructor(perClient: number, allClients: number) {
    this.perClient = perClient;
    this.allClients = allClients;
  }

  /** Distinct keys held by all clients. */
  get size(): number {
    return this.#clients.size;
  }

  /** Requests refused because a bound was reached. */
  get refused(): number {
    return this.#refused;
  }

  /** Charges one more use of `key` to a client; throws when that would pass a bound. */
  take(held: HeldKeys, key: string): void {
    const uses = held.get(key) ?? 0;
    if (uses === 0) {
      if (held.size >= this.perClient) {
        this.#refused++;
        throw new ClientLimitError(
          'MACULA_ERR_LIMIT',
          'DHT keys (distinct subscription prefixes and served procedures)',
          this.perClient,
          'use patterns that share a prefix (e.g. "sensors.*" instead of one subscription per topic), or connect another client',
        );
      }
      const clients = this.#clients.get(key) ?? 0;
      if (clients === 0 && this.#clients.size >= this.allClients) {
        this.#refused++;
        throw new LimitExceededError('DHT keys of all light clients of this node', this.allClients, 'try again later or connect to another node');
      }
      this.#clients.set(key, clients + 1);
    }
    held.set(key, uses + 1);
  }

  /** Returns one use of `key` by a client. */
  release(held: HeldKeys, key: string): void {
    const uses = held.get(key);
    if (uses === undefined) return;
    if (uses > 1) {
      held.set(key, uses - 1);
      return;
    }
    held.delete(key);
    const clients = this.#clients.get(key)! - 1;
    if (clients > 0) this.#clients.set(key, clients);
    else this.#clients.delete(key);
  }

  /** Returns every key of a client (it left). */
  releaseAll(held: HeldKeys): void {
    for (const key of [...held.keys()]) {
      held.set(key, 1);
      this.release(held, key);
    }
  }
}

/** The quota key of a subscription (its announcement prefix) and of a served procedure. */
export const subscriptionKey = (prefix: string): string => `sub:${prefix}`;
export const servedKey = (procedure: string): string => `rpc:${procedure}`;
