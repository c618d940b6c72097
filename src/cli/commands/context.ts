import { resolve } from 'node:path';
import { Command } from 'commander';
import { ConfigError } from '../../util/errors.js';
import { CONTEXT_FIELDS, MAX_CONTEXTS, readContexts, validateContextName, writeContexts, type Context, type ContextField, type ContextFile } from '../contexts.js';
import { addClientOptions, parseHostPort, parseRealm, parseTimeoutMs, type ClientOptions } from '../options.js';
import { formatAddress } from '../../transport/types.js';
import { table, toJson, writeOut } from '../output.js';

/** How each context field is shown as a flag. */
const FLAG: Record<ContextField, string> = { node: '--node', realm: '--realm', credential: '--credential', connectTimeout: '--connect-timeout' };
const ENV: Record<ContextField, string> = { node: 'MACULA_NODE', realm: 'MACULA_REALM', credential: 'MACULA_CREDENTIAL', connectTimeout: 'MACULA_CONNECT_TIMEOUT' };

interface AddOptions {
  node?: string;
  realm?: string;
  credential?: string;
  connectTimeout?: string;
  select?: boolean;
}

export function registerContext(program: Command): void {
  const context = program.command('context').description('save and select connection contexts (node, realm, credential), as `nats context` does');

  context
    .command('add')
    .description('save a context (replacing one of the same name)')
    .argument('<name>', 'context name')
    .option('-n, --node <host:port>', 'the node to use as gateway')
    .option('-r, --realm <name>', "the node's realm")
    .option('--credential <file>', 'client credential file (stored as an absolute path)')
    .option('--connect-timeout <ms>', 'how long to wait for the node to answer')
    .option('--select', 'also select it')
    .action(async (name: string, opts: AddOptions) => {
      validateContextName(name);
      // Checked now with the same parsers the client commands use, so a saved context cannot hold a bad value.
      const entry: Context = {};
      if (opts.node !== undefined) entry.node = formatAddress(checked('--node', () => parseHostPort(opts.node!)));
      if (opts.realm !== undefined) entry.realm = checked('--realm', () => parseRealm(opts.realm!));
      if (opts.credential !== undefined) entry.credential = resolve(opts.credential);
      if (opts.connectTimeout !== undefined) entry.connectTimeout = String(checked('--connect-timeout', () => parseTimeoutMs(opts.connectTimeout!)));
      if (Object.keys(entry).length === 0) throw new ConfigError('a context needs at least one of --node, --realm, --credential, --connect-timeout');
      const file = await readContexts();
      if (!(name in file.contexts) && Object.keys(file.contexts).length >= MAX_CONTEXTS) throw new ConfigError(`at most ${MAX_CONTEXTS} contexts; remove some with \`macula context rm\``);
      file.contexts[name] = entry;
      if (opts.select || file.selected === undefined) file.selected = name;
      await writeContexts(file);
      await writeOut(`context ${name} saved${file.selected === name ? ' and selected' : ''}\n`);
    });

  context
    .command('ls')
    .description('list the saved contexts (* marks the selected one)')
    .option('--json', 'print the contexts file as JSON')
    .action(async (opts: { json?: boolean }) => {
      const file = await readContexts();
      if (opts.json) return writeOut(`${toJson(file, 2)}\n`);
      const rows = [['', 'NAME', 'NODE', 'REALM', 'CREDENTIAL']];
      for (const [name, c] of Object.entries(file.contexts)) rows.push([name === file.selected ? '*' : '', name, c.node ?? '', c.realm ?? '', c.credential ?? '']);
      await writeOut(rows.length === 1 ? 'no contexts saved; add one with `macula context add <name> --node <host:port>`\n' : `${table(rows)}\n`);
    });

  context
    .command('select')
    .description('make a context the default for client commands')
    .argument('<name>', 'context name')
    .action((name: string) =>
      updateExisting(name, 'selected', (file) => {
        file.selected = name;
      }),
    );

  context
    .command('rm')
    .description('remove a saved context')
    .argument('<name>', 'context name')
    .action((name: string) =>
      updateExisting(name, 'removed', (file) => {
        delete file.contexts[name];
        if (file.selected === name) delete file.selected;
      }),
    );

  addClientOptions(
    context.command('show').description('print the values a client command would use now, and where each comes from (flag, environment, context, default)'),
  ).action(async (_opts: ClientOptions, cmd: Command) => {
    const values = cmd.opts();
    const rows = [['OPTION', 'VALUE', 'FROM']];
    for (const field of CONTEXT_FIELDS) {
      const source = cmd.getOptionValueSource(field) as string | undefined;
      const value = values[field] as unknown;
      const shown = value === undefined ? '' : field === 'node' ? formatAddress(value as { host: string; port: number }) : String(value);
      rows.push([FLAG[field], shown, describeSource(field, source)]);
    }
    await writeOut(`${table(rows)}\n`);
  });
}

/** Changes the contexts file for a context that must exist, and says what was done. */
async function updateExisting(name: string, done: string, change: (file: ContextFile) => void): Promise<void> {
  const file = await readContexts();
  if (!(name in file.contexts)) throw new ConfigError(`no context named "${name}"; see \`macula context ls\``);
  change(file);
  await writeContexts(file);
  await writeOut(`context ${name} ${done}\n`);
}

function describeSource(field: ContextField, source: string | undefined): string {
  if (source === 'cli') return 'flag';
  if (source === 'env') return `environment (${ENV[field]})`;
  if (source === 'default') return 'default';
  if (source === undefined) return field === 'realm' ? "unset (the credential's realm, else default)" : 'unset';
  return source; // "context <name>"
}

function checked<T>(flag: string, parse: () => T): T {
  try {
    return parse();
  } catch (err) {
    throw new ConfigError(`${flag}: ${(err as Error).message}`);
  }
}
