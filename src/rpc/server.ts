/**
 * RPC server: registers procedures (advertised in the registry as
 * `rpc:<procedure>`) and serves RPC_CALL requests.
 *
 * Every call runs as soon as it arrives, concurrently with all others: the
 * messenger answers each request independently, so a slow handler delays
 * only its own reply. The per-connection in-flight limit (MACULA_ERR_BUSY)
 * is the messenger's. Each call has a timeout: the procedure's own
 * (default 30 s), or less when the caller said it waits less (`d`); when
 * it runs out the handler's signal is aborted. Errors go back as ERROR
 * with a stable code and the error's message — never its stack.
 */
import { toHex } from '../identity/identity.js';
import { BadResultError, BusyError, ConfigError, LimitExceededError, MaculaError, TimeoutError, toWire } from '../util/errors.js';
import { DEFAULT_MAX_FRAME_SIZE } from '../wire/frame.js';
import { encodeBody, encodeMessage } from '../wire/codec.js';
import type { OutboundMessage } from '../wire/framed-stream.js';
import { ERROR, type MessageOf } from '../wire/messages.js';
import { NoSuchProcedureError, RemoteCallError } from './errors.js';
import { MAX_CALL_BUDGET_MS, RPC_CALL, RPC_RESULT } from './messages.js';
import { META_CACHE_TTL_MS, META_IDEMPOTENT, serviceName, validateProcedure } from './procedure.js';
import { checkHeaders, type Headers } from '../wire/headers.js';
import type { InvokeOptions, LocalInvoker, RegisterOptions, RpcAdvertiser, RpcCaller, RpcContext, RpcHandler, RpcHandlerHost, RpcPeer } from './types.js';
import { numberOption } from '../util/options.js';

export const DEFAULT_HANDLER_TIMEOUT_MS = 30_000;
/** Room for the RPC_RESULT envelope inside one frame. */
export const DEFAULT_MAX_RESULT_BYTES = DEFAULT_MAX_FRAME_SIZE - 1024;
export const DEFAULT_MAX_PROCEDURES = 10_000;
export const DEFAULT_MAX_RUNNING = 10_000;

export const RPC_SERVER_DEFAULTS = Object.freeze({
  handlerTimeoutMs: DEFAULT_HANDLER_TIMEOUT_MS,
  maxResultBytes: DEFAULT_MAX_RESULT_BYTES,
  maxProcedures: DEFAULT_MAX_PROCEDURES,
  maxRunning: DEFAULT_MAX_RUNNING,
});
const MAX_ERROR_CODE_LENGTH = 64; // the ERROR message schema's limits
const MAX_ERROR_MESSAGE_LENGTH = 1024;
const ERROR_CODE = /^[\x21-\x7e]+$/;

export interface RpcServerComponents {
  transport: RpcHandlerHost;
  registry: RpcAdvertiser;
}

export interface RpcServerInit {
  /** Handler timeout of procedures registered without one. Default 30 000 ms. */
  handlerTimeoutMs?: number;
  /** Largest result sent, CBOR-encoded; larger ones fail with MACULA_ERR_BAD_RESULT. Default 1 MiB − 1 KiB. */
  maxResultBytes?: number;
  /** Most procedures registered at once. Default 10 000. */
  maxProcedures?: number;
  /**
   * Most asynchronous handler invocations running at once on this node, over
   * all connections; past it calls are refused with MACULA_ERR_BUSY. The
   * messenger's per-connection limit frees a slot when a call times out,
   * while its handler may still run: this bound covers those. Default 10 000.
   */
  maxRunning?: number;
}

export type ServedOutcome = 'ok' | 'error' | 'timeout' | 'deadline' | 'no_such_procedure' | 'bad_result' | 'busy';

export interface RpcServerStats {
  /** Calls served, by outcome ('deadline': the caller's wait ran out first; nothing was sent). */
  served: Record<ServedOutcome, number>;
  /** Asynchronous handler invocations not settled yet (including timed-out ones still running). */
  running: number;
  procedures: number;
}

interface Registered {
  readonly procedure: string;
  readonly handler: RpcHandler<unknown, unknown>;
  readonly timeoutMs: number;
}

/** A handler ran out of its own timeout. */
class HandlerTimeoutError extends MaculaError {
  constructor(procedure: string, timeoutMs: number) {
    super('MACULA_ERR_TIMEOUT', `the handler of "${procedure}" did not finish within ${timeoutMs} ms`);
  }
}

/** The caller stopped waiting; internal (nothing is sent for it). */
const CALLER_GAVE_UP = Symbol('caller gave up');

class CallContext implements RpcContext {
  #controller: AbortController | undefined;
  #resultHeaders: Headers | undefined;

  constructor(
    readonly procedure: string,
    readonly caller: RpcCaller | undefined,
    readonly timeoutMs: number,
    readonly origin: string | undefined,
    readonly headers: Headers | undefined,
    /** The timeout is the caller's budget, not the procedure's own. */
    readonly byCaller: boolean,
  ) {}

  get resultHeaders(): Headers {
    return (this.#resultHeaders ??= {});
  }

  /** The result's headers, checked; undefined when the handler set none. @throws InvalidHeadersError */
  checkedResultHeaders(): Headers | undefined {
    return this.#resultHeaders === undefined ? undefined : checkHeaders(this.#resultHeaders);
  }

  // Created on first use: most handlers never look at it.
  get signal(): AbortSignal {
    return (this.#controller ??= new AbortController()).signal;
  }

  abort(reason: unknown): void {
    this.#controller?.abort(reason);
  }
}

function errorCode(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && code.length <= MAX_ERROR_CODE_LENGTH && ERROR_CODE.test(code) ? code : 'MACULA_ERR_HANDLER';
}

function errorMessage(err: unknown): string {
  let message: string;
  try {
    message = err instanceof Error ? err.message : typeof err === 'string' ? err : `the handler threw ${typeof err === 'object' ? 'a non-Error value' : String(err)}`;
  } catch {
    message = 'the handler failed';
  }
  return message.length > MAX_ERROR_MESSAGE_LENGTH ? `${message.slice(0, MAX_ERROR_MESSAGE_LENGTH - 1)}…` : message;
}

function isThenable(v: unknown): v is PromiseLike<unknown> {
  return typeof v === 'object' && v !== null && typeof (v as { then?: unknown }).then === 'function';
}

export class RpcServer implements LocalInvoker {
  readonly handlerTimeoutMs: number;
  readonly maxResultBytes: number;
  readonly maxProcedures: number;
  readonly maxRunning: number;
  readonly #registry: RpcAdvertiser;
  readonly #procs = new Map<string, Registered>();
  readonly #served: Record<ServedOutcome, number> = { ok: 0, error: 0, timeout: 0, deadline: 0, no_such_procedure: 0, bad_result: 0, busy: 0 };
  #running = 0;

  constructor(components: RpcServerComponents, init: RpcServerInit = {}) {
    this.#registry = components.registry;
    this.handlerTimeoutMs = checkTimeout(init.handlerTimeoutMs ?? DEFAULT_HANDLER_TIMEOUT_MS, 'handlerTimeoutMs');
    this.maxResultBytes = init.maxResultBytes ?? DEFAULT_MAX_RESULT_BYTES;
    this.maxProcedures = init.maxProcedures ?? DEFAULT_MAX_PROCEDURES;
    this.maxRunning = init.maxRunning ?? DEFAULT_MAX_RUNNING;
    components.transport.handle(RPC_CALL, (msg, peer) => this.#onCall(msg, peer));
  }

  /**
   * Serves `procedure` with `handler` and advertises it. Resolves once the
   * registration is stored in the registry; if that fails, the procedure is
   * not registered. Calls are served from the moment this is called.
   */
  async register<A = unknown, R = unknown>(procedure: string, handler: RpcHandler<A, R>, options: RegisterOptions = {}): Promise<void> {
    validateProcedure(procedure);
    if (typeof handler !== 'function') throw new ConfigError(`the handler of "${procedure}" must be a function`);
    if (this.#procs.has(procedure)) throw new ConfigError(`"${procedure}" is already registered on this node; unregister it first`);
    if (this.#procs.size >= this.maxProcedures) {
      throw new LimitExceededError('registered procedures', this.maxProcedures, 'unregister some, or raise maxProcedures');
    }
    const idempotent = options.idempotent ?? false;
    const cacheTtlMs = options.cacheTtlMs ?? 0;
    numberOption(`cacheTtlMs of "${procedure}"`, cacheTtlMs, 0);
    if (cacheTtlMs > 0 && !idempotent) throw new ConfigError(`"${procedure}" has a cacheTtlMs but is not idempotent: only results of idempotent procedures may be cached`);
    const entry: Registered = {
      procedure,
      handler: handler as RpcHandler<unknown, unknown>,
      timeoutMs: checkTimeout(options.timeoutMs ?? this.handlerTimeoutMs, `timeoutMs of "${procedure}"`),
    };
    const metadata: Record<string, unknown> = { ...options.metadata };
    delete metadata[META_IDEMPOTENT];
    delete metadata[META_CACHE_TTL_MS];
    if (idempotent) metadata[META_IDEMPOTENT] = true;
    if (cacheTtlMs > 0) metadata[META_CACHE_TTL_MS] = cacheTtlMs;
    this.#procs.set(procedure, entry);
    try {
      await this.#registry.advertise(serviceName(procedure), metadata, { ttlMs: options.ttlMs });
    } catch (err) {
      if (this.#procs.get(procedure) === entry) this.#procs.delete(procedure);
      throw err;
    }
  }

  /** Stops serving `procedure` and withdraws its registration. Calls already running finish. */
  async unregister(procedure: string): Promise<boolean> {
    if (!this.#procs.delete(procedure)) return false;
    await this.#registry.unadvertise(serviceName(procedure));
    return true;
  }

  /** Unregisters every procedure (best effort; for a clean stop). */
  async stop(): Promise<void> {
    await Promise.allSettled([...this.#procs.keys()].map((p) => this.unregister(p)));
  }

  has(procedure: string): boolean {
    return this.#procs.has(procedure);
  }

  procedures(): string[] {
    return [...this.#procs.keys()];
  }

  stats(): RpcServerStats {
    return { served: { ...this.#served }, running: this.#running, procedures: this.#procs.size };
  }

  /**
   * Runs a procedure of this node in-process (a call whose provider is this
   * node). Arguments and result are passed by reference, not copied through
   * CBOR. Rejects with NoSuchProcedureError, RemoteCallError (the handler
   * failed or ran out of its own timeout; nodeId '') or TimeoutError (the
   * caller's `timeoutMs` ran out first).
   */
  async invoke(procedure: string, args: unknown, options: InvokeOptions): Promise<unknown> {
    const entry = this.#procs.get(procedure);
    if (!entry) throw new NoSuchProcedureError(procedure, 'this node');
    try {
      const ctx = this.#context(entry, undefined, options.timeoutMs, options.origin, options.headers);
      const result = await this.#execute(entry, args, ctx);
      const headers = ctx.checkedResultHeaders();
      if (headers !== undefined) options.onResultHeaders?.(headers);
      return result;
    } catch (err) {
      if (err === CALLER_GAVE_UP) throw new TimeoutError(`local call of "${procedure}"`, options.timeoutMs);
      throw new RemoteCallError(errorCode(err), errorMessage(err), procedure, '');
    }
  }

  async #onCall(msg: MessageOf<typeof RPC_CALL>, peer: RpcPeer): Promise<OutboundMessage | undefined> {
    const procedure = msg.p;
    const entry = this.#procs.get(procedure);
    if (!entry) {
      this.#served.no_such_procedure++;
      return { t: ERROR.type, ...toWire(new NoSuchProcedureError(procedure, 'this node')) };
    }
    if (this.#running >= this.maxRunning) {
      this.#served.busy++;
      return { t: ERROR.type, ...toWire(new BusyError(`this node runs ${this.#running} calls already (limit ${this.maxRunning}); retry later or call another provider`)) };
    }
    const budget = msg.d !== undefined && msg.d > 0 ? msg.d : Infinity;
    let result: unknown;
    let headers: Headers | undefined;
    try {
      const origin = msg.o !== undefined ? toHex(msg.o) : undefined;
      const ctx = this.#context(entry, { nodeId: peer.nodeIdHex, address: peer.address }, budget, origin, msg.h);
      result = await this.#execute(entry, msg.a, ctx);
      headers = ctx.checkedResultHeaders();
    } catch (err) {
      if (err === CALLER_GAVE_UP) {
        this.#served.deadline++;
        return undefined;
      }
      this.#served[err instanceof HandlerTimeoutError ? 'timeout' : 'error']++;
      return { t: ERROR.type, code: errorCode(err), message: errorMessage(err) };
    }
    const checked = this.#checkResult(result);
    if (typeof checked === 'string') {
      const problem = checked;
      this.#served.bad_result++;
      return {
        t: ERROR.type,
        ...toWire(
          new BadResultError(
            `the handler of "${procedure}" returned a result that cannot be sent (${problem}); return plain data (maps, arrays, strings, numbers, bytes) of at most ${this.maxResultBytes} bytes`,
          ),
        ),
      };
    }
    this.#served.ok++;
    // A result measured by encoding it is sent as those bytes, not encoded again.
    const fields = { t: RPC_RESULT.type, ...(headers !== undefined && { h: headers }) };
    return checked === undefined ? { ...fields, r: result } : encodeMessage(fields, { r: checked });
  }

  /**
   * Runs the handler under min(procedure timeout, caller budget). A handler
   * that answers synchronously costs no timer; one that throws synchronously
   * rejects like an async one.
   */
  #context(entry: Registered, caller: RpcCaller | undefined, budgetMs: number, origin: string | undefined, headers: Headers | undefined): CallContext {
    const byCaller = budgetMs < entry.timeoutMs;
    return new CallContext(entry.procedure, caller, byCaller ? budgetMs : entry.timeoutMs, origin, headers, byCaller);
  }

  #execute(entry: Registered, args: unknown, ctx: CallContext): Promise<unknown> {
    const { byCaller, timeoutMs } = ctx;
    let out: unknown;
    try {
      out = entry.handler(args, ctx);
    } catch (err) {
      return Promise.reject(err);
    }
    if (!isThenable(out)) return Promise.resolve(out);
    const work = Promise.resolve(out);
    this.#running++;
    const settled = (): void => {
      this.#running--;
    };
    work.then(settled, settled);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        const reason = byCaller ? CALLER_GAVE_UP : new HandlerTimeoutError(entry.procedure, timeoutMs);
        ctx.abort(reason === CALLER_GAVE_UP ? new TimeoutError(`the caller of "${entry.procedure}"`, timeoutMs) : reason);
        reject(reason);
      }, timeoutMs);
      work.then(
        (v) => {
          clearTimeout(timer);
          resolve(v);
        },
        (e: unknown) => {
          clearTimeout(timer);
          reject(e);
        },
      );
    });
  }

  /**
   * Why `r` cannot go into an RPC_RESULT (a string); else its encoding when
   * measuring it took one, or undefined.
   */
  #checkResult(r: unknown): string | Uint8Array | undefined {
    switch (typeof r) {
      case 'undefined':
      case 'boolean':
      case 'number':
      case 'bigint':
        return undefined;
      case 'string':
        // UTF-8 takes at most 3 bytes per UTF-16 unit: only long strings need measuring.
        if (r.length * 3 <= this.maxResultBytes || Buffer.byteLength(r) <= this.maxResultBytes) return undefined;
        return 'too large';
      case 'function':
      case 'symbol':
        return `a ${typeof r}`;
    }
    if (r === null) return undefined;
    if (r instanceof Uint8Array) return r.length <= this.maxResultBytes ? undefined : 'too large';
    let bytes: Uint8Array;
    try {
      bytes = encodeBody(r);
    } catch (err) {
      return `not CBOR-encodable: ${err instanceof Error ? err.message : 'unknown error'}`;
    }
    return bytes.length <= this.maxResultBytes ? bytes : `${bytes.length} bytes encoded, too large`;
  }
}

function checkTimeout(ms: number, what: string): number {
  return numberOption(what, ms, 0, { exclusiveMin: true, max: MAX_CALL_BUDGET_MS });
}
