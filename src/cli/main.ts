/**
 * The `macula` command: commander with one file per command. Commands only
 * parse, call the library and print; errors become one line on stderr and a
 * non-zero exit code, never a stack trace.
 */
import { Command, CommanderError } from 'commander';
import { MaculaError } from '../util/errors.js';
import { registerStart } from './commands/start.js';
import { VERSION } from './version.js';

export function buildProgram(): Command {
  const program = new Command('macula')
    .description('Macula: a peer-to-peer mesh node over QUIC (DHT, registry, RPC, pub/sub)')
    .version(VERSION, '-V, --version')
    .showHelpAfterError('(run with --help for usage)')
    .configureOutput({ outputError: (str, write) => write(str) })
    .exitOverride(); // before adding commands: subcommands copy it
  registerStart(program);
  return program;
}

export function reportError(err: unknown): number {
  // Commander already printed the message; help/version exit 0, usage errors 2.
  if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 2;
  if (err instanceof MaculaError) {
    process.stderr.write(`macula: ${err.message}\n`);
    return 1;
  }
  process.stderr.write(`macula: ${(err as Error)?.message ?? String(err)}\n`);
  if (process.env.MACULA_DEBUG) process.stderr.write(`${(err as Error)?.stack ?? ''}\n`);
  return 1;
}

const program = buildProgram();
program.parseAsync(process.argv).catch((err) => {
  process.exitCode = reportError(err);
});
