/**
 * A light client's side of INVOKE (a call of a procedure it serves), shared
 * by MaculaClient and MaculaWebClient: the handler runs with the caller's
 * timeout as an AbortSignal, the caller's headers, and headers to send back
 * with the result. Free of node: imports (the browser bundle has it).
 */
import { TimeoutError } from '../util/errors.js';
import { checkHeaders, type Headers } from '../wire/headers.js';
import { RESULT } from './messages.js';

export interface ServeContext {
  readonly procedure: string;
  /** Time the caller waits; the handler's signal aborts when it runs out. */
  readonly timeoutMs: number | undefined;
  readonly signal: AbortSignal;
  /** The caller's headers. */
  readonly headers: Headers | undefined;
  /** Headers to send with the result: set entries here. */
  readonly resultHeaders: Headers;
}

export type ServeHandler = (args: unknown, ctx: ServeContext) => unknown;

/** An INVOKE's fields: procedure, arguments, the caller's timeout (`d`, ms) and headers. */
export interface Invocation {
  p: string;
  a?: unknown;
  d?: number;
  h?: Headers;
}

/** Runs `handler` for one INVOKE; resolves with the RESULT to answer, rejects with what the handler threw. */
export async function runServed(handler: ServeHandler, call: Invocation): Promise<{ t: number; r: unknown; h?: Headers }> {
  const procedure = call.p;
  const timeoutMs = call.d;
  const controller = new AbortController();
  const timer =
    timeoutMs !== undefined
      ? setTimeout(() => controller.abort(new TimeoutError(`the call of "${procedure}"`, timeoutMs, { message: `the caller of "${procedure}" stopped waiting` })), timeoutMs)
      : undefined;
  try {
    const resultHeaders: Headers = {};
    const r = await handler(call.a, { procedure, timeoutMs, signal: controller.signal, headers: call.h, resultHeaders });
    const h = checkHeaders(resultHeaders);
    return { t: RESULT.type, r, ...(h !== undefined && { h }) };
  } finally {
    clearTimeout(timer);
  }
}
