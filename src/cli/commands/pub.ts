import { createInterface } from 'node:readline';
import { Command } from 'commander';
import type { MaculaClient } from '../../client/client.js';
import type { Headers } from '../../wire/headers.js';
import { addClientOptions, addHeaderOption, connectClient, parseCount, parseRate, parseTopic, type ClientOptions } from '../options.js';
import { formatTopic, writeErr, writeOut } from '../output.js';
import { sleep } from '../signals.js';

interface PubOptions extends ClientOptions {
  count: number;
  header?: Headers;
  rate?: number;
  json?: boolean;
}

export function registerPub(program: Command): void {
  const cmd = program
    .command('pub')
    .description('publish a message to a topic, or one message per line of stdin')
    .argument('<topic>', 'dot-separated topic, e.g. sensors.kitchen.temp', parseTopic)
    .argument('[message]', 'the message (a UTF-8 string); omitted: one message per line read from stdin')
    .option('-c, --count <n>', 'publish each message n times', parseCount, 1)
    .option('--rate <per-second>', 'publish at most this many messages per second', parseRate)
    .option('--json', 'parse each message as JSON and publish the value instead of the text');
  addHeaderOption(cmd, 'every message');
  addClientOptions(cmd).action(async (topic: string, message: string | undefined, opts: PubOptions) => {
    const parse = (text: string, where: string): unknown => {
      if (!opts.json) return text;
      try {
        return JSON.parse(text) as unknown;
      } catch (err) {
        return cmd.error(`error: ${where} is not valid JSON (${(err as Error).message})`, { exitCode: 2, code: 'macula.badJson' });
      }
    };
    const first = message !== undefined ? parse(message, 'the message') : undefined;
    const client = await connectClient(opts);
    try {
      const publisher = new Publisher(client, topic, opts.count, opts.rate, opts.header);
      if (message !== undefined) await publisher.send(first);
      else {
        if (process.stdin.isTTY) writeErr('reading messages from stdin, one per line (Ctrl-D ends)\n');
        let line = 0;
        for await (const text of createInterface({ input: process.stdin, crlfDelay: Infinity })) {
          line++;
          await publisher.send(parse(text, `line ${line} of stdin`));
        }
      }
      const n = await publisher.finish();
      await writeOut(`published ${n} message${n === 1 ? '' : 's'} to ${formatTopic(topic)}\n`);
    } finally {
      await client.close();
    }
  });
}

/**
 * Publishes one-way, as fast as the node's flow-control window lets it (or
 * paced to `rate`); finish() waits until the node has handled every one. The
 * first failure the node reports stops it.
 */
class Publisher {
  #sent = 0;
  #failure: unknown;
  readonly #t0 = performance.now();

  constructor(
    readonly client: MaculaClient,
    readonly topic: string,
    readonly count: number,
    readonly rate: number | undefined,
    readonly headers: Headers | undefined,
  ) {
    client.on('publish-error', (err: unknown) => (this.#failure ??= err));
  }

  async send(data: unknown): Promise<void> {
    for (let i = 0; i < this.count; i++) {
      if (this.#failure !== undefined) throw this.#failure;
      if (this.rate !== undefined) {
        const wait = this.#t0 + (this.#sent * 1000) / this.rate - performance.now();
        if (wait > 1) await sleep(wait);
      }
      await this.client.publish(this.topic, data, this.headers !== undefined ? { headers: this.headers } : {});
      this.#sent++;
    }
  }

  async finish(): Promise<number> {
    await this.client.flush();
    if (this.#failure !== undefined) throw this.#failure;
    return this.#sent;
  }
}
