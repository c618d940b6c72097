/**
 * A light client's side of serving procedures, shared by MaculaClient and
 * MaculaWebClient: which procedures it serves (`ServedProcedures`), and
 * INVOKE (a call of one of them), whose handler runs with the caller's
 * timeout as an AbortSignal, the caller's headers, and headers to send back
 * with the result. Free of node: imports (the browser bundle has it).
 */
import { ConfigError, TimeoutError } from '../util/errors.js';
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

/**
 * The procedures a client serves, by name. A handler is installed before
 * the node is asked to register it (calls may arrive as soon as the
 * registration is stored, before the answer does) and removed again if the
 * node refuses; an unserve or close removes only the handler it was given.
 */
export class ServedProcedures<H> {
  readonly #handlers = new Map<string, H>();

  get size(): number {
    return this.#handlers.size;
  }

  get(procedure: string): H | undefined {
    return this.#handlers.get(procedure);
  }

  /**
   * Installs `handler`, then `register()`s it with the node.
   * @throws ConfigError when `procedure` is served already; what register() throws (the handler is removed then)
   */
  async serve(procedure: string, handler: H, register: () => Promise<unknown>): Promise<void> {
    if (this.#handlers.has(procedure)) throw new ConfigError(`this client already serves "${procedure}"`);
    this.#handlers.set(procedure, handler);
    try {
      await register();
    } catch (err) {
      this.remove(procedure, handler);
      throw err;
    }
  }

  /** Removes `procedure` if `handler` still serves it; false when it was removed already (or replaced). */
  remove(procedure: string, handler: H): boolean {
    if (this.#handlers.get(procedure) !== handler) return false;
    this.#handlers.delete(procedure);
    return true;
  }

  /** Removes every procedure and returns their names (to withdraw them at close). */
  removeAll(): string[] {
    const procedures = [...this.#handlers.keys()];
    this.#handlers.clear();
    return procedures;
  }
}

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
