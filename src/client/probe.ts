import { createSocket } from 'node:dgram';
import { isIP } from 'node:net';
import type { PeerAddress } from '../transport/types.js';

/**
 * Resolves true when the OS reports that nothing listens on the node's UDP
 * port: a datagram to a closed port draws an ICMP port-unreachable, which a
 * connected UDP socket surfaces as ECONNREFUSED. Quinn ignores that signal
 * and would wait out the whole handshake timeout, so without this probe
 * `macula stats` with no node running would hang for seconds. The probe is a
 * zero-length datagram, which a QUIC endpoint drops. False after `ms`, when
 * aborted, for host names (the dial resolves them) and when ICMP is filtered.
 */
export function udpRefused(address: PeerAddress, ms: number, signal: AbortSignal): Promise<boolean> {
  const family = isIP(address.host);
  if (family === 0) return Promise.resolve(false);
  return new Promise((resolve) => {
    const socket = createSocket(family === 6 ? 'udp6' : 'udp4');
    let settled = false;
    const done = (refused: boolean): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.close();
      resolve(refused);
    };
    const timer = setTimeout(() => done(false), ms);
    timer.unref();
    signal.addEventListener('abort', () => done(false), { once: true });
    socket.on('error', (err: NodeJS.ErrnoException) => done(err.code === 'ECONNREFUSED'));
    socket.connect(address.port, address.host, () => {
      socket.send(new Uint8Array(0), (err) => {
        if (err) done((err as NodeJS.ErrnoException).code === 'ECONNREFUSED');
      });
    });
  });
}
