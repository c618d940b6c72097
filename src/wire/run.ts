/**
 * Runs: k ≥ 2 consecutive messages of one publisher to one topic, without
 * headers, request inbox or queue-group picks, carried as one wire message
 * (GW_SEND, PUBLISH, GW_MSG): `d` is the array of the k payloads and `k`
 * says so; the sequence numbers are consecutive from the one carried.
 * A sender forms runs only from what it has queued in the same event-loop
 * turn (no timer: latency does not grow), bounded by MAX_RUN messages and
 * MAX_RUN_BYTES of payload; the receiver does the per-message work it must
 * (a buffer push, a sequence number) and the rest once per run.
 */
import type { Message } from './messages.js';
import { f } from './schema.js';

/**
 * Most messages one run carries: no more than the session's reader hands
 * to handlers between two yields (YIELD_EVERY in peer-session.ts, which
 * counts the messages of a run), so a run fills a subscription's buffer no
 * faster than single messages do before its handler runs.
 */
export const MAX_RUN = 64;
/** Payload bytes after which a sender closes a run (far under the 1 MiB frame limit). */
export const MAX_RUN_BYTES = 64 * 1024;

/** The `k` field: the run's length. */
export const RUN_FIELD = f.opt(f.int(2, MAX_RUN));

/**
 * The check of a message type that may carry a run: with `k`, `d` must be
 * an array of exactly k payloads, none of `singleOnly` may be present
 * (what only a single message carries), and the run's last sequence number
 * (`seqField` + k - 1) must stay an exact integer.
 */
export function runCheck(seqField: string, singleOnly: readonly string[]): (msg: Message) => string | undefined {
  return (msg) => {
    const k = msg.k as number | undefined;
    if (k === undefined) return undefined;
    const d = msg.d;
    if (!Array.isArray(d) || d.length !== k) return `field "d" of a run (k = ${k}) must be an array of exactly ${k} payloads`;
    for (const name of singleOnly) if (msg[name] !== undefined && msg[name] !== null) return `field "${name}" cannot be part of a run (k = ${k}); send such messages one by one`;
    const seq = msg[seqField] as number | undefined;
    if (seq !== undefined && seq > Number.MAX_SAFE_INTEGER - (k - 1)) return `field "${seqField}" + k - 1 of a run exceeds ${Number.MAX_SAFE_INTEGER}`;
    return undefined;
  };
}

/** Whether a run of `count` messages and `bytes` of payload takes one more payload of `size` bytes (a sender's rule). */
export function runHasRoom(count: number, bytes: number, size: number): boolean {
  return count < MAX_RUN && bytes + size <= MAX_RUN_BYTES;
}

/** How many messages `msg` carries: k for a run, else 1. */
export function messagesIn(msg: Message): number {
  const k = msg.k;
  return typeof k === 'number' ? k : 1;
}
