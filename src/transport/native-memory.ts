/**
 * Prompt release of the QUIC binding's native memory.
 *
 * The binding frees a connection's native state (quinn's connection, TLS
 * session, stream state) only when the JS handles that own it are
 * garbage-collected, and V8 does not see that memory, so with a small JS heap
 * closed connections wait natively for a collection that may not come for a
 * long time. Measured with the binding alone, 2,000 connections opened and
 * closed: RSS 82 MB without collections, 71 MB (flat) with one per second;
 * with 4096 streams allowed per connection, where quinn's per-connection
 * state is far larger, 1,000 connections: 336 MB without, 246 MB with. The
 * transport therefore asks for a full collection after every
 * `gcAfterClosedConnections` closed connections, at most once per
 * `MIN_GC_INTERVAL_MS`.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/** Closed connections after which a collection is requested; 0 never. */
export const DEFAULT_GC_AFTER_CLOSED_CONNECTIONS = 128;
/** Collections requested this way are at least this far apart. */
export const MIN_GC_INTERVAL_MS = 1000;

let collect: (() => void) | null | undefined;

/** V8's full collection, made available at run time; null if this runtime refuses. */
function collector(): (() => void) | null {
  if (collect === undefined) {
    try {
      setFlagsFromString('--expose-gc');
      const gc = runInNewContext('gc') as unknown;
      collect = typeof gc === 'function' ? (gc as () => void) : null;
    } catch {
      collect = null;
    }
  }
  return collect;
}

/** Counts closed connections and collects garbage when enough have closed. */
export class NativeMemoryReleaser {
  readonly threshold: number;
  #closed = 0;
  #last = 0;
  #scheduled = false;
  /** Collections run so far (for the stats). */
  collections = 0;

  constructor(threshold: number) {
    this.threshold = threshold;
  }

  connectionClosed(): void {
    if (this.threshold <= 0) return;
    this.#closed++;
    if (this.#closed < this.threshold || this.#scheduled) return;
    this.#scheduled = true;
    const wait = Math.max(0, this.#last + MIN_GC_INTERVAL_MS - Date.now());
    // Later, not inside the close path: the handles must be unreachable first.
    setTimeout(() => {
      this.#scheduled = false;
      this.#closed = 0;
      this.#last = Date.now();
      const gc = collector();
      if (gc) {
        gc();
        this.collections++;
      }
    }, wait).unref();
  }
}
