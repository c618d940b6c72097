/** Parsers and options shared by the commands: each rejects bad input with a message that says what is expected. */
import { Command, InvalidArgumentError, Option } from 'commander';
import { MaculaClient, DEFAULT_CLIENT_TIMEOUT_MS, validateRealm } from '../client/client.js';
import { validatePattern, validateTopic } from '../pubsub/topic.js';
import { validateQueueGroup } from '../pubsub/queue.js';
import { checkHeaders, type Headers } from '../wire/headers.js';
import { MAX_CALL_BUDGET_MS } from '../rpc/messages.js';
import { DEFAULT_PORT, formatAddress, parseAddress, type PeerAddress } from '../transport/types.js';
import { VERSION } from './version.js';
import { CONTEXT_FIELDS, resolveContext, validateContextName } from './contexts.js';
import { DEFAULT_REALM } from '../session/messenger.js';
import type { Identity } from '../identity/identity.js';
import { ConfigError } from '../util/errors.js';

export const DEFAULT_NODE_ADDRESS = `127.0.0.1:${DEFAULT_PORT}`;

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

/**
 * Largest time a command waits or lets something run, in ms: the longest
 * call budget the wire carries (24 h). Larger values mean nothing sensible
 * and past about 24.8 days would overflow Node's timers.
 */
export const MAX_TIMEOUT_MS = MAX_CALL_BUDGET_MS;
/** Largest message or repeat count a command takes. */
export const MAX_COUNT = 1_000_000_000;
/** Most commands `serve` runs at once, or requests `bench` keeps in flight. */
export const MAX_CONCURRENCY = 10_000;
/** Largest number of clients or connections a node can be told to hold. */
export const MAX_NODE_LIMIT = 1_000_000;

/** A parser of whole numbers in min..max; `unit` is shown in the message (e.g. "ms"). */
export function intParser(min: number, max: number, unit = ''): (value: string) => number {
  const range = `${min}..${max}${unit ? ` ${unit}` : ''}`;
  return (value) => {
    const n = Number(value);
    if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < min || n > max) {
      throw new InvalidArgumentError(`expected a whole number in ${range}.`);
    }
    return n;
  };
}

/** A timeout in ms: 1..MAX_TIMEOUT_MS. */
export const parseTimeoutMs = intParser(1, MAX_TIMEOUT_MS, 'ms');
/** An interval in ms where 0 means "none": 0..MAX_TIMEOUT_MS. */
export const parseIntervalMs = intParser(0, MAX_TIMEOUT_MS, 'ms');
/** A message or repeat count: 1..MAX_COUNT. */
export const parseCount = intParser(1, MAX_COUNT);
/** Things running at once: 1..MAX_CONCURRENCY. */
export const parseConcurrency = intParser(1, MAX_CONCURRENCY);

/** A rate per second: at least one per 1000 s (so pacing never waits longer), at most MAX_COUNT. */
export function parseRate(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < 0.001 || n > MAX_COUNT) {
    throw new InvalidArgumentError(`expected a number of messages per second in 0.001..${MAX_COUNT}.`);
  }
  return n;
}

const BYTE_UNITS: Record<string, number> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 };

/** A size in bytes, with an optional binary unit: 1073741824, 512M, 2G, 1.5GiB. */
export function parseBytes(value: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*$/i.exec(value);
  const n = m ? Math.floor(Number(m[1]) * BYTE_UNITS[m[2]!.toLowerCase()]!) : NaN;
  if (!Number.isSafeInteger(n) || n < 1) throw new InvalidArgumentError('expected a size in bytes greater than 0, e.g. 1073741824, 512M or 2G.');
  return n;
}

/** A topic to publish to, checked by the pub/sub rules before anything connects. */
export function parseTopic(value: string): string {
  return asUsageError(() => validateTopic(value), value);
}

/** A subscription pattern, checked by the pub/sub rules before anything connects. */
export function parsePattern(value: string): string {
  return asUsageError(() => validatePattern(value), value);
}

/** A queue group name (`--queue`), checked before anything connects. */
export function parseQueueGroup(value: string): string {
  return asUsageError(() => validateQueueGroup(value), value);
}

/** `-H key:value`, repeatable: adds one header; the bounds of the whole map are checked as it grows. */
export function collectHeader(value: string, previous: Headers | undefined): Headers {
  const colon = value.indexOf(':');
  if (colon < 1) throw new InvalidArgumentError('expected key:value, e.g. -H trace-id:abc123 (the key cannot be empty).');
  const headers = { ...previous, [value.slice(0, colon)]: value.slice(colon + 1) };
  try {
    checkHeaders(headers);
  } catch (err) {
    throw new InvalidArgumentError(`${(err as Error).message}.`);
  }
  return headers;
}

/** `-H, --header <key:value>` (repeatable) on a command. */
export function addHeaderOption(cmd: Command, what: string): Command {
  return cmd.option('-H, --header <key:value>', `add a header to ${what} (repeatable)`, collectHeader);
}

/** A realm name, checked by the rule of the HELLO message every connection starts with. */
export function parseRealm(value: string): string {
  return asUsageError(() => validateRealm(value), value);
}

function asUsageError(check: () => unknown, value: string): string {
  try {
    check();
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
  return value;
}

export function parseHostPort(value: string): PeerAddress {
  try {
    return parseAddress(value, DEFAULT_PORT);
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
  /** A saved context (see contexts.ts), applied before the action runs. */
  context?: string;
}

/** Adds --node, --realm, --connect-timeout, --credential and --context (with their MACULA_* variables) to a client command. */
export function addClientOptions(cmd: Command): Command {
  return cmd
    .addOption(
      new Option('-n, --node <host:port>', 'the node to use as gateway').env('MACULA_NODE').default(parseAddress(DEFAULT_NODE_ADDRESS), DEFAULT_NODE_ADDRESS).argParser(parseHostPort),
    )
    .addOption(new Option('-r, --realm <name>', "the node's realm (default: the credential's realm, else default)").env('MACULA_REALM').argParser(parseRealm))
    .addOption(
      new Option('--connect-timeout <ms>', 'how long to wait for the node to answer').env('MACULA_CONNECT_TIMEOUT').default(DEFAULT_CLIENT_TIMEOUT_MS).argParser(parseTimeoutMs),
    )
    .addOption(new Option('--credential <file>', 'client credential file for a secured realm (`macula cred issue --role client`)').env('MACULA_CREDENTIAL'))
    .addOption(new Option('--context <name>', 'use a saved context (`macula context add`); flags and environment variables override it').env('MACULA_CONTEXT').argParser(parseContextName));
}

export function parseContextName(value: string): string {
  try {
    return validateContextName(value);
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
}

/**
 * Fills the client options that neither a flag nor an environment variable
 * set from the context named by --context (or the selected one). Values are
 * parsed by the option's own parser, so a bad saved value fails as a bad
 * flag would, naming the context.
 */
export async function applyContext(cmd: Command): Promise<void> {
  if (!cmd.options.some((o) => o.attributeName() === 'context')) return;
  const resolved = await resolveContext(cmd.opts().context as string | undefined);
  if (resolved === undefined) return;
  for (const field of CONTEXT_FIELDS) {
    const option = cmd.options.find((o) => o.attributeName() === field);
    const raw = resolved.context[field];
    const source = cmd.getOptionValueSource(field);
    if (option === undefined || raw === undefined || source === 'cli' || source === 'env') continue;
    let value: unknown;
    try {
      value = option.parseArg ? option.parseArg(raw, undefined) : raw;
    } catch (err) {
      throw new ConfigError(`context "${resolved.name}": ${option.long} ${JSON.stringify(raw)}: ${(err as Error).message}`);
    }
    cmd.setOptionValueWithSource(field, value, `context ${resolved.name}` as 'config');
  }
}

/** Connects the light client a command uses; NodeUnreachableError carries the message users see. */
export async function connectClient(opts: ClientOptions, extra: { maxInFlight?: number } = {}): Promise<MaculaClient> {
  let credential: { chain: string[]; key: Identity | undefined } | undefined;
  let realm = opts.realm ?? DEFAULT_REALM;
  if (opts.credential !== undefined) {
    // Credentials (and the JWT library they need) load only for a command that uses one.
    const [{ readCredentialFile }, { inspectCredential }] = await Promise.all([import('../auth/files.js'), import('../auth/credential.js')]);
    credential = await readCredentialFile(opts.credential);
    if (credential.key === undefined) {
      throw new ConfigError(`${opts.credential} holds no private key: a client needs a creds file made by \`macula cred issue --role client\` without --subject`);
    }
    realm = opts.realm ?? inspectCredential(credential.chain[credential.chain.length - 1]!).realm;
  }
  return MaculaClient.connect(
    {
      node: opts.node,
      realm,
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
