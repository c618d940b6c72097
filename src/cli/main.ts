/**
 * The `macula` command: commander with one file per command. Commands only
 * parse, call the library and print; errors become one line on stderr and a
 * non-zero exit code, never a stack trace.
 *
 * Exit codes: 0 success; 1 the command failed (node unreachable, refused,
 * remote error, timeout, lost connection); 2 usage error (bad flag, bad
 * argument, invalid JSON arguments).
 */
import { Command, CommanderError } from 'commander';
import { MaculaError } from '../util/errors.js';
import { escapeControls } from './output.js';
import { VERSION } from './version.js';

type Register = (program: Command) => void;

/**
 * Each command's module, loaded only when that command runs: a command pulls
 * in the library parts it needs (`start` the node, `pub` the client) and no
 * others, so a short command starts about as fast as Node itself. The order
 * is the order `--help` lists them in.
 */
const COMMANDS: Record<string, () => Promise<Register>> = {
  start: async () => (await import('./commands/start.js')).registerStart,
  pub: async () => (await import('./commands/pub.js')).registerPub,
  sub: async () => (await import('./commands/sub.js')).registerSub,
  req: async () => (await import('./commands/req.js')).registerReq,
  call: async () => (await import('./commands/call.js')).registerCall,
  serve: async () => (await import('./commands/serve.js')).registerServe,
  lookup: async () => (await import('./commands/lookup.js')).registerLookup,
  peers: async () => (await import('./commands/peers.js')).registerPeers,
  stats: async () => (await import('./commands/stats.js')).registerStats,
  bench: async () => (await import('./commands/bench.js')).registerBench,
  id: async () => (await import('./commands/id.js')).registerId,
  realm: async () => (await import('./commands/realm.js')).registerRealm,
  cred: async () => (await import('./commands/cred.js')).registerCred,
  context: async () => (await import('./commands/context.js')).registerContext,
  check: async () => (await import('./commands/check.js')).registerCheck,
};

/**
 * The commands `argv` needs: the one it names, or all of them when it names
 * none or an unknown one (help, usage errors and suggestions list them all).
 * The program's only own options are --help and --version, so the first
 * argument not starting with "-" is the command.
 */
export function commandsFor(argv: readonly string[]): string[] {
  const name = argv.slice(2).find((a) => !a.startsWith('-'));
  return name !== undefined && Object.hasOwn(COMMANDS, name) ? [name] : Object.keys(COMMANDS);
}

export async function buildProgram(commands: readonly string[] = Object.keys(COMMANDS)): Promise<Command> {
  const program = new Command('macula')
    .description('Macula: a peer-to-peer mesh node over QUIC (DHT, registry, RPC, pub/sub)')
    .version(VERSION, '-V, --version')
    .showHelpAfterError('(run with --help for usage)')
    .configureOutput({ outputError: (str, write) => write(str) })
    .exitOverride(); // before adding commands: subcommands copy it
  for (const register of await Promise.all(commands.map((name) => COMMANDS[name]!()))) register(program);
  if (commands.length > 1) {
    // The program's own help: every command is loaded already, and with them the client options.
    const { DEFAULT_NODE_ADDRESS } = await import('./options.js');
    program.addHelpText(
      'after',
      '\nClient commands (pub, sub, req, call, serve, lookup, peers, stats, bench) reach a running node\n' +
        `through --node (MACULA_NODE, default ${DEFAULT_NODE_ADDRESS}).\n` +
        'Exit codes: 0 success, 1 failure (message on stderr), 2 usage error.',
    );
  }
  // Client commands take what neither a flag nor the environment set from the saved context.
  program.hook('preAction', async (_program, action) => {
    if (action.options.some((o) => o.attributeName() === 'context')) await (await import('./options.js')).applyContext(action);
  });
  return program;
}

export function reportError(err: unknown): number {
  // Commander already printed the message; help/version exit 0, usage errors 2.
  if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 2;
  if (err instanceof MaculaError) {
    // Messages can come from the node or a remote handler: one line, no terminal escapes.
    process.stderr.write(`macula: ${escapeControls(err.message)}\n`);
    return 1;
  }
  process.stderr.write(`macula: ${escapeControls((err as Error)?.message ?? String(err))}\n`);
  if (process.env.MACULA_DEBUG) process.stderr.write(`${(err as Error)?.stack ?? ''}\n`);
  return 1;
}

/** Resolves once everything written to the stream has been handed to the OS. */
function flushed(stream: NodeJS.WriteStream): Promise<void> {
  return new Promise((resolve) => {
    if (stream.destroyed || !stream.writable) return resolve();
    stream.write('', () => resolve());
  });
}

// A reader that goes away (`macula sub … | head -n 3`) is a normal end, not an error.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(process.exitCode === undefined ? 0 : Number(process.exitCode));
  throw err;
});

async function main(): Promise<void> {
  let code: number;
  try {
    await (await buildProgram(commandsFor(process.argv))).parseAsync(process.argv);
    code = Number(process.exitCode ?? 0);
  } catch (err) {
    code = reportError(err);
  }
  // Exit explicitly once output is flushed: a native handle left open by a
  // closed transport must not keep a finished command alive.
  await Promise.all([flushed(process.stdout), flushed(process.stderr)]);
  process.exit(code);
}

void main();
