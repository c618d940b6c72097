/**
 * Embedding Macula: two nodes in one process over real QUIC on 127.0.0.1.
 * Run after `npm install`: node dist/examples/embed.js
 */
import { createNode, Identity } from '../src/index.js';

const a = await createNode({ port: 0, host: '127.0.0.1', identity: Identity.generate() });
const b = await createNode({ port: 0, host: '127.0.0.1', identity: Identity.generate(), bootstrap: [a.listenAddress!] });
console.log(`node A ${a.nodeId.slice(0, 12)} on ${a.listenAddress!.host}:${a.listenAddress!.port}`);
console.log(`node B ${b.nodeId.slice(0, 12)} on ${b.listenAddress!.host}:${b.listenAddress!.port}`);
const rtt = await b.ping(a.listenAddress!, a.nodeId);
console.log(`B → A ping: ${rtt.toFixed(2)} ms`);
await b.stop();
await a.stop();
