/**
 * The dependency rule of ARCHITECTURE.md, checked on the sources: every
 * import points to the same module or a lower one, and no file reaches
 * itself through its imports.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';
import { test } from 'node:test';

/** Lower numbers are lower layers; modules of one rank do not import each other. */
export const LAYERS: Readonly<Record<string, number>> = {
  util: 0,
  identity: 1,
  transport: 2,
  wire: 3,
  auth: 4,
  dht: 4,
  liveness: 4,
  session: 5,
  registry: 6,
  pubsub: 6,
  nat: 6,
  relay: 6,
  rpc: 7,
  gateway: 8,
  client: 9,
  web: 9,
  metrics: 10,
  node: 11,
  cli: 12,
  'index.ts': 13,
};

/** Imports that cross the rule on purpose, each with its reason. */
const ALLOWED: ReadonlyMap<string, string> = new Map([
  // The topic grammar is pure string functions (it imports only util): permissions
  // match topics with the same rules as subscriptions do.
  ['src/auth/permissions.ts -> src/pubsub/topic.ts', 'topic grammar'],
]);

const SRC = 'src';

function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...sourceFiles(p));
    else if (entry.name.endsWith('.ts')) out.push(p);
  }
  return out;
}

function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const out: string[] = [];
  for (const m of text.matchAll(/(?:import|export)\s[^;]*?from\s+'(\.[^']+)'/g)) {
    out.push(normalize(join(dirname(file), m[1]!.replace(/\.js$/, '.ts'))));
  }
  return out;
}

function moduleOf(file: string): string {
  return relative(SRC, file).split('/')[0]!;
}

const graph = new Map(sourceFiles(SRC).map((f) => [f, importsOf(f)]));

test('every import points to its own module or a lower layer', () => {
  const upward: string[] = [];
  for (const [file, imports] of graph) {
    const from = moduleOf(file);
    assert.ok(from in LAYERS, `${from} has no layer in this test (and in ARCHITECTURE.md)`);
    for (const target of imports) {
      const to = moduleOf(target);
      if (to === from || ALLOWED.has(`${file} -> ${target}`)) continue;
      if (!(LAYERS[to]! < LAYERS[from]!)) upward.push(`${file} -> ${target}`);
    }
  }
  assert.deepEqual(upward, []);
});

test('no import circle between files', () => {
  const state = new Map<string, 'open' | 'done'>();
  const circles: string[] = [];
  const visit = (file: string, path: string[]): void => {
    if (state.get(file) === 'done') return;
    if (state.get(file) === 'open') {
      circles.push([...path.slice(path.indexOf(file)), file].join(' -> '));
      return;
    }
    state.set(file, 'open');
    for (const next of graph.get(file) ?? []) visit(next, [...path, file]);
    state.set(file, 'done');
  };
  for (const file of graph.keys()) visit(file, []);
  assert.deepEqual(circles, []);
});

test('the check sees the imports it judges', () => {
  // Guards against a regex that silently matches nothing.
  assert.ok(graph.get('src/node/mesh-node.ts')!.includes('src/session/messenger.ts'));
  assert.ok(graph.size > 100);
});
