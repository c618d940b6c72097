/**
 * Saved connection contexts, as `nats context` keeps them: a name for a
 * node address, a realm and a credential file, stored in the user's config
 * dir (`$MACULA_CONFIG_DIR`, else `$XDG_CONFIG_HOME/macula`, else
 * `~/.config/macula`) as `contexts.json`, mode 0600, written through a
 * temporary file so an interrupted write never loses it.
 *
 * A client command takes its values, for each option, from the first of: a
 * flag, an environment variable, the context named by `--context` (or
 * `MACULA_CONTEXT`, or the selected one), the built-in default.
 */
import { chmod, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { ConfigError } from '../util/errors.js';

/** The client options a context may set, by their commander attribute names. */
export const CONTEXT_FIELDS = ['node', 'realm', 'credential', 'connectTimeout'] as const;
export type ContextField = (typeof CONTEXT_FIELDS)[number];
export type Context = Partial<Record<ContextField, string>>;

export interface ContextFile {
  selected?: string;
  contexts: Record<string, Context>;
}

/** Most contexts kept; a name is a short identifier. */
export const MAX_CONTEXTS = 256;
const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

export function configDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.MACULA_CONFIG_DIR) return env.MACULA_CONFIG_DIR;
  return join(env.XDG_CONFIG_HOME || join(homedir(), '.config'), 'macula');
}

function contextsFile(env: NodeJS.ProcessEnv = process.env): string {
  return join(configDir(env), 'contexts.json');
}

export function validateContextName(name: string): string {
  if (!NAME.test(name)) throw new ConfigError(`invalid context name "${name.slice(0, 80)}": use 1 to 64 letters, digits, '_', '.' or '-', starting with a letter or digit`);
  return name;
}

export async function readContexts(env: NodeJS.ProcessEnv = process.env): Promise<ContextFile> {
  const file = contextsFile(env);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { contexts: {} };
    throw new ConfigError(`cannot read ${file}: ${(err as Error).message}`, { cause: err });
  }
  try {
    const v = JSON.parse(text) as ContextFile;
    if (typeof v !== 'object' || v === null || typeof v.contexts !== 'object' || v.contexts === null) throw new Error('no "contexts" map');
    return { ...(typeof v.selected === 'string' && { selected: v.selected }), contexts: v.contexts };
  } catch (err) {
    throw new ConfigError(`${file} is not a contexts file (${(err as Error).message}); fix it or move it away`, { cause: err });
  }
}

export async function writeContexts(data: ContextFile, env: NodeJS.ProcessEnv = process.env): Promise<void> {
  const dir = configDir(env);
  const file = contextsFile(env);
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const tmp = `${file}.${process.pid}.tmp`;
    await writeFile(tmp, `${JSON.stringify(data, null, 2)}\n`, { mode: 0o600 });
    await chmod(tmp, 0o600);
    await rename(tmp, file);
  } catch (err) {
    throw new ConfigError(`cannot write ${file}: ${(err as Error).message}`, { cause: err });
  }
}

/** The context a command should use: `name` if given, else the selected one (undefined when none). */
export async function resolveContext(name: string | undefined, env: NodeJS.ProcessEnv = process.env): Promise<{ name: string; context: Context } | undefined> {
  const file = await readContexts(env);
  const chosen = name ?? file.selected;
  if (chosen === undefined) return undefined;
  const context = file.contexts[chosen];
  if (context === undefined) {
    if (name === undefined) return undefined; // a selected context removed by hand: as if none
    const known = Object.keys(file.contexts);
    throw new ConfigError(`no context named "${chosen}"${known.length ? ` (known: ${known.join(', ')})` : ''}; add it with \`macula context add ${chosen} --node <host:port>\``);
  }
  return { name: chosen, context };
}
