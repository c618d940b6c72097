#!/usr/bin/env node
// Runs every compiled test file (dist/test/**/*.test.js) with node:test, after bundling the CLI.
// Usage: node scripts/run-tests.mjs [filter...]  (filters match file paths)
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

function find(dir) {
  let out = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    if (entry.isDirectory()) out = out.concat(find(p));
    else if (entry.name.endsWith('.test.js')) out.push(p);
  }
  return out;
}

const filters = process.argv.slice(2);
const files = find('dist/test').sort().filter((f) => filters.length === 0 || filters.some((x) => f.includes(x)));
if (files.length === 0) {
  console.error('no test files found under dist/test (did the build run?)');
  process.exit(1);
}
// The CLI tests run bin/macula.js, that is the bundle in dist/cli/: rebuild it when tsc
// emitted since (or its build changed), so a build that ran only tsc never tests a stale bundle.
function bundleIsStale() {
  if (!existsSync('dist/cli/main.js')) return true;
  const built = statSync('dist/cli/main.js').mtimeMs;
  return ['dist/.tsbuildinfo', 'scripts/build-cli.mjs', 'package.json'].some((f) => existsSync(f) && statSync(f).mtimeMs > built);
}
if (bundleIsStale()) {
  const bundled = spawnSync(process.execPath, ['scripts/build-cli.mjs'], { stdio: 'inherit' });
  if (bundled.status !== 0) process.exit(bundled.status ?? 1);
}
// Integration tests start many nodes; two files at a time keeps 2 cores busy without starving timers.
const concurrency = process.env.MACULA_TEST_CONCURRENCY ?? '2';
const args = ['--test', `--test-concurrency=${concurrency}`, '--test-timeout=300000', ...files];
const result = spawnSync(process.execPath, args, { stdio: 'inherit' });
process.exit(result.status ?? 1);
