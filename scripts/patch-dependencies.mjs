#!/usr/bin/env node
// Fixes bugs of pinned dependencies in place, as `postinstall` (so after `npm ci`
// and `npm install`, ours or a user's), until their releases fix them. Each
// patch is a list of exact replacements for one version of one package; a file
// already patched is marked and left alone, so running this again changes nothing.
// Usage: node scripts/patch-dependencies.mjs [--check]
//   --check: change nothing, exit 1 if a patch is not applied.
// Without --check it never fails an install: a package not found (not
// installed, another layout) or of another version is reported and skipped.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';

/**
 * @achingbrain/nat-port-mapper 4.0.5 (the latest release) leaves mappings on
 * the router when asked to remove them (macula's `--port-mapping` stop):
 * - UPnP: DeletePortMapping goes out with an empty NewProtocol and the
 *   internal port as external port; miniupnpd 2.3.1 answers it but removes
 *   nothing. It now names the mapping's protocol, remote host and the external
 *   port the router reserved (AddAnyPortMapping may pick another).
 * - UPnP over IPv6: the refresh timer is kept on a copy of the pinhole, so
 *   unmapping never cancels it.
 * - NAT-PMP: unmap() re-maps with lifetime 0 as TCP (the default protocol),
 *   with a refresh scheduled, and does not cancel the mapping's own refresh;
 *   stop() marks the socket closed before unmapping, so the deletion is never
 *   sent. Deletion now goes out with the mapping's protocol and lifetime 0
 *   (external port 0, as RFC 6886 asks), cancels the refresh, and stop()
 *   deletes before it closes the socket.
 * - NAT-PMP: the lifetime asked for is the `ttl` option, in milliseconds, sent
 *   as seconds: an hour's mapping became 41 days on the router, the time a
 *   node that never stops cleanly leaves its forward behind. It is now sent
 *   in seconds (the renewal was already timed in milliseconds).
 */
const NAT_PORT_MAPPER = {
  name: '@achingbrain/nat-port-mapper',
  version: '4.0.5',
  unpatched: 'port mappings may stay on the router after stop',
  files: {
    'dist/src/upnp/internet-gateway-service-4.js': [
      [
        `        const key = findNamespacedKey('AddAnyPortMappingResponse', response);
`,
        `        const key = findNamespacedKey('AddAnyPortMappingResponse', response);
        mapping.externalPort = \`\${response[key].NewReservedPort}\`;
`,
      ],
      [
        `                    ['NewRemoteHost', ''],
                    ['NewExternalPort', localPort],
                    ['NewProtocol', '']
`,
        `                    ['NewRemoteHost', mapping.remoteHost],
                    ['NewExternalPort', mapping.externalPort],
                    ['NewProtocol', mapping.protocol]
`,
      ],
    ],
    'dist/src/upnp/internet-gateway-service-6.js': [
      [
        `        this.addMapping(localPort, {
            ...mapping,
            uniqueId: Number(response[key].UniqueID)
        });
`,
        `        mapping.uniqueId = Number(response[key].UniqueID);
        this.addMapping(localPort, mapping);
`,
      ],
    ],
    'dist/src/pmp/gateway.js': [
      [
        `    refreshIntervals;
    constructor(gateway, options = {}) {
`,
        `    refreshIntervals;
    mappedProtocols;
    constructor(gateway, options = {}) {
`,
      ],
      [
        `        this.refreshIntervals = new Map();
`,
        `        this.refreshIntervals = new Map();
        this.mappedProtocols = new Map();
`,
      ],
      [
        `        const result = await raceSignal(deferred.promise, opts?.signal);
        if (options.autoRefresh) {
`,
        `        const result = await raceSignal(deferred.promise, opts?.signal);
        this.mappedProtocols.set(localPort, opcode);
        if (options.autoRefresh) {
`,
      ],
      [
        `        await this.map(localPort, '', {
            ...opts,
            description: '',
            ttl: 0
        });
`,
        `        clearTimeout(this.refreshIntervals.get(localPort));
        this.refreshIntervals.delete(localPort);
        const opcode = this.mappedProtocols.get(localPort);
        this.mappedProtocols.delete(localPort);
        if (opcode == null) {
            return;
        }
        const deferred = defer();
        this.request(opcode, deferred, localPort, { ttl: 0, externalPort: 0 });
        await raceSignal(deferred.promise, opts?.signal);
`,
      ],
      [
        `                ttl = Number(obj.ttl ?? this.options.ttl ?? 0);
`,
        `                ttl = Math.round(Number(obj.ttl ?? this.options.ttl ?? 0) / 1000);
`,
      ],
      [
        `        log('Client#close()');
        this.queue = [];
`,
        `        log('Client#close()');
        await Promise.all([...this.mappedProtocols.keys()].map(async (port) => {
            await this.unmap(port, options).catch(err => {
                log.error('could not unmap port %d - %e', port, err);
            });
        }));
        this.queue = [];
`,
      ],
      [
        `        await Promise.all([...this.refreshIntervals.entries()].map(async ([port, timeout]) => {
            clearTimeout(timeout);
            await this.unmap(port, options);
        }));
        this.refreshIntervals.clear();
`,
        `        this.refreshIntervals.clear();
`,
      ],
    ],
  },
};

const PATCHES = [NAT_PORT_MAPPER];

/** The package's directory as this package would resolve it, or undefined. */
function packageDir(name) {
  const paths = createRequire(import.meta.url).resolve.paths(name) ?? [];
  return paths.map((p) => join(p, name)).find((dir) => existsSync(join(dir, 'package.json')));
}

/**
 * The first line of a patched file names the replacements made: a file that
 * has it is not patched again; one patched with other replacements (an older
 * macula) is patched anew from the original kept beside it (`<file>.orig`).
 */
const MARK = '// Patched on install by macula (scripts/patch-dependencies.mjs';
const mark = (replacements) => `${MARK}, ${createHash('sha256').update(JSON.stringify(replacements)).digest('hex').slice(0, 12)}).\n`;

/**
 * Applies (or with `check`, only checks) one patch; returns what is wrong, or
 * undefined. A file is patched whole or not at all: each replaced text must be
 * found exactly once.
 */
function apply(patch, check) {
  const dir = packageDir(patch.name);
  if (dir === undefined) return `${patch.name} is not installed`;
  const { version } = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
  if (version !== patch.version) return `${patch.name} is ${version}; the fix is for ${patch.version}`;
  for (const [file, replacements] of Object.entries(patch.files)) {
    const path = join(dir, file);
    const text = readFileSync(path, 'utf8');
    if (text.startsWith(mark(replacements))) continue;
    if (check) return `${path} is not patched`;
    if (text.startsWith(MARK) && !existsSync(`${path}.orig`)) return `${path} was patched otherwise and its original is gone: reinstall ${patch.name}`;
    const original = text.startsWith(MARK) ? readFileSync(`${path}.orig`, 'utf8') : text;
    let patched = original;
    for (const [from, to] of replacements) {
      if (patched.split(from).length !== 2) return `${path} does not read as expected; left unpatched`;
      patched = patched.replace(from, () => to);
    }
    if (original === text) writeFileSync(`${path}.orig`, original);
    // A new file renamed over the old one: a package whose files are hard links
    // into a shared store (pnpm) is changed here only, not in every project.
    writeFileSync(`${path}.tmp`, mark(replacements) + patched);
    renameSync(`${path}.tmp`, path);
  }
  return undefined;
}

const check = process.argv.includes('--check');
let failed = false;
for (const patch of PATCHES) {
  let problem;
  try {
    problem = apply(patch, check);
  } catch (err) {
    problem = `${patch.name} could not be patched: ${err.message}`;
  }
  if (problem === undefined) continue;
  failed = true;
  console.warn(`macula: ${problem} (${patch.unpatched})`);
}
if (check && failed) process.exit(1);
