/**
 * The transport contract every layer above depends on. Two implementations:
 * QUIC over UDP (quic.ts) and an in-process memory transport (memory.ts) for
 * simulations and large tests. Both pass the same compliance suite
 * (test/unit/transport-compliance.test.ts).
 *
 * The remote node ID of a connection always comes from the transport's own
 * authentication (the TLS handshake for QUIC), never from bytes the peer sends.
 */

export interface PeerAddress {
  host: string;
  port: number;
}

/** One bidirectional byte stream inside a connection. */
export interface Stream {
  readonly id: number;
  /** The next chunk received, or null once the peer finished writing (or the stream was reset). */
  read(): Promise<Uint8Array | null>;
  /** Resolves when the bytes are handed to the transport (flow control may delay it). */
  write(data: Uint8Array): Promise<void>;
  /** Half-close: no more writes from this side; the peer's read() returns null after the data. */
  finishWrite(): Promise<void>;
  /** Abort both directions at once; pending and later reads return null, writes reject. */
  reset(): void;
}

export type Direction = 'inbound' | 'outbound';

export interface Connection {
  /** 32-byte node ID of the peer, from the verified handshake. */
  readonly remoteNodeId: Uint8Array;
  readonly remoteNodeIdHex: string;
  /** The address the connection comes from (for inbound: the peer's source address, not its listen port). */
  readonly remoteAddress: PeerAddress;
  readonly direction: Direction;
  /**
   * Set by transports that only carry light clients (a browser's web
   * session): the session layer refuses a HELLO as a mesh node on it.
   */
  readonly clientOnly?: boolean;
  readonly isClosed: boolean;
  /** Resolves (never rejects) once the connection is closed for any reason. */
  readonly closed: Promise<void>;
  /** Opens a stream; the peer's acceptStream() sees it only once this side writes or finishes on it. */
  openStream(): Promise<Stream>;
  /** The next stream the peer opened, or null once the connection is closed. */
  acceptStream(): Promise<Stream | null>;
  /** Round-trip time estimate in ms (0 when unknown). */
  rttMs(): number;
  /** True for a connection through a relay (src/relay/): the pool prefers a direct one. */
  readonly relayed?: boolean;
  close(): void;
}

export interface DialOptions {
  /** Fail with PeerIdMismatchError if the node at the address has another ID (hex or bytes). */
  expectedNodeId?: Uint8Array | string;
  /** Overall dial deadline (defaults to the transport's handshake timeout). */
  timeoutMs?: number;
}

export interface TransportStats {
  connectionsOpen: number;
  connectionsDialed: number;
  connectionsAccepted: number;
  dialFailures: number;
  streamsOpened: number;
  streamsAccepted: number;
  /** Inbound connections aborted because too many were waiting in acceptConnection()'s queue (QUIC: or over an admission rate). */
  connectionsRefused?: number;
  /** Inbound streams reset because too many were waiting in acceptStream()'s queue. */
  streamsRefused?: number;
}

/** All counters at zero (both transports start from it). */
export function emptyTransportStats(): Required<TransportStats> {
  return {
    connectionsOpen: 0,
    connectionsDialed: 0,
    connectionsAccepted: 0,
    dialFailures: 0,
    streamsOpened: 0,
    streamsAccepted: 0,
    connectionsRefused: 0,
    streamsRefused: 0,
  };
}

export interface Transport {
  /** Which implementation: 'quic' or 'memory'. */
  readonly kind: string;
  readonly localNodeId: Uint8Array;
  /** Starts listening; port 0 picks a free port. Resolves to the bound address. */
  listen(address: PeerAddress): Promise<PeerAddress>;
  /** The bound address once listening, else undefined. */
  readonly listenAddress: PeerAddress | undefined;
  dial(address: PeerAddress, options?: DialOptions): Promise<Connection>;
  /** The next inbound connection, or null once the transport is closed. */
  acceptConnection(): Promise<Connection | null>;
  /** Closes the listener and every connection. */
  close(): Promise<void>;
  stats(): TransportStats;
}

export interface TransportOptions {
  /** Dial/handshake deadline. Default 5000 ms. */
  handshakeTimeoutMs?: number;
  /** A connection with no traffic for this long is closed by the transport. Default 30000 ms. */
  idleTimeoutMs?: number;
  /** Keep-alive ping interval; 0 disables keep-alives. Default 10000 ms (less than idleTimeoutMs). */
  keepAliveMs?: number;
  /**
   * Max concurrent streams the peer may open on one connection. Default 64:
   * the protocol uses one request stream per direction, every open stream
   * costs a pending read, and quinn keeps state for every stream allowed
   * (4096 cost ~350 KB of native memory per connection, measured).
   */
  maxStreams?: number;
  /** Inbound connections kept waiting for acceptConnection(); the excess is aborted and counted. Default 256. */
  maxPendingConnections?: number;
}

/** Where a node listens unless told otherwise (UDP). */
export const DEFAULT_PORT = 9443;
export const DEFAULT_HOST = '0.0.0.0';
export const DEFAULT_HANDSHAKE_TIMEOUT_MS = 5000;
export const DEFAULT_IDLE_TIMEOUT_MS = 30_000;
export const DEFAULT_KEEPALIVE_MS = 10_000;
export const DEFAULT_MAX_STREAMS = 64;
export const DEFAULT_MAX_PENDING_CONNECTIONS = 256;

/** A relayed address's host (src/transport/relayed-address.ts) names its relays and their ports: it is written alone. */
const RELAYED = 'relay~';

export function formatAddress(a: PeerAddress): string {
  if (a.host.startsWith(RELAYED)) return a.host;
  return a.host.includes(':') ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`;
}

/** Parses `host:port` or `[v6]:port`; `defaultPort` is used when no port is given. */
export function parseAddress(text: string, defaultPort?: number): PeerAddress {
  const s = text.trim();
  if (s.startsWith(RELAYED)) {
    // The port of a relayed address is its first relay's.
    const first = s.slice(RELAYED.length).split('~')[0] ?? '';
    return { host: s, port: parseAddress(first).port };
  }
  let host: string;
  let portText: string | undefined;
  const v6 = /^\[([^\]]+)\](?::(\d+))?$/.exec(s);
  if (v6) {
    host = v6[1]!;
    portText = v6[2];
  } else {
    const i = s.lastIndexOf(':');
    if (i >= 0 && s.indexOf(':') === i) {
      host = s.slice(0, i);
      portText = s.slice(i + 1);
    } else {
      host = s;
    }
  }
  const port = portText === undefined || portText === '' ? defaultPort : Number(portText);
  if (!host || port === undefined || !Number.isInteger(port) || port < 0 || port > 65535) {
    throw new TypeError(`invalid address "${text}": expected host:port, e.g. 127.0.0.1:9443`);
  }
  if (host === 'localhost') host = '127.0.0.1';
  return { host, port };
}
