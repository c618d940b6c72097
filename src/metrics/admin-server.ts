/**
 * The admin HTTP server: /metrics, /health, /ready, /live, /stats.
 *
 * Bound to 127.0.0.1 by default: it has no authentication and /stats
 * reveals the node's peers and load, so exposing it on another interface
 * must be a deliberate `host` choice (behind a firewall or a proxy).
 *
 * Status codes, for load balancers and orchestrators:
 * - /health: 200 when ok or degraded (the node works; the body says what
 *   is wrong), 503 when a check fails;
 * - /ready: 200 once the node has joined the mesh, else 503;
 * - /live: 200 whenever the process answers at all;
 * - unknown path 404, a method other than GET or HEAD 405 (HEAD answers
 *   like GET without a body, as HTTP requires of every server).
 *
 * Bounded: request bodies are never read (a request announcing one gets
 * its answer and the connection closed), header size, header and request
 * time, keep-alive idle time and the number of sockets are all capped.
 *
 * Slow clients cannot starve it (slowloris): the header and request
 * timeouts are checked every `timeoutCheckMs`, not Node's default 30 s, and
 * a socket that arrives when every slot is taken (in all, or for its source
 * address) takes the place of the oldest socket that is not in the middle
 * of a request: one still sending its headers, or idle between requests.
 * A prober sends its request at once, so it always gets a slot and an
 * answer, however many sockets trickle headers. Only when every slot holds
 * a request being answered is the newcomer refused. Each of these is
 * counted by reason (connectionStats()).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { ConfigError } from '../util/errors.js';
import { HealthMonitor, type HealthMonitorInit } from './health.js';
import type { Sample } from './metrics.js';
import type { NodeInstrumentation } from './node-metrics.js';
import type { StatsMetric } from './metrics.js';
import type { NodeSnapshot, ObservedNode } from './node-sources.js';
import { intOption } from '../util/options.js';

/** What /metrics serves: the prom-client adapter, or anything else producing the text format. */
export interface MetricsExposition {
  readonly contentType: string;
  metricsText(): Promise<string>;
}

export interface AdminServerComponents {
  /** The node; /stats answers with its snapshot() and what only the admin server knows. */
  node: ObservedNode;
  /** Served at /metrics; without it /metrics answers 404. */
  metrics?: MetricsExposition;
  /** Adds its protocol-error counts to /stats. */
  instrumentation?: Pick<NodeInstrumentation, 'protocolErrors'>;
}

export interface AdminServerInit extends HealthMonitorInit {
  /** Address to bind. Default 127.0.0.1 (loopback only). */
  host?: string;
  /** TCP port; 0 picks a free one (read it from `address` after listen()). Default 0. */
  port?: number;
  /** Most sockets open at once (see the module comment for who gets a slot). Default 64. */
  maxConnections?: number;
  /** Most sockets open at once from one source address. Default 16. */
  maxConnectionsPerSource?: number;
  /** Time to receive a request's headers. Default 5 s. */
  headersTimeoutMs?: number;
  /** How often the header and request timeouts are checked. Default 1 s. */
  timeoutCheckMs?: number;
  /** Time to receive a whole request. Default 10 s. */
  requestTimeoutMs?: number;
  /** An idle keep-alive socket is closed after this. Default 5 s. */
  keepAliveTimeoutMs?: number;
  /** Largest request header block. Default 8 KiB. */
  maxHeaderBytes?: number;
}

export const DEFAULT_ADMIN_HOST = '127.0.0.1';
export const DEFAULT_ADMIN_MAX_CONNECTIONS = 64;
/** A quarter of the sockets: a monitoring system needs a few; one source cannot crowd out the others. */
export const DEFAULT_ADMIN_MAX_CONNECTIONS_PER_SOURCE = 16;
export const DEFAULT_ADMIN_TIMEOUT_CHECK_MS = 1_000;
export const DEFAULT_ADMIN_HEADERS_TIMEOUT_MS = 5_000;
export const DEFAULT_ADMIN_REQUEST_TIMEOUT_MS = 10_000;
export const DEFAULT_ADMIN_KEEP_ALIVE_TIMEOUT_MS = 5_000;
export const DEFAULT_ADMIN_MAX_HEADER_BYTES = 8 * 1024;

/** Names the built-in /stats sections use; addStatsSection() cannot take them. */
const BUILT_IN_SECTIONS = new Set([
  ...['generatedAt', 'node', 'pool', 'transport', 'dht', 'traffic', 'queues', 'registry', 'rpc', 'pubsub', 'gateway', 'auth', 'web', 'process'] satisfies (keyof NodeSnapshot)[],
  ...['health', 'protocolErrors', 'admin'],
]);

type Section = () => unknown;

/** Why a socket of the admin server was closed early or refused. */
export type AdminConnectionRefusal =
  /** Closed to make room: it was still sending its headers, or idle, when all slots were taken. */
  | 'evicted'
  /** Refused: every slot held a request being answered. */
  | 'full'
  /** Refused: every slot of its source address held a request being answered. */
  | 'source_full'
  /** Closed: its headers or its request took longer than the timeouts. */
  | 'timeout'
  /** Closed: not HTTP, or headers too large. */
  | 'bad_request';

export const ADMIN_CONNECTION_REFUSALS: readonly AdminConnectionRefusal[] = ['evicted', 'full', 'source_full', 'timeout', 'bad_request'];

export interface AdminConnectionStats {
  /** Sockets open now. */
  open: number;
  maxConnections: number;
  maxConnectionsPerSource: number;
  /** Sockets accepted since listen(). */
  accepted: number;
  /** Sockets closed early or refused, by reason. */
  refused: Record<AdminConnectionRefusal, number>;
}

/** Metrics of the admin server's own sockets (register with registerStatsMetrics and connectionStats()). */
export const ADMIN_METRICS: readonly StatsMetric<AdminConnectionStats>[] = [
  { type: 'gauge', name: 'macula_admin_connections', help: 'Sockets open on the admin HTTP server.', value: (s) => s.open },
  { type: 'counter', name: 'macula_admin_connections_accepted_total', help: 'Sockets the admin HTTP server accepted.', value: (s) => s.accepted },
  {
    type: 'counter',
    name: 'macula_admin_connections_refused_total',
    help: 'Admin sockets closed early or refused, by reason (evicted, full, source_full, timeout, bad_request).',
    labelNames: ['reason'],
    value: (s) => ADMIN_CONNECTION_REFUSALS.map((reason): Sample => [{ reason }, s.refused[reason]]),
  },
];

interface Tracked {
  readonly source: string;
  /** True while a request is being answered on it: it is never evicted then. */
  busy: boolean;
}

interface Reply {
  status: number;
  body: string;
  contentType: string;
}

const JSON_TYPE = 'application/json; charset=utf-8';

function json(status: number, value: unknown): Reply {
  return { status, body: `${JSON.stringify(value, null, 2)}\n`, contentType: JSON_TYPE };
}

export class AdminServer {
  readonly host: string;
  readonly port: number;
  /** The health checks; add checks and saturation sources here. */
  readonly health: HealthMonitor;

  readonly #node: ObservedNode;
  readonly #metrics: MetricsExposition | undefined;
  readonly #instrumentation: Pick<NodeInstrumentation, 'protocolErrors'> | undefined;
  readonly #sections = new Map<string, Section>();
  readonly #server: Server;
  readonly maxConnections: number;
  readonly maxConnectionsPerSource: number;
  /** Open sockets, oldest first (Map keeps insertion order). */
  readonly #sockets = new Map<Socket, Tracked>();
  readonly #perSource = new Map<string, number>();
  #accepted = 0;
  readonly #refused: Record<AdminConnectionRefusal, number> = { evicted: 0, full: 0, source_full: 0, timeout: 0, bad_request: 0 };
  #address: { host: string; port: number } | undefined;
  #closing: Promise<void> | undefined;

  constructor(components: AdminServerComponents, init: AdminServerInit = {}) {
    this.#node = components.node;
    this.#metrics = components.metrics;
    this.#instrumentation = components.instrumentation;
    this.host = init.host ?? DEFAULT_ADMIN_HOST;
    this.port = init.port ?? 0;
    if (!Number.isInteger(this.port) || this.port < 0 || this.port > 65535) {
      throw new ConfigError(`the admin port must be an integer in 0..65535, got ${this.port}`);
    }
    this.health = new HealthMonitor({ node: this.#node }, init);
    this.maxConnections = init.maxConnections ?? DEFAULT_ADMIN_MAX_CONNECTIONS;
    this.maxConnectionsPerSource = init.maxConnectionsPerSource ?? DEFAULT_ADMIN_MAX_CONNECTIONS_PER_SOURCE;
    for (const [name, value] of [['maxConnections', this.maxConnections], ['maxConnectionsPerSource', this.maxConnectionsPerSource]] as const) {
      intOption(`admin server option ${name}`, value, 1);
    }
    this.#server = createServer(
      {
        headersTimeout: init.headersTimeoutMs ?? DEFAULT_ADMIN_HEADERS_TIMEOUT_MS,
        requestTimeout: init.requestTimeoutMs ?? DEFAULT_ADMIN_REQUEST_TIMEOUT_MS,
        keepAliveTimeout: init.keepAliveTimeoutMs ?? DEFAULT_ADMIN_KEEP_ALIVE_TIMEOUT_MS,
        maxHeaderSize: init.maxHeaderBytes ?? DEFAULT_ADMIN_MAX_HEADER_BYTES,
        connectionsCheckingInterval: init.timeoutCheckMs ?? DEFAULT_ADMIN_TIMEOUT_CHECK_MS,
      },
      (req, res) => void this.#handle(req, res),
    );
    this.#server.on('connection', (socket: Socket) => this.#admit(socket));
    this.#server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => this.#clientError(err, socket));
    // A socket with no traffic at all (not even headers) is dropped too.
    this.#server.setTimeout(init.requestTimeoutMs ?? DEFAULT_ADMIN_REQUEST_TIMEOUT_MS);
  }

  /** Sockets open, accepted, and closed early or refused by reason. */
  connectionStats(): AdminConnectionStats {
    return {
      open: this.#sockets.size,
      maxConnections: this.maxConnections,
      maxConnectionsPerSource: this.maxConnectionsPerSource,
      accepted: this.#accepted,
      refused: { ...this.#refused },
    };
  }

  /** A new socket: admitted, if need be in place of the oldest one not answering a request. */
  #admit(socket: Socket): void {
    const source = socket.remoteAddress ?? '?';
    const fromSource = this.#perSource.get(source) ?? 0;
    if (fromSource >= this.maxConnectionsPerSource && !this.#evictIdle(source)) return this.#refuse(socket, 'source_full');
    if (this.#sockets.size >= this.maxConnections && !this.#evictIdle()) return this.#refuse(socket, 'full');
    this.#accepted++;
    this.#sockets.set(socket, { source, busy: false });
    this.#perSource.set(source, (this.#perSource.get(source) ?? 0) + 1);
    socket.once('close', () => {
      if (this.#sockets.delete(socket)) this.#release(source);
    });
  }

  #release(source: string): void {
    const n = (this.#perSource.get(source) ?? 1) - 1;
    if (n > 0) this.#perSource.set(source, n);
    else this.#perSource.delete(source);
  }

  /** Closes the oldest socket (of `source`, if given) that is not answering a request; false if there is none. */
  #evictIdle(source?: string): boolean {
    for (const [socket, t] of this.#sockets) {
      if (t.busy || (source !== undefined && t.source !== source)) continue;
      // Its slot is free now, before 'close' arrives (which then finds nothing to release).
      this.#sockets.delete(socket);
      this.#release(t.source);
      this.#refused.evicted++;
      socket.destroy();
      return true;
    }
    return false;
  }

  #refuse(socket: Socket, reason: AdminConnectionRefusal): void {
    this.#refused[reason]++;
    socket.destroy();
  }

  /** Bad HTTP, headers too large, or too slow: answered if the socket can still take it, then closed. */
  #clientError(err: NodeJS.ErrnoException, socket: Socket): void {
    const timeout = err.code === 'ERR_HTTP_REQUEST_TIMEOUT';
    this.#refused[timeout ? 'timeout' : 'bad_request']++;
    if (socket.writable && !socket.writableEnded && err.code !== 'ECONNRESET') {
      const status = timeout ? '408 Request Timeout' : err.code === 'HPE_HEADER_OVERFLOW' ? '431 Request Header Fields Too Large' : '400 Bad Request';
      socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
    }
    socket.destroy();
  }

  /** The bound address once listening. */
  get address(): { host: string; port: number } | undefined {
    return this.#address;
  }

  /** e.g. http://127.0.0.1:9464 once listening. */
  get url(): string | undefined {
    const a = this.#address;
    if (!a) return undefined;
    return `http://${a.host.includes(':') ? `[${a.host}]` : a.host}:${a.port}`;
  }

  /** Starts listening and the health monitor; resolves with the bound address. */
  async listen(): Promise<{ host: string; port: number }> {
    if (this.#address) return this.#address;
    if (this.#closing) throw new ConfigError('this admin server was closed; create a new one');
    await new Promise<void>((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException) => {
        this.#server.off('listening', onListening);
        const hint =
          err.code === 'EADDRINUSE'
            ? `port ${this.port} is in use on ${this.host}; choose another admin port`
            : err.code === 'EADDRNOTAVAIL'
              ? `${this.host} is not an address of this machine`
              : err.message;
        reject(new ConfigError(`cannot start the admin server: ${hint}`, { cause: err }));
      };
      const onListening = () => {
        this.#server.off('error', onError);
        resolve();
      };
      this.#server.once('error', onError);
      this.#server.once('listening', onListening);
      this.#server.listen(this.port, this.host);
    });
    const a = this.#server.address() as AddressInfo;
    this.#address = { host: a.address, port: a.port };
    this.health.start();
    return this.#address;
  }

  /**
   * Adds a top-level section to /stats, read at every request (registry,
   * RPC, pub/sub, …). A section that throws shows `{ error }` instead.
   */
  addStatsSection(name: string, read: () => unknown): void {
    if (BUILT_IN_SECTIONS.has(name)) throw new ConfigError(`"${name}" is a built-in /stats section`);
    if (this.#sections.has(name)) throw new ConfigError(`a /stats section "${name}" is already registered`);
    this.#sections.set(name, read);
  }

  /** The /stats snapshot: the node's snapshot() plus what only the admin server knows. */
  async stats(): Promise<Record<string, unknown>> {
    const node = this.#node.snapshot();
    const snapshot: Record<string, unknown> = {
      ...node,
      health: this.health.report().status,
      ...(this.#instrumentation && { protocolErrors: this.#instrumentation.protocolErrors() }),
      process: { ...node.process, eventLoopLag: this.health.eventLoopLag() },
      admin: this.connectionStats(),
    };
    for (const [name, read] of this.#sections) {
      try {
        snapshot[name] = await read();
      } catch (err) {
        snapshot[name] = { error: (err as Error)?.message ?? String(err) };
      }
    }
    return snapshot;
  }

  /** Stops listening and closes every socket, idle keep-alive ones included. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= new Promise<void>((resolve) => {
      this.health.stop();
      if (!this.#server.listening) return resolve();
      this.#server.close(() => resolve());
      // close() alone waits for keep-alive sockets to time out; the answers here are short, so cut them.
      this.#server.closeAllConnections();
    });
    return this.#closing;
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const tracked = this.#sockets.get(req.socket);
    if (tracked) {
      tracked.busy = true;
      // Idle again (evictable) once the answer is written, until the next request on it.
      res.once('close', () => (tracked.busy = false));
    }
    const head = req.method === 'HEAD';
    let reply: Reply;
    try {
      reply = await this.#route(req);
    } catch (err) {
      reply = json(500, { error: (err as Error)?.message ?? String(err) });
    }
    const hasBody = req.headers['content-length'] !== undefined && req.headers['content-length'] !== '0';
    if (hasBody || req.headers['transfer-encoding'] !== undefined) {
      // The body is never read: closing the connection spares reading and discarding it.
      res.setHeader('Connection', 'close');
    }
    if (reply.status === 405) res.setHeader('Allow', 'GET, HEAD');
    res.writeHead(reply.status, {
      'Content-Type': reply.contentType,
      'Content-Length': Buffer.byteLength(reply.body),
      'Cache-Control': 'no-store',
      'X-Content-Type-Options': 'nosniff',
    });
    res.end(head ? undefined : reply.body);
  }

  async #route(req: IncomingMessage): Promise<Reply> {
    const path = (req.url ?? '/').split('?', 1)[0];
    const known = path === '/metrics' || path === '/health' || path === '/ready' || path === '/live' || path === '/stats';
    if (!known) return json(404, { error: `no such endpoint: ${path?.slice(0, 100)}`, endpoints: ['/metrics', '/health', '/ready', '/live', '/stats'] });
    if (req.method !== 'GET' && req.method !== 'HEAD') return json(405, { error: `${req.method} is not allowed here; use GET` });
    switch (path) {
      case '/metrics': {
        if (!this.#metrics) return json(404, { error: 'metrics are not enabled on this node' });
        return { status: 200, body: await this.#metrics.metricsText(), contentType: this.#metrics.contentType };
      }
      case '/health': {
        const report = this.health.report();
        return json(report.status === 'fail' ? 503 : 200, report);
      }
      case '/ready': {
        const node = this.#node.snapshot().node;
        if (node.joined) return json(200, { ready: true });
        return json(503, { ready: false, reason: node.running ? 'not joined to the mesh yet (no bootstrap node answered)' : 'the node is not running' });
      }
      case '/live':
        return json(200, { live: true });
      default:
        return json(200, await this.stats());
    }
  }
}
