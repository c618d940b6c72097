/**
 * Embedding Macula: two nodes in one process over real QUIC on 127.0.0.1.
 * After `npm install`: node dist/examples/embed.js
 */
import { createNode, dhtKey, Identity } from '../src/index.js';

const a = await createNode({ port: 0, host: '127.0.0.1', identity: Identity.generate() });
const b = await createNode({ port: 0, host: '127.0.0.1', identity: Identity.generate(), bootstrap: [a.listenAddress!] });
await b.joined();
console.log(`node A ${a.nodeId.slice(0, 12)} on ${a.listenAddress!.host}:${a.listenAddress!.port}`);
console.log(`node B ${b.nodeId.slice(0, 12)} on ${b.listenAddress!.host}:${b.listenAddress!.port}`);
console.log(`B → A ping: ${(await b.ping(a.listenAddress!, a.nodeId)).toFixed(2)} ms`);

const key = dhtKey('example', 'greeting');
await a.dht.put(key, new TextEncoder().encode('hello from A'), { ttlMs: 60_000 });
const { records } = await b.dht.findValue(key);
console.log(`B found ${records.length} record(s): ${records.map((r) => new TextDecoder().decode(r.value)).join(', ')}`);

await b.stop();
await a.stop();
