/**
 * Each command loads only the modules it needs: `--version` none of the
 * library (not even the command-line parser), `pub` the light client but
 * neither the node nor the credential library, `id` neither the transport
 * nor the client. Checked by recording every module the real process
 * resolves, through a module hook registered before the command starts.
 * Commands run from the bundle (dist/cli/): a chunk stands for the sources
 * its source map lists.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { after, describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import { BIN, runNode, unusedUdpPort } from '../helpers/cli.js';

const HOOKS = `import { appendFileSync } from 'node:fs';
export async function resolve(specifier, context, next) {
  const resolved = await next(specifier, context);
  appendFileSync(process.env.MACULA_TEST_MODULE_LOG, resolved.url + '\\n');
  return resolved;
}`;
const REGISTER = `import { register } from 'node:module'; register(${JSON.stringify(`data:text/javascript,${encodeURIComponent(HOOKS)}`)});`;

const dirs: string[] = [];
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

/** The sources a bundle chunk (a path relative to the package) was built from, relative to the package. */
async function sourcesOf(root: string, chunk: string): Promise<string[]> {
  const map = JSON.parse(await readFile(join(root, `${chunk}.map`), 'utf8')) as { sources: string[] };
  return map.sources.map((s) => relative(root, join(root, dirname(chunk), s)));
}

/**
 * Runs `macula <args>` and returns its exit code, the files it loaded
 * (`modules`, relative to the package, node: builtins left out) and what
 * they were built from (`sources`: a bundle chunk's sources, any other file itself).
 */
async function loadedBy(args: string[]): Promise<{ code: number | null; stderr: string; modules: string[]; sources: string[] }> {
  const dir = await mkdtemp(join(tmpdir(), 'macula-modules-'));
  dirs.push(dir);
  const log = join(dir, 'modules.log');
  const env = { MACULA_TEST_MODULE_LOG: log, MACULA_DATA_DIR: dir, XDG_CONFIG_HOME: dir, MACULA_CONTEXT: undefined };
  const { code, stderr } = await runNode(['--import', `data:text/javascript,${encodeURIComponent(REGISTER)}`, BIN, ...args], { env }, `macula ${args.join(' ')}`);
  const root = new URL('../', pathToFileURL(BIN)).href;
  const text = await readFile(log, 'utf8').catch(() => '');
  const modules = [...new Set(text.split('\n'))].filter((u) => u.startsWith(root)).map((u) => u.slice(root.length));
  const rootDir = dirname(dirname(BIN));
  const sources = (await Promise.all(modules.map((m) => (m.startsWith('dist/cli/') ? sourcesOf(rootDir, m) : [m])))).flat();
  return { code, stderr, modules, sources };
}

describe('macula: each command loads only what it needs', { timeout: 60_000 }, () => {
  it('--version loads neither the library nor the command-line parser', async () => {
    for (const flag of ['--version', '-V']) {
      const { code, modules, stderr } = await loadedBy([flag]);
      assert.equal(code, 0, stderr);
      assert.deepEqual(modules.sort(), ['bin/macula.js', 'dist/src/cli/version.js'], `${flag} loaded: ${modules.join(', ')}`);
    }
  });

  it('pub runs from the bundle and loads the client and transport, but not the node, the DHT or the credential library', async () => {
    // Nothing listens on the port: the command fails after loading what it needs.
    const { code, modules, sources } = await loadedBy(['pub', '--node', `127.0.0.1:${await unusedUdpPort()}`, '--connect-timeout', '2000', 'a.b', 'x']);
    assert.equal(code, 1);
    assert.ok(modules.includes('dist/cli/main.js'), modules.join(', '));
    const unbundled = modules.filter((m) => m !== 'bin/macula.js' && !m.startsWith('dist/cli/'));
    assert.deepEqual(unbundled, [], `pub loaded files outside the bundle: ${unbundled.join(', ')}`);
    assert.ok(sources.includes('src/client/client.ts'), sources.join(', '));
    assert.ok(sources.includes('src/transport/quic.ts'), sources.join(', '));
    const unneeded = sources.filter((m) => /^src\/(node|dht|gateway\/gateway|auth\/credential|metrics|cli\/commands\/start)|node_modules\/jose\//.test(m));
    assert.deepEqual(unneeded, [], `pub loaded ${unneeded.join(', ')}`);
  });

  it('id loads neither the transport nor the client', async () => {
    const { code, sources, stderr } = await loadedBy(['id']);
    assert.equal(code, 0, stderr);
    const unneeded = sources.filter((m) => /^src\/(transport|client|node|session)\//.test(m));
    assert.deepEqual(unneeded, [], `id loaded ${unneeded.join(', ')}`);
  });
});
