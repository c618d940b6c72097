/**
 * `transport` scenario: our framing over QUIC against the raw QUIC stream
 * (the ceiling), two endpoints in this process on 127.0.0.1, 100-byte
 * messages. How each ceiling is built, so that it is like for like:
 * - one-way: the framed sender queues 256 messages per turn and awaits the
 *   last (FramedStream sends what is queued in one write); the raw sender
 *   copies 256 records of 100 bytes into one buffer per turn and awaits its
 *   write. Both are counted at the receiver in records (framed: decoded
 *   messages, read as the node's session reads them: one awaited read(),
 *   then the chunk's other messages with readBuffered(); raw: 100-byte
 *   records read), so framed/raw cannot exceed ~1;
 * - request/response: the Messenger multiplexes requests on one stream per
 *   direction; the raw ceiling keeps the same number in flight on one
 *   bidirectional stream, the server echoing every chunk it reads in one
 *   write and the client sending one new request per 100-byte reply;
 * - bulk: 64 KiB writes awaited one at a time on both sides;
 * - each figure is taken `--runs` times (default 3), alternating framed and
 *   raw, median with `_min` / `_max`; ratios pair the runs of one round;
 * - every trial runs in a process of its own (transport-trial.ts), with a
 *   fresh heap and event loop: measured one after another in one process,
 *   a trial came out slower after the ones before it (framed bulk by up to
 *   40 % after the one-way flood), which the raw side did not show;
 * - then the codec alone, per CPU-second of this process: a PUBLISH (topic,
 *   sequence number, origin, 100-byte payload encoded first as pub/sub does)
 *   encoded and appended to a frame buffer, and the same frame decoded and
 *   validated where it lies in a received chunk.
 */
import { Identity } from '../../src/identity/identity.js';
import { PUBLISH } from '../../src/pubsub/messages.js';
import { Messenger } from '../../src/session/messenger.js';
import { ConnectionPool } from '../../src/transport/pool.js';
import { QuicTransport } from '../../src/transport/quic.js';
import type { Connection, Stream } from '../../src/transport/types.js';
import { appendFrame, decodeMessage, encodeBody, encodeMessage, frameBody, newFrameBuffer } from '../../src/wire/codec.js';
import { f } from '../../src/wire/schema.js';
import { FramedStream } from '../../src/wire/framed-stream.js';
import { defineMessage, type Message } from '../../src/wire/messages.js';
import type { BenchContext } from '../bench.js';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { alternate, reportRatio, reportSpread, type Trial } from './procs.js';

const execFileAsync = promisify(execFile);

const ECHO = defineMessage(240, 'BENCH_ECHO', { d: f.bytes(0, 1 << 20) });
const ECHO_REPLY = defineMessage(241, 'BENCH_ECHO_REPLY', { d: f.bytes(0, 1 << 20) }, { response: true });
const ONEWAY = defineMessage(242, 'BENCH_ONEWAY', { d: f.bytes(0, 1 << 20) });

const SMALL = 100;
const BULK_CHUNK = 64 * 1024;

async function pair() {
  const a = new QuicTransport({ identity: Identity.generate() });
  const b = new QuicTransport({ identity: Identity.generate() });
  const addr = await b.listen({ host: '127.0.0.1', port: 0 });
  await a.listen({ host: '127.0.0.1', port: 0 });
  const accepted = b.acceptConnection();
  const client = await a.dial(addr);
  const server = (await accepted)!;
  return { a, b, client, server, addr };
}

async function timed(seconds: number, body: (deadline: number) => Promise<number>): Promise<number> {
  const t0 = performance.now();
  const count = await body(t0 + seconds * 1000);
  return count / ((performance.now() - t0) / 1000);
}

/** Sender floods 100-byte messages through FramedStream for `seconds`; rate counted at the receiver. */
async function framedOneWay(client: Connection, server: Connection, seconds: number): Promise<number> {
  const out = new FramedStream(await client.openStream());
  const inbound = server.acceptStream();
  const payload = new Uint8Array(SMALL);
  let received = 0;
  let stop = false;
  const sender = (async () => {
    while (!stop) {
      // A window of sends per tick; awaiting the last one gives backpressure.
      let last: Promise<void> | undefined;
      for (let i = 0; i < 256; i++) last = out.send({ t: ONEWAY.type, d: payload });
      await last;
    }
    await out.end();
  })();
  const inStream = new FramedStream((await inbound)!);
  const rate = await timed(seconds, async (deadline) => {
    // Read as the node's session does: one awaited read, then the rest of the chunk's messages without a promise each.
    while (performance.now() < deadline) {
      const m = await inStream.read();
      if (m === null) break;
      received++;
      while (inStream.readBuffered() !== undefined) received++;
    }
    return received;
  });
  stop = true;
  while ((await inStream.read()) !== null);
  await sender;
  return rate;
}

/** The same flood on a bare stream with the same batching: 256 records of 100 bytes per write, counted in records at the receiver. */
async function rawOneWay(client: Connection, server: Connection, seconds: number): Promise<number> {
  const out = await client.openStream();
  const inbound = server.acceptStream();
  const record = new Uint8Array(SMALL);
  let stop = false;
  const sender = (async () => {
    while (!stop) {
      // Copy each record into the write, as the framed side copies each encoded message.
      const batch = new Uint8Array(256 * SMALL);
      for (let i = 0; i < 256; i++) batch.set(record, i * SMALL);
      await out.write(batch);
    }
    await out.finishWrite();
  })();
  const s = (await inbound)!;
  let bytes = 0;
  const rate = await timed(seconds, async (deadline) => {
    while (performance.now() < deadline) {
      const c = await s.read();
      if (c === null) break;
      bytes += c.length;
    }
    return Math.floor(bytes / SMALL);
  });
  stop = true;
  while ((await s.read()) !== null);
  await sender;
  return rate;
}

async function drainBulk(s: Stream, deadline: number): Promise<number> {
  let bytes = 0;
  while (performance.now() < deadline) {
    const c = await s.read();
    if (c === null) break;
    bytes += c.length;
  }
  return bytes;
}

async function bulk(client: Connection, server: Connection, seconds: number, framed: boolean): Promise<number> {
  const raw = await client.openStream();
  const out = framed ? new FramedStream(raw) : undefined;
  const inbound = server.acceptStream();
  const chunk = new Uint8Array(BULK_CHUNK - (framed ? 16 : 0));
  let stop = false;
  const sender = (async () => {
    while (!stop) {
      if (out) await out.send({ t: ONEWAY.type, d: chunk });
      else await raw.write(chunk);
    }
    if (out) await out.end();
    else await raw.finishWrite();
  })();
  const s = (await inbound)!;
  let mbps = 0;
  if (framed) {
    const fs = new FramedStream(s);
    mbps = await timed(seconds, async (deadline) => {
      let bytes = 0;
      while (performance.now() < deadline) {
        const first = await fs.read();
        if (first === null) break;
        for (let m: Message | undefined = first; m !== undefined; m = fs.readBuffered()) bytes += (m.d as Uint8Array).length;
      }
      return bytes / 1e6;
    });
    stop = true;
    while ((await fs.read()) !== null);
  } else {
    mbps = await timed(seconds, async (deadline) => (await drainBulk(s, deadline)) / 1e6);
    stop = true;
    while ((await s.read()) !== null);
  }
  await sender;
  return mbps;
}

/** Request/response through the Messenger (framed, multiplexed on one stream per direction). */
async function requestResponse(inFlight: number, seconds: number): Promise<number> {
  const ta = new QuicTransport({ identity: Identity.generate() });
  const tb = new QuicTransport({ identity: Identity.generate() });
  const ma = new Messenger({ transport: ta, pool: new ConnectionPool({ transport: ta }) });
  const mb = new Messenger({ transport: tb, pool: new ConnectionPool({ transport: tb }) });
  mb.handle(ECHO, (msg) => ({ t: ECHO_REPLY.type, d: msg.d }));
  const addr = await tb.listen({ host: '127.0.0.1', port: 0 });
  await ta.listen({ host: '127.0.0.1', port: 0 });
  ma.start();
  mb.start();
  const payload = new Uint8Array(SMALL);
  const target = { address: addr };
  await ma.request(target, { t: ECHO.type, d: payload });
  const rate = await timed(seconds, async (deadline) => {
    let done = 0;
    await Promise.all(
      Array.from({ length: inFlight }, async () => {
        while (performance.now() < deadline) {
          await ma.request(target, { t: ECHO.type, d: payload });
          done++;
        }
      }),
    );
    return done;
  });
  ma.stop();
  mb.stop();
  await Promise.all([ta.close(), tb.close()]);
  return rate;
}

/**
 * Raw ceiling for request/response: `inFlight` 100-byte requests kept
 * outstanding on one bidirectional stream; the server echoes each chunk it
 * reads in one write, the client sends one new request per reply received.
 */
async function rawRequestResponse(client: Connection, server: Connection, inFlight: number, seconds: number): Promise<number> {
  const serve = (async () => {
    const s = await server.acceptStream();
    if (s === null) return;
    for (;;) {
      const c = await s.read();
      if (c === null) break;
      await s.write(c).catch(() => undefined);
    }
    await s.finishWrite().catch(() => undefined);
  })();
  const s = await client.openStream();
  const requests = (n: number) => new Uint8Array(n * SMALL);
  const rate = await timed(seconds, async (deadline) => {
    let done = 0;
    let pending = 0;
    await s.write(requests(inFlight));
    for (;;) {
      const c = await s.read();
      if (c === null) break;
      pending += c.length;
      const replies = Math.floor(pending / SMALL);
      pending -= replies * SMALL;
      done += replies;
      if (performance.now() >= deadline) break;
      if (replies > 0) await s.write(requests(replies));
    }
    return done;
  });
  await s.finishWrite();
  while ((await s.read()) !== null);
  await serve;
  return rate;
}

/** Operations of `op` per CPU-second of this process, over `seconds`. */
function perCpuSecond(seconds: number, op: () => void): number {
  for (let i = 0; i < 10_000; i++) op();
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  let n = 0;
  while (performance.now() - t0 < seconds * 1000) {
    for (let i = 0; i < 1000; i++) op();
    n += 1000;
  }
  const cpu = process.cpuUsage(cpu0);
  return n / ((cpu.user + cpu.system) / 1e6);
}

/** The codec figures: encode of a PUBLISH into a frame buffer, decode + validation of the same frame. */
function codecRates(seconds: number): { encode: number; decode: number } {
  const payload = new Uint8Array(SMALL).fill(7);
  const origin = new Uint8Array(32).fill(3);
  const fields = { t: PUBLISH.type, tp: 'bench.topic', s: 123_456, o: origin };
  const out = newFrameBuffer(4096);
  const encode = perCpuSecond(seconds, () => {
    out.len = 0;
    appendFrame(out, encodeMessage(fields, { d: encodeBody(payload) }));
  });
  const body = frameBody(encodeMessage(fields, { d: encodeBody(payload) }));
  // Received frames are decoded where they lie in the chunk read from the stream (a Buffer), as FramedStream does.
  const chunk = Buffer.concat(Array.from({ length: 64 }, () => body));
  let i = 0;
  const decode = perCpuSecond(seconds, () => {
    const off = (i++ & 63) * body.length;
    decodeMessage(chunk, off, off + body.length);
  });
  return { encode, decode };
}

/** Each figure gets its own pair of endpoints, so no leftover stream or loop of one figure disturbs the next. */
async function withPair<T>(fn: (client: Connection, server: Connection) => Promise<T>): Promise<T> {
  const p = await pair();
  try {
    return await fn(p.client, p.server);
  } finally {
    await Promise.all([p.a.close(), p.b.close()]);
  }
}

/** The trials, each run in a process of its own (transport-trial.ts) by `inChild`. */
export const trials: Record<string, (seconds: number) => Promise<Trial>> = {
  'oneway-framed': async (seconds) => ({ framed: await withPair((c, s) => framedOneWay(c, s, seconds)) }),
  'oneway-raw': async (seconds) => ({ raw: await withPair((c, s) => rawOneWay(c, s, seconds)) }),
  'rr-framed': async (seconds) => ({ rr1: await requestResponse(1, seconds), rr100: await requestResponse(100, seconds) }),
  'rr-raw': async (seconds) => ({
    raw1: await withPair((c, s) => rawRequestResponse(c, s, 1, seconds)),
    raw100: await withPair((c, s) => rawRequestResponse(c, s, 100, seconds)),
  }),
  'bulk-framed': async (seconds) => ({ framed: await withPair((c, s) => bulk(c, s, seconds, true)) }),
  'bulk-raw': async (seconds) => ({ raw: await withPair((c, s) => bulk(c, s, seconds, false)) }),
};

const TRIAL = fileURLToPath(new URL('./transport-trial.js', import.meta.url));

/** Runs one of `trials` in a fresh process and returns its figures. */
async function inChild(name: string, seconds: number): Promise<Trial> {
  const { stdout } = await execFileAsync(process.execPath, [TRIAL, name, String(seconds)], { timeout: 120_000 });
  return JSON.parse(stdout) as Trial;
}

export async function transportScenario(ctx: BenchContext): Promise<void> {
  const { seconds } = ctx;
  ctx.log(`QUIC on 127.0.0.1, ${SMALL}-byte messages, ${seconds} s per figure, ${ctx.runs} runs alternating framed and raw, each in a process of its own`);
  const variants = (what: string) => ({
    framed: { trial: () => inChild(`${what}-framed`, seconds) },
    raw: { trial: () => inChild(`${what}-raw`, seconds) },
  });
  const oneWay = await alternate(ctx, ctx.runs, variants('oneway'));
  reportSpread(ctx, 'framed_oneway_msgs_per_s', oneWay.get('framed'), 'msgs/s');
  reportSpread(ctx, 'raw_oneway_msgs_per_s', oneWay.get('raw'), 'msgs/s');
  reportRatio(ctx, 'framed_vs_raw_ratio', oneWay.get('framed'), oneWay.get('raw'));

  const rr = await alternate(ctx, ctx.runs, variants('rr'));
  reportSpread(ctx, 'reqresp_1_per_s', rr.get('rr1'), 'req/s');
  reportSpread(ctx, 'reqresp_100_per_s', rr.get('rr100'), 'req/s');
  reportSpread(ctx, 'raw_reqresp_1_per_s', rr.get('raw1'), 'req/s');
  reportSpread(ctx, 'raw_reqresp_100_per_s', rr.get('raw100'), 'req/s');
  reportRatio(ctx, 'reqresp_100_vs_raw_ratio', rr.get('rr100'), rr.get('raw100'));

  const bulkRounds = await alternate(ctx, ctx.runs, variants('bulk'));
  reportSpread(ctx, 'bulk_mb_per_s', bulkRounds.get('framed'), 'MB/s');
  reportSpread(ctx, 'raw_bulk_mb_per_s', bulkRounds.get('raw'), 'MB/s');
  reportRatio(ctx, 'bulk_vs_raw_ratio', bulkRounds.get('framed'), bulkRounds.get('raw'));

  const encodes: number[] = [];
  const decodes: number[] = [];
  for (let r = 0; r < ctx.runs; r++) {
    const rates = codecRates(Math.min(seconds, 1));
    ctx.log(`round ${r + 1}/${ctx.runs} codec: encode=${Math.round(rates.encode)} decode=${Math.round(rates.decode)} per CPU-second`);
    encodes.push(rates.encode);
    decodes.push(rates.decode);
  }
  reportSpread(ctx, 'codec_publish_encode_per_cpu_s', encodes, 'msgs/CPU-s');
  reportSpread(ctx, 'codec_publish_decode_per_cpu_s', decodes, 'msgs/CPU-s');
}
