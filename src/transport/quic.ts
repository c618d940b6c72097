/**
 * QUIC transport over the quinn native binding (see quic-binding.ts).
 *
 * The remote node ID comes from the peer ID the binding derives from the
 * peer's TLS certificate after verifying it (peer-id.ts), never from bytes the
 * peer sends. Deadlines are enforced here because the binding ignores its
 * handshake timeout. Inbound connections and streams are accepted by internal
 * loops into bounded queues, so nothing is lost or rejected unhandled while no
 * consumer is waiting, and a flood is aborted and counted instead of queued.
 */
import { settleWithin } from '../util/time.js';
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { nodeIdFromPublicKey, toHex, type Identity } from '../identity/identity.js';
import { DialError, PeerIdMismatchError, TransportError } from '../util/errors.js';
import { AcceptQueue } from './accept-queue.js';
import { ADMISSION_DEFAULTS, ConnectionAdmission, type AdmissionOptions, type AdmissionRefusal } from './admission.js';
import { DEFAULT_GC_AFTER_CLOSED_CONNECTIONS, NativeMemoryReleaser } from './native-memory.js';
import { parseRemoteMultiaddr } from './peer-id.js';
import { QuicConnection, type QuicConnectionOwner } from './quic-connection.js';
import {
  ignoreResult,
  loadQuinnBinding,
  SOCKET_FAMILY_IPV4,
  SOCKET_FAMILY_IPV6,
  type QuinnBinding,
  type QuinnClient,
  type QuinnConfig,
  type QuinnConnection,
  type QuinnServer,
} from './quic-binding.js';
import {
  DEFAULT_HANDSHAKE_TIMEOUT_MS,
  DEFAULT_IDLE_TIMEOUT_MS,
  DEFAULT_KEEPALIVE_MS,
  DEFAULT_MAX_PENDING_CONNECTIONS,
  DEFAULT_MAX_STREAMS,
  formatAddress,
  type Connection,
  type DialOptions,
  type PeerAddress,
  type Transport,
  type TransportOptions,
  type TransportStats,
  emptyTransportStats,
} from './types.js';
import { intOption } from '../util/options.js';

export interface QuicTransportOptions extends TransportOptions, AdmissionOptions {
  /**
   * Per-stream receive window: bytes the peer may send on one stream that we
   * have not read yet. Default 2 MiB (a largest frame and then some).
   */
  maxStreamData?: number;
  /**
   * Per-connection receive window across all streams: the most unread bytes
   * quinn buffers for one connection. Default 4 MiB (= the per-connection
   * frame budget of the messenger).
   */
  maxConnectionData?: number;
  /** UDP socket send and receive buffer size (clamped by the OS maximum). Default 4 MiB. */
  socketBufferBytes?: number;
  /** Largest chunk one read() returns; a stream starts reading with 4 KiB and grows towards it while reads come back full. Default 256 KiB. */
  readChunkBytes?: number;
  /**
   * Inbound handshakes awaited at once. The binding completes each accepted
   * connection's handshake inside one inboundConnection() call, and a peer that
   * stalls its handshake holds that call until the idle timeout, so several
   * calls run side by side. Default 128.
   */
  maxHandshakes?: number;
  /** Closed connections after which a garbage collection releases their native memory (see native-memory.ts); 0 never. Default 128. */
  gcAfterClosedConnections?: number;
}

export interface QuicTransportStats extends TransportStats {
  /** Inbound handshakes awaited at once (maxHandshakes). */
  handshakeSlots: number;
  /** Inbound connections closed right after their handshake for exceeding an admission rate, by reason. */
  admissionRefusals: Record<AdmissionRefusal, number>;
  /** Garbage collections run to release the native memory of closed connections. */
  nativeCollections: number;
}

export const DEFAULT_MAX_STREAM_DATA = 2 * 1024 * 1024;
export const DEFAULT_MAX_CONNECTION_DATA = 4 * 1024 * 1024;
export const DEFAULT_MAX_HANDSHAKES = 128;
export const DEFAULT_SOCKET_BUFFER_BYTES = 4 * 1024 * 1024;
export const DEFAULT_READ_CHUNK_BYTES = 256 * 1024;

/** The QUIC transport's defaults, each defined once above or in types.ts / admission.ts (a node overrides two: see NODE_DEFAULTS). */
export const TRANSPORT_DEFAULTS = Object.freeze({
  handshakeTimeoutMs: DEFAULT_HANDSHAKE_TIMEOUT_MS,
  idleTimeoutMs: DEFAULT_IDLE_TIMEOUT_MS,
  keepAliveMs: DEFAULT_KEEPALIVE_MS,
  maxStreams: DEFAULT_MAX_STREAMS,
  maxPendingConnections: DEFAULT_MAX_PENDING_CONNECTIONS,
  maxStreamData: DEFAULT_MAX_STREAM_DATA,
  maxConnectionData: DEFAULT_MAX_CONNECTION_DATA,
  maxHandshakes: DEFAULT_MAX_HANDSHAKES,
  socketBufferBytes: DEFAULT_SOCKET_BUFFER_BYTES,
  readChunkBytes: DEFAULT_READ_CHUNK_BYTES,
  gcAfterClosedConnections: DEFAULT_GC_AFTER_CLOSED_CONNECTIONS,
  ...ADMISSION_DEFAULTS,
});

/** quinn pings continuously when given 0, so "no keep-alive" is an interval that never elapses in practice. */
const NO_KEEPALIVE_MS = 2 ** 31 - 1;
/** Server.abort() waits for connections to drain; a stuck peer must not hold close() for long. */
const SERVER_ABORT_CAP_MS = 2000;

type Family = 4 | 6;

export class QuicTransport implements Transport {
  readonly kind = 'quic';
  readonly localNodeId: Uint8Array;

  readonly #identity: Identity;
  readonly #handshakeTimeoutMs: number;
  readonly #idleTimeoutMs: number;
  readonly #keepAliveMs: number;
  readonly #maxStreams: number;
  readonly #maxStreamData: number;
  readonly #maxConnectionData: number;
  readonly #socketBufferBytes: number;
  readonly #owner: QuicConnectionOwner;
  readonly #incoming: AcceptQueue<QuicConnection>;
  readonly #connections = new Set<QuicConnection>();
  readonly #stats: Required<TransportStats>;
  readonly #maxHandshakes: number;
  readonly #admission: ConnectionAdmission;
  readonly #admissionRefusals: Record<AdmissionRefusal, number> = { connection_rate: 0, connection_rate_per_source: 0 };
  readonly #releaser: NativeMemoryReleaser;
  #config: QuinnConfig | undefined;
  #server: QuinnServer | undefined;
  #listenAddress: PeerAddress | undefined;
  readonly #clients: { 4?: QuinnClient; 6?: QuinnClient } = {};
  #closed = false;
  /**
   * The binding's pending promises do not keep Node's event loop alive (unlike
   * a net.Server or socket): this timer does, while the transport listens or
   * has connections, so a process awaiting a reply does not silently exit.
   */
  #loopRef: NodeJS.Timeout | undefined;

  constructor(components: { identity: Identity }, init: QuicTransportOptions = {}) {
    this.#identity = components.identity;
    this.localNodeId = components.identity.nodeId;
    const int = (name: string, value: number, min: number) => intOption(`transport option ${name}`, value, min);
    this.#handshakeTimeoutMs = int('handshakeTimeoutMs', init.handshakeTimeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS, 1);
    this.#idleTimeoutMs = int('idleTimeoutMs', init.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS, 1);
    this.#keepAliveMs = int('keepAliveMs', init.keepAliveMs ?? DEFAULT_KEEPALIVE_MS, 0);
    this.#maxStreams = int('maxStreams', init.maxStreams ?? DEFAULT_MAX_STREAMS, 1);
    this.#maxStreamData = int('maxStreamData', init.maxStreamData ?? DEFAULT_MAX_STREAM_DATA, 1);
    this.#maxConnectionData = int('maxConnectionData', init.maxConnectionData ?? DEFAULT_MAX_CONNECTION_DATA, 1);
    this.#socketBufferBytes = int('socketBufferBytes', init.socketBufferBytes ?? DEFAULT_SOCKET_BUFFER_BYTES, 1);
    this.#incoming = new AcceptQueue(int('maxPendingConnections', init.maxPendingConnections ?? DEFAULT_MAX_PENDING_CONNECTIONS, 1));
    this.#stats = emptyTransportStats();
    this.#maxHandshakes = int('maxHandshakes', init.maxHandshakes ?? DEFAULT_MAX_HANDSHAKES, 1);
    this.#admission = new ConnectionAdmission(init);
    this.#releaser = new NativeMemoryReleaser(int('gcAfterClosedConnections', init.gcAfterClosedConnections ?? DEFAULT_GC_AFTER_CLOSED_CONNECTIONS, 0));
    this.#owner = {
      stats: this.#stats,
      readChunkBytes: int('readChunkBytes', init.readChunkBytes ?? DEFAULT_READ_CHUNK_BYTES, 4096),
      // The peer cannot have more streams open than it was granted, so this bound only bites on misbehaviour.
      maxPendingStreams: this.#maxStreams,
      connectionClosed: (conn) => {
        if (this.#connections.delete(conn)) this.#stats.connectionsOpen--;
        this.#releaser.connectionClosed();
        this.#updateLoopRef();
      },
    };
  }

  get listenAddress(): PeerAddress | undefined {
    return this.#listenAddress && { ...this.#listenAddress };
  }

  async listen(address: PeerAddress): Promise<PeerAddress> {
    const where = formatAddress(address);
    if (this.#closed) throw new TransportError(`cannot listen on ${where}: the transport is closed`);
    if (this.#server) throw new TransportError(`cannot listen on ${where}: already listening on ${formatAddress(this.#listenAddress!)}`);
    const binding = await loadQuinnBinding();
    const config = this.#quinnConfig(binding);
    const { ip } = await resolveHost(address.host).catch((err: Error) => {
      throw new TransportError(`cannot listen on ${where}: ${err.message}`, { cause: err });
    });
    let server: QuinnServer;
    try {
      server = new binding.Server(config, ip, address.port);
    } catch (err) {
      throw new TransportError(
        `cannot listen on ${where}: ${(err as Error).message}; choose another port or stop the process that uses it`,
        { cause: err },
      );
    }
    if (this.#closed || this.#server) {
      ignoreResult(() => server.abort());
      throw new TransportError(`cannot listen on ${where}: the transport was closed or started listening meanwhile`);
    }
    this.#server = server;
    this.#listenAddress = { host: ip, port: server.port() };
    this.#updateLoopRef();
    for (let i = 0; i < this.#maxHandshakes; i++) void this.#acceptLoop(server);
    return { ...this.#listenAddress };
  }

  async dial(address: PeerAddress, options: DialOptions = {}): Promise<Connection> {
    const where = formatAddress(address);
    const timeoutMs = options.timeoutMs ?? this.#handshakeTimeoutMs;
    const attempt = { expired: false };
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        attempt.expired = true;
        reject(new DialError(where, `cannot reach a node at ${where}: timed out after ${timeoutMs} ms`));
      }, timeoutMs);
    });
    try {
      return await Promise.race([this.#dial(address, where, options, attempt), deadline]);
    } catch (err) {
      this.#stats.dialFailures++;
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }

  async #dial(address: PeerAddress, where: string, options: DialOptions, attempt: { expired: boolean }): Promise<Connection> {
    if (this.#closed) throw new DialError(where, `cannot dial ${where}: the transport is closed`);
    const binding = await loadQuinnBinding();
    const { ip, family } = await resolveHost(address.host).catch((err: Error) => {
      throw new DialError(where, `cannot reach a node at ${where}: ${err.message}`, { cause: err });
    });
    let raw: QuinnConnection;
    try {
      raw = await this.#client(binding, family).outboundConnection(ip, address.port);
    } catch (err) {
      throw new DialError(where, `cannot reach a node at ${where}: ${(err as Error).message}`, { cause: err });
    }
    if (attempt.expired || this.#closed) {
      ignoreResult(() => raw.abort());
      throw new DialError(where, `cannot dial ${where}: the dial was abandoned (deadline passed or transport closed)`);
    }
    let remote;
    try {
      remote = parseRemoteMultiaddr(raw.remoteMultiaddr());
    } catch (err) {
      ignoreResult(() => raw.abort());
      throw new DialError(where, `the node at ${where} has no usable identity: ${(err as Error).message}`, { cause: err });
    }
    const nodeId = nodeIdFromPublicKey(remote.publicKey);
    if (options.expectedNodeId !== undefined) {
      const expected = typeof options.expectedNodeId === 'string' ? options.expectedNodeId.toLowerCase() : toHex(options.expectedNodeId);
      const actual = toHex(nodeId);
      if (expected !== actual) {
        ignoreResult(() => raw.abort());
        throw new PeerIdMismatchError(where, expected, actual);
      }
    }
    const conn = this.#adopt(raw, remote, nodeId, 'outbound');
    this.#stats.connectionsDialed++;
    return conn;
  }

  acceptConnection(): Promise<Connection | null> {
    return this.#incoming.shift();
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const conn of this.#incoming.close()) conn.close();
    for (const conn of [...this.#connections]) conn.close();
    for (const client of [this.#clients[4], this.#clients[6]]) if (client) ignoreResult(() => client.abort());
    const server = this.#server;
    this.#server = undefined;
    this.#listenAddress = undefined;
    this.#updateLoopRef();
    if (server) await settleWithin(() => server.abort(), SERVER_ABORT_CAP_MS);
  }

  stats(): QuicTransportStats {
    return { ...this.#stats, handshakeSlots: this.#maxHandshakes, admissionRefusals: { ...this.#admissionRefusals }, nativeCollections: this.#releaser.collections };
  }

  /** One of maxHandshakes loops: each awaits one handshake at a time. */
  async #acceptLoop(server: QuinnServer): Promise<void> {
    while (!this.#closed) {
      let raw: QuinnConnection;
      try {
        raw = await server.inboundConnection();
      } catch (err) {
        // A failed inbound handshake is the peer's problem; only a closed endpoint ends the loop.
        if (this.#closed || /server closed/.test((err as Error)?.message ?? '')) return;
        continue;
      }
      if (this.#closed) {
        ignoreResult(() => raw.abort());
        return;
      }
      let conn: QuicConnection;
      try {
        const remote = parseRemoteMultiaddr(raw.remoteMultiaddr());
        const refusal = this.#admission.admit(remote.host);
        if (refusal !== undefined) {
          this.#admissionRefusals[refusal]++;
          this.#stats.connectionsRefused++;
          ignoreResult(() => raw.abort());
          this.#releaser.connectionClosed();
          continue;
        }
        conn = this.#adopt(raw, remote, nodeIdFromPublicKey(remote.publicKey), 'inbound');
      } catch {
        // No verifiable identity (or a connection already torn down): nothing to hand out.
        ignoreResult(() => raw.abort());
        continue;
      }
      if (!this.#incoming.push(conn)) {
        this.#stats.connectionsRefused++;
        conn.close();
        continue;
      }
      this.#stats.connectionsAccepted++;
    }
  }

  #adopt(raw: QuinnConnection, remote: PeerAddress, nodeId: Uint8Array, direction: 'inbound' | 'outbound'): QuicConnection {
    const conn = new QuicConnection(raw, { host: remote.host, port: remote.port }, nodeId, direction, this.#owner);
    if (!conn.isClosed) {
      this.#connections.add(conn);
      this.#stats.connectionsOpen++;
      this.#updateLoopRef();
    }
    return conn;
  }

  #updateLoopRef(): void {
    const needed = !this.#closed && (this.#server !== undefined || this.#connections.size > 0);
    if (needed && this.#loopRef === undefined) this.#loopRef = setInterval(noop, 2 ** 31 - 1);
    else if (!needed && this.#loopRef !== undefined) {
      clearInterval(this.#loopRef);
      this.#loopRef = undefined;
    }
  }

  #quinnConfig(binding: QuinnBinding): QuinnConfig {
    if (!this.#config) {
      const keepAlive = this.#keepAliveMs > 0 ? this.#keepAliveMs : NO_KEEPALIVE_MS;
      try {
        this.#config = new binding.QuinnConfig({
          privateKeyProto: this.#identity.libp2pPrivateKeyProto(),
          handshakeTimeout: this.#handshakeTimeoutMs,
          maxIdleTimeout: this.#idleTimeoutMs,
          keepAliveInterval: keepAlive,
          maxConcurrentStreamLimit: this.#maxStreams,
          maxStreamData: this.#maxStreamData,
          maxConnectionData: this.#maxConnectionData,
          receiveBufferSize: this.#socketBufferBytes,
          sendBufferSize: this.#socketBufferBytes,
        });
      } catch (err) {
        throw new TransportError(`cannot configure QUIC: ${(err as Error).message}`, { cause: err });
      }
    }
    return this.#config;
  }

  #client(binding: QuinnBinding, family: Family): QuinnClient {
    let client = this.#clients[family];
    if (!client) {
      try {
        client = new binding.Client(this.#quinnConfig(binding), family === 6 ? SOCKET_FAMILY_IPV6 : SOCKET_FAMILY_IPV4);
      } catch (err) {
        throw new TransportError(`cannot open a UDP socket for IPv${family} dials: ${(err as Error).message}`, { cause: err });
      }
      this.#clients[family] = client;
    }
    return client;
  }
}

/** IP literals pass through; names (localhost included) go through the system resolver. */
async function resolveHost(host: string): Promise<{ ip: string; family: Family }> {
  const bare = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
  const kind = isIP(bare);
  if (kind === 4 || kind === 6) return { ip: bare, family: kind };
  try {
    const found = await lookup(bare);
    return { ip: found.address, family: found.family === 6 ? 6 : 4 };
  } catch (err) {
    throw new Error(`cannot resolve the host name "${host}" (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`, { cause: err });
  }
}

function noop(): void {}
