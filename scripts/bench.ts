/**
 * Benchmark harness: `npm run bench -- <scenario> [--json] [--seconds N] [--runs N]`.
 * Each scenario prints a table for humans, or with --json one JSON object
 * per line: {"scenario", "metric", "value", "unit"}. Baselines run in the
 * same run, in processes of their own like ours (see bench/procs.ts), and
 * each compared figure is taken --runs times alternating the two sides and
 * printed as median with _min/_max, because the machines are shared and
 * noisy.
 */
import { transportScenario } from './bench/transport.js';
import { trieScenario } from './bench/trie.js';
import { rpcScenario } from './bench/rpc.js';
import { pubsubScenario } from './bench/pubsub.js';
import { authScenario } from './bench/auth.js';
import { cliScenario, cliStartScenario } from './bench/cli.js';
import { natScenario } from './bench/nat.js';
import { webScenario } from './bench/web.js';
import { queueScenario } from './bench/queue.js';

export interface Figure {
  metric: string;
  value: number;
  unit: string;
}

export interface BenchContext {
  seconds: number;
  /** How many times each compared figure is taken (alternating the systems). */
  runs: number;
  /** Called as soon as a figure is known, so a long run shows progress. */
  report(figure: Figure): void;
  log(line: string): void;
}

export type Scenario = (ctx: BenchContext) => Promise<void>;

const scenarios: Record<string, Scenario> = {
  transport: transportScenario,
  trie: trieScenario,
  rpc: rpcScenario,
  pubsub: pubsubScenario,
  auth: authScenario,
  cli: cliScenario,
  'cli-start': cliStartScenario,
  nat: natScenario,
  web: webScenario,
  queue: queueScenario,
};

function usage(): never {
  process.stderr.write(`usage: npm run bench -- <${Object.keys(scenarios).join('|')}> [--json] [--seconds N] [--runs N]\n`);
  process.exit(2);
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const json = args.includes('--json');
  const secIdx = args.indexOf('--seconds');
  const seconds = secIdx >= 0 ? Number(args[secIdx + 1]) : 3;
  if (!Number.isFinite(seconds) || seconds <= 0) usage();
  const runsIdx = args.indexOf('--runs');
  const runs = runsIdx >= 0 ? Number(args[runsIdx + 1]) : 3;
  if (!Number.isInteger(runs) || runs < 1) usage();
  const names = args.filter((a, i) => !a.startsWith('--') && args[i - 1] !== '--seconds' && args[i - 1] !== '--runs');
  if (names.length === 0) usage();
  for (const name of names) {
    const scenario = scenarios[name];
    if (!scenario) usage();
    if (!json) process.stdout.write(`\n${name}\n${'-'.repeat(60)}\n`);
    await scenario({
      seconds,
      runs,
      report(fig) {
        if (json) process.stdout.write(`${JSON.stringify({ scenario: name, ...fig, value: round(fig.value) })}\n`);
        else process.stdout.write(`${fig.metric.padEnd(36)} ${fmt(fig.value).padStart(14)} ${fig.unit}\n`);
      },
      log(line) {
        if (!json) process.stdout.write(`  ${line}\n`);
      },
    });
  }
}

function round(v: number): number {
  return Math.abs(v) >= 100 ? Math.round(v) : Math.round(v * 1000) / 1000;
}

function fmt(v: number): string {
  return round(v).toLocaleString('en-US');
}

main().then(
  () => process.exit(0),
  (err) => {
    process.stderr.write(`bench failed: ${(err as Error).stack ?? err}\n`);
    process.exit(1);
  },
);
