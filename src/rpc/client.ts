/**
 * RPC client: call(procedure, args) finds the providers through the
 * registry (cached), picks one, and fails over to another on connection
 * failure, timeout, refusal (busy) or a provider that no longer serves the
 * procedure — up to maxAttempts (default 3) attempts, never the same
 * provider twice in one call. A handler error is not retried: the handler
 * ran, and running it elsewhere would likely fail alike and may repeat its
 * side effects. It surfaces as RemoteCallError with the remote code.
 *
 * Deadline: the call's timeout covers everything (registry lookup and all
 * attempts). Each attempt gets an equal share of the time that is left
 * among the attempts that may still follow: with 3 providers and 5 s, the
 * first gets ~1.67 s; if it fails fast, the second gets half of what is left.
 * So a hung provider cannot eat the whole budget, and a single provider gets
 * all of it.
 *
 * Providers that failed (other than busy) are remembered for suspectMs and
 * tried only when no other is left, so calls stop paying for a dead provider
 * long before its registration expires. The registry entry is invalidated
 * only when a provider answers that it no longer serves the procedure.
 */
import { fromHex, shortId } from '../identity/identity.js';
import { performance } from 'node:perf_hooks';
import { LRUCache } from 'lru-cache';
import type { Provider } from '../registry/types.js';
import type { LivenessView } from '../liveness/liveness.js';
import { ProtocolError, RemoteError } from '../util/errors.js';
import type { Clock } from '../util/clock.js';
import { encodeBody, encodeMessage, type MessageFields } from '../wire/codec.js';
import { DEFAULT_MAX_FRAME_SIZE } from '../wire/frame.js';
import { messageName } from '../wire/messages.js';
import { classifyFailure, failureCode, failureMessage, finalError, outcomeOf, toRemoteCallError } from './classify.js';
import { BadArgumentsError, NoLocalServerError, NoProvidersError, RpcTimeoutError, type AttemptFailure } from './errors.js';
import { MAX_CALL_BUDGET_MS, RPC_CALL, RPC_RESULT } from './messages.js';
import { resultCacheTtl, serviceName, validateProcedure } from './procedure.js';
import { RESULT_CACHE_DEFAULTS, ResultCache, type ResultCacheInit } from './result-cache.js';
import { selectProvider, type RoundRobinState } from './selection.js';
import { checkHeaders, type Headers } from '../wire/headers.js';
import { CALL_OUTCOMES, type CallOptions, type CallOutcome, type InvokeOptions, type LocalInvoker, type RpcRegistry, type RpcRequester, type Selection } from './types.js';
import { intOption, numberOption, oneOfOption } from '../util/options.js';

export const DEFAULT_CALL_TIMEOUT_MS = 5000;
export const DEFAULT_MAX_ATTEMPTS = 3;
export const DEFAULT_SELECTION: Selection = 'round-robin';
export const DEFAULT_MAX_TRACKED_PROCEDURES = 10_000;
export const DEFAULT_SUSPECT_MS = 10_000;
/** Room for the RPC_CALL envelope inside one frame. */
export const DEFAULT_MAX_ARGS_BYTES = DEFAULT_MAX_FRAME_SIZE - 1024;

export const RPC_CLIENT_DEFAULTS = Object.freeze({
  timeoutMs: DEFAULT_CALL_TIMEOUT_MS,
  selection: DEFAULT_SELECTION,
  maxAttempts: DEFAULT_MAX_ATTEMPTS,
  maxTrackedProcedures: DEFAULT_MAX_TRACKED_PROCEDURES,
  suspectMs: DEFAULT_SUSPECT_MS,
  maxArgsBytes: DEFAULT_MAX_ARGS_BYTES,
  resultCache: RESULT_CACHE_DEFAULTS,
});
const SELECTIONS: readonly Selection[] = ['round-robin', 'random', 'local-first'];

export interface RpcClientComponents {
  transport: RpcRequester;
  registry: RpcRegistry;
  /** This node's server: calls whose provider is this node run through it, without the network. */
  server?: LocalInvoker;
  /** Called once per call with its duration and outcome (for latency histograms). */
  observe?: (ms: number, outcome: CallOutcome) => void;
  /** Time source of the result cache TTLs (tests). Default: the cache's own monotonic clock. */
  clock?: Clock;
  /** Shared failure detection: down providers are tried last; unreachable ones are reported. */
  liveness?: LivenessView;
}

export interface RpcClientInit {
  /** Call timeout when call() is given none. Default 5000 ms. */
  timeoutMs?: number;
  /** Provider selection when call() is given none. Default 'round-robin'. */
  selection?: Selection;
  /** Most providers tried per call. Default 3. */
  maxAttempts?: number;
  /** Procedures whose round-robin position is remembered (LRU). Default 10 000. */
  maxTrackedProcedures?: number;
  /** How long a failed provider is tried only as a last resort; 0 turns this off. Default 10 000 ms. */
  suspectMs?: number;
  /** Largest arguments, CBOR-encoded. Default 1 MiB − 1 KiB. */
  maxArgsBytes?: number;
  /** Bounds of the cache of idempotent results. */
  resultCache?: ResultCacheInit;
}

export interface RpcClientStats {
  calls: Record<CallOutcome, number>;
  /** Attempts after the first one of a call. */
  failovers: number;
  inFlight: number;
  resultCacheHits: number;
  resultCacheMisses: number;
  resultCacheSize: number;
}

interface ProcState extends RoundRobinState {
  readonly service: string;
}

const GET_OPTIONS = {};

/** A result with the headers its handler set: what an attempt yields and the result cache keeps. */
interface CachedResult {
  result: unknown;
  headers: Headers | undefined;
}
const NOT_LOCAL = new NoLocalServerError();

export class RpcClient {
  readonly timeoutMs: number;
  readonly selection: Selection;
  readonly maxAttempts: number;
  readonly maxArgsBytes: number;
  readonly suspectMs: number;
  readonly #transport: RpcRequester;
  readonly #registry: RpcRegistry;
  readonly #server: LocalInvoker | undefined;
  readonly #observe: ((ms: number, outcome: CallOutcome) => void) | undefined;
  readonly #procs: LRUCache<string, ProcState>;
  readonly #suspects: LRUCache<string, true>;
  readonly #liveness: LivenessView | undefined;
  readonly #isSuspect = (nodeId: string): boolean => this.#suspects.has(nodeId) || this.#liveness?.isDown(nodeId) === true;
  readonly #results: ResultCache;
  /** Result-cache TTL per provider list; the registry hands out the same array until its answer changes. */
  readonly #ttls = new WeakMap<readonly Provider[], number>();
  readonly #calls = Object.fromEntries(CALL_OUTCOMES.map((o) => [o, 0])) as Record<CallOutcome, number>;
  #failovers = 0;
  #inFlight = 0;

  constructor(components: RpcClientComponents, init: RpcClientInit = {}) {
    this.#transport = components.transport;
    this.#registry = components.registry;
    this.#server = components.server;
    this.#observe = components.observe;
    this.#liveness = components.liveness;
    this.timeoutMs = checkTimeout(init.timeoutMs ?? DEFAULT_CALL_TIMEOUT_MS);
    this.selection = checkSelection(init.selection ?? DEFAULT_SELECTION);
    this.maxAttempts = init.maxAttempts ?? DEFAULT_MAX_ATTEMPTS;
    intOption('RPC option maxAttempts', this.maxAttempts, 1);
    this.maxArgsBytes = init.maxArgsBytes ?? DEFAULT_MAX_ARGS_BYTES;
    const tracked = init.maxTrackedProcedures ?? DEFAULT_MAX_TRACKED_PROCEDURES;
    intOption('RPC option maxTrackedProcedures', tracked, 1);
    this.#procs = new LRUCache({ max: tracked });
    this.suspectMs = init.suspectMs ?? DEFAULT_SUSPECT_MS;
    numberOption('RPC option suspectMs', this.suspectMs, 0);
    this.#suspects = new LRUCache({ max: tracked, ttl: this.suspectMs > 0 ? this.suspectMs : undefined });
    this.#results = new ResultCache({ clock: components.clock }, init.resultCache);
  }

  /**
   * Calls `procedure` on one of its providers and resolves with its result.
   * Rejects with BadArgumentsError, InvalidProcedureError, NoProvidersError,
   * RemoteCallError, NoSuchProcedureError, RpcTimeoutError,
   * RpcUnavailableError, TooManyInFlightError or RegistryLookupError.
   * Results served from the idempotent cache are shared: treat them as read-only.
   */
  async call<R = unknown>(procedure: string, args?: unknown, options?: CallOptions): Promise<R> {
    const started = performance.now();
    this.#inFlight++;
    let outcome: CallOutcome = 'ok';
    try {
      return (await this.#call(procedure, args, options)) as R;
    } catch (err) {
      outcome = outcomeOf(err);
      throw err;
    } finally {
      this.#inFlight--;
      this.#calls[outcome]++;
      if (this.#observe) {
        try {
          this.#observe(performance.now() - started, outcome);
        } catch {
          // a failing metrics hook must not fail the call
        }
      }
    }
  }

  stats(): RpcClientStats {
    return {
      calls: { ...this.#calls },
      failovers: this.#failovers,
      inFlight: this.#inFlight,
      resultCacheHits: this.#results.hits,
      resultCacheMisses: this.#results.misses,
      resultCacheSize: this.#results.size,
    };
  }

  /** Forgets cached results (all of them). */
  clearResultCache(): void {
    this.#results.clear();
  }

  async #call(procedure: string, args: unknown, options: CallOptions | undefined): Promise<unknown> {
    const timeoutMs = options?.timeoutMs === undefined ? this.timeoutMs : checkTimeout(options.timeoutMs);
    const headers = checkHeaders(options?.headers);
    const onHeaders = options?.onResultHeaders;
    const selection = options?.selection === undefined ? this.selection : checkSelection(options.selection);
    const state = this.#state(procedure);
    let encoded: Uint8Array;
    try {
      encoded = encodeBody(args);
    } catch (err) {
      throw new BadArgumentsError(procedure, `cannot be encoded as CBOR (${failureMessage(err)}); pass plain data: maps, arrays, strings, numbers, booleans, null, bytes`, { cause: err });
    }
    if (encoded.length > this.maxArgsBytes) {
      throw new BadArgumentsError(procedure, `are ${encoded.length} bytes encoded, at most ${this.maxArgsBytes} allowed; send less per call`);
    }
    const deadline = performance.now() + timeoutMs;
    const providers = this.#registry.lookupCached(state.service) ?? (await this.#lookup(state.service, procedure, timeoutMs));
    if (providers.length === 0) throw new NoProvidersError(procedure, this.#registry.realm);

    const ttl = this.#cacheTtl(providers);
    const key = ttl > 0 ? this.#results.key(procedure, encoded) : undefined;
    if (key !== undefined) {
      const hit = this.#results.get(key);
      if (hit !== undefined) {
        const cached = hit.value as CachedResult;
        if (cached.headers !== undefined) onHeaders?.(cached.headers);
        return cached.result;
      }
    }

    const attempts = Math.min(this.maxAttempts, providers.length);
    const failed: string[] = [];
    const failures: AttemptFailure[] = [];
    let lastError: unknown;
    for (let attempt = 0; attempt < attempts; attempt++) {
      const remaining = deadline - performance.now();
      if (remaining < 1) break;
      const provider = selectProvider(providers, selection, state, failed, this.#suspects.size > 0 || this.#liveness !== undefined ? this.#isSuspect : undefined);
      if (provider === undefined) break;
      const attemptMs = Math.max(1, Math.floor(remaining / (attempts - attempt)));
      if (attempt > 0) this.#failovers++;
      try {
        const out = await this.#attempt(provider, procedure, args, encoded, attemptMs, options?.origin, headers);
        if (key !== undefined) this.#results.set(key, out, ttl);
        if (out.headers !== undefined) onHeaders?.(out.headers);
        return out.result;
      } catch (err) {
        const kind = classifyFailure(err);
        if (kind === 'remote') throw toRemoteCallError(err, procedure, provider.nodeId);
        lastError = err;
        failed.push(provider.nodeId);
        failures.push({ nodeId: provider.nodeId, kind, code: failureCode(err), message: failureMessage(err) });
        // A busy provider is healthy, just loaded: neither suspect nor stale.
        if (kind !== 'busy' && this.suspectMs > 0) this.#suspects.set(provider.nodeId, true);
        // No answer at all (timeout, dial or connection failure): the node itself may be gone.
        if (!provider.local && (kind === 'timeout' || (kind === 'unavailable' && !(err instanceof RemoteError)))) {
          this.#liveness?.suspect(provider.nodeId, 'request_failed', provider.address);
        }
        // Only a provider that no longer serves the procedure proves the
        // registry view stale. An unreachable one is merely suspect: throwing
        // the cached list away would put a DHT lookup, slow while dead nodes
        // are still in routing tables, in front of the next call.
        if (kind === 'no_such_procedure') this.#registry.invalidate(state.service);
      }
    }
    throw finalError(procedure, timeoutMs, failures, performance.now() >= deadline, lastError);
  }

  /** `encodedArgs`: the arguments as encoded for their size check; every remote attempt sends those bytes. */
  async #attempt(provider: Provider, procedure: string, args: unknown, encodedArgs: Uint8Array, timeoutMs: number, origin: string | undefined, headers: Headers | undefined): Promise<CachedResult> {
    if (!provider.local) return this.#remote(provider, procedure, encodedArgs, timeoutMs, origin, headers);
    if (!this.#server) throw NOT_LOCAL;
    let resultHeaders: Headers | undefined;
    const options: InvokeOptions = { timeoutMs, ...(origin !== undefined && { origin }), ...(headers !== undefined && { headers }), onResultHeaders: (h) => (resultHeaders = h) };
    const result = await this.#server.invoke(procedure, args, options);
    return { result, headers: resultHeaders };
  }

  async #remote(provider: Provider, procedure: string, encodedArgs: Uint8Array, timeoutMs: number, origin: string | undefined, headers: Headers | undefined): Promise<CachedResult> {
    const fields: MessageFields = { t: RPC_CALL.type, p: procedure, d: timeoutMs };
    if (origin !== undefined) fields.o = fromHex(origin);
    if (headers !== undefined) fields.h = headers;
    const msg = encodeMessage(fields, { a: encodedArgs });
    const res = await this.#transport.request({ address: provider.address, nodeId: provider.nodeId }, msg, { timeoutMs });
    if (res.t !== RPC_RESULT.type) {
      throw new ProtocolError('unexpected_message', `${shortId(provider.nodeId)} answered RPC_CALL with ${messageName(res.t)}`);
    }
    return { result: res.r, headers: res.h as Headers | undefined };
  }

  /** Registry lookup bounded by the call's timeout (the single-flight lookup itself continues for other callers). */
  async #lookup(service: string, procedure: string, timeoutMs: number): Promise<readonly Provider[]> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new RpcTimeoutError(procedure, timeoutMs, [])), timeoutMs);
    });
    try {
      return await Promise.race([this.#registry.lookup(service), timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  #state(procedure: string): ProcState {
    let state = this.#procs.get(procedure, GET_OPTIONS);
    if (state === undefined) {
      validateProcedure(procedure);
      state = { service: serviceName(procedure), next: 0 };
      this.#procs.set(procedure, state);
    }
    return state;
  }

  #cacheTtl(providers: readonly Provider[]): number {
    let ttl = this.#ttls.get(providers);
    if (ttl === undefined) {
      ttl = resultCacheTtl(providers);
      this.#ttls.set(providers, ttl);
    }
    return ttl;
  }
}

function checkTimeout(ms: number): number {
  return numberOption('call timeout (ms)', ms, 0, { exclusiveMin: true, max: MAX_CALL_BUDGET_MS });
}

function checkSelection(s: Selection): Selection {
  return oneOfOption('selection', s, SELECTIONS);
}
