import { Command, Option } from 'commander';
import { defaultDataDir, loadOrCreateIdentity } from '../../identity/identity.js';
import { DEFAULT_PORT, MeshNode } from '../../node/mesh-node.js';
import { formatAddress } from '../../transport/types.js';
import { collectHostPorts, parsePort } from '../options.js';

interface StartOptions {
  port: number;
  host: string;
  dataDir: string;
  bootstrap?: import('../../transport/types.js').PeerAddress[];
  realm: string;
}

export function registerStart(program: Command): void {
  program
    .command('start')
    .description('run a mesh node in the foreground (Ctrl-C stops it cleanly)')
    .addOption(new Option('-p, --port <port>', 'UDP port to listen on (0 picks a free port)').env('MACULA_PORT').default(DEFAULT_PORT).argParser(parsePort))
    .addOption(new Option('--host <address>', 'address to bind').env('MACULA_HOST').default('0.0.0.0'))
    .addOption(new Option('-d, --data-dir <dir>', 'where the node key is kept').env('MACULA_DATA_DIR').default(defaultDataDir(), 'per-user data dir'))
    .addOption(new Option('-b, --bootstrap <host:port>', 'join the mesh through this node (repeatable, or comma-separated)').env('MACULA_BOOTSTRAP').argParser(collectHostPorts))
    .addOption(new Option('-r, --realm <name>', 'mesh realm: nodes only talk within one realm').env('MACULA_REALM').default('default'))
    .action(async (opts: StartOptions) => {
      // Listen for signals before anything else, so a Ctrl-C during start-up still stops cleanly.
      const signal = waitForSignal();
      const { identity, created } = await loadOrCreateIdentity(opts.dataDir);
      const node = new MeshNode(identity, {
        port: opts.port,
        host: opts.host,
        realm: opts.realm,
        bootstrap: opts.bootstrap ?? [],
      });
      await node.start();
      const listen = node.listenAddress!;
      const out = process.stdout;
      out.write(`macula node ${node.nodeId}${created ? ' (new identity)' : ''}\n`);
      out.write(`  realm     ${node.realm}\n`);
      out.write(`  listening ${formatAddress(listen)}/udp (QUIC)\n`);
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
      await signal;
      out.write('stopping…\n');
      await node.stop();
      out.write('stopped\n');
    });
}

function waitForSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const onSignal = (sig: NodeJS.Signals) => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      resolve(sig);
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });
}
