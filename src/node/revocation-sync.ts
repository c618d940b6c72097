/**
 * Keeps a secured realm's revocation list in force on this node: adopts a
 * newer list when one is pushed (REVOKE) or found in the DHT (polled), closes
 * the sessions it revokes at once, and publishes it as this node's own
 * record under `dhtKey('auth/<realm>', 'revocations')` (re-announced like
 * every own record), so the list outlives any one node.
 */
import { REVOKE } from '../auth/messages.js';
import type { RealmGuard } from '../auth/realm-guard.js';
import type { DhtRecord } from '../dht/record.js';
import { RPC_RESULT } from '../rpc/messages.js';
import { encodeBody } from '../wire/codec.js';
import type { Messenger } from '../session/messenger.js';
import { sweepSessions } from './realm-security.js';
import { revocationsKey, revocationsToken } from './revocation-keys.js';

/** How often the DHT is asked for a newer list. Default 30 s. */
export const DEFAULT_REVOCATION_POLL_MS = 30_000;

interface SyncDht {
  findValue(key: Uint8Array): Promise<{ records: DhtRecord[] }>;
  put(key: Uint8Array, value: Uint8Array): Promise<unknown>;
}

export class RevocationSync {
  readonly #guard: RealmGuard;
  readonly #dht: SyncDht;
  readonly #messenger: Messenger;
  readonly #key: Uint8Array;
  #timer: NodeJS.Timeout | undefined;
  #n = { adopted: 0, polls: 0, pollFailures: 0, sessionsClosed: 0 };

  constructor(components: { guard: RealmGuard; dht: SyncDht; messenger: Messenger }) {
    this.#guard = components.guard;
    this.#dht = components.dht;
    this.#messenger = components.messenger;
    this.#key = revocationsKey(this.#guard.realm);
    this.#messenger.handle(REVOKE, async (msg) => {
      const adopted = await this.adopt(msg.rl);
      return { t: RPC_RESULT.type, r: { seq: this.#guard.revocations?.seq ?? 0, adopted } };
    });
  }

  start(pollMs = DEFAULT_REVOCATION_POLL_MS): void {
    void this.poll();
    this.#timer = setInterval(() => void this.poll(), pollMs);
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
  }

  /** Adopts `token` if it is a newer list signed by the authority. @throws UnauthorizedError */
  async adopt(token: unknown): Promise<boolean> {
    if (!(await this.#guard.adoptRevocations(token))) return false;
    await this.#adopted();
    return true;
  }

  /** Looks for a newer list in the DHT. */
  async poll(): Promise<void> {
    this.#n.polls++;
    let records: DhtRecord[];
    try {
      ({ records } = await this.#dht.findValue(this.#key));
    } catch {
      this.#n.pollFailures++;
      return;
    }
    let newer = false;
    for (const r of records) {
      // Whatever does not verify is somebody else's problem: it is simply not adopted.
      newer = (await this.#guard.adoptRevocations(revocationsToken(r.value)).catch(() => false)) || newer;
    }
    if (newer) await this.#adopted();
  }

  /** A newer list is in force: close the sessions it revokes now, and publish it. */
  async #adopted(): Promise<void> {
    this.#n.adopted++;
    this.#n.sessionsClosed += sweepSessions(this.#messenger, this.#guard);
    const token = this.#guard.revocations!.token;
    await this.#dht.put(this.#key, encodeBody({ rl: token })).catch(() => undefined);
  }

  stats(): { adopted: number; polls: number; pollFailures: number; sessionsClosed: number } {
    return { ...this.#n };
  }
}
