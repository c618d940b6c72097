/**
 * Debian's miniupnpd (package miniupnpd-iptables) as a home router's UPnP
 * IGD and NAT-PMP server, run in the foreground in a router namespace of
 * NatTopology. Its config and pid file live in a temporary directory;
 * nothing outside the namespace is touched.
 *
 * miniupnpd 2.3.1 writes its rules through libiptc, that is into the
 * legacy iptables tables (Debian's `iptables` is the nf_tables one), so the
 * chains it expects are made, and its mappings read, with `iptables-legacy`.
 * Both sets of tables apply to the namespace's packets: the topology's
 * MASQUERADE (nf_tables) and miniupnpd's DNAT and ACCEPT (legacy).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from './netns.js';

/** Why miniupnpd cannot be run here, or undefined when it can. */
export function miniupnpdUnavailable(): string | undefined {
  for (const [cmd, pkg] of [['miniupnpd', 'miniupnpd-iptables'], ['iptables-legacy', 'iptables']] as const) {
    const r = spawnSync(cmd, ['--version'], { stdio: 'ignore' });
    if (r.error !== undefined || r.status !== 0) return `\`${cmd}\` is not installed (Debian package ${pkg})`;
  }
  return undefined;
}

export class Miniupnpd {
  readonly #child: ChildProcess;
  readonly #dir: string;
  readonly exited: Promise<void>;
  log = '';

  private constructor(readonly ns: string, child: ChildProcess, dir: string) {
    this.#child = child;
    this.#dir = dir;
    child.stdout!.on('data', (d) => (this.log += d));
    child.stderr!.on('data', (d) => (this.log += d));
    this.exited = new Promise((r) => child.on('close', () => r()));
  }

  /**
   * Makes the MINIUPNPD chains (as miniupnpd's iptables_init.sh does) in the
   * router `ns`, whose WAN device is `wan` and LAN device `lan`, and starts
   * miniupnpd there, mapping only for hosts in `lanNet` (a.b.c.0/24) and
   * only to the host asking (secure_mode). `upnp: false` leaves only
   * NAT-PMP on. Resolves once it listens for NAT-PMP (it answers UPnP by
   * then too).
   */
  static async start(ns: string, lanNet: string, options: { upnp?: boolean } = {}): Promise<Miniupnpd> {
    const ipt = (...args: string[]) => run('ip', ['netns', 'exec', ns, 'iptables-legacy', ...args]);
    ipt('-t', 'nat', '-N', 'MINIUPNPD');
    ipt('-t', 'nat', '-I', 'PREROUTING', '-i', 'wan', '-j', 'MINIUPNPD');
    ipt('-t', 'nat', '-N', 'MINIUPNPD-POSTROUTING');
    ipt('-t', 'nat', '-I', 'POSTROUTING', '-o', 'wan', '-j', 'MINIUPNPD-POSTROUTING');
    ipt('-t', 'filter', '-N', 'MINIUPNPD');
    ipt('-t', 'filter', '-I', 'FORWARD', '-i', 'wan', '!', '-o', 'wan', '-j', 'MINIUPNPD');
    const dir = mkdtempSync(join(tmpdir(), 'macula-miniupnpd-'));
    const config = join(dir, 'miniupnpd.conf');
    writeFileSync(
      config,
      [
        'ext_ifname=wan',
        'listening_ip=lan',
        'port=0',
        'enable_natpmp=yes',
        `enable_upnp=${options.upnp === false ? 'no' : 'yes'}`,
        'secure_mode=yes',
        'system_uptime=yes',
        'uuid=3d3cec3a-8cf0-11e0-98ee-001a6bd2d07a',
        `allow 1024-65535 ${lanNet} 1024-65535`,
        'deny 0-65535 0.0.0.0/0 0-65535',
        '',
      ].join('\n'),
    );
    const child = spawn('ip', ['netns', 'exec', ns, 'miniupnpd', '-d', '-f', config, '-P', join(dir, 'miniupnpd.pid')], { stdio: ['ignore', 'pipe', 'pipe'] });
    const daemon = new Miniupnpd(ns, child, dir);
    const deadline = Date.now() + 10_000;
    while (!/Listening for NAT-PMP/.test(daemon.log)) {
      if (child.exitCode !== null || Date.now() > deadline) {
        await daemon.stop();
        throw new Error(`miniupnpd did not start in ${ns}: ${daemon.log}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    return daemon;
  }

  /**
   * The router's port forwards: its MINIUPNPD chains, nat (the DNAT by
   * external port; iptables-legacy prints its target as "unsupported
   * revision") and filter (the ACCEPT naming the LAN host).
   */
  mappings(): { nat: string; filter: string } {
    const list = (table: string) => spawnSync('ip', ['netns', 'exec', this.ns, 'iptables-legacy', '-t', table, '-L', 'MINIUPNPD', '-n'], { encoding: 'utf8' }).stdout;
    return { nat: list('nat'), filter: list('filter') };
  }

  /** Kills miniupnpd and removes its directory; never throws. */
  async stop(): Promise<void> {
    if (this.#child.exitCode === null && this.#child.signalCode === null) {
      this.#child.kill('SIGKILL');
      await this.exited;
    }
    rmSync(this.#dir, { recursive: true, force: true });
  }
}
