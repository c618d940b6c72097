import { Command, Option } from 'commander';
import { waitForSignal } from '../signals.js';
import { prepareAdmin, type AdminHandle } from '../admin.js';
import { DEFAULT_MAX_CLIENTS } from '../../gateway/options.js';
import { defaultDataDir, loadOrCreateIdentity } from '../../identity/identity.js';
import { DEFAULT_PORT, MeshNode } from '../../node/mesh-node.js';
import { formatAddress, type PeerAddress } from '../../transport/types.js';
import { LOG_LEVELS, Logger, type LogLevel } from '../logger.js';
import { collectHostPorts, parseNonNegativeInt, parsePort, parsePositiveInt, parseTcpPort } from '../options.js';
import { shortNodeId } from '../output.js';

/**
 * Connection slots kept for mesh peers on top of --max-clients. Clients
 * hold pool slots that are never evicted (see src/gateway/gateway.ts), so
 * without this margin a node full of clients could no longer dial its peers.
 */
export const MESH_CONNECTION_MARGIN = 1000;
export const DEFAULT_STATUS_INTERVAL_S = 60;

interface StartOptions {
  port: number;
  host: string;
  dataDir: string;
  bootstrap?: PeerAddress[];
  realm: string;
  announceHost?: string;
  adminPort?: number;
  adminHost: string;
  maxClients: number;
  maxConnections?: number;
  logLevel: LogLevel;
  statusInterval: number;
}

export function registerStart(program: Command): void {
  program
    .command('start')
    .description('run a mesh node in the foreground (Ctrl-C or SIGTERM stops it cleanly)')
    .addOption(new Option('-p, --port <port>', 'UDP port to listen on (0 picks a free port)').env('MACULA_PORT').default(DEFAULT_PORT).argParser(parsePort))
    .addOption(new Option('--host <address>', 'address to bind').env('MACULA_HOST').default('0.0.0.0'))
    .addOption(new Option('-d, --data-dir <dir>', 'where the node key is kept').env('MACULA_DATA_DIR').default(defaultDataDir(), 'per-user data dir'))
    .addOption(new Option('-b, --bootstrap <host:port>', 'join the mesh through this node (repeatable, or comma-separated)').env('MACULA_BOOTSTRAP').argParser(collectHostPorts))
    .addOption(new Option('-r, --realm <name>', 'mesh realm: nodes only talk within one realm').env('MACULA_REALM').default('default'))
    .addOption(new Option('--announce-host <host>', 'host other nodes should use to reach this one (default: the bound address, or the first non-loopback IPv4 address)').env('MACULA_ANNOUNCE_HOST'))
    .addOption(new Option('--admin-port <port>', 'serve /metrics, /health, /ready, /live and /stats over HTTP on <admin-host>:<port> (0 picks a free port)').env('MACULA_ADMIN_PORT').argParser(parseTcpPort))
    .addOption(new Option('--admin-host <address>', 'address the admin HTTP server binds (keep it on loopback unless it is firewalled)').env('MACULA_ADMIN_HOST').default('127.0.0.1'))
    .addOption(new Option('--max-clients <n>', 'most light clients (pub, sub, call, … commands) connected at once').env('MACULA_MAX_CLIENTS').default(DEFAULT_MAX_CLIENTS).argParser(parseNonNegativeInt))
    .addOption(
      new Option('--max-connections <n>', `most open QUIC connections, clients included (default: --max-clients + ${MESH_CONNECTION_MARGIN})`).env('MACULA_MAX_CONNECTIONS').argParser(parsePositiveInt),
    )
    .addOption(new Option('--log-level <level>', 'diagnostics written to stderr').env('MACULA_LOG_LEVEL').choices(LOG_LEVELS).default('info'))
    .addOption(new Option('--status-interval <seconds>', 'print a one-line status this often (0: never)').env('MACULA_STATUS_INTERVAL').default(DEFAULT_STATUS_INTERVAL_S).argParser(parseNonNegativeInt))
    .action(async (opts: StartOptions) => {
      // Listen for signals before anything else, so a Ctrl-C during start-up still stops cleanly.
      const signal = waitForSignal().promise;
      const logger = new Logger(opts.logLevel);
      if (opts.maxConnections !== undefined && opts.maxConnections <= opts.maxClients) {
        logger.warn(`--max-connections ${opts.maxConnections} leaves no room for mesh peers once --max-clients ${opts.maxClients} clients are connected; raise it above --max-clients`);
      }
      const { identity, created } = await loadOrCreateIdentity(opts.dataDir);
      const node = new MeshNode(identity, {
        port: opts.port,
        host: opts.host,
        realm: opts.realm,
        bootstrap: opts.bootstrap ?? [],
        maxConnections: opts.maxConnections ?? opts.maxClients + MESH_CONNECTION_MARGIN,
        gateway: { maxClients: opts.maxClients },
        logger: { warn: (m) => logger.warn(m) },
        ...(opts.announceHost !== undefined && { announceHost: opts.announceHost }),
      });
      watchClients(node, logger);
      watchBudgets(node, logger);
      const startAdmin = opts.adminPort !== undefined ? prepareAdmin(node) : undefined;
      await node.start();
      let admin: AdminHandle | undefined;
      try {
        admin = await startAdmin?.({ host: opts.adminHost, port: opts.adminPort! });
      } catch (err) {
        await node.stop();
        throw err;
      }
      const listen = node.listenAddress!;
      const out = process.stdout;
      out.write(`macula node ${node.nodeId}${created ? ' (new identity)' : ''}\n`);
      out.write(`  realm     ${node.realm}\n`);
      out.write(`  listening ${formatAddress(listen)}/udp (QUIC)\n`);
      if (opts.announceHost !== undefined) out.write(`  announce  ${formatAddress(node.advertisedAddress)}\n`);
      if (admin) out.write(`  admin     ${admin.url}\n`);
      out.write(`  data dir  ${opts.dataDir}\n`);
      if (opts.bootstrap?.length) {
        const joined = await Promise.race([node.joined(), signal.then(() => undefined)]);
        if (joined === undefined) {
          // interrupted while joining: fall through to the clean stop
        } else if (joined.reached > 0) out.write(`joined the mesh: ${joined.routingTableSize} nodes in the routing table\n`);
        else out.write('no bootstrap node answered yet; retrying in the background\n');
      } else {
        out.write('first node of a new mesh (no --bootstrap given)\n');
      }
      const status = opts.statusInterval > 0 ? setInterval(() => out.write(`${statusLine(node)}\n`), opts.statusInterval * 1000) : undefined;
      status?.unref();
      await signal;
      clearInterval(status);
      out.write('stopping…\n');
      await admin?.close();
      await node.stop();
      out.write('stopped\n');
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

function watchClients(node: MeshNode, logger: Logger): void {
  node.gateway.on('client', (c: { nodeId: string; address: PeerAddress }) => logger.debug(`client ${shortNodeId(c.nodeId)} connected from ${formatAddress(c.address)}`));
  node.gateway.on('client-closed', (c: { nodeId: string }) => logger.debug(`client ${shortNodeId(c.nodeId)} disconnected`));
  // Refusals are counted in the status line and `macula stats`; log at most one line per 10 s.
  let last = 0;
  let reported = 0;
  node.gateway.on('client-refused', () => {
    const now = Date.now();
    if (now - last < 10_000) return;
    last = now;
    const refused = node.gateway.stats().refused;
    logger.info(`refused ${refused - reported} client(s): this node serves its maximum of ${node.gateway.maxClients} clients (--max-clients)`);
    reported = refused;
  });
}
