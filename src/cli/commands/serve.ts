import { spawn, type ChildProcess } from 'node:child_process';
import { Command, Option } from 'commander';
import type { ServeContext } from '../../client/client.js';
import { DEFAULT_HANDLER_TIMEOUT_MS } from '../../rpc/server.js';
import { BadResultError, CommandFailedError, ConnectionClosedError, TimeoutError, type MaculaError } from '../../util/errors.js';
import { Semaphore } from '../../util/semaphore.js';
import { addClientOptions, connectClient, describeNode, parseConcurrency, parseTimeoutMs, type ClientOptions } from '../options.js';
import { toJson, writeErr } from '../output.js';
import { waitForSignal } from '../signals.js';
import { SESSION_DEFAULTS } from '../../session/messenger.js';

export const DEFAULT_SERVE_CONCURRENCY = 8;
/** Largest stdout taken as a result: what fits an RPC result frame with room for the envelope. */
export const MAX_RESULT_OUTPUT_BYTES = SESSION_DEFAULTS.maxFrameSize - 4096;
/** Stderr kept for the error message of a failed run (the ERROR message field holds 1024 characters). */
const MAX_STDERR_CHARS = 900;
/** After SIGTERM, a command that does not exit is killed this much later. */
const KILL_GRACE_MS = 2000;

interface ServeOptions extends ClientOptions {
  concurrency: number;
  timeout: number;
}

export function registerServe(program: Command): void {
  const cmd = program
    .command('serve')
    .description('answer calls of a procedure by running a command (until Ctrl-C)')
    .argument('<procedure>', 'procedure name to serve, e.g. text.upper')
    .argument('<command...>', 'the command to run for each call, after "--" (run directly, not through a shell)')
    .addOption(new Option('--concurrency <n>', 'commands running at once; further calls wait their turn').default(DEFAULT_SERVE_CONCURRENCY).argParser(parseConcurrency))
    .addOption(
      new Option('-t, --timeout <ms>', 'time limit of one call; the command is stopped (SIGTERM) when it or the caller runs out').env('MACULA_SERVE_TIMEOUT').default(DEFAULT_HANDLER_TIMEOUT_MS).argParser(parseTimeoutMs),
    )
    .addHelpText(
      'after',
      '\nFor each call the command gets the arguments as one line of JSON on stdin. Its stdout is the\n' +
        'result: parsed as JSON when it is valid JSON, else the text (one trailing newline removed).\n' +
        'A non-zero exit fails the call with MACULA_ERR_COMMAND_FAILED and the start of its stderr.\n\n' +
        'Example:\n  macula serve text.upper -- tr a-z A-Z\n  macula call text.upper \'"hello"\'',
    );
  addClientOptions(cmd).action(async (procedure: string, command: string[], opts: ServeOptions) => {
    const signal = waitForSignal();
    const children = new Set<ChildProcess>();
    const slots = new Semaphore(opts.concurrency, 'serve');
    const client = await connectClient(opts);
    try {
      await client.serve(
        procedure,
        async (args, ctx) => {
          await slots.acquire();
          try {
            return await runCommand(command, args, ctx, children, opts.timeout);
          } catch (err) {
            writeErr(`macula: warning: a call of ${procedure} failed: ${(err as Error).message}\n`);
            throw err;
          } finally {
            slots.release();
          }
        },
        { timeoutMs: opts.timeout },
      );
      writeErr(`serving ${procedure} through ${describeNode(opts)}: ${command.join(' ')} (Ctrl-C stops)\n`);
      const outcome = await Promise.race([signal.promise.then(() => 'signal' as const), client.closed.then(() => 'lost' as const)]);
      if (outcome === 'lost') throw new ConnectionClosedError(`lost the connection to the node at ${describeNode(opts)}; ${procedure} is no longer served`);
    } finally {
      signal.dispose();
      for (const child of children) child.kill('SIGTERM');
      await client.close(); // withdraws the registration before we exit
    }
  });
}

/** Runs the command once for one call. */
function runCommand(command: string[], args: unknown, ctx: ServeContext, children: Set<ChildProcess>, timeoutMs: number): Promise<unknown> {
  const [file, ...argv] = command as [string, ...string[]];
  return new Promise((resolve, reject) => {
    const child = spawn(file, argv, { stdio: ['pipe', 'pipe', 'pipe'] });
    children.add(child);
    const out: Buffer[] = [];
    let outBytes = 0;
    let stderr = '';
    let failure: MaculaError | undefined;
    const stop = (why: MaculaError): void => {
      failure ??= why;
      child.kill('SIGTERM');
      setTimeout(() => child.kill('SIGKILL'), KILL_GRACE_MS).unref();
    };
    const timer = setTimeout(() => stop(new TimeoutError(file, timeoutMs, { message: `${file} did not finish within ${timeoutMs} ms` })), timeoutMs);
    const onAbort = (): void => stop(new TimeoutError(file, timeoutMs, { message: `the caller stopped waiting; ${file} was stopped` }));
    ctx.signal.addEventListener('abort', onAbort, { once: true });
    child.stdout!.on('data', (chunk: Buffer) => {
      outBytes += chunk.length;
      if (outBytes > MAX_RESULT_OUTPUT_BYTES) stop(new BadResultError(`${file} wrote more than ${MAX_RESULT_OUTPUT_BYTES} bytes, too large for a result`));
      else out.push(chunk);
    });
    child.stderr!.on('data', (chunk: Buffer) => {
      if (stderr.length < MAX_STDERR_CHARS) stderr += chunk.toString('utf8');
    });
    // A command that does not read its stdin closes the pipe early: not an error.
    child.stdin!.on('error', () => undefined);
    child.stdin!.end(args === undefined ? '' : `${toJson(args)}\n`);
    child.on('error', (err: NodeJS.ErrnoException) => {
      failure ??= new CommandFailedError(`cannot run ${file}: ${err.code === 'ENOENT' ? 'command not found' : err.message}`);
    });
    child.on('close', (code, sig) => {
      clearTimeout(timer);
      ctx.signal.removeEventListener('abort', onAbort);
      children.delete(child);
      if (failure) return reject(failure);
      if (code !== 0) {
        const detail = stderr.trim().slice(0, MAX_STDERR_CHARS);
        const how = sig ? `was killed by ${sig}` : `exited with code ${code}`;
        return reject(new CommandFailedError(`${file} ${how}${detail ? `: ${detail}` : ''}`));
      }
      resolve(parseOutput(Buffer.concat(out).toString('utf8')));
    });
  });
}

/** Stdout as a result: JSON when it parses, else the text without its trailing newline. */
export function parseOutput(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text.endsWith('\r\n') ? text.slice(0, -2) : text.endsWith('\n') ? text.slice(0, -1) : text;
  }
}
