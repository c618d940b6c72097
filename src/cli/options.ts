/** Parsers and options shared by the commands: each rejects bad input with a message that says what is expected. */
import { Command, InvalidArgumentError, Option } from 'commander';
import { MaculaClient, DEFAULT_CLIENT_TIMEOUT_MS } from '../client/client.js';
import { formatAddress, parseAddress, type PeerAddress } from '../transport/types.js';
import { VERSION } from './version.js';
import { inspectCredential } from '../auth/credential.js';
import { readCredentialFile } from '../auth/files.js';
import { DEFAULT_REALM } from '../node/messenger.js';
import type { Identity } from '../identity/identity.js';
import { ConfigError } from '../util/errors.js';

export const DEFAULT_NODE_ADDRESS = '127.0.0.1:9443';

function portParser(protocol: 'UDP' | 'TCP'): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!/^\d+$/.test(value.trim()) || !Number.isInteger(n) || n < 0 || n > 65535) {
      throw new InvalidArgumentError(`expected a ${protocol} port number in 0..65535 (0 picks a free port).`);
    }
    return n;
  };
}

export const parsePort = portParser('UDP');
export const parseTcpPort = portParser('TCP');

export function parsePositiveInt(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < 1) {
    throw new InvalidArgumentError('expected a whole number greater than 0.');
  }
  return n;
}

export function parseNonNegativeInt(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n)) {
    throw new InvalidArgumentError('expected a whole number (0 or more).');
  }
  return n;
}

export function parsePositiveNumber(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n <= 0) {
    throw new InvalidArgumentError('expected a number greater than 0.');
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

/** A JSON command-line argument; a parse failure is a usage error (exit 2) that shows the JSON problem. */
export function parseJsonArgument(value: string): unknown {
  try {
    return JSON.parse(value) as unknown;
  } catch (err) {
    throw new InvalidArgumentError(
      `it is not valid JSON (${(err as Error).message}). Quote it for the shell, e.g. '{"x": 1}' or '"text"'.`,
    );
  }
}

/** Options every client command takes. */
export interface ClientOptions {
  node: PeerAddress;
  realm?: string;
  connectTimeout: number;
  credential?: string;
}

/** Adds --node, --realm and --connect-timeout (with their MACULA_* variables) to a client command. */
export function addClientOptions(cmd: Command): Command {
  return cmd
    .addOption(
      new Option('-n, --node <host:port>', 'the node to use as gateway').env('MACULA_NODE').default(parseAddress(DEFAULT_NODE_ADDRESS), DEFAULT_NODE_ADDRESS).argParser(parseHostPort),
    )
    .addOption(new Option('-r, --realm <name>', "the node's realm (default: the credential's realm, else default)").env('MACULA_REALM'))
    .addOption(
      new Option('--connect-timeout <ms>', 'how long to wait for the node to answer').env('MACULA_CONNECT_TIMEOUT').default(DEFAULT_CLIENT_TIMEOUT_MS).argParser(parsePositiveInt),
    )
    .addOption(new Option('--credential <file>', 'client credential file for a secured realm (`macula cred issue --role client`)').env('MACULA_CREDENTIAL'));
}

/** Connects the light client a command uses; NodeUnreachableError carries the message users see. */
export async function connectClient(opts: ClientOptions, extra: { maxInFlight?: number } = {}): Promise<MaculaClient> {
  let credential: { chain: string[]; key: Identity | undefined } | undefined;
  if (opts.credential !== undefined) {
    credential = await readCredentialFile(opts.credential);
    if (credential.key === undefined) {
      throw new ConfigError(`${opts.credential} holds no private key: a client needs a creds file made by \`macula cred issue --role client\` without --subject`);
    }
  }
  return MaculaClient.connect(
    {
      node: opts.node,
      realm: opts.realm ?? (credential ? inspectCredential(credential.chain[credential.chain.length - 1]!).realm : DEFAULT_REALM),
      timeoutMs: opts.connectTimeout,
      software: `macula-cli/${VERSION}`,
      ...(credential && { credential: credential.chain }),
      ...extra,
    },
    credential ? { identity: credential.key } : {},
  );
}

export function describeNode(opts: ClientOptions): string {
  return formatAddress(opts.node);
}
