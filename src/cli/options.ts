/** Parsers shared by the commands: each rejects bad input with a message that says what is expected. */
import { InvalidArgumentError } from 'commander';
import { parseAddress, type PeerAddress } from '../transport/types.js';

export function parsePort(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || !Number.isInteger(n) || n < 0 || n > 65535) {
    throw new InvalidArgumentError('expected a UDP port number in 0..65535 (0 picks a free port).');
  }
  return n;
}

export function parsePositiveInt(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < 1) {
    throw new InvalidArgumentError('expected a whole number greater than 0.');
  }
  return n;
}

export function parseHostPort(value: string): PeerAddress {
  try {
    return parseAddress(value, 9443);
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
}

/** For repeatable options: commander passes the previous value. */
export function collectHostPorts(value: string, previous: PeerAddress[] | undefined): PeerAddress[] {
  const list = previous ? [...previous] : [];
  for (const part of value.split(',')) if (part.trim()) list.push(parseHostPort(part));
  return list;
}
