/**
 * The narrow contracts RPC is written against: the Messenger satisfies
 * RpcTransport structurally, the ServiceRegistry satisfies RpcRegistry and
 * RpcAdvertiser. Unit tests pass small fakes.
 */
import type { Provider } from '../registry/types.js';
import type { PeerAddress } from '../transport/types.js';
import type { OutboundMessage } from '../wire/framed-stream.js';
import type { Headers } from '../wire/headers.js';
import type { HandlerRegistry, Message } from '../wire/messages.js';

export interface RpcTarget {
  address: PeerAddress;
  /** Hex node ID the connection must be authenticated as. */
  nodeId: string;
}

/** Sends a request; ERROR responses reject with RemoteError (src/util/errors.ts, raised by src/session/peer-session.ts). */
export interface RpcRequester {
  request(target: RpcTarget, msg: OutboundMessage, options: { timeoutMs?: number }): Promise<Message>;
}

/** The peer a request came from, as the messenger describes it. */
export interface RpcPeer {
  readonly nodeIdHex: string;
  readonly address: PeerAddress;
}

/** Registers the handler of a request type; returning undefined sends no reply. */
export type RpcHandlerHost = HandlerRegistry<RpcPeer, Promise<OutboundMessage | undefined> | OutboundMessage | undefined>;

export type RpcTransport = RpcRequester & RpcHandlerHost;

/** What the client needs from the registry. */
export interface RpcRegistry {
  readonly realm: string;
  lookup(name: string): Promise<readonly Provider[]>;
  lookupCached(name: string): readonly Provider[] | undefined;
  invalidate(name: string): void;
}

/** What the server needs from the registry. */
export interface RpcAdvertiser {
  advertise(name: string, metadata: Record<string, unknown>, options: { ttlMs?: number }): Promise<void>;
  unadvertise(name: string): Promise<unknown>;
}

export interface RpcCaller {
  /** Hex node ID (from the verified connection). */
  readonly nodeId: string;
  readonly address: PeerAddress;
}

/** Passed to every handler invocation. */
export interface RpcContext {
  readonly procedure: string;
  /** The calling node; undefined for a call made by this node itself. */
  readonly caller: RpcCaller | undefined;
  /** How long the handler has before the call fails with a timeout. */
  readonly timeoutMs: number;
  /**
   * Node ID (hex) of the light client the calling node called for, as that
   * node authenticated it; undefined when a node called for itself.
   */
  readonly origin: string | undefined;
  /** Aborted when the call times out (on this side or the caller's): stop working then. */
  readonly signal: AbortSignal;
  /** The caller's headers, unchanged; undefined when it sent none. */
  readonly headers: Headers | undefined;
  /** Headers to send with the result: set entries here (bounds of wire/headers.ts; past them the call fails with MACULA_ERR_INVALID_HEADERS). */
  readonly resultHeaders: Headers;
}

// `any` so that handlers may declare the argument type they expect; arguments are untrusted input all the same.
export type RpcHandler<A = any, R = unknown> = (args: A, ctx: RpcContext) => R | Promise<R>;

export interface RegisterOptions {
  /** Same arguments, same result, no side effects that matter: callers may cache results. Default false. */
  idempotent?: boolean;
  /** How long callers may reuse a result (needs `idempotent`). Default 0: no caching. */
  cacheTtlMs?: number;
  /** Per-call handler timeout. Default: the server's handlerTimeoutMs (30 000 ms). */
  timeoutMs?: number;
  /** Registration TTL in the registry. Default: the registry's (300 000 ms). */
  ttlMs?: number;
  /** Extra registration metadata (a small CBOR map) shown to callers. */
  metadata?: Record<string, unknown>;
}

export type Selection = 'round-robin' | 'random' | 'local-first';

export interface CallOptions {
  /** Overall deadline of the call, all attempts included. Default: the client's timeoutMs (5000 ms). */
  timeoutMs?: number;
  /** Provider selection. Default: the client's selection ('round-robin'). */
  selection?: Selection;
  /** Node ID (hex) of the light client this node calls for (the gateway sets it); the handler sees it as `ctx.origin`. */
  origin?: string;
  /** Sent with the call; the handler sees them as `ctx.headers`. */
  headers?: Headers;
  /** Called with the headers the handler set on its result, when it set any (a cached result keeps them too). */
  onResultHeaders?: (headers: Headers) => void;
}

/** What a local invocation needs beyond the arguments. */
export interface InvokeOptions {
  timeoutMs: number;
  origin?: string;
  headers?: Headers;
  onResultHeaders?: (headers: Headers) => void;
}

export type CallOutcome = 'ok' | 'remote_error' | 'timeout' | 'no_providers' | 'unavailable' | 'busy' | 'bad_args';

export const CALL_OUTCOMES: readonly CallOutcome[] = ['ok', 'remote_error', 'timeout', 'no_providers', 'unavailable', 'busy', 'bad_args'];

/** Runs a procedure of this node without the network (the RpcServer). */
export interface LocalInvoker {
  invoke(procedure: string, args: unknown, options: InvokeOptions): Promise<unknown>;
}
