/**
 * A NAT topology in network namespaces of the test's own making:
 *
 *   public segment 10.203.0.0/24 (by default), a bridge in namespace `sw`:
 *     pub1 .11, pub2 .12, pub3 .13 (public nodes, one namespace each)
 *     rt1 .21 and rt2 .22 (routers' WAN side)
 *   rt1 ── 192.168.31.0/24 ── priv1 (.2)     rt2 ── 192.168.32.0/24 ── priv2 (.2)
 *
 * Each router forwards and masquerades its LAN behind its WAN address
 * (iptables MASQUERADE), as a home router does: the private nodes can dial
 * out, nobody can dial in, and the public side has no route to the LANs.
 * The public segment's first three octets can be chosen (`publicPrefix`):
 * a router running miniupnpd needs a WAN address outside the private and
 * reserved ranges, or it refuses to map ports.
 * Needs root, `ip` and `iptables`; only the namespaces are touched.
 */
import { spawnSync } from 'node:child_process';
import { netnsUnavailable, removeStaleNamespaces, run } from './netns.js';

const NS_PATTERN = /^macn-[a-z0-9]+-(\d+)$/;

export interface NatHost {
  ns: string;
  /** The address a node in this namespace binds and listens on. */
  host: string;
}

/** Why the topology cannot be made here, or undefined when it can. */
export function natTopologyUnavailable(): string | undefined {
  const base = netnsUnavailable();
  if (base) return base;
  const r = spawnSync('iptables', ['--version'], { stdio: 'ignore' });
  if (r.error !== undefined || r.status !== 0) return 'iptables is not installed (Debian package iptables)';
  return undefined;
}

export class NatTopology {
  readonly pub1: NatHost;
  readonly pub2: NatHost;
  readonly pub3: NatHost;
  readonly priv1: NatHost;
  readonly priv2: NatHost;
  /** The routers' WAN addresses: what the public side sees the private nodes' packets come from. */
  readonly wan1: string;
  readonly wan2: string;
  /** The routers' namespaces (their WAN device is `wan`, their LAN device `lan`). */
  readonly rt1: string;
  readonly rt2: string;
  readonly #namespaces: string[];

  private constructor(namespaces: string[], ns: (role: string) => string, pub: string) {
    this.#namespaces = namespaces;
    this.pub1 = { ns: ns('pub1'), host: `${pub}.11` };
    this.pub2 = { ns: ns('pub2'), host: `${pub}.12` };
    this.pub3 = { ns: ns('pub3'), host: `${pub}.13` };
    this.wan1 = `${pub}.21`;
    this.wan2 = `${pub}.22`;
    this.rt1 = ns('rt1');
    this.rt2 = ns('rt2');
    this.priv1 = { ns: ns('priv1'), host: '192.168.31.2' };
    this.priv2 = { ns: ns('priv2'), host: '192.168.32.2' };
  }

  static create(options: { publicPrefix?: string } = {}): NatTopology {
    const pub = options.publicPrefix ?? '10.203.0';
    removeStaleNamespaces(NS_PATTERN);
    const pid = process.pid;
    const ns = (role: string) => `macn-${role}-${pid}`;
    const made: string[] = [];
    const ip = (...args: string[]) => run('ip', args);
    const inNs = (name: string, cmd: string, ...args: string[]) => run('ip', ['netns', 'exec', name, cmd, ...args]);
    try {
      for (const role of ['sw', 'pub1', 'pub2', 'pub3', 'rt1', 'rt2', 'priv1', 'priv2']) {
        ip('netns', 'add', ns(role));
        made.push(ns(role));
        ip('-n', ns(role), 'link', 'set', 'lo', 'up');
      }
      const sw = ns('sw');
      ip('-n', sw, 'link', 'add', 'br0', 'type', 'bridge');
      ip('-n', sw, 'link', 'set', 'br0', 'up');
      // One veth per host on the public segment, its far end in the bridge.
      const attach = (role: string, dev: string, addr: string) => {
        const port = `p${role}`;
        ip('link', 'add', dev, 'netns', ns(role), 'type', 'veth', 'peer', 'name', port, 'netns', sw);
        ip('-n', sw, 'link', 'set', port, 'master', 'br0');
        ip('-n', sw, 'link', 'set', port, 'up');
        ip('-n', ns(role), 'addr', 'add', `${addr}/24`, 'dev', dev);
        ip('-n', ns(role), 'link', 'set', dev, 'up');
      };
      attach('pub1', 'eth0', `${pub}.11`);
      attach('pub2', 'eth0', `${pub}.12`);
      attach('pub3', 'eth0', `${pub}.13`);
      attach('rt1', 'wan', `${pub}.21`);
      attach('rt2', 'wan', `${pub}.22`);
      for (const [rt, priv, net] of [['rt1', 'priv1', '31'], ['rt2', 'priv2', '32']] as const) {
        ip('link', 'add', 'lan', 'netns', ns(rt), 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns(priv));
        ip('-n', ns(rt), 'addr', 'add', `192.168.${net}.1/24`, 'dev', 'lan');
        ip('-n', ns(priv), 'addr', 'add', `192.168.${net}.2/24`, 'dev', 'eth0');
        ip('-n', ns(rt), 'link', 'set', 'lan', 'up');
        ip('-n', ns(priv), 'link', 'set', 'eth0', 'up');
        ip('-n', ns(priv), 'route', 'add', 'default', 'via', `192.168.${net}.1`);
        inNs(ns(rt), 'sysctl', '-qw', 'net.ipv4.ip_forward=1');
        inNs(ns(rt), 'iptables', '-t', 'nat', '-A', 'POSTROUTING', '-o', 'wan', '-j', 'MASQUERADE');
      }
      return new NatTopology(made, ns, pub);
    } catch (err) {
      for (const name of made.reverse()) spawnSync('ip', ['netns', 'del', name], { stdio: 'ignore' });
      throw err;
    }
  }

  /** Deletes the namespaces (and with them links, bridge and NAT rules); never throws. */
  destroy(): void {
    for (const name of this.#namespaces) spawnSync('ip', ['netns', 'del', name], { stdio: 'ignore' });
  }
}

/** Polls `probe` every 200 ms until it gives a value; fails naming `what` after `timeoutMs`. */
export async function poll<T>(probe: () => T | undefined | null | false | Promise<T | undefined | null | false>, timeoutMs: number, what: () => string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`${what()} (within ${timeoutMs} ms)`);
    await new Promise((r) => setTimeout(r, 200));
  }
}
