/**
 * Diagnostics of long-running commands, on stderr (stdout stays for data).
 * `--log-level` keeps messages at or above a level: error < warn < info < debug.
 */
export const LOG_LEVELS = ['error', 'warn', 'info', 'debug'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

const PREFIX: Record<LogLevel, string> = { error: 'macula: error: ', warn: 'macula: warning: ', info: 'macula: ', debug: 'macula: debug: ' };

export class Logger {
  readonly level: LogLevel;
  readonly #rank: number;
  readonly #write: (text: string) => void;

  constructor(level: LogLevel = 'info', write: (text: string) => void = (t) => process.stderr.write(t)) {
    this.level = level;
    this.#write = write;
    this.#rank = LOG_LEVELS.indexOf(level);
  }

  enabled(level: LogLevel): boolean {
    return LOG_LEVELS.indexOf(level) <= this.#rank;
  }

  error(message: string): void {
    this.#log('error', message);
  }

  warn(message: string): void {
    this.#log('warn', message);
  }

  info(message: string): void {
    this.#log('info', message);
  }

  debug(message: string): void {
    this.#log('debug', message);
  }

  #log(level: LogLevel, message: string): void {
    if (this.enabled(level)) this.#write(`${PREFIX[level]}${message}\n`);
  }
}
