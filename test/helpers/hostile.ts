/**
 * Attacks on a `macula start` process over real QUIC on loopback, and the
 * victim's resident memory read from its own process.memoryUsage() (the
 * admin server's /stats), so every figure is the node's RSS, not the
 * attacker's.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MaculaClient } from '../../src/client/client.js';
import { Identity } from '../../src/identity/identity.js';
import { QuicTransport } from '../../src/transport/quic.js';
import type { PeerAddress, Stream } from '../../src/transport/types.js';
import { encodeBody } from '../../src/wire/codec.js';
import { encodeFrame, writeFrameHeader } from '../../src/wire/frame.js';
import { HELLO, PROTOCOL_VERSION } from '../../src/wire/messages.js';
import { startNode, type StartedNode } from './cli.js';

const MiB = 1024 * 1024;

export interface Victim extends StartedNode {
  dataDir: string;
  addr: PeerAddress;
  adminUrl: string;
  /** The node process's process.memoryUsage() and its /stats snapshot. */
  stats(): Promise<{ rss: number; snapshot: Record<string, unknown> }>;
  /** RSS in MiB. */
  rssMiB(): Promise<number>;
  metric(name: string, labels?: string): Promise<number>;
  stop(): Promise<void>;
}

export async function startVictim(extra: string[] = [], env: NodeJS.ProcessEnv = {}): Promise<Victim> {
  const dataDir = mkdtempSync(join(tmpdir(), 'macula-victim-'));
  const node = await startNode(dataDir, ['--admin-port', '0', '--status-interval', '0', ...extra], env);
  const [, adminUrl] = await node.proc.waitFor(/admin\s+(http:\/\/\S+)/);
  const stats = async () => {
    const snapshot = (await (await fetch(`${adminUrl}/stats`)).json()) as Record<string, unknown>;
    const rss = (snapshot.process as { memory: { rssBytes: number } }).memory.rssBytes;
    return { rss, snapshot };
  };
  return {
    ...node,
    dataDir,
    addr: { host: '127.0.0.1', port: node.port },
    adminUrl: adminUrl!,
    stats,
    rssMiB: async () => (await stats()).rss / MiB,
    async metric(name, labels = '') {
      const text = await (await fetch(`${adminUrl}/metrics`)).text();
      const line = text.split('\n').find((l) => l.startsWith(`${name}${labels ? `{${labels}}` : ''} `));
      return line ? Number(line.split(' ').pop()) : NaN;
    },
    async stop() {
      node.proc.kill('SIGTERM');
      await node.proc.waitForExit(15_000).catch(() => node.proc.kill('SIGKILL'));
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** A HELLO frame of the default realm from a mesh node. */
export function helloFrame(id = 1): Uint8Array {
  return encodeFrame(encodeBody({ v: PROTOCOL_VERSION, t: HELLO.type, id, realm: 'default', role: 'node', port: 0 }));
}

export interface UnfinishedFramesResult {
  /** Streams the attacker managed to open. */
  opened: number;
  /** Body bytes the victim accepted (writes that completed). */
  bytesAccepted: number;
  /** Whether the victim closed the attacker's connection. */
  closedByVictim: boolean;
}

/**
 * One connection from a fresh identity opens `streams` streams and writes on
 * each a frame header announcing `announce` bytes plus `body` bytes, never
 * finishing. With `hello`, a HELLO goes first on its own stream.
 * Runs for at most `durationMs`, then leaves (closes the connection).
 */
export async function unfinishedFrames(
  target: PeerAddress,
  opts: { streams: number; hello: boolean; announce?: number; body?: number; durationMs: number },
): Promise<UnfinishedFramesResult> {
  const announce = opts.announce ?? MiB;
  const body = opts.body ?? MiB - 1024;
  const t = new QuicTransport({ identity: Identity.generate() });
  const conn = await t.dial(target);
  const result: UnfinishedFramesResult = { opened: 0, bytesAccepted: 0, closedByVictim: false };
  void conn.closed.then(() => (result.closedByVictim = !leaving));
  let leaving = false;
  const deadline = Date.now() + opts.durationMs;
  const writes: Promise<void>[] = [];
  try {
    if (opts.hello) {
      const s = await conn.openStream();
      await s.write(helloFrame());
      const ack = await withDeadline(s.read(), 3000);
      if (ack === null) throw new Error('the victim did not answer HELLO');
    }
    const header = new Uint8Array(4);
    writeFrameHeader(header, 0, announce);
    const chunk = new Uint8Array(64 * 1024).fill(7);
    for (let i = 0; i < opts.streams && Date.now() < deadline && !conn.isClosed; i++) {
      const opened = await withDeadline(conn.openStream().catch(() => undefined), Math.max(1, deadline - Date.now()));
      if (opened === undefined) break; // the victim grants no more streams, or closed the connection
      result.opened++;
      writes.push(feed(opened, header, chunk, body, result));
    }
    await Promise.race([Promise.allSettled(writes), conn.closed, sleepUntil(deadline)]);
  } finally {
    leaving = true;
    conn.close();
    await t.close();
  }
  return result;
}

async function feed(s: Stream, header: Uint8Array, chunk: Uint8Array, body: number, result: UnfinishedFramesResult): Promise<void> {
  try {
    await s.write(header);
    for (let sent = 0; sent < body; sent += chunk.length) {
      const n = Math.min(chunk.length, body - sent);
      await s.write(n === chunk.length ? chunk : chunk.subarray(0, n));
      result.bytesAccepted += n;
    }
  } catch {
    // refused: the victim reset the stream or closed the connection
  }
}

/**
 * `count` dials abandoned `abortAfterMs` after starting, `concurrency` at a
 * time. Each dial comes from a fresh identity and QUIC endpoint (closed with
 * the dial) unless `identities` is given: then that many attacker endpoints
 * are reused in turn, which dials faster.
 */
export async function abortedHandshakes(
  target: PeerAddress,
  count: number,
  opts: { concurrency?: number; abortAfterMs?: number; identities?: number } = {},
): Promise<{ dialed: number; completed: number }> {
  const concurrency = opts.concurrency ?? 32;
  const abortAfterMs = opts.abortAfterMs ?? 3;
  const shared = Array.from({ length: opts.identities ?? 0 }, () => new QuicTransport({ identity: Identity.generate() }, { idleTimeoutMs: 2000 }));
  let next = 0;
  let completed = 0;
  const worker = async () => {
    while (next < count) {
      const i = next++;
      const t = shared.length > 0 ? shared[i % shared.length]! : new QuicTransport({ identity: Identity.generate() }, { idleTimeoutMs: 2000 });
      try {
        const conn = await t.dial(target, { timeoutMs: abortAfterMs });
        completed++;
        conn.close();
      } catch {
        // abandoned, as intended
      } finally {
        if (shared.length === 0) await t.close();
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: concurrency }, worker));
  } finally {
    await Promise.all(shared.map((t) => t.close()));
  }
  return { dialed: next, completed };
}

/** `count` light clients with fresh identities connect (`concurrency` at a time), all stay, then all leave. */
export async function lightClients(target: PeerAddress, count: number, opts: { concurrency?: number; whileConnected?: () => Promise<void> } = {}): Promise<{ connected: number; failed: number }> {
  const clients: MaculaClient[] = [];
  let failed = 0;
  let next = 0;
  const worker = async () => {
    while (next < count) {
      next++;
      // Admission rates may refuse a burst: retry a few times, as a client would.
      for (let attempt = 0; ; attempt++) {
        try {
          clients.push(await MaculaClient.connect({ node: target, timeoutMs: 10_000 }));
          break;
        } catch {
          if (attempt >= 20) {
            failed++;
            break;
          }
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
      }
    }
  };
  await Promise.all(Array.from({ length: opts.concurrency ?? 32 }, worker));
  try {
    await opts.whileConnected?.();
  } finally {
    await Promise.all(clients.map((c) => c.close().catch(() => undefined)));
  }
  return { connected: clients.length, failed };
}

function withDeadline<T>(p: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([p, new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), ms)))]).finally(() => clearTimeout(timer));
}

function sleepUntil(deadline: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.max(0, deadline - Date.now())));
}

