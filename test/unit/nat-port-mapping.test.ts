/**
 * The port mapper with a stand-in router (the refusals are hard to get from
 * a real one; test/integration/nat-port-mapping.test.ts maps against
 * Debian's miniupnpd).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { PortMapper, type MappingGateway } from '../../src/nat/port-mapping.js';

describe('port mapping', () => {
  it('maps the listen port through the router found and reports the public address; stop removes it', async () => {
    const calls: unknown[] = [];
    let stopSignal: AbortSignal | undefined;
    const gateway: MappingGateway = {
      async map(port, host, options) {
        calls.push({ port, host, protocol: options.protocol, externalPort: options.externalPort });
        return { externalHost: '203.0.113.7', externalPort: port };
      },
      async stop(options) {
        stopSignal = options.signal;
      },
    };
    const mapper = new PortMapper({ find: async () => ({ gateway, method: 'upnp' }) });
    let mapped: unknown;
    mapper.onMapped = (a) => (mapped = a);
    await mapper.start({ host: '192.168.1.20', port: 9443 });
    assert.deepEqual(calls, [{ port: 9443, host: '192.168.1.20', protocol: 'udp', externalPort: 9443 }]);
    assert.deepEqual(mapper.external, { host: '203.0.113.7', port: 9443 });
    assert.deepEqual(mapped, mapper.external);
    assert.equal(mapper.stats().state, 'mapped');
    assert.equal(mapper.stats().external, '203.0.113.7:9443');
    await mapper.stop();
    assert.ok(stopSignal instanceof AbortSignal && !stopSignal.aborted, 'stop gives the router a deadline to remove the mapping');
    assert.equal(mapper.external, undefined);
  });

  it('reports a failure without a router, and when the router refuses, and announces nothing', async () => {
    const none = new PortMapper({ find: async () => undefined });
    await none.start({ host: '192.168.1.20', port: 9443 });
    assert.equal(none.stats().state, 'failed');
    assert.match(none.stats().error!, /no UPnP or NAT-PMP router/);
    assert.equal(none.external, undefined);
    const refusing = new PortMapper({
      find: async () => ({ gateway: { map: async () => Promise.reject(new Error('ConflictInMappingEntry')), stop: async () => {} }, method: 'pmp' }),
    });
    await refusing.start({ host: '192.168.1.20', port: 9443 });
    assert.equal(refusing.stats().state, 'failed');
    assert.equal(refusing.stats().error, 'ConflictInMappingEntry');
  });

  it('runs on the router library as patched on install (it removes mappings on stop)', () => {
    const script = fileURLToPath(new URL('../../../scripts/patch-dependencies.mjs', import.meta.url));
    const r = spawnSync(process.execPath, [script, '--check'], { encoding: 'utf8' });
    assert.equal(r.status, 0, `${r.stderr}run \`node scripts/patch-dependencies.mjs\` (npm install runs it)`);
  });
});
