/**
 * The dashboard in a real browser: Debian's Chromium driven by puppeteer-core against a real cluster
 * (2 replicas, 1 TaskManager, 3-server ensemble). Every view is opened and checked for what it shows,
 * a job is submitted and cancelled from the UI, the dashboard is used through a standby, and a leader
 * SIGTERM shows up as a new term on the failover timeline. No page may report a CSP violation.
 * Screenshots of each view land in test-artifacts/dashboard/ (UPDATE_DOCS_SCREENSHOTS=1 also refreshes
 * docs/images/dashboard-job-detail.png).
 */
import anyTest, { ExecutionContext, TestFn } from 'ava';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import puppeteer, { Browser, Page } from 'puppeteer-core';
import { ClusterContext, ensembleHooks } from '../helpers/ensemble';
import { ExecutionCluster, ManagedProcess } from '../helpers/execution-cluster';
import { packageRoot } from '../../src/util/package-root';

interface Context extends ClusterContext<ExecutionCluster> { browser: Browser; profile: string }
const test = anyTest as TestFn<Context>;
ensembleHooks(test as unknown as TestFn<ClusterContext<ExecutionCluster>>);

const CHROMIUM = '/usr/bin/chromium';
const SCREENSHOTS = path.join(packageRoot(), 'test-artifacts', 'dashboard');
const WAIT = { timeout: 30_000 };

/** Every CSP violation and page error any page of this file reported. */
const violations: string[] = [];

test.before(async (t) => {
  fs.mkdirSync(SCREENSHOTS, { recursive: true });
  t.context.profile = fs.mkdtempSync(path.join(os.tmpdir(), 'ha-dashboard-chromium-'));
  t.context.browser = await puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    userDataDir: t.context.profile,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
});

test.after.always(async (t) => {
  await t.context.browser?.close();
  if (t.context.profile) fs.rmSync(t.context.profile, { recursive: true, force: true });
});

let started: Promise<ExecutionCluster> | null = null;
function cluster(t: ExecutionContext<Context>): Promise<ExecutionCluster> {
  started ??= ExecutionCluster.start({ connect: t.context.ensemble.connectString, replicas: 2, taskManagers: 1, slots: 4 })
    .then((c) => (t.context.clusters.push(c), c));
  return started;
}

/** A page of `browser` that records CSP violations (console and securitypolicyviolation events). */
async function openPage(browser: Browser): Promise<Page> {
  const page = await browser.newPage();
  await page.setViewport({ width: 1280, height: 900 });
  page.on('console', (m) => { if (/Content.Security.Policy/i.test(m.text())) violations.push(`console: ${m.text()}`); });
  page.on('pageerror', (err) => violations.push(`page error: ${String(err)}`));
  await page.exposeFunction('reportViolation', (v: string) => { violations.push(`securitypolicyviolation: ${v}`); });
  await page.evaluateOnNewDocument(`document.addEventListener('securitypolicyviolation',
    (e) => window.reportViolation(e.violatedDirective + ' ' + e.blockedURI + ' ' + e.sourceFile + ':' + e.lineNumber));`);
  return page;
}

/** Opens `url` (a dashboard route) and waits for the view's data container to have content. */
async function view(page: Page, url: string, ready: string): Promise<void> {
  await page.goto(url, { waitUntil: 'domcontentloaded' });
  await page.waitForSelector(ready, WAIT);
}

/** Waits until the text of the first element matching `selector` matches `pattern`. */
function waitForText(page: Page, selector: string, pattern: RegExp, timeout = WAIT.timeout): Promise<unknown> {
  return page.waitForFunction((sel: string, src: string) => new RegExp(src).test((globalThis as any).document.querySelector(sel)?.textContent ?? ''),
    { timeout }, selector, pattern.source);
}

/** Waits until `selector` matches exactly `count` elements. */
function waitForCount(page: Page, selector: string, count: number, timeout = WAIT.timeout): Promise<unknown> {
  return page.waitForFunction((sel: string, n: number) => (globalThis as any).document.querySelectorAll(sel).length === n, { timeout }, selector, count);
}

const texts = (page: Page, selector: string): Promise<string[]> => page.$$eval(selector, (els) => els.map((e) => (e.textContent ?? '').trim()));
const shot = (page: Page, name: string): Promise<unknown> => page.screenshot({ path: path.join(SCREENSHOTS, `${name}.png`), fullPage: true });

function withLogs<T>(t: ExecutionContext<Context>, c: ExecutionCluster, fn: () => Promise<T>): Promise<T> {
  return fn().catch((err) => {
    t.log(c.logs());
    throw err;
  });
}

test.serial('every view shows the cluster: overview, jobs, job detail with plan and logs, TaskManagers, configuration', async (t) => {
  t.timeout(240_000);
  const c = await cluster(t);
  await withLogs(t, c, async () => {
    const jobId = await c.submit({
      name: 'three-stages',
      vertices: [
        { id: 'extract', parallelism: 2, task: { type: 'command', argv: ['sh', '-c', 'echo "extracted $SUBTASK_INDEX"'] } },
        { id: 'transform', parallelism: 2, inputs: ['extract'], task: { type: 'sleep', ms: 50 } },
        { id: 'load', parallelism: 1, inputs: ['transform'], task: { type: 'command', argv: ['sh', '-c', 'echo loaded'] } },
      ],
      restartStrategy: { type: 'none' },
    });
    await c.waitForJob(jobId, (j) => j.state === 'FINISHED', 'job FINISHED');
    const leader = await c.leader();
    const standby = c.replicas.find((r) => r !== leader)!;
    const page = await openPage(t.context.browser);

    await view(page, `${leader.url}/#/overview`, '#cluster-facts');
    t.is(await page.$eval('#role', (e) => e.textContent), 'leader');
    const replicaRows = await texts(page, '#replicas-table tbody tr');
    t.is(replicaRows.length, 2);
    t.true(replicaRows.some((r) => r.includes(leader.id) && r.includes('leader')), replicaRows.join(' | '));
    t.true(replicaRows.some((r) => r.includes(standby.id) && r.includes('standby')), replicaRows.join(' | '));
    t.regex((await texts(page, '#cluster-facts'))[0], /finished 1/);
    t.regex((await texts(page, '#cluster-facts'))[0], /\d free of 4/);
    await shot(page, 'overview');

    await view(page, `${leader.url}/#/jobs`, '#jobs-table tbody tr');
    const jobRow = await page.$eval(`#jobs-table tr[data-job="${jobId}"]`, (e) => e.textContent ?? '');
    t.regex(jobRow, /three-stages/);
    t.regex(jobRow, /FINISHED/);
    await shot(page, 'jobs');

    // Follow the job's link with the keyboard-reachable anchor.
    await page.click(`#jobs-table a[href="#/jobs/${jobId}"]`);
    await page.waitForSelector('svg.plan g.vertex', WAIT);
    t.deepEqual(await page.$$eval('svg.plan g.vertex', (els) => els.map((e) => e.getAttribute('data-id'))), ['extract', 'transform', 'load']);
    t.deepEqual(await page.$$eval('svg.plan path.edge', (els) => els.map((e) => e.getAttribute('data-edge'))), ['extract->transform', 'transform->load']);
    t.regex((await texts(page, '#job-state'))[0], /FINISHED/);
    const extractRows = await texts(page, '#subtasks-extract tbody tr');
    t.is(extractRows.length, 2);
    for (const r of extractRows) {
      t.regex(r, /FINISHED/);
      t.regex(r, /tm1/);
    }
    t.is((await texts(page, '#subtasks-load tbody tr')).length, 1);
    t.truthy(await page.$('#no-exceptions'));
    t.is(await page.$('#cancel-job'), null, 'a finished job has no cancel button');
    await page.click('[data-key="log-load-0"]');
    await waitForText(page, '#task-log', /loaded/);
    await shot(page, 'job-detail');
    // The README's screenshot, refreshed on request only (UPDATE_DOCS_SCREENSHOTS=1) so runs leave the tree clean.
    if (process.env.UPDATE_DOCS_SCREENSHOTS === '1') await page.screenshot({ path: path.join(packageRoot(), 'docs', 'images', 'dashboard-job-detail.png') });

    await view(page, `${leader.url}/#/taskmanagers`, '#tm-table tbody tr');
    const tmRow = await page.$eval('#tm-table tr[data-tm="tm1"]', (e) => e.textContent ?? '');
    t.regex(tmRow, /\d \/ 4/);
    t.regex(tmRow, /ago/);
    await shot(page, 'taskmanagers');

    await view(page, `${leader.url}/#/config`, '#config-table tbody tr');
    const config = await texts(page, '#config-table tbody tr');
    t.true(config.some((r) => r.startsWith('high-availability.cluster-id') && r.includes(c.clusterId)), config.slice(0, 5).join(' | '));
    await shot(page, 'config');

    await view(page, `${leader.url}/#/history`, '#history-table tbody tr');
    const terms = await texts(page, '#history-table tbody tr');
    t.is(terms.length, 1);
    t.regex(terms[0], new RegExp(`${leader.id}.*current`));
    await page.close();
    t.deepEqual(violations, []);
  });
});

test.serial('a job submitted from the jobs view is cancelled from its detail view', async (t) => {
  t.timeout(180_000);
  const c = await cluster(t);
  await withLogs(t, c, async () => {
    const leader = await c.leader();
    const page = await openPage(t.context.browser);
    await view(page, `${leader.url}/#/jobs`, '#jobs-table');
    const graph = { name: 'long-running', vertices: [{ id: 'wait', parallelism: 1, task: { type: 'sleep', ms: 600_000 } }] };
    await page.type('#job-graph', JSON.stringify(graph));
    await page.click('#submit-job');
    await page.waitForSelector('#submit-result a', WAIT);
    await page.click('#submit-result a');
    await waitForText(page, '#job-state', /RUNNING/);
    const jobId = /#\/jobs\/([0-9a-f]{32})/.exec(page.url())![1];
    await page.waitForSelector('#cancel-job', WAIT);
    await page.focus('#cancel-job');
    await page.keyboard.press('Enter');
    await waitForText(page, '#job-state', /CANCELED/);
    t.is((await c.job(jobId)).state, 'CANCELED');
    t.is(await page.$('#cancel-job'), null);
    await shot(page, 'job-canceled');

    // The jobs list filters by state and sorts by column, client-side.
    await view(page, `${leader.url}/#/jobs`, `#jobs-table tr[data-job="${jobId}"]`);
    await waitForCount(page, '#jobs-table tbody tr', 2);
    await page.select('#state-filter', 'CANCELED');
    await waitForCount(page, '#jobs-table tbody tr', 1);
    t.regex((await texts(page, '#jobs-table tbody tr'))[0], /long-running.*CANCELED/);
    await page.select('#state-filter', '');
    await waitForCount(page, '#jobs-table tbody tr', 2);
    await page.click('[data-key="sort-name"]');
    await waitForText(page, '#jobs-table th[aria-sort="ascending"]', /Name/);
    t.deepEqual((await texts(page, '#jobs-table tbody tr td:nth-child(2)')), ['long-running', 'three-stages']);
    await page.click('[data-key="sort-name"]');
    await waitForText(page, '#jobs-table th[aria-sort="descending"]', /Name/);
    t.deepEqual((await texts(page, '#jobs-table tbody tr td:nth-child(2)')), ['three-stages', 'long-running']);
    await page.close();
    t.deepEqual(violations, []);
  });
});

test.serial('through a standby: shared data shown, leader-only views link to the leader; a leader SIGTERM adds a term to the timeline', async (t) => {
  t.timeout(180_000);
  const c = await cluster(t);
  await withLogs(t, c, async () => {
    const leader = await c.leader();
    const standby: ManagedProcess = c.replicas.find((r) => r !== leader)!;
    const page = await openPage(t.context.browser);

    await view(page, `${standby.url}/#/overview`, '#replicas-table tbody tr');
    t.is(await page.$eval('#role', (e) => e.textContent), 'standby');
    t.is((await texts(page, '#replicas-table tbody tr')).length, 2);
    t.is(await page.$eval('#cluster a', (e) => e.getAttribute('href')), `${leader.url}/#/overview`);
    await shot(page, 'standby-overview');

    await view(page, `${standby.url}/#/jobs`, '#jobs .notice a');
    t.is(await page.$eval('#jobs .notice a', (e) => e.getAttribute('href')), `${leader.url}/#/jobs`);
    t.regex(await page.$eval('#leader-elsewhere', (e) => e.textContent ?? ''), new RegExp(`leader ${leader.id}`));

    await view(page, `${standby.url}/#/history`, '#history-table tbody tr');
    const before = await texts(page, '#history-table tbody tr');
    t.is(before.length, 1);

    await leader.signal('SIGTERM');
    await waitForCount(page, '#history-table tbody tr', 2, 60_000);
    const [latest, previous] = await texts(page, '#history-table tbody tr');
    t.regex(latest, new RegExp(`${standby.id}.*current.*took over from ${leader.id}`));
    t.notRegex(previous, /current/, 'the earlier term ended when the new one started');
    await waitForText(page, '#role', /^leader$/);
    await shot(page, 'failover-timeline');

    // The replica seen earlier in this session is shown as missing.
    await view(page, `${standby.url}/#/overview`, '#cluster-facts');
    const rows = await texts(page, '#replicas-table tbody tr');
    t.true(rows.some((r) => r.includes(leader.id) && r.includes('missing')), rows.join(' | '));
    await shot(page, 'overview-missing-replica');
    await page.close();
    t.deepEqual(violations, []);
  });
});
