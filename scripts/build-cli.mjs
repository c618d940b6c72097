#!/usr/bin/env node
// Bundles the `macula` command (run by `npm run build`, `npm start`, `prepare`
// and scripts/run-tests.mjs, after tsc) from the compiled dist/src/cli/main.js into
// dist/cli/: our modules and the pure-JS packages every short command needs
// (commander, cbor-x, lru-cache) become a few files, so a command like
// `macula pub` no longer resolves and compiles some sixty modules one by one.
// Code splitting keeps each command a chunk imported only when it runs.
import { build } from 'esbuild';
import { readFile, rename, rm } from 'node:fs/promises';
import { dirname, relative, resolve } from 'node:path';

const outdir = 'dist/cli';
const pkg = JSON.parse(await readFile('package.json', 'utf8'));
const BUNDLED = new Set(['commander', 'cbor-x', 'lru-cache']);
// Everything else stays a package import: the native addons (QUIC, WebTransport)
// and the packages only the node itself loads. (cbor-x is used through its
// `encode`/`decode` entry points, which never load its optional cbor-extract.)
const external = Object.keys({ ...pkg.dependencies, ...pkg.optionalDependencies, ...pkg.peerDependencies }).filter((name) => !BUNDLED.has(name));

/**
 * Code that finds files next to itself (package.json, the web gateway's
 * static files, native addons through createRequire) keeps doing so: in the
 * bundle each module's `import.meta.url` is the URL its own file had, made
 * relative to the chunk so the package can still be moved.
 */
const ownUrls = {
  name: 'own-import-meta-url',
  setup(b) {
    b.onLoad({ filter: /\.js$/ }, async (args) => {
      const text = await readFile(args.path, 'utf8');
      if (!text.includes('import.meta.url')) return undefined;
      const rel = relative(resolve(outdir), args.path).split('\\').join('/');
      return {
        contents: text.replaceAll('import.meta.url', `new URL(${JSON.stringify(rel)}, import.meta.url).href`),
        loader: 'js',
        resolveDir: dirname(args.path),
      };
    });
  },
};

// Built aside, then swapped in whole: a `macula` started meanwhile (tests running
// in parallel) never finds a half-written bundle.
const staging = `${outdir}.${process.pid}`;
const old = `${staging}.old`;
await build({
  entryPoints: { main: 'dist/src/cli/main.js' },
  outdir: staging,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  external,
  keepNames: true,
  sourcemap: 'linked',
  legalComments: 'none',
  logLevel: 'warning',
  // Bundled CommonJS (commander) calls `require` for Node's modules; an ES
  // module has none, so each chunk makes one.
  banner: { js: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);" },
  plugins: [ownUrls],
});
await rename(outdir, old).catch((err) => {
  if (err.code !== 'ENOENT') throw err;
});
await rename(staging, outdir).catch(async (err) => {
  // Another build put its bundle of the same sources in place meanwhile.
  if (err.code !== 'ENOTEMPTY' && err.code !== 'EEXIST') throw err;
  await rm(staging, { recursive: true, force: true });
});
await rm(old, { recursive: true, force: true });
