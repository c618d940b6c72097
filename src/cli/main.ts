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
import { registerBench } from './commands/bench.js';
import { registerCall } from './commands/call.js';
import { registerCheck } from './commands/check.js';
import { registerContext } from './commands/context.js';
import { registerCred } from './commands/cred.js';
import { registerId } from './commands/id.js';
import { registerLookup } from './commands/lookup.js';
import { registerPeers } from './commands/peers.js';
import { registerPub } from './commands/pub.js';
import { registerRealm } from './commands/realm.js';
import { registerServe } from './commands/serve.js';
import { registerStart } from './commands/start.js';
import { registerStats } from './commands/stats.js';
import { registerSub } from './commands/sub.js';
import { registerReq } from './commands/req.js';
import { VERSION } from './version.js';
import { applyContext } from './options.js';

export function buildProgram(): Command {
  const program = new Command('macula')
    .description('Macula: a peer-to-peer mesh node over QUIC (DHT, registry, RPC, pub/sub)')
    .version(VERSION, '-V, --version')
    .showHelpAfterError('(run with --help for usage)')
    .configureOutput({ outputError: (str, write) => write(str) })
    .exitOverride() // before adding commands: subcommands copy it
    .addHelpText(
      'after',
      '\nClient commands (pub, sub, req, call, serve, lookup, peers, stats, bench) reach a running node\n' +
        'through --node (MACULA_NODE, default 127.0.0.1:9443).\n' +
        'Exit codes: 0 success, 1 failure (message on stderr), 2 usage error.',
    );
  registerStart(program);
  registerPub(program);
  registerSub(program);
  registerReq(program);
  registerCall(program);
  registerServe(program);
  registerLookup(program);
  registerPeers(program);
  registerStats(program);
  registerBench(program);
  registerId(program);
  registerRealm(program);
  registerCred(program);
  registerContext(program);
  registerCheck(program);
  // Client commands take what neither a flag nor the environment set from the saved context.
  program.hook('preAction', (_program, action) => applyContext(action));
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
    await buildProgram().parseAsync(process.argv);
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
