/**
 * `transport` scenario: our framing over QUIC against the raw QUIC stream
 * (the ceiling), two endpoints in this process on 127.0.0.1.
 */
import { Identity } from '../../src/identity/identity.js';
import { Messenger } from '../../src/session/messenger.js';
import { ConnectionPool } from '../../src/transport/pool.js';
import { QuicTransport } from '../../src/transport/quic.js';
import type { Connection, Stream } from '../../src/transport/types.js';
import { f } from '../../src/wire/schema.js';
import { FramedStream } from '../../src/wire/framed-stream.js';
import { defineMessage } from '../../src/wire/messages.js';
import type { BenchContext } from '../bench.js';

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
    while (performance.now() < deadline) {
      const m = await inStream.read();
      if (m === null) break;
      received++;
    }
    return received;
  });
  stop = true;
  while ((await inStream.read()) !== null);
  await sender;
  return rate;
}

/** The same flood as raw 100-byte stream writes, 64 writes in flight, counted in bytes at the receiver. */
async function rawOneWay(client: Connection, server: Connection, seconds: number): Promise<number> {
  const out = await client.openStream();
  const inbound = server.acceptStream();
  let stop = false;
  const sender = (async () => {
    const window: Promise<void>[] = [];
    while (!stop) {
      window.push(out.write(new Uint8Array(SMALL)));
      if (window.length >= 64) await window.shift();
    }
    await Promise.all(window);
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
    return bytes / SMALL;
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
        const m = await fs.read();
        if (m === null) break;
        bytes += (m.d as Uint8Array).length;
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

/** Raw ceiling for request/response: one QUIC stream per request, no framing. */
async function rawRequestResponse(client: Connection, server: Connection, inFlight: number, seconds: number): Promise<number> {
  let serving = true;
  const serve = (async () => {
    while (serving) {
      const s = await server.acceptStream();
      if (s === null) return;
      void (async () => {
        const c = await s.read();
        if (c) await s.write(c).catch(() => undefined);
        await s.finishWrite().catch(() => undefined);
      })();
    }
  })();
  const payload = new Uint8Array(SMALL);
  const rate = await timed(seconds, async (deadline) => {
    let done = 0;
    await Promise.all(
      Array.from({ length: inFlight }, async () => {
        while (performance.now() < deadline) {
          const s = await client.openStream();
          await s.write(payload);
          await s.finishWrite();
          while ((await s.read()) !== null);
          done++;
        }
      }),
    );
    return done;
  });
  serving = false;
  void serve;
  return rate;
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

export async function transportScenario(ctx: BenchContext): Promise<void> {
  const { seconds } = ctx;
  ctx.log(`QUIC on 127.0.0.1, ${SMALL}-byte messages, ${seconds} s per figure`);
  const framed = await withPair((c, s) => framedOneWay(c, s, seconds));
  ctx.report({ metric: 'framed_oneway_msgs_per_s', value: framed, unit: 'msgs/s' });
  const raw = await withPair((c, s) => rawOneWay(c, s, seconds));
  ctx.report({ metric: 'raw_oneway_msgs_per_s', value: raw, unit: 'msgs/s' });
  ctx.report({ metric: 'framed_vs_raw_ratio', value: framed / raw, unit: 'x' });

  const rr1 = await requestResponse(1, seconds);
  ctx.report({ metric: 'reqresp_1_per_s', value: rr1, unit: 'req/s' });
  const rr100 = await requestResponse(100, seconds);
  ctx.report({ metric: 'reqresp_100_per_s', value: rr100, unit: 'req/s' });
  const rawRr1 = await withPair((c, s) => rawRequestResponse(c, s, 1, seconds));
  ctx.report({ metric: 'raw_reqresp_1_per_s', value: rawRr1, unit: 'req/s' });
  const rawRr100 = await withPair((c, s) => rawRequestResponse(c, s, 100, seconds));
  ctx.report({ metric: 'raw_reqresp_100_per_s', value: rawRr100, unit: 'req/s' });
  ctx.report({ metric: 'reqresp_100_vs_raw_ratio', value: rr100 / rawRr100, unit: 'x' });

  const bulkFramed = await withPair((c, s) => bulk(c, s, seconds, true));
  ctx.report({ metric: 'bulk_mb_per_s', value: bulkFramed, unit: 'MB/s' });
  const bulkRaw = await withPair((c, s) => bulk(c, s, seconds, false));
  ctx.report({ metric: 'raw_bulk_mb_per_s', value: bulkRaw, unit: 'MB/s' });
  ctx.report({ metric: 'bulk_vs_raw_ratio', value: bulkFramed / bulkRaw, unit: 'x' });
}
