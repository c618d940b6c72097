/**
 * `macula check`: one monitoring probe in the Nagios plugin convention, for
 * Nagios/Icinga checks, Kubernetes exec probes and cron jobs. It connects as
 * a light client, measures the round trip (median of a few PINGs), reads
 * two stats snapshots `--interval` apart (joined, routing-table size, message
 * drops per second) and prints one line:
 *
 *   MACULA OK - rtt 0.41 ms, 3 peers, 0.0 drops/s, joined | rtt=0.41ms;50;200 peers=3;;1 drops=0/s;10
 *
 * Exit codes: 0 OK, 1 WARNING, 2 CRITICAL (also: node unreachable, refused),
 * 3 UNKNOWN (an unexpected error). `--json` prints the same as an object.
 */
import { Command } from 'commander';
import { addClientOptions, connectClient, intParser, MAX_TIMEOUT_MS, parseIntervalMs, parseRate, type ClientOptions } from '../options.js';
import { num, messageDrops } from '../stats-view.js';
import { toJson, writeOut } from '../output.js';
import { sleep } from '../signals.js';

export const NAGIOS = { OK: 0, WARNING: 1, CRITICAL: 2, UNKNOWN: 3 } as const;
type Status = keyof typeof NAGIOS;

interface CheckOptions extends ClientOptions {
  rttWarn: number;
  rttCrit: number;
  minPeers: number;
  maxDropsPerS: number;
  interval: number;
  json?: boolean;
}

interface Finding {
  status: Status;
  text: string;
}

const PINGS = 5;
const parseRttMs = intParser(1, MAX_TIMEOUT_MS, 'ms');

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

export function registerCheck(program: Command): void {
  const cmd = program
    .command('check')
    .description('probe a node and print one Nagios-style line (OK/WARNING/CRITICAL with perfdata); exit 0/1/2/3')
    .option('--rtt-warn <ms>', 'WARNING when the round trip exceeds this', parseRttMs, 50)
    .option('--rtt-crit <ms>', 'CRITICAL when the round trip exceeds this', parseRttMs, 200)
    .option('--min-peers <n>', 'CRITICAL with fewer contacts in the routing table (0: a lone node is fine)', intParser(0, 100_000), 0)
    .option('--max-drops-per-s <n>', 'WARNING when messages are dropped faster than this', parseRate, 10)
    .option('-i, --interval <ms>', 'time between the two stats snapshots that give the drop rate', parseIntervalMs, 1000)
    .option('--json', 'print the result as JSON');
  addClientOptions(cmd).action(async (opts: CheckOptions) => {
    let result: Record<string, unknown>;
    try {
      result = await probe(opts);
    } catch (err) {
      // Unreachable or refused: the service is down as far as a monitor can tell.
      result = { status: 'CRITICAL', summary: (err as Error).message, findings: [] };
    }
    const status = result.status as Status;
    if (opts.json) await writeOut(`${toJson(result)}\n`);
    else await writeOut(`MACULA ${status} - ${String(result.summary)}${result.perfdata ? ` | ${String(result.perfdata)}` : ''}\n`);
    process.exitCode = NAGIOS[status];
  });
}

async function probe(opts: CheckOptions): Promise<Record<string, unknown>> {
  const client = await connectClient(opts);
  try {
    const rtts: number[] = [];
    for (let i = 0; i < PINGS; i++) rtts.push(await client.ping());
    const rtt = median(rtts);
    const first = await client.stats();
    const t0 = performance.now();
    await sleep(opts.interval);
    const second = await client.stats();
    const seconds = (performance.now() - t0) / 1000;
    const peers = num(second, 'dht.routingTableSize') ?? 0;
    const joined = (second.node as { joined?: unknown } | undefined)?.joined === true;
    const drops = Math.max(0, ((messageDrops(second) ?? 0) - (messageDrops(first) ?? 0)) / seconds);

    const findings: Finding[] = [];
    if (rtt > opts.rttCrit) findings.push({ status: 'CRITICAL', text: `rtt ${rtt.toFixed(2)} ms > ${opts.rttCrit}` });
    else if (rtt > opts.rttWarn) findings.push({ status: 'WARNING', text: `rtt ${rtt.toFixed(2)} ms > ${opts.rttWarn}` });
    if (peers < opts.minPeers) findings.push({ status: 'CRITICAL', text: `${peers} peers < ${opts.minPeers}` });
    if (!joined) findings.push({ status: 'WARNING', text: 'not joined to the mesh' });
    if (drops > opts.maxDropsPerS) findings.push({ status: 'WARNING', text: `${drops.toFixed(1)} drops/s > ${opts.maxDropsPerS}` });
    const status = findings.reduce<Status>((worst, f) => (NAGIOS[f.status] > NAGIOS[worst] ? f.status : worst), 'OK');
    const facts = `rtt ${rtt.toFixed(2)} ms, ${peers} peers, ${drops.toFixed(1)} drops/s, ${joined ? 'joined' : 'not joined'}`;
    return {
      status,
      summary: findings.length > 0 ? `${findings.map((f) => f.text).join('; ')} (${facts})` : facts,
      perfdata: `rtt=${rtt.toFixed(3)}ms;${opts.rttWarn};${opts.rttCrit} peers=${peers};;${opts.minPeers} drops=${drops.toFixed(3)}/s;${opts.maxDropsPerS}`,
      rttMs: rtt,
      peers,
      joined,
      dropsPerS: drops,
      findings,
    };
  } finally {
    await client.close();
  }
}
