#!/usr/bin/env node
// Bundles what the web gateway serves (run by `npm run build`, `npm test` and
// `prepare`): the browser client library and the dashboard (with uPlot), into
// dist/src/web/static/. Nothing is fetched at run time; the user needs no build step.
import { build } from 'esbuild';
import { copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';

const out = 'dist/src/web/static';
await mkdir(out, { recursive: true });
const common = {
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: 'es2022',
  legalComments: 'none',
  logLevel: 'warning',
  // The package's polyfill probes the browser's WebTransport by dialing an outside host
  // when loaded; the ponyfill used here does not need that probe.
  define: { 'globalThis.WebTransport': 'undefined' },
};
await build({ ...common, entryPoints: ['src/web/client/browser.ts'], outfile: `${out}/macula-client.js` });
await build({ ...common, entryPoints: ['src/web/dashboard/dashboard.js'], outfile: `${out}/dashboard.js` });
await copyFile('src/web/dashboard/index.html', `${out}/index.html`);
const css = [await readFile('node_modules/uplot/dist/uPlot.min.css', 'utf8'), await readFile('src/web/dashboard/dashboard.css', 'utf8')];
await writeFile(`${out}/dashboard.css`, css.join('\n'));
