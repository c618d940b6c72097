import { Command } from 'commander';
import type { ClientMessage } from '../../client/client.js';
import { ConnectionClosedError } from '../../util/errors.js';
import { addClientOptions, connectClient, describeNode, parseCount, parsePattern, parseQueueGroup, type ClientOptions } from '../options.js';
import { formatPayload, formatTopic, toJson, writeErr, writeOut } from '../output.js';
import { waitForSignal } from '../signals.js';

interface SubOptions extends ClientOptions {
  count?: number;
  json?: boolean;
  queue?: string;
  headers?: boolean;
}

export function registerSub(program: Command): void {
  const cmd = program
    .command('sub')
    .description('print the messages published to topics matching a pattern (until Ctrl-C, or --count)')
    .argument('<pattern>', 'topic pattern: "*" matches one segment, a final "#" any number (e.g. sensors.*.temp, sensors.#)', parsePattern)
    .option('-c, --count <n>', 'exit (code 0) after n messages', parseCount)
    .option('--json', 'print one JSON object per line: {"topic", "data", "publisher", "seq", "origin"} (and "headers" with --headers)')
    .option('-q, --queue <group>', 'join this queue group: each message goes to one member of the group in the whole mesh', parseQueueGroup)
    .option('--headers', 'print the headers of each message too: "<topic> <headers as JSON> <payload>"')
    .addHelpText(
      'after',
      '\nEach message is printed as "<topic> <payload>". A text payload is printed as is (as a JSON string\n' +
        'if it holds control characters such as newlines; so is a topic); bytes as UTF-8 text when printable, else as\n' +
        '"base64:<data>"; other values as JSON (bytes inside as {"base64": "..."}).',
    );
  addClientOptions(cmd).action(async (pattern: string, opts: SubOptions) => {
    const signal = waitForSignal();
    const client = await connectClient(opts);
    let seen = 0;
    let reachedCount!: () => void;
    const done = new Promise<void>((resolve) => (reachedCount = resolve));
    const print = (m: ClientMessage): void => {
      if (opts.count !== undefined && seen >= opts.count) return;
      seen++;
      const headers = opts.headers ? (m.headers ?? {}) : undefined;
      const line = opts.json
        ? toJson({ topic: m.topic, data: m.data, publisher: m.publisher ?? null, seq: m.seq ?? null, origin: m.origin ?? null, ...(headers !== undefined && { headers }) })
        : `${formatTopic(m.topic)} ${headers !== undefined ? `${toJson(headers)} ` : ''}${formatPayload(m.data)}`;
      process.stdout.write(`${line}\n`);
      if (opts.count !== undefined && seen >= opts.count) reachedCount();
    };
    try {
      await client.subscribe(pattern, print, opts.queue !== undefined ? { queue: opts.queue } : {});
      // stderr: stdout carries only messages, so it can be piped as is.
      writeErr(`subscribed to ${formatTopic(pattern)}${opts.queue !== undefined ? ` in queue group ${opts.queue}` : ''} on ${describeNode(opts)}${opts.count !== undefined ? `, exiting after ${opts.count} message${opts.count === 1 ? '' : 's'}` : ''} (Ctrl-C stops)\n`);
      const lost = client.closed.then(() => 'lost' as const);
      const outcome = await Promise.race([done.then(() => 'done' as const), signal.promise.then(() => 'signal' as const), lost]);
      if (outcome === 'lost' && !(opts.count !== undefined && seen >= opts.count)) {
        throw new ConnectionClosedError(`lost the connection to the node at ${describeNode(opts)} after ${seen} message${seen === 1 ? '' : 's'}`);
      }
      await writeOut(''); // everything printed has reached the pipe before we exit
    } finally {
      signal.dispose();
      await client.close();
    }
  });
}
