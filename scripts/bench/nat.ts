/**
 * `npm run bench -- nat`: RPC latency and throughput through a relay
 * against a direct path, in the NAT topology of the NAT test
 * (test/helpers/nat-topology.ts; needs root, ip and iptables).
 *
 * - direct: a node on the public segment calls a procedure served by
 *   another public node;
 * - relayed: a node behind one NAT calls a procedure served by a node
 *   behind the other NAT: the only path is a circuit through a public relay,
 *   Noise-encrypted end to end, with the relays' default limit (4 MiB/s per
 *   circuit) and with that limit lifted.
 *
 * Latency: 500 sequential calls of 100 bytes (p50, p99). Throughput: 8 calls
 * in flight of 64 KiB each way for `--seconds` (MiB/s echoed).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { NatTopology, natTopologyUnavailable, type NatHost } from '../../test/helpers/nat-topology.js';
import type { BenchContext } from '../bench.js';

const AGENT = fileURLToPath(new URL('./nat-agent.js', import.meta.url));

interface Agent {
  child: ChildProcess;
  out: string;
  err: string;
}

function agent(at: NatHost, options: Record<string, unknown>): Agent {
  const child = spawn('ip', ['netns', 'exec', at.ns, process.execPath, AGENT, JSON.stringify({ host: at.host, ...options })], { stdio: ['ignore', 'pipe', 'pipe'] });
  const a: Agent = { child, out: '', err: '' };
  child.stdout!.on('data', (d) => (a.out += d));
  child.stderr!.on('data', (d) => (a.err += d));
  return a;
}

async function line(a: Agent, pattern: RegExp, ms: number): Promise<RegExpMatchArray> {
  const deadline = Date.now() + ms;
  for (;;) {
    const m = pattern.exec(a.out);
    if (m) return m;
    if (a.child.exitCode !== null || Date.now() > deadline) throw new Error(`agent: no ${pattern} (exit ${a.child.exitCode}): ${a.err}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

interface Result {
  p50: number;
  p99: number;
  mbPerSecond: number;
  relayedConnection: boolean;
}

export async function natScenario(ctx: BenchContext): Promise<void> {
  const why = natTopologyUnavailable();
  if (why) throw new Error(`the nat bench needs network namespaces: ${why}`);
  for (const [label, relayBytesPerSecond] of [['relayed', undefined], ['relayed_unlimited', 1024 * 1024 * 1024]] as const) {
    const topo = NatTopology.create();
    const agents: Agent[] = [];
    try {
      const opts = relayBytesPerSecond === undefined ? {} : { relayBytesPerSecond };
      const first = agent(topo.pub1, { role: 'public', ...opts });
      agents.push(first);
      const [, , boot] = await line(first, /^ready (\S+) (\S+)$/m, 60_000);
      for (const at of [topo.pub2, topo.pub3]) agents.push(agent(at, { role: 'public', bootstrap: boot, ...opts }));
      const run = async (server: NatHost, caller: NatHost, want: 'relayed' | 'direct'): Promise<Result> => {
        const s = agent(server, { role: 'serve', bootstrap: boot, want });
        agents.push(s);
        await line(s, /^ready /m, 60_000);
        const c = agent(caller, { role: 'call', bootstrap: boot, seconds: ctx.seconds });
        agents.push(c);
        const [json] = await line(c, /^\{.*\}$/m, 180_000);
        const r = JSON.parse(json!) as Result;
        s.child.kill('SIGKILL');
        return r;
      };
      if (label === 'relayed') {
        const direct = await run(topo.pub3, topo.pub2, 'direct');
        ctx.log(`direct: public node → public node (relayed connection used: ${direct.relayedConnection})`);
        ctx.report({ metric: 'direct_latency_p50', value: direct.p50, unit: 'ms' });
        ctx.report({ metric: 'direct_latency_p99', value: direct.p99, unit: 'ms' });
        ctx.report({ metric: 'direct_throughput', value: direct.mbPerSecond, unit: 'MiB/s' });
      }
      const relayed = await run(topo.priv1, topo.priv2, 'relayed');
      ctx.log(`${label}: private node → relay → private node (relayed connection used: ${relayed.relayedConnection})`);
      ctx.report({ metric: `${label}_latency_p50`, value: relayed.p50, unit: 'ms' });
      ctx.report({ metric: `${label}_latency_p99`, value: relayed.p99, unit: 'ms' });
      ctx.report({ metric: `${label}_throughput`, value: relayed.mbPerSecond, unit: 'MiB/s' });
    } finally {
      for (const a of agents) a.child.kill('SIGKILL');
      await Promise.all(agents.map((a) => (a.child.exitCode !== null || a.child.signalCode !== null ? undefined : new Promise((r) => a.child.once('close', r)))));
      topo.destroy();
    }
  }
}
