/**
 * One end of a `transport` flood in a process of its own, driven over IPC
 * by transport.ts through procs.ts's `Worker`, so sender and receiver each
 * have an event loop, as two nodes do:
 *
 * - `receive` {framed, bulk}: listens on 127.0.0.1 and returns its address;
 *   reads the first stream of the first connection (FloodReceiver) until
 *   it ends;
 * - `send` {address, framed, bulk}: dials, opens a stream and floods it
 *   (`flood`) until `exit`; returns once the flood has started;
 * - `count`: {count, cpuUs}: what the receiver has counted (0 at the
 *   sender) and this process's user + system CPU time (process.cpuUsage);
 * - `exit`: stops the flood (the sender ends its stream once the receiver
 *   has read it), closes the transport and exits.
 */
import { Identity } from '../../src/identity/identity.js';
import { QuicTransport } from '../../src/transport/quic.js';
import { formatAddress, parseAddress } from '../../src/transport/types.js';
import { serveOps, type WorkerOps } from './procs.js';
import { flood, FloodReceiver, type FloodKind } from './transport.js';

const transport = new QuicTransport({ identity: Identity.generate() });
let receiver: FloodReceiver | undefined;
let sender: { stop(): Promise<void> } | undefined;

const ops: WorkerOps = {
  async receive(m) {
    const kind: FloodKind = { framed: m.framed === true, bulk: m.bulk === true };
    const address = await transport.listen({ host: '127.0.0.1', port: 0 });
    void (async () => {
      const s = await (await transport.acceptConnection())?.acceptStream();
      if (!s) return;
      receiver = new FloodReceiver(s, kind);
      await receiver.read();
    })().catch((err: unknown) => process.stderr.write(`receiver: ${(err as Error)?.stack ?? String(err)}\n`));
    return { address: formatAddress(address) };
  },
  async send(m) {
    await transport.listen({ host: '127.0.0.1', port: 0 });
    const conn = await transport.dial(parseAddress(m.address as string));
    sender = flood(await conn.openStream(), { framed: m.framed === true, bulk: m.bulk === true });
    return {};
  },
  async count() {
    const cpu = process.cpuUsage();
    return { count: receiver?.count ?? 0, cpuUs: cpu.user + cpu.system };
  },
  async exit() {
    await sender?.stop().catch(() => undefined);
    await transport.close();
    setImmediate(() => process.exit(0));
    return {};
  },
};

serveOps(ops);
