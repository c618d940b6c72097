/**
 * Admission of inbound connections by rate: a token bucket for all sources
 * together and one per source address. The binding completes a QUIC
 * handshake before the connection reaches JS, so the rate is checked right
 * after it: a connection over the rate is closed at once and counted, before
 * any session state is built for it.
 */
import { LRUCache } from 'lru-cache';

export interface AdmissionOptions {
  /** Inbound connections accepted per second from all sources (sustained). Default 200. */
  connectionRate?: number;
  /** Burst allowance on top of the rate, from all sources. Default 400. */
  connectionBurst?: number;
  /** Inbound connections accepted per second from one source address. Default 100. */
  connectionRatePerSource?: number;
  /** Burst allowance per source address. Default 200. */
  connectionBurstPerSource?: number;
}

export const DEFAULT_CONNECTION_RATE = 200;
export const DEFAULT_CONNECTION_BURST = 400;
export const DEFAULT_CONNECTION_RATE_PER_SOURCE = 100;
export const DEFAULT_CONNECTION_BURST_PER_SOURCE = 200;

export const ADMISSION_DEFAULTS = Object.freeze({
  connectionRate: DEFAULT_CONNECTION_RATE,
  connectionBurst: DEFAULT_CONNECTION_BURST,
  connectionRatePerSource: DEFAULT_CONNECTION_RATE_PER_SOURCE,
  connectionBurstPerSource: DEFAULT_CONNECTION_BURST_PER_SOURCE,
});
/** Source addresses whose bucket is remembered (least recently seen forgotten first: a forgotten source starts full). */
export const MAX_TRACKED_SOURCES = 10_000;

export type AdmissionRefusal = 'connection_rate' | 'connection_rate_per_source';

class TokenBucket {
  tokens: number;
  at: number;
  constructor(readonly rate: number, readonly burst: number, now: number) {
    this.tokens = burst;
    this.at = now;
  }
  take(now: number): boolean {
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.at) / 1000) * this.rate);
    this.at = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}

export class ConnectionAdmission {
  readonly #total: TokenBucket;
  readonly #rate: number;
  readonly #burst: number;
  readonly #sources = new LRUCache<string, TokenBucket>({ max: MAX_TRACKED_SOURCES });

  constructor(options: AdmissionOptions = {}, now = performance.now()) {
    this.#total = new TokenBucket(options.connectionRate ?? DEFAULT_CONNECTION_RATE, options.connectionBurst ?? DEFAULT_CONNECTION_BURST, now);
    this.#rate = options.connectionRatePerSource ?? DEFAULT_CONNECTION_RATE_PER_SOURCE;
    this.#burst = options.connectionBurstPerSource ?? DEFAULT_CONNECTION_BURST_PER_SOURCE;
  }

  /** Sources currently tracked. */
  get sources(): number {
    return this.#sources.size;
  }

  /** Takes a token for a connection from `host`; the refusal reason when over a rate. */
  admit(host: string, now = performance.now()): AdmissionRefusal | undefined {
    let bucket = this.#sources.get(host);
    if (!bucket) {
      bucket = new TokenBucket(this.#rate, this.#burst, now);
      this.#sources.set(host, bucket);
    }
    if (!bucket.take(now)) return 'connection_rate_per_source';
    if (!this.#total.take(now)) return 'connection_rate';
    return undefined;
  }
}
