/** Debian's Chromium, headless, driven by playwright-core: nothing downloads a browser. */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext } from 'playwright-core';

export const CHROMIUM = process.env.MACULA_CHROMIUM ?? '/usr/bin/chromium';
/** A quiet headless run: no QUIC, no network, updates or sync of its own (each run also gets a fresh --user-data-dir). */
export const CHROMIUM_FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

/** Chromium with a fresh profile; the page accepts the node's self-signed certificate as a user who clicked through would. */
export async function launchChromium(): Promise<{ context: BrowserContext; profile: string }> {
  assert.ok(existsSync(CHROMIUM), `no Chromium at ${CHROMIUM}: install Debian's chromium package (.ci/run does) or set MACULA_CHROMIUM`);
  const profile = await mkdtemp(join(tmpdir(), 'macula-chromium-'));
  const context = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, ignoreHTTPSErrors: true, args: CHROMIUM_FLAGS, viewport: { width: 1280, height: 900 } });
  return { context, profile };
}

