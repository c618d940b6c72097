/**
 * The QUIC binding's tokio runtime gets one worker thread fewer than the
 * cores (at least one) unless TOKIO_WORKER_THREADS is set, in which case
 * the user's number stands (checked first: tokio aborts the process on a
 * value it cannot use); the variable is left as the user had it, so child
 * processes do not inherit ours. Checked in real processes: each
 * loads the binding, listens on 127.0.0.1, and counts its own threads that
 * tokio named as workers.
 */
import assert from 'node:assert/strict';
import { availableParallelism } from 'node:os';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ConfigError } from '../../src/util/errors.js';
import { MAX_QUIC_THREADS, QUIC_THREADS_ENV, quicThreadsSetting, quicWorkerThreads } from '../../src/transport/quic-binding.js';
import { runNode, type RunResult } from '../helpers/cli.js';

const QUIC = fileURLToPath(new URL('../../src/transport/quic.js', import.meta.url));
const IDENTITY = fileURLToPath(new URL('../../src/identity/identity.js', import.meta.url));

// A thread tokio starts names itself once it runs, so the probe waits until every thread that appeared with the
// binding has a name of its own (a new thread starts with the process's name), then counts tokio's workers.
const SCRIPT = `
const { readdirSync, readFileSync } = await import('node:fs');
const { QuicTransport } = await import(${JSON.stringify(QUIC)});
const { Identity } = await import(${JSON.stringify(IDENTITY)});
const comm = (t) => readFileSync('/proc/self/task/' + t + '/comm', 'utf8').trim();
const before = new Set(readdirSync('/proc/self/task'));
const transport = new QuicTransport({ identity: Identity.generate() });
await transport.listen({ host: '127.0.0.1', port: 0 });
const deadline = Date.now() + 10_000;
let added = readdirSync('/proc/self/task').filter((t) => !before.has(t));
while (added.length === 0 || added.some((t) => comm(t) === comm(process.pid))) {
  if (Date.now() > deadline) throw new Error('threads not named within 10 s: ' + added.map(comm).join(', '));
  await new Promise((resolve) => setTimeout(resolve, 5));
  added = readdirSync('/proc/self/task').filter((t) => !before.has(t));
}
console.log(JSON.stringify({ workers: added.filter((t) => comm(t) === 'tokio-rt-worker').length, env: process.env.${QUIC_THREADS_ENV} ?? null }));
await transport.close();
`;

/** Runs SCRIPT in a fresh process with TOKIO_WORKER_THREADS set to `value` (absent if undefined). */
function probe(value: string | undefined): Promise<RunResult> {
  return runNode(['--input-type=module', '-e', SCRIPT], { env: { [QUIC_THREADS_ENV]: value } }, 'the probe process');
}

/** The probe's tokio workers and what its environment held after loading the binding. */
async function quicThreadsIn(value: string | undefined): Promise<{ workers: number; env: string | null }> {
  const { code, stdout, stderr } = await probe(value);
  assert.equal(code, 0, stderr);
  return JSON.parse(stdout.trim()) as { workers: number; env: string | null };
}

describe('QUIC worker threads', () => {
  it('one fewer than the cores, at least one', () => {
    assert.equal(quicWorkerThreads(1), 1);
    assert.equal(quicWorkerThreads(2), 1);
    assert.equal(quicWorkerThreads(8), 7);
  });

  it('a process that sets nothing gets that many workers, and its environment stays as it was', async () => {
    assert.deepEqual(await quicThreadsIn(undefined), { workers: quicWorkerThreads(availableParallelism()), env: null });
  });

  it("the user's TOKIO_WORKER_THREADS is kept", async () => {
    assert.deepEqual(await quicThreadsIn('3'), { workers: 3, env: '3' });
  });

  it('an empty TOKIO_WORKER_THREADS counts as unset, and stays empty', async () => {
    assert.deepEqual(await quicThreadsIn(''), { workers: quicWorkerThreads(availableParallelism()), env: '' });
  });

  it('a value tokio cannot use is a ConfigError saying what to set, not an abort', () => {
    for (const bad of ['0', '-1', 'abc', ' 2', '2.5', '1e3', '007', String(MAX_QUIC_THREADS + 1)]) {
      assert.throws(() => quicThreadsSetting(bad, 4), (err: unknown) => {
        assert.ok(err instanceof ConfigError, bad);
        assert.equal(err.code, 'MACULA_ERR_CONFIG');
        assert.match(err.message, /TOKIO_WORKER_THREADS must be a whole number of QUIC worker threads from 1 to 1024, got .*; unset it for the default \(one fewer than the cores, here 3\)/);
        return true;
      });
    }
    assert.equal(quicThreadsSetting('1', 4), 1);
    assert.equal(quicThreadsSetting(String(MAX_QUIC_THREADS), 4), MAX_QUIC_THREADS);
    assert.equal(quicThreadsSetting(undefined, 4), 3);
  });

  it('a process given one fails with that message and exit code 1', async () => {
    const { code, stdout, stderr } = await probe('0');
    assert.equal(code, 1);
    assert.equal(stdout, '');
    assert.match(stderr, /ConfigError: TOKIO_WORKER_THREADS must be a whole number of QUIC worker threads from 1 to 1024, got "0"/);
    assert.doesNotMatch(stderr, /panic|fatal runtime error/);
  });
});
