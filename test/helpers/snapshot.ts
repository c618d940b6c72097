/**
 * A node's snapshot in its real shape, for the stand-in nodes of metrics
 * and health tests: a node that was never started (nothing listens, no
 * timer runs), so every section is there with its idle values; a test sets
 * the sections it checks.
 */
import { Identity } from '../../src/identity/identity.js';
import type { NodeSnapshot } from '../../src/metrics/node-sources.js';
import { MeshNode } from '../../src/node/mesh-node.js';
import { MemoryNetwork } from '../../src/transport/memory.js';

export function idleSnapshot(): NodeSnapshot {
  return new MeshNode(Identity.generate(), { memoryNetwork: new MemoryNetwork() }).snapshot();
}
