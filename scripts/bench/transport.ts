/**
 * `transport` scenario: our framing over QUIC against the raw QUIC stream
 * (the ceiling), on 127.0.0.1, 100-byte messages. How each comparison is
 * built, so that it is like for like:
 * - one-way, the headline (`framed_vs_raw_ratio`): the sender and the
 *   receiver are processes of their own (transport-endpoint.ts), as two
 *   nodes are: with both ends on one JS thread the framed sender's JS
 *   (encode and frame) and the receiver's (deframe, decode, validate) add
 *   up instead of overlapping, while the raw side has almost none, so the
 *   ratio measured the thread rather than the framing. The framed sender
 *   queues 256 messages per turn and awaits the last (FramedStream sends
 *   what is queued in one write); the raw sender copies 256 records of 100
 *   bytes into one buffer per turn and awaits its write. Both are counted
 *   at the receiver in records (framed: decoded messages, read as the
 *   node's session reads them: one awaited read(), then the chunk's other
 *   messages with readBuffered(); raw: 100-byte records read), so
 *   framed/raw cannot exceed ~1, over `--seconds` after WARMUP_MS. CPU
 *   seconds per million records are the receiver's and the sender's
 *   (process.cpuUsage in each, over the same window) and their sum;
 * - the same floods with both ends in one process are measured too
 *   (`…_same_process…`), counted from the accepted stream on;
 * - request/response (in one process): the Messenger multiplexes requests
 *   on one stream per direction; the raw ceiling keeps the same number in
 *   flight on one bidirectional stream, the server echoing every chunk it
 *   reads in one write and the client sending one new request per 100-byte
 *   reply;
 * - bulk: 64 KiB writes awaited one at a time, counted in bytes at the
 *   receiver, between two processes as one-way (CPU per GB), then in one;
 * - each figure is taken `--runs` times (default 3), alternating framed and
 *   raw, median with `_min` / `_max`; ratios pair the runs of one round;
 * - every trial runs in fresh processes (the one-process ones in
 *   transport-trial.ts), with a fresh heap and event loop: measured one
 *   after another in one process, a trial came out slower after the ones
 *   before it (framed bulk by up to 40 % after the one-way flood), which
 *   the raw side did not show;
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
import { alternate, reportRatio, reportSpread, WARMUP_MS, Worker, type Rounds, type Trial } from './procs.js';

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

/** A flood of one-way messages (100 bytes) or bulk writes (64 KiB), framed or on the bare stream. */
export interface FloodKind {
  framed: boolean;
  bulk: boolean;
}

/**
 * Starts the sender's loop on `out`: framed one-way queues 256 messages
 * per turn and awaits the last (FramedStream sends what is queued in one
 * write); raw one-way copies 256 records of 100 bytes into one buffer per
 * turn and awaits its write; bulk awaits each 64 KiB write. `stop()` ends
 * the loop and the stream once the receiver has read what was sent.
 */
export function flood(out: Stream, { framed, bulk }: FloodKind): { stop(): Promise<void> } {
  let stop = false;
  const fs = framed ? new FramedStream(out) : undefined;
  const loop = (async () => {
    if (bulk) {
      // The framed message carries 16 bytes fewer, so both sides write 64 KiB per turn.
      const chunk = new Uint8Array(BULK_CHUNK - (fs ? 16 : 0));
      while (!stop) {
        if (fs) await fs.send({ t: ONEWAY.type, d: chunk });
        else await out.write(chunk);
      }
    } else if (fs) {
      const payload = new Uint8Array(SMALL);
      while (!stop) {
        // A window of sends per tick; awaiting the last one gives backpressure.
        let last: Promise<void> | undefined;
        for (let i = 0; i < 256; i++) last = fs.send({ t: ONEWAY.type, d: payload });
        await last;
      }
    } else {
      const record = new Uint8Array(SMALL);
      while (!stop) {
        // Copy each record into the write, as the framed side copies each encoded message.
        const batch = new Uint8Array(256 * SMALL);
        for (let i = 0; i < 256; i++) batch.set(record, i * SMALL);
        await out.write(batch);
      }
    }
    if (fs) await fs.end();
    else await out.finishWrite();
  })();
  return {
    stop() {
      stop = true;
      return loop;
    },
  };
}

/**
 * The receiving end of a flood, counted where the receiver has it: framed
 * one-way in decoded messages, read as the node's session reads them (one
 * awaited read(), then the chunk's other messages with readBuffered());
 * raw one-way in 100-byte records read; bulk in bytes (framed: of `d`).
 */
export class FloodReceiver {
  readonly #raw: Stream;
  readonly #fs: FramedStream | undefined;
  readonly #bulk: boolean;
  #n = 0;

  constructor(s: Stream, { framed, bulk }: FloodKind) {
    this.#raw = s;
    this.#fs = framed ? new FramedStream(s) : undefined;
    this.#bulk = bulk;
  }

  /** Messages or records (one-way), bytes (bulk) received so far. */
  get count(): number {
    return this.#fs || this.#bulk ? this.#n : Math.floor(this.#n / SMALL);
  }

  /** Reads until `deadline` (performance.now()) or the end of the stream; true at the end. */
  async read(deadline = Infinity): Promise<boolean> {
    const fs = this.#fs;
    while (performance.now() < deadline) {
      if (fs === undefined) {
        const c = await this.#raw.read();
        if (c === null) return true;
        this.#n += c.length;
      } else if (this.#bulk) {
        const first = await fs.read();
        if (first === null) return true;
        for (let m: Message | undefined = first; m !== undefined; m = fs.readBuffered()) this.#n += (m.d as Uint8Array).length;
      } else {
        if ((await fs.read()) === null) return true;
        this.#n++;
        while (fs.readBuffered() !== undefined) this.#n++;
      }
    }
    return false;
  }
}

/**
 * Both ends in this process: the flood counted at the receiver from the
 * moment its stream is accepted for `seconds`, per second (one-way:
 * messages or records; bulk: MB).
 */
async function sameProcessFlood(client: Connection, server: Connection, seconds: number, kind: FloodKind): Promise<number> {
  const inbound = server.acceptStream();
  const sender = flood(await client.openStream(), kind);
  const receiver = new FloodReceiver((await inbound)!, kind);
  const rate = await timed(seconds, async (deadline) => {
    await receiver.read(deadline);
    return kind.bulk ? receiver.count / 1e6 : receiver.count;
  });
  const stopped = sender.stop();
  await receiver.read();
  await stopped;
  return rate;
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

/** The trials with both ends in one process, each run in a process of its own (transport-trial.ts) by `inChild`. */
export const trials: Record<string, (seconds: number) => Promise<Trial>> = {
  'oneway-framed': async (seconds) => ({
    framed_oneway_same_process_msgs_per_s: await withPair((c, s) => sameProcessFlood(c, s, seconds, { framed: true, bulk: false })),
  }),
  'oneway-raw': async (seconds) => ({
    raw_oneway_same_process_msgs_per_s: await withPair((c, s) => sameProcessFlood(c, s, seconds, { framed: false, bulk: false })),
  }),
  'rr-framed': async (seconds) => ({ rr1: await requestResponse(1, seconds), rr100: await requestResponse(100, seconds) }),
  'rr-raw': async (seconds) => ({
    raw1: await withPair((c, s) => rawRequestResponse(c, s, 1, seconds)),
    raw100: await withPair((c, s) => rawRequestResponse(c, s, 100, seconds)),
  }),
  'bulk-framed': async (seconds) => ({
    bulk_same_process_mb_per_s: await withPair((c, s) => sameProcessFlood(c, s, seconds, { framed: true, bulk: true })),
  }),
  'bulk-raw': async (seconds) => ({
    raw_bulk_same_process_mb_per_s: await withPair((c, s) => sameProcessFlood(c, s, seconds, { framed: false, bulk: true })),
  }),
};

const TRIAL = fileURLToPath(new URL('./transport-trial.js', import.meta.url));
const ENDPOINT = fileURLToPath(new URL('./transport-endpoint.js', import.meta.url));

/** Runs one of `trials` in a fresh process and returns its figures. */
async function inChild(name: string, seconds: number): Promise<Trial> {
  const { stdout } = await execFileAsync(process.execPath, [TRIAL, name, String(seconds)], { timeout: 120_000 });
  return JSON.parse(stdout) as Trial;
}

/**
 * How a flood's figures are named: `<side>_<rate>` and
 * `<side>_…cpu_s_per_<per>` for the framed and the raw side between two
 * processes, `<side>_same_process_<rate>` in one, and their ratios
 * (`ratio`, `sameProcessRatio`).
 */
function floodNames(bulk: boolean) {
  return bulk
    ? { framed: 'bulk', raw: 'raw_bulk', rate: 'mb_per_s', unit: 'MB/s', per: 'gb', ratio: 'bulk_vs_raw_ratio', sameProcessRatio: 'bulk_vs_raw_same_process_ratio' }
    : {
        framed: 'framed_oneway',
        raw: 'raw_oneway',
        rate: 'msgs_per_s',
        unit: 'msgs/s',
        per: 'm_msgs',
        ratio: 'framed_vs_raw_ratio',
        sameProcessRatio: 'framed_vs_raw_same_process_ratio',
      };
}

/**
 * The flood between two processes (transport-endpoint.ts): the receiver
 * listens, the sender dials and floods; after WARMUP_MS the receiver's
 * count and both processes' CPU time are sampled, and again `seconds`
 * later. Gives the side's rate and the CPU seconds per million messages
 * (bulk: per GB) of the receiver, the sender and both, named by floodNames.
 */
async function twoProcessFlood(seconds: number, kind: FloodKind): Promise<Trial> {
  const names = floodNames(kind.bulk);
  const prefix = kind.framed ? names.framed : names.raw;
  const name = `${prefix}-${kind.framed ? 'framed' : 'raw'}`;
  const receiver = new Worker(`${name}-receiver`, ENDPOINT);
  const sender = new Worker(`${name}-sender`, ENDPOINT);
  try {
    const { address } = await receiver.request<{ address: string }>('receive', { ...kind });
    await sender.request('send', { address, ...kind });
    const sample = async () => {
      type Count = { count: number; cpuUs: number };
      const [r, s] = await Promise.all([receiver.request<Count>('count'), sender.request<Count>('count')]);
      return { t: performance.now(), count: r.count, receiverUs: r.cpuUs, senderUs: s.cpuUs };
    };
    await new Promise((r) => setTimeout(r, WARMUP_MS));
    const a = await sample();
    await new Promise((r) => setTimeout(r, seconds * 1000));
    const b = await sample();
    // Per million messages, or per GB (a thousand MB) in bulk.
    const units = (b.count - a.count) / (kind.bulk ? 1e9 : 1e6);
    const rate = (b.count - a.count) / (kind.bulk ? 1e6 : 1) / ((b.t - a.t) / 1000);
    const receiverCpu = (b.receiverUs - a.receiverUs) / 1e6 / units;
    const senderCpu = (b.senderUs - a.senderUs) / 1e6 / units;
    const per = names.per;
    return {
      [`${prefix}_${names.rate}`]: rate,
      [`${prefix}_cpu_s_per_${per}`]: receiverCpu + senderCpu,
      [`${prefix}_receiver_cpu_s_per_${per}`]: receiverCpu,
      [`${prefix}_sender_cpu_s_per_${per}`]: senderCpu,
    };
  } finally {
    // The sender first: it ends its stream once the receiver has read what it sent.
    await sender.stop();
    await receiver.stop();
  }
}

export async function transportScenario(ctx: BenchContext): Promise<void> {
  const { seconds } = ctx;
  ctx.log(
    `QUIC on 127.0.0.1, ${SMALL}-byte messages, ${seconds} s per figure, ${ctx.runs} runs alternating framed and raw; ` +
      'floods between a sender and a receiver process, then with both ends in one process',
  );
  const variants = (what: string) => ({
    framed: { trial: () => inChild(`${what}-framed`, seconds) },
    raw: { trial: () => inChild(`${what}-raw`, seconds) },
  });
  const floods = (bulk: boolean) => ({
    framed: { trial: () => twoProcessFlood(seconds, { framed: true, bulk }) },
    raw: { trial: () => twoProcessFlood(seconds, { framed: false, bulk }) },
  });

  // Each metric of a flood trial is reported under the name the trial gave it.
  const spread = (rounds: Rounds, metrics: ReadonlyArray<readonly [string, string]>) => {
    for (const [metric, unit] of metrics) reportSpread(ctx, metric, rounds.get(metric), unit);
  };
  /** The two-process floods, framed and raw alternating: each side's rate and CPU (both ends, and each), and their ratio. */
  const twoProcessFloods = async (bulk: boolean) => {
    const rounds = await alternate(ctx, ctx.runs, floods(bulk));
    const { framed, raw, rate, unit, per, ratio } = floodNames(bulk);
    for (const side of [framed, raw]) {
      spread(rounds, [
        [`${side}_${rate}`, unit],
        [`${side}_cpu_s_per_${per}`, 'CPU s'],
        [`${side}_receiver_cpu_s_per_${per}`, 'CPU s'],
        [`${side}_sender_cpu_s_per_${per}`, 'CPU s'],
      ]);
    }
    reportRatio(ctx, ratio, rounds.get(`${framed}_${rate}`), rounds.get(`${raw}_${rate}`));
  };
  /** The same floods with both ends in one process (`<side>_same_process_<rate>`), and their ratio. */
  const sameProcessFloods = async (bulk: boolean) => {
    const rounds = await alternate(ctx, ctx.runs, variants(bulk ? 'bulk' : 'oneway'));
    const { framed, raw, rate, unit, sameProcessRatio } = floodNames(bulk);
    const [f, r] = [`${framed}_same_process_${rate}`, `${raw}_same_process_${rate}`];
    spread(rounds, [
      [f, unit],
      [r, unit],
    ]);
    reportRatio(ctx, sameProcessRatio, rounds.get(f), rounds.get(r));
  };
  await twoProcessFloods(false);

  await sameProcessFloods(false);

  const rr = await alternate(ctx, ctx.runs, variants('rr'));
  reportSpread(ctx, 'reqresp_1_per_s', rr.get('rr1'), 'req/s');
  reportSpread(ctx, 'reqresp_100_per_s', rr.get('rr100'), 'req/s');
  reportSpread(ctx, 'raw_reqresp_1_per_s', rr.get('raw1'), 'req/s');
  reportSpread(ctx, 'raw_reqresp_100_per_s', rr.get('raw100'), 'req/s');
  reportRatio(ctx, 'reqresp_100_vs_raw_ratio', rr.get('rr100'), rr.get('raw100'));

  await twoProcessFloods(true);

  await sameProcessFloods(true);

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
