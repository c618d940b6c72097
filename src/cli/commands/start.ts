import { Command, Option } from 'commander';
import { waitForSignal } from '../signals.js';
import { readCredentialFile } from '../../auth/files.js';
import { prepareAdmin, type AdminHandle } from '../admin.js';
import type { AdmissionRefusal } from '../../gateway/admission.js';
import { MIN_DEFAULT_CLIENTS_PER_ADDRESS } from '../../gateway/options.js';
import { DEFAULT_ADMIN_HOST } from '../../metrics/admin-server.js';
import { DEFAULTS, NODE_DEFAULTS } from '../../node/defaults.js';
import { defaultDataDir, loadOrCreateIdentity } from '../../identity/identity.js';
import { MeshNode } from '../../node/mesh-node.js';
import { formatAddress, type PeerAddress } from '../../transport/types.js';
import { LOG_LEVELS, Logger, type LogLevel } from '../logger.js';
import { collectHostPorts, intParser, MAX_NODE_LIMIT, parseBytes, parsePort, parseRealm, parseTcpPort } from '../options.js';
import { shortNodeId } from '../output.js';
import type { WebCertificate } from '../../web/cert.js';
import { HTTP3_PACKAGE } from '../../web/package.js';
import type { WebGateway } from '../../web/server.js';

export const DEFAULT_STATUS_INTERVAL_S = 60;
const INTERRUPTED: unique symbol = Symbol('interrupted');

interface StartOptions {
  port: number;
  host: string;
  dataDir: string;
  bootstrap?: PeerAddress[];
  realm: string;
  announceHost?: string;
  adminPort?: number;
  adminHost: string;
  maxRss?: number;
  maxClients: number;
  maxClientsPerAddress?: number;
  maxConnections?: number;
  logLevel: LogLevel;
  statusInterval: number;
  realmKey?: string;
  credential?: string;
  relay?: boolean;
  portMapping?: boolean;
  webPort?: number;
  webHost: string;
  webCert?: string;
  webKey?: string;
}

export function registerStart(program: Command): void {
  program
    .command('start')
    .description('run a mesh node in the foreground (Ctrl-C or SIGTERM stops it cleanly)')
    .addOption(new Option('-p, --port <port>', 'UDP port to listen on (0 picks a free port)').env('MACULA_PORT').default(NODE_DEFAULTS.port).argParser(parsePort))
    .addOption(new Option('--host <address>', 'address to bind').env('MACULA_HOST').default(NODE_DEFAULTS.host))
    .addOption(new Option('-d, --data-dir <dir>', 'where the node key is kept').env('MACULA_DATA_DIR').default(defaultDataDir(), 'per-user data dir'))
    .addOption(new Option('-b, --bootstrap <host:port>', 'join the mesh through this node (repeatable, or comma-separated)').env('MACULA_BOOTSTRAP').argParser(collectHostPorts))
    .addOption(new Option('-r, --realm <name>', 'mesh realm: nodes only talk within one realm').env('MACULA_REALM').default(NODE_DEFAULTS.realm).argParser(parseRealm))
    .addOption(new Option('--realm-key <hex>', "the realm authority's public key (printed by `macula realm create`): secures the realm").env('MACULA_REALM_KEY'))
    .addOption(new Option('--credential <file>', "this node's credential for a secured realm (`macula cred issue --role node`); re-read on SIGHUP").env('MACULA_CREDENTIAL'))
    .addOption(new Option('--announce-host <host>', 'host other nodes should use to reach this one (default: the bound address, or the first non-loopback IPv4 address)').env('MACULA_ANNOUNCE_HOST'))
    .addOption(new Option('--relay', 'relay for nodes behind a NAT even before this node is found reachable (default: relay once found public)'))
    .addOption(new Option('--no-relay', 'never relay for other nodes'))
    .addOption(new Option('--port-mapping', 'ask the router (UPnP, NAT-PMP) to forward a public UDP port to this node and announce it').env('MACULA_PORT_MAPPING'))
    .addOption(new Option('--admin-port <port>', 'serve /metrics, /health, /ready, /live and /stats over HTTP on <admin-host>:<port> (0 picks a free port)').env('MACULA_ADMIN_PORT').argParser(parseTcpPort))
    .addOption(new Option('--admin-host <address>', 'address the admin HTTP server binds (keep it on loopback unless it is firewalled)').env('MACULA_ADMIN_HOST').default(DEFAULT_ADMIN_HOST))
    .addOption(new Option('--web-port <port>', 'serve browsers and web apps (WebTransport, its WebSocket mapping) and the dashboard over HTTPS on <web-host>:<port> (0 picks a free port)').env('MACULA_WEB_PORT').argParser(parseTcpPort))
    .addOption(new Option('--web-host <address>', 'address the web gateway binds').env('MACULA_WEB_HOST').default(DEFAULTS.web.host))
    .addOption(new Option('--web-cert <file>', 'PEM certificate for the web gateway (default: a self-signed ECDSA certificate made at start, rotated before expiry)').env('MACULA_WEB_CERT'))
    .addOption(new Option('--web-key <file>', 'PEM private key of --web-cert').env('MACULA_WEB_KEY'))
    .addOption(
      new Option('--max-rss <bytes>', '/health degrades at 80 % of this resident memory and fails at it, e.g. 2G (default: the cgroup memory limit, else total memory)')
        .env('MACULA_MAX_RSS')
        .argParser(parseBytes),
    )
    .addOption(new Option('--max-clients <n>', 'most light clients (pub, sub, call, … commands) connected at once').env('MACULA_MAX_CLIENTS').default(DEFAULTS.gateway.maxClients).argParser(intParser(0, MAX_NODE_LIMIT)))
    .addOption(
      new Option('--max-clients-per-address <n>', `most light clients from one IP address (an IPv6 /64) (default: a quarter of --max-clients, at least ${MIN_DEFAULT_CLIENTS_PER_ADDRESS})`)
        .env('MACULA_MAX_CLIENTS_PER_ADDRESS')
        .argParser(intParser(0, MAX_NODE_LIMIT)),
    )
    .addOption(
      new Option('--max-connections <n>', `most open QUIC connections, clients included (default: --max-clients + ${NODE_DEFAULTS.meshConnectionMargin})`).env('MACULA_MAX_CONNECTIONS').argParser(intParser(1, MAX_NODE_LIMIT)),
    )
    .addOption(new Option('--log-level <level>', 'diagnostics written to stderr').env('MACULA_LOG_LEVEL').choices(LOG_LEVELS).default('info'))
    .addOption(new Option('--status-interval <seconds>', 'print a one-line status this often (0: never)').env('MACULA_STATUS_INTERVAL').default(DEFAULT_STATUS_INTERVAL_S).argParser(intParser(0, 86_400, 's')))
    .action(async (opts: StartOptions) => {
      // Listen for signals before anything else: a Ctrl-C or SIGTERM stops the process at any point of start-up too.
      const signal = waitForSignal();
      const interrupted = signal.promise.then((): typeof INTERRUPTED => INTERRUPTED);
      const untilSignal = <T>(step: Promise<T>): Promise<T | typeof INTERRUPTED> => Promise.race([step, interrupted]);
      const logger = new Logger(opts.logLevel);
      const out = process.stdout;
      const loaded = await untilSignal(loadOrCreateIdentity(opts.dataDir));
      if (loaded === INTERRUPTED) return;
      const { identity, created } = loaded;
      const credential = opts.credential !== undefined ? (await readCredentialFile(opts.credential)).chain : undefined;
      if (opts.realmKey === undefined) {
        logger.warn(`realm "${opts.realm}" is open: anyone who can reach this node may join it; secure it with --realm-key and --credential`);
      }
      const node = new MeshNode(identity, {
        port: opts.port,
        host: opts.host,
        realm: opts.realm,
        bootstrap: opts.bootstrap ?? [],
        ...(opts.maxConnections !== undefined && { pool: { maxConnections: opts.maxConnections } }),
        gateway: { maxClients: opts.maxClients, ...(opts.maxClientsPerAddress !== undefined && { maxClientsPerAddress: opts.maxClientsPerAddress }) },
        logger: { warn: (m) => logger.warn(m) },
        ...(opts.announceHost !== undefined && { announceHost: opts.announceHost }),
        ...(opts.realmKey !== undefined && { realmKey: opts.realmKey }),
        ...(credential !== undefined && { credential }),
        ...(opts.relay !== undefined && { relay: { serve: opts.relay } }),
        ...(opts.portMapping === true && { portMapping: true }),
        ...(opts.webPort !== undefined && {
          web: { port: opts.webPort, host: opts.webHost, ...(opts.webCert !== undefined && { certFile: opts.webCert }), ...(opts.webKey !== undefined && { keyFile: opts.webKey }) },
        }),
      });
      watchClients(node, logger);
      watchReachability(node, logger);
      watchBudgets(node, logger);
      const startAdmin = opts.adminPort !== undefined ? prepareAdmin(node) : undefined;
      let admin: AdminHandle | undefined;
      const startup = (async () => {
        await node.start();
        admin = await startAdmin?.({ host: opts.adminHost, port: opts.adminPort!, ...(opts.maxRss !== undefined && { maxRssBytes: opts.maxRss }) });
      })();
      try {
        if ((await untilSignal(startup)) === INTERRUPTED) {
          // The node may be half started: let that step end (the grace timer bounds it), then stop what runs.
          await startup.catch(() => undefined);
          await admin?.close();
          await node.stop();
          return;
        }
      } catch (err) {
        await node.stop();
        throw err;
      }
      const listen = node.listenAddress!;
      out.write(`macula node ${node.nodeId}${created ? ' (new identity)' : ''}\n`);
      out.write(`  realm     ${node.realm}${node.guard ? ` (secured by ${shortNodeId(node.guard.verifier.authorityHex)}; credential valid until ${new Date(node.guard.own.expiresAt).toISOString()})` : ' (open)'}\n`);
      if (node.guard && opts.credential !== undefined) reloadOnHangup(node, opts.credential, logger);
      out.write(`  listening ${formatAddress(listen)}/udp (QUIC)\n`);
      if (opts.announceHost !== undefined) out.write(`  announce  ${formatAddress(node.advertisedAddress)}\n`);
      if (admin) out.write(`  admin     ${admin.url}\n`);
      if (node.web) printWeb(node.web, out, logger);
      out.write(`  data dir  ${opts.dataDir}\n`);
      if (opts.bootstrap?.length) {
        const joined = await untilSignal(node.joined());
        if (joined === INTERRUPTED) {
          // interrupted while joining: fall through to the clean stop
        } else if (joined.reached > 0) out.write(`joined the mesh: ${joined.routingTableSize} nodes in the routing table\n`);
        else out.write('no bootstrap node answered yet; retrying in the background\n');
      } else {
        out.write('first node of a new mesh (no --bootstrap given)\n');
      }
      const status = opts.statusInterval > 0 ? setInterval(() => out.write(`${statusLine(node)}\n`), opts.statusInterval * 1000) : undefined;
      status?.unref();
      await signal.promise;
      clearInterval(status);
      out.write('stopping…\n');
      await admin?.close();
      await node.stop();
      out.write('stopped\n');
    });
}

/** Where the web gateway listens, which WebTransport modes are on and why, and the certificate hash browsers pin. */
function printWeb(web: WebGateway, out: NodeJS.WritableStream, logger: Logger): void {
  const modes = web.modes;
  const on = [modes.http3 && 'WebTransport over HTTP/3', 'WebTransport over HTTP/2', 'its WebSocket mapping'].filter(Boolean).join(', ');
  out.write(`  web       ${web.url} (dashboard at /, client library at /macula-client.js)\n`);
  out.write(`  web modes ${on}${modes.http3 ? '' : ` (HTTP/3 off: the optional ${HTTP3_PACKAGE} is not installed)`}\n`);
  const certLine = (c: WebCertificate): string =>
    `sha-256 ${c.sha256} (${c.generated ? 'self-signed ECDSA, ' : ''}valid until ${c.notAfter.toISOString()}${c.generated ? ', replaced before expiry' : ''})`;
  out.write(`  web cert  ${certLine(web.certificate)}\n`);
  web.on('certificate', (c: WebCertificate) => logger.info(`web certificate replaced: ${certLine(c)}`));
}

/** SIGHUP re-reads the credential file: a renewed credential takes effect without a restart. */
function reloadOnHangup(node: MeshNode, file: string, logger: Logger): void {
  process.on('SIGHUP', () => {
    void (async () => {
      try {
        await node.reloadCredential((await readCredentialFile(file)).chain);
        logger.info(`credential reloaded from ${file}; valid until ${new Date(node.guard!.own.expiresAt).toISOString()}`);
      } catch (err) {
        logger.warn(`credential not reloaded, the previous one stays in force: ${(err as Error).message}`);
      }
    })();
  });
}

/** One line for the running log: who we talk to and how busy we are. */
function statusLine(node: MeshNode): string {
  const s = node.status();
  const pool = node.pool.stats();
  const gw = node.gateway.stats();
  const time = new Date().toISOString().slice(11, 19);
  return `${time} status: ${s.routingTableSize} in routing table, ${pool.open}/${pool.max} connections, ${gw.clients} clients (${gw.refused} refused), ${s.joined ? 'joined' : 'not joined'}`;
}

/** Every 10 s, one line naming the budgets that refused peers since the last line (counts by reason are in the metrics). */
function watchBudgets(node: MeshNode, logger: Logger): void {
  let reported = node.budgets().refusals;
  setInterval(() => {
    const now = node.budgets().refusals;
    const news = Object.entries(now)
      .map(([reason, n]) => [reason, n - (reported[reason as keyof typeof reported] ?? 0)] as const)
      .filter(([, n]) => n > 0);
    reported = now;
    if (news.length > 0) logger.warn(`refused peers over a budget: ${news.map(([reason, n]) => `${n} ${reason}`).join(', ')} (see macula_budget_refusals_total)`);
  }, 10_000).unref();
}

/** One line when the reachability check changes its answer, and when the announced address changes (relays). */
function watchReachability(node: MeshNode, logger: Logger): void {
  node.on('reachability', (status: string) =>
    logger.info(status === 'private' ? 'reachability: private (others cannot dial this node); looking for relays' : `reachability: ${status}`),
  );
  node.on('address', (address: PeerAddress) => logger.info(`announcing ${formatAddress(address)}`));
}

function watchClients(node: MeshNode, logger: Logger): void {
  node.gateway.on('client', (c: { nodeId: string; address: PeerAddress }) => logger.debug(`client ${shortNodeId(c.nodeId)} connected from ${formatAddress(c.address)}`));
  node.gateway.on('client-closed', (c: { nodeId: string }) => logger.debug(`client ${shortNodeId(c.nodeId)} disconnected`));
  // Refusals are counted in the status line and `macula stats`; log at most one line per 10 s.
  let last = 0;
  let reported = 0;
  node.gateway.on('client-refused', (c: { address: PeerAddress }, reason: AdmissionRefusal) => {
    const now = Date.now();
    if (now - last < 10_000) return;
    last = now;
    const refused = node.gateway.stats().refused;
    const limit =
      reason === 'max_clients_per_address'
        ? `${node.gateway.maxClientsPerAddress} clients from ${c.address.host} (--max-clients-per-address)`
        : `${node.gateway.maxClients} clients (--max-clients)`;
    logger.info(`refused ${refused - reported} client(s); the last one because this node serves its maximum of ${limit}`);
    reported = refused;
  });
}
