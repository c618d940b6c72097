import { Command } from 'commander';
import { formatAddress } from '../../transport/types.js';
import { addClientOptions, connectClient, type ClientOptions } from '../options.js';
import { formatDuration, table, toJson, writeOut } from '../output.js';

interface PeersOptions extends ClientOptions {
  json?: boolean;
}

export function registerPeers(program: Command): void {
  const cmd = program
    .command('peers')
    .description("show the node's routing table and its open connections")
    .option('--json', 'print {contacts, connections, truncated} as JSON');
  addClientOptions(cmd).action(async (opts: PeersOptions) => {
    const client = await connectClient(opts);
    try {
      const peers = await client.peers();
      if (opts.json) return await writeOut(`${toJson(peers, 2)}\n`);
      const now = Date.now();
      const lines: string[] = [];
      lines.push(`routing table: ${peers.contacts.length + peers.truncated.contacts} contact${peers.contacts.length === 1 ? '' : 's'}`);
      if (peers.contacts.length > 0) {
        const rows = [['NODE', 'ADDRESS', 'LAST SEEN', 'FAILED']];
        for (const c of peers.contacts) rows.push([c.nodeId, formatAddress(c), `${formatDuration((now - c.lastSeen) / 1000)} ago`, String(c.fails)]);
        lines.push(table(rows, { indent: '  ' }));
      }
      // The connection this command itself uses is among them, as a client.
      lines.push(`connections: ${peers.connections.length + peers.truncated.connections}`);
      if (peers.connections.length > 0) {
        const rows = [['NODE', 'ROLE', 'ADDRESS', 'DIRECTION', 'RTT']];
        for (const c of peers.connections) {
          rows.push([c.nodeId, c.role, c.role === 'client' ? c.address.host : formatAddress(c.address), c.direction, c.rttMs > 0 ? `${c.rttMs} ms` : '—']);
        }
        lines.push(table(rows, { indent: '  ' }));
      }
      if (peers.truncated.contacts + peers.truncated.connections > 0) lines.push('(lists truncated; use --json for the counts)');
      await writeOut(`${lines.join('\n')}\n`);
    } finally {
      await client.close();
    }
  });
}
