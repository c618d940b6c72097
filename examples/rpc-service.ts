/**
 * An RPC service and its callers: three nodes over QUIC on 127.0.0.1; two
 * provide `math.add`, the third calls it (round-robin across providers,
 * failover when one stops). After `npm install`: node dist/examples/rpc-service.js
 */
import { createNode, Identity, type MeshNode } from '../src/index.js';

const quiet = { warn: () => {} };
const start = (bootstrap?: MeshNode) =>
  createNode({ port: 0, host: '127.0.0.1', identity: Identity.generate(), logger: quiet, ...(bootstrap ? { bootstrap: [bootstrap.listenAddress!] } : {}) });

const a = await start();
const b = await start(a);
const caller = await start(a);
await Promise.all([b.joined(), caller.joined()]);

for (const provider of [a, b]) {
  await provider.register('math.add', (args) => {
    const { x, y } = args as { x: number; y: number };
    if (typeof x !== 'number' || typeof y !== 'number') throw Object.assign(new Error('x and y must be numbers'), { code: 'MACULA_ERR_BAD_ARGS' });
    return { sum: x + y, by: provider.nodeId.slice(0, 8) };
  }, { idempotent: false });
}

console.log('providers:', (await caller.lookup('rpc:math.add')).map((p) => p.nodeId.slice(0, 8)).join(', '));
for (let i = 0; i < 4; i++) console.log(await caller.call('math.add', { x: i, y: 10 }, { timeout: 2000 }));
try {
  await caller.call('math.add', { x: 'one' });
} catch (err) {
  console.log(`remote error: ${(err as { code: string }).code}: ${(err as Error).message}`);
}

await b.stop(); // withdraws its registration; calls go to the remaining provider
caller.registry.invalidate('rpc:math.add');
console.log('after b stopped:', await caller.call('math.add', { x: 1, y: 1 }));
await caller.stop();
await a.stop();
