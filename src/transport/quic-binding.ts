import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { ConfigError, TransportError } from '../util/errors.js';

/**
 * The quinn (Rust QUIC) napi binding of `@chainsafe/libp2p-quic`, from its
 * per-platform packages (version pinned in package.json: the binding is not
 * a public API, so any upgrade must re-check the shapes below). The binding
 * ships no types; these interfaces cover what the QUIC transport uses.
 *
 * Behaviour worth knowing (observed with 1.1.8; the transport suite passes
 * unchanged on 2.1.1):
 * - every failure is an Error with code 'Unknown' and a quinn message
 *   ('timed out', 'connection lost', 'closed', 'closed by peer: 0',
 *   'stream reset by peer: error 0', 'sending stopped by peer: error 0');
 * - `handshakeTimeout` is accepted but ignored: a dial to a dead address fails
 *   only after the idle timeout (at least ~3 s), so callers enforce deadlines;
 * - `keepAliveInterval: 0` makes quinn ping continuously, so a connection
 *   never idles out: "no keep-alive" must be a very long interval instead;
 * - `stopRead()` does not wake a pending `read()`; it settles only when the
 *   connection goes away;
 * - `finishWrite()`, `resetWrite()`, `stopRead()` and `Server.abort()` return
 *   promises that can reject: they must always be caught.
 */

export interface QuinnConfigInit {
  /** libp2p protobuf PrivateKey (Ed25519): the TLS certificate is made from it. */
  privateKeyProto: Uint8Array;
  handshakeTimeout: number;
  maxIdleTimeout: number;
  keepAliveInterval: number;
  maxConcurrentStreamLimit: number;
  maxStreamData: number;
  maxConnectionData: number;
  receiveBufferSize: number;
  sendBufferSize: number;
}

export type QuinnConfig = object;

export interface QuinnStream {
  /** Index of the stream among those opened in its direction (as decimal text). */
  id(): string;
  /** The next chunk (at most maxBytes), or null once the peer finished writing. */
  read(maxBytes: number): Promise<Uint8Array | null>;
  write(data: Uint8Array): Promise<void>;
  finishWrite(): Promise<void> | void;
  resetWrite(): Promise<void> | void;
  stopRead(): Promise<void> | void;
}

export interface QuinnConnection {
  id(): string;
  /** `/ip4/<ip>/udp/<port>/quic-v1/p2p/<peer id>`, the peer ID from the verified certificate. */
  remoteMultiaddr(): string;
  /** Smoothed round-trip time in whole ms. */
  rtt(): number;
  stats(): Record<string, number>;
  outboundStream(): Promise<QuinnStream>;
  inboundStream(): Promise<QuinnStream>;
  /** Settles once the connection is closed for any reason. */
  closed(): Promise<void>;
  abort(): void;
}

export interface QuinnServer {
  port(): number;
  inboundConnection(): Promise<QuinnConnection>;
  abort(): Promise<void> | void;
  stats(): Record<string, number>;
}

export interface QuinnClient {
  outboundConnection(ip: string, port: number): Promise<QuinnConnection>;
  abort(): Promise<void> | void;
}

export const SOCKET_FAMILY_IPV4 = 0;
export const SOCKET_FAMILY_IPV6 = 1;

export interface QuinnBinding {
  QuinnConfig: new (init: QuinnConfigInit) => QuinnConfig;
  Server: new (config: QuinnConfig, ip: string, port: number) => QuinnServer;
  Client: new (config: QuinnConfig, family: number) => QuinnClient;
}

/**
 * The per-platform packages of the binding that the registry serves, all at
 * the pinned version (see package.json optionalDependencies). They are
 * loaded directly rather than through `@chainsafe/libp2p-quic`, whose
 * optional dependencies name platform builds the registry does not serve,
 * which makes `npm ci` refuse the lock file.
 */
const PLATFORM_PACKAGES: Record<string, string> = {
  'linux-x64-gnu': '@chainsafe/libp2p-quic-linux-x64-gnu',
  'linux-x64-musl': '@chainsafe/libp2p-quic-linux-x64-musl',
};

/**
 * The builds to try on this platform, in order. On Linux the C library is
 * not asked for (`process.report` takes milliseconds, a noticeable part of a
 * short command's start): npm installs only the build whose libc matches, and
 * one linked against the other C library fails to load.
 */
function candidates(): string[] {
  if (process.platform !== 'linux') return [`${process.platform}-${process.arch}`];
  return [`linux-${process.arch}-gnu`, `linux-${process.arch}-musl`];
}

/** The environment variable tokio reads for the size of the binding's runtime (its worker threads). */
export const QUIC_THREADS_ENV = 'TOKIO_WORKER_THREADS';

/**
 * Worker threads of the binding's tokio runtime unless TOKIO_WORKER_THREADS
 * says otherwise: one fewer than the cores, at least one. Tokio's own
 * default is one per core, which with the JS thread (busy on the same
 * traffic) puts more busy threads than cores on the machine: on two cores,
 * calls one at a time went from 0.78–0.99× NATS with two workers to
 * 0.99–1.26× with one (ARCHITECTURE.md, Transport).
 */
export function quicWorkerThreads(cores: number): number {
  return Math.max(1, cores - 1);
}

/** The most worker threads TOKIO_WORKER_THREADS may ask for. */
export const MAX_QUIC_THREADS = 1024;

/**
 * The worker threads the binding's runtime gets: TOKIO_WORKER_THREADS when
 * it is set (and not empty), else `quicWorkerThreads(cores)`. Checked here
 * because tokio aborts the whole process, with a Rust panic and no message
 * of ours, on a value it cannot use (`0`, `abc`, `-1`).
 * @throws ConfigError for a value other than a whole number 1..MAX_QUIC_THREADS
 */
export function quicThreadsSetting(value: string | undefined, cores: number): number {
  if (value === undefined || value === '') return quicWorkerThreads(cores);
  if (!/^[1-9][0-9]*$/.test(value) || Number(value) > MAX_QUIC_THREADS) {
    throw new ConfigError(
      `${QUIC_THREADS_ENV} must be a whole number of QUIC worker threads from 1 to ${MAX_QUIC_THREADS}, got ${JSON.stringify(value.slice(0, 32))}; ` +
        `unset it for the default (one fewer than the cores, here ${quicWorkerThreads(cores)})`,
    );
  }
  return Number(value);
}

let loading: Promise<QuinnBinding> | undefined;

export function loadQuinnBinding(): Promise<QuinnBinding> {
  loading ??= (async () => {
    // The binding builds its runtime as it loads, from the environment then: a value the user set is checked and kept, one set
    // here is taken away again once loaded, so that it does not pass on to child processes.
    const set = process.env[QUIC_THREADS_ENV];
    process.env[QUIC_THREADS_ENV] = String(quicThreadsSetting(set, availableParallelism()));
    try {
      return requireBinding();
    } finally {
      if (set === undefined) delete process.env[QUIC_THREADS_ENV];
      else process.env[QUIC_THREADS_ENV] = set;
    }
  })();
  loading.catch(() => {
    loading = undefined;
  });
  return loading;
}

/** The first build of the binding that loads on this platform. */
function requireBinding(): QuinnBinding {
  const keys = candidates();
  const failures: string[] = [];
  for (const key of keys) {
    const pkg = PLATFORM_PACKAGES[key];
    if (!pkg) continue;
    let mod: Partial<QuinnBinding>;
    try {
      mod = createRequire(import.meta.url)(pkg) as Partial<QuinnBinding>;
    } catch (err) {
      failures.push(`${pkg}: ${(err as Error).message}`);
      continue;
    }
    if (typeof mod.QuinnConfig !== 'function' || typeof mod.Server !== 'function' || typeof mod.Client !== 'function') {
      throw new TransportError(`the QUIC binding ${pkg} has an unexpected shape; reinstall the pinned version`);
    }
    return mod as QuinnBinding;
  }
  if (failures.length === 0) {
    throw new TransportError(`no QUIC binding for ${keys.join(' or ')}; supported platforms: ${Object.keys(PLATFORM_PACKAGES).join(', ')}`);
  }
  throw new TransportError(`cannot load the QUIC binding (${failures.join('; ')}); run npm install again`);
}

export function ignoreResult(fn: () => Promise<unknown> | unknown): void {
  try {
    const r = fn();
    if (r && typeof (r as Promise<unknown>).then === 'function') (r as Promise<unknown>).then(undefined, noop);
  } catch {
    // The object is already closed: nothing left to release.
  }
}

function noop(): void {}
