/**
 * An in-process transport: nodes of one MemoryNetwork reach each other by
 * port on the single host "memory", so thousands of nodes can run in one
 * process for simulations and large tests. It passes the same compliance
 * suite as QUIC; see memory-connection.ts for the stream semantics.
 *
 * The remote node ID of a connection is the identity the other transport was
 * constructed with: inside one process that is as authenticated as it gets.
 */
import type { Identity } from '../identity/identity.js';
import { toHex } from '../identity/identity.js';
import { DialError, PeerIdMismatchError, TransportError } from '../util/errors.js';
import { AcceptQueue } from './accept-queue.js';
import { MemoryConnection, type MemoryConnectionOwner } from './memory-connection.js';
import {
  DEFAULT_IDLE_TIMEOUT_MS,
  DEFAULT_KEEPALIVE_MS,
  DEFAULT_MAX_PENDING_CONNECTIONS,
  DEFAULT_MAX_STREAMS,
  type Connection,
  type DialOptions,
  type PeerAddress,
  type Transport,
  type TransportOptions,
  type TransportStats,
  emptyTransportStats,
} from './types.js';
import { intOption } from '../util/options.js';

export const MEMORY_HOST = 'memory';
const MAX_PORT = 65535;

export interface MemoryTransportOptions extends TransportOptions {
  /** Bytes a stream holds for a reader that falls behind before the writer's write() waits. Default 1 MiB. */
  streamBufferBytes?: number;
}

export const DEFAULT_STREAM_BUFFER_BYTES = 1024 * 1024;

/** The registry of listening memory transports, keyed by port. */
export class MemoryNetwork {
  readonly #listeners = new Map<number, MemoryTransport>();
  /** Listen ports and the source ports dialers show to the nodes they reach. */
  readonly #taken = new Set<number>();
  #nextPort = 1;

  /** Number of nodes listening. */
  get size(): number {
    return this.#listeners.size;
  }

  /** The node listening on `port`, if any. */
  listener(port: number): MemoryTransport | undefined {
    return this.#listeners.get(port);
  }

  /** Drops the node on `port` abruptly: it stops listening and every connection it has closes on both ends. */
  kill(port: number): boolean {
    const node = this.#listeners.get(port);
    if (!node) return false;
    void node.close();
    return true;
  }

  /** Registers a listener; port 0 picks the next free port. Used by MemoryTransport.listen(). */
  bind(transport: MemoryTransport, port: number): number {
    if (port === 0) port = this.takePort();
    else if (this.#taken.has(port)) throw new TransportError(`cannot listen on ${MEMORY_HOST}:${port}: the port is in use; choose another port or 0`);
    else this.#taken.add(port);
    this.#listeners.set(port, transport);
    return port;
  }

  unbind(port: number): void {
    this.#listeners.delete(port);
    this.#taken.delete(port);
  }

  /** Reserves a free port, counting up from 1 and wrapping around. */
  takePort(): number {
    for (let tries = 0; tries < MAX_PORT; tries++) {
      const port = this.#nextPort;
      this.#nextPort = port >= MAX_PORT ? 1 : port + 1;
      if (!this.#taken.has(port)) {
        this.#taken.add(port);
        return port;
      }
    }
    throw new TransportError(`the memory network has no free port left (${MAX_PORT} in use); close some nodes`);
  }

  freePort(port: number): void {
    if (!this.#listeners.has(port)) this.#taken.delete(port);
  }
}

export class MemoryTransport implements Transport {
  readonly kind = 'memory';
  readonly localNodeId: Uint8Array;

  readonly #identity: Identity;
  readonly #network: MemoryNetwork;
  readonly #idleTimeoutMs: number;
  readonly #keepAliveMs: number;
  readonly #owner: MemoryConnectionOwner;
  readonly #incoming: AcceptQueue<MemoryConnection>;
  readonly #connections = new Set<MemoryConnection>();
  readonly #stats: Required<TransportStats>;
  #listenPort: number | undefined;
  /** Like a QUIC client socket: the port inbound peers see this node dial from (nothing listens on it). */
  #sourcePort: number | undefined;
  #closed = false;

  constructor(components: { identity: Identity; network: MemoryNetwork }, init: MemoryTransportOptions = {}) {
    this.#identity = components.identity;
    this.#network = components.network;
    this.localNodeId = components.identity.nodeId;
    const int = (name: string, value: number, min: number) => intOption(`transport option ${name}`, value, min);
    this.#idleTimeoutMs = int('idleTimeoutMs', init.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS, 1);
    this.#keepAliveMs = int('keepAliveMs', init.keepAliveMs ?? DEFAULT_KEEPALIVE_MS, 0);
    this.#incoming = new AcceptQueue(int('maxPendingConnections', init.maxPendingConnections ?? DEFAULT_MAX_PENDING_CONNECTIONS, 1));
    this.#stats = emptyTransportStats();
    this.#owner = {
      stats: this.#stats,
      maxStreams: int('maxStreams', init.maxStreams ?? DEFAULT_MAX_STREAMS, 1),
      streamBufferBytes: int('streamBufferBytes', init.streamBufferBytes ?? DEFAULT_STREAM_BUFFER_BYTES, 1),
      connectionClosed: (conn) => {
        if (this.#connections.delete(conn)) this.#stats.connectionsOpen--;
      },
    };
  }

  get listenAddress(): PeerAddress | undefined {
    return this.#listenPort === undefined ? undefined : { host: MEMORY_HOST, port: this.#listenPort };
  }

  /** The host part is ignored: the memory network has one host. */
  async listen(address: PeerAddress): Promise<PeerAddress> {
    if (this.#closed) throw new TransportError(`cannot listen on ${MEMORY_HOST}:${address.port}: the transport is closed`);
    if (this.#listenPort !== undefined) {
      throw new TransportError(`cannot listen on ${MEMORY_HOST}:${address.port}: already listening on ${MEMORY_HOST}:${this.#listenPort}`);
    }
    this.#listenPort = this.#network.bind(this, address.port);
    return { host: MEMORY_HOST, port: this.#listenPort };
  }

  /** The host part is ignored: the memory network has one host. Fails at once when nothing listens. */
  async dial(address: PeerAddress, options: DialOptions = {}): Promise<Connection> {
    try {
      return this.#dial(address, options);
    } catch (err) {
      this.#stats.dialFailures++;
      throw err;
    }
  }

  #dial(address: PeerAddress, options: DialOptions): Connection {
    const where = `${MEMORY_HOST}:${address.port}`;
    if (this.#closed) throw new DialError(where, `cannot dial ${where}: the transport is closed`);
    const target = this.#network.listener(address.port);
    if (!target || target.#closed) throw new DialError(where, `cannot reach a node at ${where}: nothing listens there`);
    const remoteHex = target.#identity.nodeIdHex;
    if (options.expectedNodeId !== undefined) {
      const expected = typeof options.expectedNodeId === 'string' ? options.expectedNodeId.toLowerCase() : toHex(options.expectedNodeId);
      if (expected !== remoteHex) throw new PeerIdMismatchError(where, expected, remoteHex);
    }
    this.#sourcePort ??= this.#network.takePort();
    const local = new MemoryConnection(this.#owner, target.localNodeId, remoteHex, { host: MEMORY_HOST, port: address.port }, 'outbound');
    const remote = new MemoryConnection(
      target.#owner,
      this.localNodeId,
      this.#identity.nodeIdHex,
      { host: MEMORY_HOST, port: this.#sourcePort },
      'inbound',
    );
    MemoryConnection.pair(local, remote, this.#idleMsWith(target));
    this.#adopt(local);
    target.#adopt(remote);
    if (!target.#incoming.push(remote)) {
      target.#stats.connectionsRefused++;
      local.close();
      throw new DialError(where, `the node at ${where} refused the connection: too many connections wait to be accepted there; retry later`);
    }
    target.#stats.connectionsAccepted++;
    this.#stats.connectionsDialed++;
    return local;
  }

  acceptConnection(): Promise<Connection | null> {
    return this.#incoming.shift();
  }

  /** Synchronous in effect (MemoryNetwork.kill relies on it): everything is closed before this returns. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#listenPort !== undefined) this.#network.unbind(this.#listenPort);
    this.#listenPort = undefined;
    if (this.#sourcePort !== undefined) this.#network.freePort(this.#sourcePort);
    for (const conn of this.#incoming.close()) conn.close();
    for (const conn of [...this.#connections]) conn.close();
  }

  stats(): TransportStats {
    return { ...this.#stats };
  }

  #adopt(conn: MemoryConnection): void {
    this.#connections.add(conn);
    this.#stats.connectionsOpen++;
  }

  /** As in QUIC: the smaller idle timeout applies (0 = none), and a keep-alive from either side shorter than it prevents idling out. */
  #idleMsWith(peer: MemoryTransport): number {
    const set = [this.#idleTimeoutMs, peer.#idleTimeoutMs].filter((ms) => ms > 0);
    if (set.length === 0) return 0;
    const idle = Math.min(...set);
    const keepsAlive = (ms: number): boolean => ms > 0 && ms < idle;
    return keepsAlive(this.#keepAliveMs) || keepsAlive(peer.#keepAliveMs) ? 0 : idle;
  }
}
