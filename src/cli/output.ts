/**
 * Printing for the shell: stdout carries the command's data (messages,
 * results, tables), stderr carries diagnostics, so pipes and `set -e` work.
 *
 * Payloads are CBOR values; they are shown like this:
 * - a string: as is, unless it holds control characters (a newline would
 *   split one message over lines): then as a JSON string literal;
 * - bytes: as UTF-8 text when they decode as printable UTF-8, else
 *   `base64:<data>`;
 * - anything else (numbers, maps, arrays, …): JSON, with bytes inside as
 *   `{"base64": "…"}` and big integers as strings.
 *
 * Topics come from other publishers too: one holding control characters is
 * shown as a JSON string literal as well, so it cannot forge extra lines or
 * drive the terminal.
 */

const CONTROL = /[\u0000-\u0008\u000a-\u001f\u007f-\u009f]/;
const CONTROL_CHARS = new RegExp(CONTROL.source, 'g');

/** `\n`, `\u001b`, …: JSON's escape, or \uXXXX for the characters JSON leaves as they are (DEL, C1). */
function escapeControl(c: string): string {
  const json = JSON.stringify(c).slice(1, -1);
  return json !== c ? json : `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`;
}

/** Control characters (but tab) replaced by escapes, so the text stays on one line and cannot drive a terminal. */
export function escapeControls(text: string): string {
  return text.replace(CONTROL_CHARS, escapeControl);
}

/** A JSON string literal with every control character escaped (JSON.stringify leaves DEL and C1 as they are). */
function quoted(text: string): string {
  return escapeControls(JSON.stringify(text));
}
const utf8 = new TextDecoder('utf-8', { fatal: true });

/** JSON.stringify with the conventions above for values JSON cannot carry. */
export function toJson(value: unknown, indent?: number): string {
  return (
    JSON.stringify(
      value,
      function (this: Record<string, unknown>, key, v: unknown) {
        const raw = this[key]; // before toJSON: Buffer.toJSON would hide the bytes
        if (raw instanceof Uint8Array) return { base64: Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).toString('base64') };
        if (typeof v === 'bigint') return v.toString();
        if (v instanceof Map) return Object.fromEntries(v);
        if (v instanceof Set) return [...v];
        if (v === undefined && Array.isArray(this)) return null;
        if (typeof v === 'number' && !Number.isFinite(v)) return null;
        return v;
      },
      indent,
    ) ?? 'null'
  );
}

/** A topic or pattern on one line: as is, or as a JSON string literal when it holds control characters. */
export function formatTopic(topic: string): string {
  return CONTROL.test(topic) ? quoted(topic) : topic;
}

/** One payload on one line (see the module comment). */
export function formatPayload(data: unknown): string {
  if (typeof data === 'string') return CONTROL.test(data) ? quoted(data) : data;
  if (data instanceof Uint8Array) {
    try {
      const text = utf8.decode(data);
      if (!CONTROL.test(text)) return text;
    } catch {
      // not UTF-8: fall through to base64
    }
    return `base64:${Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('base64')}`;
  }
  return toJson(data);
}

/** Writes to stdout and resolves once the bytes are handed to the OS (nothing is lost when the process exits next). */
export function writeOut(text: string): Promise<void> {
  return new Promise((resolve, reject) => {
    process.stdout.write(text, (err) => (err ? reject(err) : resolve()));
  });
}

export function writeErr(text: string): void {
  process.stderr.write(text);
}

/** A left-aligned text table; the first row is the header. */
export function table(rows: string[][], options: { indent?: string; rightAlign?: number[] } = {}): string {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  const right = new Set(options.rightAlign ?? []);
  return rows
    .map(
      (row) =>
        (options.indent ?? '') +
        row
          .map((cell, i) => (i === row.length - 1 && !right.has(i) ? cell : right.has(i) ? cell.padStart(widths[i]!) : cell.padEnd(widths[i]!)))
          .join('  ')
          .trimEnd(),
    )
    .join('\n');
}

export function formatCount(n: number): string {
  return Number.isInteger(n) ? n.toLocaleString('en-US') : n.toLocaleString('en-US', { maximumFractionDigits: 1 });
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 ** 3) return `${(n / 1024 / 1024).toFixed(1)} MiB`;
  return `${(n / 1024 ** 3).toFixed(2)} GiB`;
}

export function formatPercent(part: number, whole: number): string {
  return whole > 0 ? `${((100 * part) / whole).toFixed(1)}%` : '—';
}

export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
  return `${Math.floor(s / 86400)}d${String(Math.floor((s % 86400) / 3600)).padStart(2, '0')}h`;
}

export function shortNodeId(id: string): string {
  return id.length > 12 ? `${id.slice(0, 12)}…` : id;
}
