/**
 * The NATS baseline for the benchmarks: a nats-server on 127.0.0.1 (from
 * PATH, e.g. Debian's `nats-server` package) and the `nats` client. When
 * either is missing, the baseline is skipped with a note.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';

export interface NatsBaseline {
  port: number;
  // The client module, loaded dynamically so the benches run without it.
  nats: typeof import('nats');
  stop(): Promise<void>;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

/** Starts nats-server, or returns the reason it cannot. */
export async function startNats(): Promise<NatsBaseline | string> {
  if (spawnSync('nats-server', ['--version'], { stdio: 'ignore' }).error) return 'nats-server is not on PATH (Debian package nats-server)';
  let nats: typeof import('nats');
  try {
    nats = await import('nats');
  } catch {
    return 'the nats npm client is not installed';
  }
  const port = await freePort();
  const child: ChildProcess = spawn('nats-server', ['-a', '127.0.0.1', '-p', String(port)], { stdio: 'ignore' });
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      const probe = await nats.connect({ servers: `127.0.0.1:${port}`, timeout: 500 });
      await probe.close();
      break;
    } catch (err) {
      if (Date.now() > deadline || child.exitCode !== null) {
        child.kill('SIGKILL');
        return `nats-server did not start: ${(err as Error).message}`;
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  return {
    port,
    nats,
    async stop() {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    },
  };
}
