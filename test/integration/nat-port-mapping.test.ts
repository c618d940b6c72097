/**
 * Port mapping against real routers: both routers of NatTopology run
 * Debian's miniupnpd (test/helpers/miniupnpd.ts), the first with UPnP IGD
 * and NAT-PMP, the second with NAT-PMP only, and the node behind each is a
 * `macula start --port-mapping` process. Each must get its listen port
 * mapped on its router's WAN address (by UPnP, and by NAT-PMP where UPnP
 * does not answer), pass the reachability check as `public` (no relays),
 * announce the mapped address, and serve a procedure that a node on the
 * public segment calls over a direct connection to that address. Stopped
 * cleanly, each must remove its mapping from its router.
 *
 * The public segment is 11.203.0.0/24: miniupnpd refuses to map on a WAN
 * address in a private or reserved range. The namespaces have no route out,
 * so the range collides with nothing.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { BIN } from '../helpers/cli.js';
import { Miniupnpd, miniupnpdUnavailable } from '../helpers/miniupnpd.js';
import { NatTopology, natTopologyUnavailable, poll, type NatHost } from '../helpers/nat-topology.js';
import { NsMacula, runMaculaIn } from '../helpers/netns.js';

const unavailable = natTopologyUnavailable() ?? miniupnpdUnavailable();

interface NatStats {
  nat: {
    reachability: { status: string };
    advertised: string;
    relays: { relays: string[] } | undefined;
    portMapping: { state: string; external?: string; method?: string; error?: string } | undefined;
  };
}

interface Started {
  at: NatHost;
  proc: NsMacula;
  nodeId: string;
  port: string;
  address: string;
}

describe('behind UPnP / NAT-PMP routers: port mapping makes private nodes public', { skip: unavailable ?? false, timeout: 120_000 }, () => {
  let topo: NatTopology | undefined;
  const routers: Miniupnpd[] = [];
  const procs: NsMacula[] = [];
  const dirs: string[] = [];
  let pub: Started;
  const behind: { method: string; router: Miniupnpd; wan: string; node: Started }[] = [];

  async function start(at: NatHost, extra: string[]): Promise<Started> {
    const dir = await mkdtemp(join(tmpdir(), 'macula-upnp-'));
    dirs.push(dir);
    const proc = new NsMacula(at.ns, ['start', '--port', '0', '--data-dir', dir, '--status-interval', '0', ...extra]);
    procs.push(proc);
    const [, nodeId] = await proc.waitFor(/macula node ([0-9a-f]{64})/, 20_000);
    const [, port] = await proc.waitFor(/listening [\d.]+:(\d+)\/udp/, 20_000);
    return { at, proc, nodeId: nodeId!, port: port!, address: `${at.host}:${port}` };
  }

  async function stats(at: NatHost, node: string): Promise<NatStats> {
    const r = await runMaculaIn(BIN, at.ns, ['stats', '--json', '--node', node]);
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout) as NatStats;
  }

  before(async () => {
    topo = NatTopology.create({ publicPrefix: '11.203.0' });
    routers.push(await Miniupnpd.start(topo.rt1, '192.168.31.0/24'));
    routers.push(await Miniupnpd.start(topo.rt2, '192.168.32.0/24', { upnp: false }));
    const first = await start(topo.pub1, []);
    pub = await start(topo.pub2, ['--bootstrap', first.address]);
    behind.push({ method: 'upnp', router: routers[0]!, wan: topo.wan1, node: await start(topo.priv1, ['--bootstrap', first.address, '--port-mapping']) });
    behind.push({ method: 'pmp', router: routers[1]!, wan: topo.wan2, node: await start(topo.priv2, ['--bootstrap', first.address, '--port-mapping']) });
  });

  after(async () => {
    for (const p of procs) p.kill('SIGKILL');
    await Promise.all(procs.map((p) => p.exited));
    for (const r of routers) await r.stop();
    topo?.destroy();
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  it('each node maps its port on its router (UPnP; NAT-PMP where UPnP is off), finds itself public and announces the mapped address', async (t) => {
    for (const { method, router, wan, node } of behind) {
      const external = `${wan}:${node.port}`;
      const s = await poll(async () => {
        const s = await stats(node.at, node.address);
        return s.nat.reachability.status === 'public' && s.nat.advertised === external && s;
      }, 40_000, () => `${node.at.ns} did not become public at ${external}: ${node.proc.stderr}\nminiupnpd: ${router.log}`);
      assert.deepEqual(s.nat.portMapping && { state: s.nat.portMapping.state, external: s.nat.portMapping.external, method: s.nat.portMapping.method }, { state: 'mapped', external, method });
      assert.deepEqual(s.nat.relays?.relays ?? [], [], 'a public node keeps no relays');
      const { nat, filter } = router.mappings();
      assert.match(nat, new RegExp(`DNAT .*udp dpt:${node.port}\\b`), nat);
      assert.match(filter, new RegExp(`ACCEPT .*${node.at.host.replaceAll('.', '\\.')} +udp dpt:${node.port}\\b`), filter);
      // The library's default lease, an hour (its ttl option is in milliseconds; NAT-PMP's lifetime in seconds).
      if (method === 'pmp') assert.match(router.log, new RegExp(`->${node.at.host.replaceAll('.', '\\.')}:${node.port} udp lifetime=3600s`), router.log);
      t.diagnostic(`${node.at.ns}: mapped by ${method} to ${external}; the router's MINIUPNPD chains:\n${nat.trimEnd()}\n${filter.trimEnd()}`);
    }
  });

  it('a public node looks each service up at the mapped address and calls it directly', async () => {
    for (const { wan, node } of behind) {
      const name = `upnp.echo.${node.port}`;
      const serve = new NsMacula(node.at.ns, ['serve', name, '--node', node.address, '--', 'cat']);
      procs.push(serve);
      await serve.waitForStderr(/serving upnp\.echo\.\d+ through/, 20_000);
      const external = `${wan}:${node.port}`;
      await poll(async () => {
        const lookup = await runMaculaIn(BIN, pub.at.ns, ['lookup', `rpc:${name}`, '--json', '--node', pub.address]);
        assert.equal(lookup.code, 0, lookup.stderr);
        const providers = JSON.parse(lookup.stdout) as { nodeId: string; address: { host: string; port: number } }[];
        const p = providers.find((x) => x.nodeId === node.nodeId);
        return p !== undefined && `${p.address.host}:${p.address.port}` === external;
      }, 20_000, () => `rpc:${name} is not announced at ${external}`);
      const r = await runMaculaIn(BIN, pub.at.ns, ['call', name, JSON.stringify({ hello: node.at.ns }), '--node', pub.address, '--timeout', '10000'], { timeoutMs: 25_000 });
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(JSON.parse(r.stdout), { hello: node.at.ns });
    }
  });

  it('a node stopped cleanly removes its mapping from the router (UPnP and NAT-PMP)', async (t) => {
    for (const { method, router, node } of behind) {
      node.proc.kill('SIGTERM');
      const { code } = await node.proc.waitForExit(20_000);
      assert.equal(code, 0, node.proc.stderr);
      // The DNAT (nat) and ACCEPT (filter) rules of the node's port, as the first test found them.
      const forwards = () => {
        const { nat, filter } = router.mappings();
        return `${nat}${filter}`.split('\n').filter((line) => new RegExp(`udp dpt:${node.port}\\b`).test(line));
      };
      await poll(() => forwards().length === 0, 10_000, () => `${method}: the router still forwards port ${node.port} after the node stopped:\n${forwards().join('\n')}\nminiupnpd: ${router.log}`);
      const said = router.log.split('\n').filter((line) => new RegExp(`DeletePortMapping|remov.*\\b${node.port}\\b|\\b${node.port}\\b.*lifetime=0`, 'i').test(line));
      t.diagnostic(`${node.at.ns}: the ${method} mapping of port ${node.port} is gone from the router; miniupnpd:\n${said.join('\n')}`);
    }
  });
});
