/**
 * Caller-side cache of results of idempotent procedures, keyed by procedure
 * and the CBOR encoding of the arguments (so equal arguments hit whatever
 * object identity they have). Bounded by entries and by bytes (key plus
 * encoded result); the TTL of each entry comes from the procedure's
 * registration. Cached results are shared between callers: treat them as
 * read-only.
 */
import { LRUCache } from 'lru-cache';
import { encodedSize } from '../wire/codec.js';
import type { Clock } from '../util/clock.js';

export const DEFAULT_RESULT_CACHE_MAX_ENTRIES = 1000;
export const DEFAULT_RESULT_CACHE_MAX_BYTES = 16 * 1024 * 1024;
export const DEFAULT_RESULT_CACHE_MAX_ENTRY_BYTES = 64 * 1024;

export const RESULT_CACHE_DEFAULTS = Object.freeze({
  maxEntries: DEFAULT_RESULT_CACHE_MAX_ENTRIES,
  maxBytes: DEFAULT_RESULT_CACHE_MAX_BYTES,
  maxEntryBytes: DEFAULT_RESULT_CACHE_MAX_ENTRY_BYTES,
});

export interface ResultCacheInit {
  /** Most results kept. Default 1000. */
  maxEntries?: number;
  /** Most bytes kept (keys plus encoded results). Default 16 MiB. */
  maxBytes?: number;
  /** Larger results (or argument encodings) are not cached. Default 64 KiB. */
  maxEntryBytes?: number;
}

interface Entry {
  value: unknown;
}

const GET_OPTIONS: LRUCache.GetOptions<string, Entry, unknown> = {};

export class ResultCache {
  readonly maxEntryBytes: number;
  hits = 0;
  misses = 0;
  readonly #lru: LRUCache<string, Entry>;

  constructor(components: { clock?: Clock } = {}, init: ResultCacheInit = {}) {
    this.maxEntryBytes = init.maxEntryBytes ?? DEFAULT_RESULT_CACHE_MAX_ENTRY_BYTES;
    this.#lru = new LRUCache<string, Entry>({
      max: init.maxEntries ?? DEFAULT_RESULT_CACHE_MAX_ENTRIES,
      maxSize: init.maxBytes ?? DEFAULT_RESULT_CACHE_MAX_BYTES,
      ...(components.clock ? { perf: components.clock, ttlResolution: 0 } : {}),
    });
  }

  get size(): number {
    return this.#lru.size;
  }

  /** The cache key of a call, or undefined when the arguments are too large to be worth caching. */
  key(procedure: string, args: Uint8Array): string | undefined {
    if (args.length > this.maxEntryBytes) return undefined;
    return `${procedure}\0${Buffer.from(args.buffer, args.byteOffset, args.byteLength).toString('latin1')}`;
  }

  get(key: string): Entry | undefined {
    const e = this.#lru.get(key, GET_OPTIONS);
    if (e === undefined) this.misses++;
    else this.hits++;
    return e;
  }

  set(key: string, value: unknown, ttlMs: number): void {
    let size: number;
    try {
      // A local handler's result never went through CBOR: it may not encode at all.
      size = key.length + encodedSize(value);
    } catch {
      return;
    }
    if (size > this.maxEntryBytes) return;
    this.#lru.set(key, { value }, { ttl: ttlMs, size });
  }

  clear(): void {
    this.#lru.clear();
  }
}
