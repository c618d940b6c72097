/**
 * A public node of the NAT test (test/integration/nat.test.ts), run in its
 * namespace as `node nat-node.js <json options>`: a real MeshNode over QUIC
 * (the same node `macula start` runs, gateway included, so `macula` client
 * commands work against it), whose relay forwarder is instrumented: it
 * counts the bytes it forwards and the payloads holding the test's
 * plaintext marker. It prints `node <id> <host:port>` once, then a JSON line
 * `{ reachability, forwarded, leaks, ... }` whenever one of them changes.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadOrCreateIdentity } from '../../src/identity/identity.js';
import { MeshNode } from '../../src/node/mesh-node.js';
import { formatAddress, parseAddress } from '../../src/transport/types.js';

const { host, bootstrap, marker } = JSON.parse(process.argv[2] ?? '{}') as { host: string; bootstrap?: string; marker: string };
const { identity } = await loadOrCreateIdentity(mkdtempSync(join(tmpdir(), 'macula-nat-node-')));
const node = new MeshNode(identity, {
  host,
  port: 0,
  bootstrap: bootstrap ? [parseAddress(bootstrap)] : [],
  logger: { warn: () => {} },
});
let forwarded = 0;
let leaks = 0;
await node.start();
node.relayServer!.onForward = (payload) => {
  forwarded += payload.length;
  if (Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength).includes(marker)) leaks++;
};
process.stdout.write(`node ${node.nodeId} ${formatAddress(node.listenAddress!)}\n`);
let last = '';
setInterval(() => {
  const relay = node.relayServer!.stats();
  const line = JSON.stringify({ reachability: node.reachability!.status, forwarded, leaks, reservations: relay.reservations, circuits: relay.circuitsOpened });
  if (line !== last) process.stdout.write(`${line}\n`);
  last = line;
}, 200);
process.on('SIGTERM', () => void node.stop().then(() => process.exit(0)));
