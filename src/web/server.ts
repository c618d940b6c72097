/**
 * The web gateway: browsers and web apps reach the node's light-client
 * gateway over WebTransport (@fails-components/webtransport). Each session
 * becomes a WebConnection (connection.ts) handed to the node's connection
 * pool, so it goes through the same session layer (HELLO, realm, credential
 * admission, in-flight limits, frame budgets) and the same Gateway
 * (maxClients, per-address share, per-client limits) as a QUIC client.
 *
 * Modes: WebTransport over HTTP/2 and the package's WebSocket mapping
 * (which browsers without an HTTP/3 path use) always; WebTransport over
 * HTTP/3 when the optional native transport package is installed.
 *
 * The same TLS port serves the dashboard (`GET /`), the bundled client
 * library (`/macula-client.js`) and `/info.json` (node ID, realm, modes and
 * the certificate's SHA-256 for `serverCertificateHashes`).
 */
import { EventEmitter } from 'node:events';
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Http2SecureServer, Http2ServerRequest, Http2ServerResponse, IncomingHttpHeaders, ServerHttp2Stream } from 'node:http2';
import { fromHex } from '../identity/identity.js';
import { ConfigError } from '../util/errors.js';
import { intOption } from '../util/options.js';
import type { Connection, PeerAddress } from '../transport/types.js';
import type { WebCertificate } from './cert.js';
import { parsePeerAddress, WebConnection, type WebTransportLike } from './connection.js';
import { loadWebTransport } from './package.js';

/** The path WebTransport sessions open. */
export const WEB_SESSION_PATH = '/macula';
export const DEFAULT_WEB_HOST = '127.0.0.1';
export const DEFAULT_MAX_WEB_SESSIONS = 1000;
/** One request stream per direction is all the protocol uses; a few more leave room for a reconnecting client. */
export const DEFAULT_MAX_STREAMS_PER_SESSION = 4;

/** The web gateway's defaults (it has no default port: it is off unless one is given). */
export const WEB_DEFAULTS = Object.freeze({
  host: DEFAULT_WEB_HOST,
  maxSessions: DEFAULT_MAX_WEB_SESSIONS,
  maxStreamsPerSession: DEFAULT_MAX_STREAMS_PER_SESSION,
});
/** Flow-control window of a stream: the package's 16 KiB default stalls a stream at one larger message. */
export const WEB_FLOW_CONTROL_WINDOW = 4 * 1024 * 1024;
/**
 * Flow-control window of a session. The package receives with a window of
 * its size limit but announces its initial size: unless both are equal the
 * peer stops at the announced size while the node waits for half the limit
 * before it raises the window, and the session stalls for good.
 */
export const WEB_SESSION_FLOW_CONTROL_WINDOW = 4 * WEB_FLOW_CONTROL_WINDOW;
/** How often the certificate's remaining validity is checked. */
const ROTATION_CHECK_MS = 3600_000;

export type WebMode = 'http3' | 'http2' | 'websocket';

export interface WebGatewayInit {
  port: number;
  host?: string;
  /** PEM certificate and key files; default: a generated self-signed ECDSA certificate, rotated before expiry. */
  certFile?: string;
  keyFile?: string;
  /** Web sessions open at once; more are refused (and counted). Default 1000 (the gateway's maxClients bounds them too). */
  maxSessions?: number;
  /** Streams one session may have open; more are refused (and counted). Default 4. */
  maxStreamsPerSession?: number;
}

/** What the web gateway needs of its node. */
export interface WebGatewayComponents {
  readonly nodeId: string;
  readonly realm: string;
  /** Takes a session's connection into the node (its connection pool); false when refused. */
  accept(conn: Connection): boolean;
}

/**
 * Why a session or stream was refused: the limits, a full connection pool, a failed handshake (TLS, or no
 * request stream in time), a stream without a known role, a key proof whose signature does not verify.
 */
export type WebRefusal = 'max_sessions' | 'max_streams' | 'bad_stream' | 'pool_full' | 'handshake_failed' | 'bad_key_proof';
export const WEB_REFUSALS: readonly WebRefusal[] = ['max_sessions', 'max_streams', 'bad_stream', 'pool_full', 'handshake_failed', 'bad_key_proof'];

export interface WebStats {
  /** Modes on: http3 only with the optional native package. */
  modes: Record<WebMode, boolean>;
  sessions: number;
  maxSessions: number;
  maxStreamsPerSession: number;
  /** Sessions opened since start, by mode. */
  opened: Record<WebMode, number>;
  refused: Record<WebRefusal, number>;
  certificate: { sha256: string; notAfter: string; generated: boolean; rotations: number };
}

/** A session as the package's server hands it out: the W3C shape plus the request headers and the peer. */
type ServerSession = WebTransportLike & { header?: Record<string, unknown>; peerAddress?: string; reliability?: string };
type Wt = Awaited<ReturnType<typeof loadWebTransport>>['module'];
type WtServer = InstanceType<Wt['HttpServer']>;

const CONTENT_TYPES: Record<string, string> = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8' };
/** Files served from the static directory (built by scripts/build-web.mjs): nothing else is readable. */
const STATIC_FILES: Record<string, string> = {
  '/': 'index.html',
  '/index.html': 'index.html',
  '/macula-client.js': 'macula-client.js',
  '/dashboard.js': 'dashboard.js',
  '/dashboard.css': 'dashboard.css',
};
export const STATIC_DIR = new URL('./static/', import.meta.url);

/** Events: 'certificate' (WebCertificate) after a rotation. Refusals are counted (stats().refused), not emitted. */
export class WebGateway extends EventEmitter {
  readonly host: string;
  readonly maxSessions: number;
  readonly maxStreamsPerSession: number;
  readonly #init: WebGatewayInit;
  readonly #node: WebGatewayComponents;
  readonly #sessions = new Set<WebConnection>();
  /** Sessions admitted and still in their handshake: they count against maxSessions too. */
  #handshaking = 0;
  readonly #opened: Record<WebMode, number> = { http3: 0, http2: 0, websocket: 0 };
  readonly #refused: Record<WebRefusal, number> = { max_sessions: 0, max_streams: 0, bad_stream: 0, pool_full: 0, handshake_failed: 0, bad_key_proof: 0 };
  readonly #static = new Map<string, Buffer>();
  #modes: Record<WebMode, boolean> = { http3: false, http2: true, websocket: true };
  #server: WtServer | undefined;
  #cert: WebCertificate | undefined;
  #rotations = 0;
  #rotation: NodeJS.Timeout | undefined;
  #address: PeerAddress | undefined;

  constructor(components: WebGatewayComponents, init: WebGatewayInit) {
    super();
    if ((init.certFile === undefined) !== (init.keyFile === undefined)) throw new ConfigError('give both --web-cert and --web-key, or neither (a certificate is then generated)');
    this.#node = components;
    this.#init = init;
    intOption('web option port', init.port, 0, 65535);
    this.host = init.host ?? WEB_DEFAULTS.host;
    this.maxSessions = intOption('web option maxSessions', init.maxSessions ?? WEB_DEFAULTS.maxSessions, 1);
    this.maxStreamsPerSession = intOption('web option maxStreamsPerSession', init.maxStreamsPerSession ?? WEB_DEFAULTS.maxStreamsPerSession, 1);
  }

  /** The bound address once started. */
  get address(): PeerAddress | undefined {
    return this.#address;
  }

  get url(): string {
    const a = this.#address!;
    return `https://${a.host.includes(':') ? `[${a.host}]` : a.host}:${a.port}/`;
  }

  get certificate(): WebCertificate {
    if (!this.#cert) throw new ConfigError('the web gateway is not started');
    return this.#cert;
  }

  get modes(): Record<WebMode, boolean> {
    return { ...this.#modes };
  }

  async start(): Promise<PeerAddress> {
    const { module: wt, http3 } = await loadWebTransport();
    const { generateCertificate, readCertificate } = await certificates();
    this.#modes = { http3, http2: true, websocket: true };
    this.#cert = this.#init.certFile !== undefined ? await readCertificate(this.#init.certFile, this.#init.keyFile!) : await generateCertificate([this.host]);
    for (const [, file] of Object.entries(STATIC_FILES)) {
      if (this.#static.has(file)) continue;
      try {
        this.#static.set(file, await readFile(new URL(file, STATIC_DIR)));
      } catch {
        throw new ConfigError(`the web assets are not built (${new URL(file, STATIC_DIR).pathname} is missing); run \`npm run build\``);
      }
    }
    const args = {
      port: this.#init.port,
      host: this.host,
      secret: randomBytes(16).toString('hex'),
      cert: this.#cert.cert,
      privKey: this.#cert.key,
      initialStreamFlowControlWindow: WEB_FLOW_CONTROL_WINDOW,
      initialSessionFlowControlWindow: WEB_SESSION_FLOW_CONTROL_WINDOW,
      streamFlowControlWindowSizeLimit: WEB_FLOW_CONTROL_WINDOW,
      sessionFlowControlWindowSizeLimit: WEB_SESSION_FLOW_CONTROL_WINDOW,
    };
    const server = (http3 ? new wt.HttpServer({ ...args, reliability: 'both' } as never) : new wt.Http2Server(args as never)) as WtServer;
    this.#server = server;
    const sessions = server.sessionStream(WEB_SESSION_PATH);
    server.startServer();
    try {
      await server.ready;
    } catch (err) {
      this.#server = undefined;
      throw new ConfigError(`the web gateway cannot listen on ${this.host}:${this.#init.port}: ${(err as Error).message}; choose another --web-port or --web-host`, { cause: err });
    }
    this.#serveStaticOn(server);
    const bound = server.address();
    this.#address = { host: bound?.host ?? this.host, port: bound?.port ?? this.#init.port };
    void this.#acceptLoop(sessions as unknown as ReadableStream<ServerSession>);
    if (this.#cert.generated) {
      this.#rotation = setInterval(() => void this.rotateIfDue().catch(() => undefined), ROTATION_CHECK_MS);
      this.#rotation.unref();
    }
    return this.#address;
  }

  async stop(): Promise<void> {
    clearInterval(this.#rotation);
    for (const conn of this.#sessions) conn.close();
    const server = this.#server;
    this.#server = undefined;
    if (!server) return;
    const h2 = http2Of(server);
    server.stopServer();
    // Open HTTP/2 connections (a dashboard tab) would keep the listener alive.
    for (const session of h2Sessions.get(h2 as object) ?? []) session.destroy();
    await Promise.race([server.closed, new Promise((r) => setTimeout(r, 2000).unref())]);
  }

  /** Replaces a generated certificate once less than ROTATE_BEFORE_EXPIRY_MS of it is left (checked hourly); true if it did. */
  async rotateIfDue(now = Date.now()): Promise<boolean> {
    const cert = this.#cert;
    const { ROTATE_BEFORE_EXPIRY_MS } = await certificates();
    if (!cert?.generated || !this.#server || cert.notAfter.getTime() - now > ROTATE_BEFORE_EXPIRY_MS) return false;
    await this.rotateCertificate();
    return true;
  }

  /** Makes a new certificate and serves it to new connections (open sessions keep theirs). */
  async rotateCertificate(): Promise<WebCertificate> {
    const next = await (await certificates()).generateCertificate([this.host]);
    this.#server?.updateCert(next.cert, next.key, false);
    this.#cert = next;
    this.#rotations++;
    this.emit('certificate', next);
    return next;
  }

  stats(): WebStats {
    const cert = this.#cert;
    return {
      modes: { ...this.#modes },
      sessions: this.#sessions.size,
      maxSessions: this.maxSessions,
      maxStreamsPerSession: this.maxStreamsPerSession,
      opened: { ...this.#opened },
      refused: { ...this.#refused },
      certificate: { sha256: cert?.sha256 ?? '', notAfter: cert?.notAfter.toISOString() ?? '', generated: cert?.generated ?? false, rotations: this.#rotations },
    };
  }

  /** What a page needs to connect: served as /info.json. */
  info(): Record<string, unknown> {
    return {
      nodeId: this.#node.nodeId,
      realm: this.#node.realm,
      path: WEB_SESSION_PATH,
      modes: { ...this.#modes },
      certificate: { sha256: this.#cert?.sha256, notAfter: this.#cert?.notAfter.toISOString() },
    };
  }

  async #acceptLoop(stream: ReadableStream<ServerSession>): Promise<void> {
    const reader = stream.getReader();
    for (;;) {
      let next;
      try {
        next = await reader.read();
      } catch {
        return;
      }
      if (next.done) return;
      void this.#admit(next.value);
    }
  }

  async #admit(session: ServerSession): Promise<void> {
    if (this.#sessions.size + this.#handshaking >= this.maxSessions) {
      this.#refused.max_sessions++;
      closeQuietly(session, `this node serves its maximum of ${this.maxSessions} web sessions`);
      return;
    }
    this.#handshaking++;
    try {
      await session.ready;
    } catch {
      this.#refused.handshake_failed++;
      return;
    } finally {
      this.#handshaking--;
    }
    const mode = modeOf(session);
    const conn = new WebConnection(session, parsePeerAddress(session.peerAddress), mode, {
      nodeId: fromHex(this.#node.nodeId),
      realm: this.#node.realm,
      maxStreams: this.maxStreamsPerSession,
      onStreamRefused: (reason) => this.#refused[reason]++,
    });
    this.#sessions.add(conn);
    this.#opened[mode]++;
    void conn.closed.then(() => this.#sessions.delete(conn));
    // The pool takes the session once its ID is known: proved by a key, or random (connection.ts).
    const how = await conn.identified;
    if (how === 'bad_key_proof') this.#refused.bad_key_proof++;
    else if (how === 'no_stream') this.#refused.handshake_failed++;
    else if (!this.#node.accept(conn)) this.#refused.pool_full++;
  }

  /**
   * The package's HTTP/2 server answers every request that is not a
   * WebTransport or WebSocket CONNECT with 406. Plain GETs (the dashboard,
   * the client library) are routed to node's HTTP/2 compatibility API
   * instead, CONNECTs stay with the package.
   */
  #serveStaticOn(server: WtServer): void {
    const h2 = http2Of(server);
    if (!h2) throw new ConfigError('this version of @fails-components/webtransport keeps its HTTP/2 server elsewhere; the dashboard cannot be served');
    const own = h2.listeners('stream') as ((stream: ServerHttp2Stream, headers: IncomingHttpHeaders) => void)[];
    h2.on('request', (req: Http2ServerRequest | IncomingMessage, res: Http2ServerResponse | ServerResponse) => this.#serveStatic(req, res));
    const compat = (h2.listeners('stream') as ((stream: ServerHttp2Stream, headers: IncomingHttpHeaders) => void)[]).filter((l) => !own.includes(l));
    h2.removeAllListeners('stream');
    h2.on('stream', (stream: ServerHttp2Stream, headers: IncomingHttpHeaders) => {
      for (const l of headers[':method'] === 'CONNECT' ? own : compat) l.call(h2, stream, headers);
    });
    const open = new Set<{ destroy(): void }>();
    h2Sessions.set(h2, open);
    h2.on('session', (s: { destroy(): void; once(ev: string, f: () => void): void }) => {
      open.add(s);
      s.once('close', () => open.delete(s));
    });
  }

  #serveStatic(req: Http2ServerRequest | IncomingMessage, res: Http2ServerResponse | ServerResponse): void {
    const path = (req.url ?? '/').split('?', 1)[0]!;
    const send = (status: number, type: string, body: string | Buffer): void => {
      (res as ServerResponse).writeHead(status, {
        'content-type': type,
        'cache-control': 'no-store',
        'x-content-type-options': 'nosniff',
        'content-security-policy': "default-src 'self'; connect-src 'self' wss: https:; style-src 'self' 'unsafe-inline'",
      });
      res.end(body);
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(405, 'text/plain', 'only GET\n');
    if (path === '/info.json') return send(200, 'application/json', JSON.stringify(this.info()));
    const file = STATIC_FILES[path];
    const body = file === undefined ? undefined : this.#static.get(file);
    if (file === undefined || body === undefined) return send(404, 'text/plain', 'not found\n');
    send(200, CONTENT_TYPES[file.slice(file.lastIndexOf('.'))] ?? 'application/octet-stream', body);
  }
}

/** The certificate code, loaded when a web gateway starts: its X.509 library costs every `macula` command ~0.5 s to load. */
const certificates = (): Promise<typeof import('./cert.js')> => import('./cert.js');

const h2Sessions = new WeakMap<object, Set<{ destroy(): void }>>();

/** The node HTTP/2 server inside the package's server (behind its proxy when HTTP/3 runs too). */
function http2Of(server: WtServer): Http2SecureServer | undefined {
  const int = (server as unknown as { transportInt?: { serverInt?: Http2SecureServer; transportsInts?: Set<{ serverInt?: Http2SecureServer }> } }).transportInt;
  if (int?.serverInt) return int.serverInt;
  for (const t of int?.transportsInts ?? []) if (t.serverInt) return t.serverInt;
  return undefined;
}

function modeOf(session: { header?: Record<string, unknown>; reliability?: string }): WebMode {
  const h = session.header ?? {};
  if (h[':protocol'] === 'websocket' || String(h.upgrade ?? '').toLowerCase() === 'websocket') return 'websocket';
  return session.reliability === 'supports-unreliable' ? 'http3' : 'http2';
}

function closeQuietly(session: WebTransportLike, reason: string): void {
  session.ready.then(
    () => {
      try {
        session.close({ closeCode: 1, reason });
      } catch {
        // closing already
      }
    },
    () => undefined,
  );
}
