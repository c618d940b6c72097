/**
 * The dashboard in a real browser: Debian's headless Chromium (driven by
 * playwright-core, nothing downloaded) opens the web port of one node of a
 * 2-node mesh of real `macula start` processes. The page reads the node
 * through the web gateway and its console reaches the other node's
 * `macula pub`, `macula sub` and `macula serve`. A screenshot is left in the
 * system's temp directory; the test prints where.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { BrowserContext, Page } from 'playwright-core';
import { launchChromium } from '../helpers/chromium.js';
import { MaculaProcess, runMacula, startNode, type StartedNode } from '../helpers/cli.js';

const ADD_SCRIPT = "let s='';process.stdin.on('data',d=>s+=d).on('end',()=>{const a=JSON.parse(s);process.stdout.write(JSON.stringify({sum:a.x+a.y}))})";

async function until<T>(what: string, check: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('dashboard in headless Chromium on a 2-node mesh', { timeout: 180_000 }, () => {
  const dirs: string[] = [];
  const procs: MaculaProcess[] = [];
  let a: StartedNode;
  let b: StartedNode;
  let webUrl: string;
  let context: BrowserContext | undefined;
  let page: Page;

  const logText = (): Promise<string> => page.locator('#log').innerText();

  before(async () => {
    const dir = async (): Promise<string> => {
      const d = await mkdtemp(join(tmpdir(), 'macula-web-'));
      dirs.push(d);
      return d;
    };
    a = await startNode(await dir(), ['--web-port', '0', '--status-interval', '0']);
    procs.push(a.proc);
    [, webUrl] = (await a.proc.waitFor(/ {2}web {7}(https:\/\/\S+)/)) as unknown as [string, string];
    await a.proc.waitFor(/first node of a new mesh/);
    b = await startNode(await dir(), ['--bootstrap', a.address, '--status-interval', '0']);
    procs.push(b.proc);
    await b.proc.waitFor(/joined the mesh/);
    const launched = await launchChromium();
    context = launched.context;
    dirs.push(launched.profile);
    page = context.pages()[0] ?? (await context.newPage());
  });

  after(async () => {
    await context?.close().catch(() => undefined);
    for (const p of procs) p.kill('SIGKILL');
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  it('shows the node, moving plots, and its console reaches pub, sub and serve on the other node', async (t) => {
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(webUrl);
    await page.locator('#status[data-state="connected"]').waitFor({ timeout: 20_000 });
    assert.equal((await page.locator('#node-id').innerText()).trim(), a.nodeId);
    assert.equal((await page.locator('#realm').innerText()).trim(), 'default');
    assert.match(await page.locator('#via').innerText(), /WebSocket mapping/);

    // A plot that moves: new samples arrive and the drawing changes.
    const plot = page.locator('#plot-pubsub canvas').first();
    const first = await plot.screenshot();
    const sampled = async (): Promise<number> => Number(await page.locator('body').getAttribute('data-samples'));
    const samples = await sampled();
    await until('two more samples', async () => (await sampled()) >= samples + 2);
    assert.notDeepEqual(await plot.screenshot(), first, 'the plot did not change');
    assert.match(await page.locator('#peer-summary').innerText(), /connections, 1 contacts in the routing table/);

    // Subscribe in the page, publish with `macula pub` on the other node.
    await page.fill('#sub-pattern', 'to.page.#');
    await page.click('#sub-form button');
    await until('the subscription', async () => (await logText()).includes('subscribed to to.page.#'));
    await until('the message in the page', async () => {
      const pub = await runMacula(['pub', '--node', b.address, 'to.page.hello', 'hello from macula pub']);
      assert.equal(pub.code, 0, pub.stderr);
      return (await logText()).includes('[to.page.hello] hello from macula pub');
    });

    // Publish from the page, `macula sub` on the other node prints it.
    const sub = new MaculaProcess(['sub', 'from.page.#', '--count', '1', '--node', b.address]);
    procs.push(sub);
    await sub.waitForStderr(/subscribed to from\.page\.#/);
    await page.fill('#pub-topic', 'from.page.hi');
    await page.fill('#pub-data', 'hello from the dashboard');
    await until('macula sub to print it', async () => {
      if (!sub.stdout.includes('hello from the dashboard')) await page.click('#pub-form button');
      await new Promise((r) => setTimeout(r, 300));
      return sub.stdout.includes('from.page.hi hello from the dashboard');
    });
    assert.equal((await sub.waitForExit()).code, 0, sub.stderr);
    // One-way publishing: the page says so once the node has handled it (flush), and shows a refusal.
    await until('the publish confirmed in the page', async () => (await logText()).includes('published to from.page.hi'));
    await page.fill('#pub-topic', 'from..page');
    await page.click('#pub-form button');
    await until('the refusal in the page', async () => (await logText()).includes('publish from..page: MACULA_ERR_INVALID_TOPIC'));

    // Call a procedure that `macula serve` answers on the other node.
    const serve = new MaculaProcess(['serve', 'page.add', '--node', b.address, '--', process.execPath, '-e', ADD_SCRIPT]);
    procs.push(serve);
    await serve.waitForStderr(/serving page\.add/);
    await page.fill('#call-proc', 'page.add');
    await page.fill('#call-args', '{"x": 2, "y": 40}');
    await until('the result in the page', async () => {
      await page.click('#call-form button');
      await new Promise((r) => setTimeout(r, 300));
      return (await logText()).includes('page.add → {"sum":42}');
    });

    const shot = join(tmpdir(), `macula-dashboard-${process.pid}-${Date.now()}.png`);
    await page.screenshot({ path: shot, fullPage: true });
    t.diagnostic(`dashboard screenshot: ${shot}`);
    assert.deepEqual(errors, []);
  });
});
