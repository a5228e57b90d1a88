// ha-dispatcher dashboard: hash-routed views over the REST API of the replica that served this page.
// No framework, no inline code (the page is served with a strict Content-Security-Policy).
'use strict';

const REFRESH_MS = 2000;
const PAGE_SIZE = 20;
const TERMINAL = new Set(['FINISHED', 'FAILED', 'CANCELED']);
const SVG_NS = 'http://www.w3.org/2000/svg';

// ---- small DOM helpers --------------------------------------------------------------------------

/** Element builder: h('a', {href: '#/x'}, 'text', child, [more]); null/false children are skipped. */
function h(tag, attrs, ...children) {
  const el = tag.startsWith('svg:') ? document.createElementNS(SVG_NS, tag.slice(4)) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : String(c));
  }
  return el;
}

/** Replaces a container's content, keeping keyboard focus on the element with the same data-key. */
function fill(container, ...nodes) {
  const key = container.contains(document.activeElement) ? document.activeElement.dataset.key : undefined;
  container.replaceChildren(...nodes.flat(Infinity).filter((n) => n !== null && n !== undefined));
  if (key) container.querySelector(`[data-key="${CSS.escape(key)}"]`)?.focus();
}

const state = (s) => h('span', { class: `state state-${s}` }, s);
const time = (ms) => (typeof ms === 'number' && ms > 0 ? new Date(ms).toLocaleString() : '—');
const isoTime = (iso) => (iso ? new Date(iso).toLocaleString() : '—');
function duration(ms) {
  if (typeof ms !== 'number' || ms < 0) return '—';
  if (ms < 1000) return `${ms} ms`;
  if (ms < 120000) return `${(ms / 1000).toFixed(1)} s`;
  return `${Math.floor(ms / 60000)} min ${Math.round((ms % 60000) / 1000)} s`;
}
function table(id, caption, headers, rows) {
  return h('table', { id },
    h('caption', { class: 'muted' }, caption),
    h('thead', {}, h('tr', {}, headers.map((x) => h('th', { scope: 'col' }, x)))),
    h('tbody', {}, rows));
}
const row = (...cells) => h('tr', {}, cells.map((c) => h('td', {}, c)));

// ---- REST access --------------------------------------------------------------------------------

// With security.rest.token, open the page once as /#token=<token> (or #/<view>&token=<token>): kept for this tab
// only, then dropped from the URL. A fragment is never sent to a server.
const token = (() => {
  const m = /(?:^|[#&])token=([^&]+)/.exec(location.hash);
  if (m) {
    sessionStorage.setItem('ha-dispatcher-token', decodeURIComponent(m[1]));
    const rest = location.hash.replace(/[#&]?token=[^&]*/, '').replace(/^#?&?/, '#');
    history.replaceState(null, '', `${location.pathname}${/^#\/[a-z]+/.test(rest) ? rest : '#/overview'}`);
  }
  return sessionStorage.getItem('ha-dispatcher-token');
})();

/** Thrown for leader-only calls on a standby: the leader is another origin, which this page may not call. */
class LeaderElsewhere extends Error {}
class ApiError extends Error { constructor(status, message) { super(message); this.status = status; } }

let health = null;

/** JSON from this replica. Redirects are never followed: a standby's 307 points at another origin. */
async function api(path, { method = 'GET', body } = {}) {
  const headers = {};
  if (token) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const r = await fetch(path, { method, headers, body, redirect: 'manual', cache: 'no-store' });
  if (r.type === 'opaqueredirect' || r.status === 307) throw new LeaderElsewhere('leader-only data is served by the leader');
  if (r.status === 401) throw new ApiError(401, 'this cluster needs its REST token: open this page as /#token=<security.rest.token>');
  const text = await r.text();
  let data = text;
  try { data = text ? JSON.parse(text) : null; } catch { /* plain text (task logs) */ }
  if (!r.ok) throw new ApiError(r.status, `${method} ${path}: ${r.status} ${(data && data.errors && data.errors.join('; ')) || ''}`.trim());
  return data;
}

/** True when this replica serves leader-only requests itself (it is the leader, or no leader is known). */
const servesLeaderCalls = () => !health || health.role === 'leader' || !health.leader;

function leaderLink() {
  const url = health && health.leader && health.leader.restUrl;
  if (!url) return null;
  // The leader is another origin with its own storage: the token goes along in the fragment, which no server sees.
  const hash = token ? `${location.hash || '#/overview'}&token=${encodeURIComponent(token)}` : location.hash;
  return h('a', { href: `${url.replace(/\/$/, '')}/${hash}` }, `${url.replace(/\/$/, '')}/`);
}

/** What a leader-only section shows on a standby. */
function leaderOnlyNotice(what) {
  return h('p', { class: 'notice' }, `${what} is served by the leader (${health.leader.replicaId}, epoch ${health.leader.epoch}); `,
    'open the leader\'s dashboard: ', leaderLink());
}

/** Runs a leader-only load; on a standby renders the notice instead. */
async function leaderOnly(container, what, load) {
  if (!servesLeaderCalls()) { fill(container, leaderOnlyNotice(what)); return; }
  try {
    await load();
  } catch (err) {
    if (err instanceof LeaderElsewhere && health && health.leader) fill(container, leaderOnlyNotice(what));
    else throw err;
  }
}

// The page does not know the caller's role (security.rest.credentials-file): write actions are shown and hidden once a request answers 403.
const writesForbidden = () => sessionStorage.getItem('ha-dispatcher-writes') === 'forbidden';
function noteForbidden(err) {
  if (err instanceof ApiError && err.status === 403) {
    sessionStorage.setItem('ha-dispatcher-writes', 'forbidden');
    for (const b of document.querySelectorAll('[data-write]')) b.hidden = true;
  }
}

// ---- replicas seen in this browser session ------------------------------------------------------

function knownReplicas() {
  try { return JSON.parse(sessionStorage.getItem('ha-dispatcher-replicas') || '{}'); } catch { return {}; }
}
function rememberReplicas(replicas) {
  const known = knownReplicas();
  for (const r of replicas) if (r.replicaId) known[r.replicaId] = { restUrl: r.restUrl, lastSeen: Date.now() };
  sessionStorage.setItem('ha-dispatcher-replicas', JSON.stringify(known));
  return known;
}

// ---- views --------------------------------------------------------------------------------------

const views = {
  overview: {
    title: 'Overview',
    build(view) {
      view.append(h('h2', {}, 'Overview'),
        h('h3', {}, 'This replica'), h('div', { id: 'this-replica' }),
        h('h3', {}, 'Replicas (latch order)'), h('div', { id: 'replicas' }),
        h('h3', {}, 'Cluster'), h('div', { id: 'cluster' }));
    },
    async update() {
      const leaderId = health.role === 'leader' ? health.replicaId : health.leader && health.leader.replicaId;
      fill(document.getElementById('this-replica'), h('dl', { class: 'facts' },
        h('dt', {}, 'Replica'), h('dd', {}, health.replicaId),
        h('dt', {}, 'Role'), h('dd', {}, state(health.role)),
        h('dt', {}, 'ZooKeeper'), h('dd', {}, `${health.zookeeper.state}${health.zookeeper.sessionId ? ` (session ${health.zookeeper.sessionId})` : ''}`),
        h('dt', {}, 'Leader'), h('dd', {}, health.leader ? `${health.leader.replicaId} (epoch ${health.leader.epoch})` : 'none known'),
        h('dt', {}, 'Epoch'), h('dd', {}, health.leader ? String(health.leader.epoch) : '—')));

      const { replicas } = await api('/replicas');
      const known = rememberReplicas(replicas);
      const present = new Set(replicas.map((r) => r.replicaId));
      const missing = Object.entries(known).filter(([id]) => !present.has(id));
      fill(document.getElementById('replicas'), table('replicas-table', 'Contenders for leadership; a replica seen earlier in this session and gone now is missing.',
        ['#', 'Replica', 'Status', 'REST URL', 'Latch sequence'],
        [...replicas.map((r) => row(String(r.position), r.replicaId || r.node, state(r.replicaId === leaderId ? 'leader' : 'standby'),
          r.restUrl ? h('a', { href: r.restUrl, 'data-key': `rep-${r.replicaId}` }, r.restUrl) : '—', String(r.sequence))),
        ...missing.map(([id, m]) => h('tr', { class: 'missing' }, h('td', {}, '—'), h('td', {}, id), h('td', {}, state('missing')),
          h('td', {}, `${m.restUrl || '—'} (last seen ${new Date(m.lastSeen).toLocaleTimeString()})`), h('td', {}, '—')))]));

      const cluster = document.getElementById('cluster');
      await leaderOnly(cluster, 'The cluster overview', async () => {
        const o = await api('/overview');
        fill(cluster, h('dl', { class: 'facts', id: 'cluster-facts' },
          h('dt', {}, 'Epoch'), h('dd', {}, String(o.epoch)),
          h('dt', {}, 'TaskManagers'), h('dd', {}, String(o.taskmanagers)),
          h('dt', {}, 'Slots'), h('dd', {}, `${o['slots-available']} free of ${o['slots-total']}`),
          h('dt', {}, 'Jobs'), h('dd', {}, `running ${o['jobs-running']} · finished ${o['jobs-finished']} · failed ${o['jobs-failed']} · canceled ${o['jobs-cancelled']}`),
          h('dt', {}, 'Version'), h('dd', {}, o.version)));
      });
    },
  },

  jobs: {
    title: 'Jobs',
    sort: { key: 'start-time', dir: -1 },
    filter: '',
    page: 0,
    build(view) {
      const v = this;
      const select = h('select', { id: 'state-filter', onchange: (e) => { v.filter = e.target.value; v.page = 0; refresh(); } },
        ['', 'RUNNING', 'FINISHED', 'FAILED', 'CANCELED', 'CANCELLING', 'RESTARTING', 'CREATED', 'INITIALIZING']
          .map((s) => h('option', { value: s, selected: s === v.filter }, s || 'all states')));
      const submitArea = h('textarea', { id: 'job-graph', spellcheck: 'false', placeholder: '{"name": "...", "vertices": [...]}' });
      const result = h('p', { id: 'submit-result', role: 'status' });
      view.append(h('h2', {}, 'Jobs'),
        h('div', { class: 'controls' }, h('label', { for: 'state-filter' }, 'State '), select),
        h('div', { id: 'jobs' }),
        h('section', { 'aria-labelledby': 'submit-heading', 'data-write': true, hidden: writesForbidden() },
          h('h3', { id: 'submit-heading' }, 'Submit a job'),
          h('label', { for: 'job-graph' }, 'JobGraph (JSON)'), h('br', {}), submitArea, h('br', {}),
          h('button', { type: 'button', class: 'action', id: 'submit-job', onclick: () => submitJob(submitArea, result) }, 'Submit job'),
          result));
    },
    async update() {
      const v = this;
      const container = document.getElementById('jobs');
      await leaderOnly(container, 'The job list', async () => {
        const { jobs } = await api('/jobs/overview');
        const shown = jobs.filter((j) => !v.filter || j.state === v.filter);
        const { key, dir } = v.sort;
        shown.sort((a, b) => (a[key] < b[key] ? -dir : a[key] > b[key] ? dir : 0));
        const pages = Math.max(1, Math.ceil(shown.length / PAGE_SIZE));
        v.page = Math.min(v.page, pages - 1);
        const cols = [['jid', 'Job id'], ['name', 'Name'], ['state', 'State'], ['start-time', 'Started'], ['duration', 'Duration'], ['submitted-by', 'Submitted by']];
        const head = h('tr', {}, cols.map(([k, label]) => h('th', { scope: 'col', 'aria-sort': k === key ? (dir > 0 ? 'ascending' : 'descending') : 'none' },
          h('button', { type: 'button', 'data-key': `sort-${k}`, onclick: () => { v.sort = { key: k, dir: k === key ? -dir : 1 }; refresh(); } },
            label, k === key ? (dir > 0 ? ' ▲' : ' ▼') : ''))));
        const body = shown.slice(v.page * PAGE_SIZE, (v.page + 1) * PAGE_SIZE).map((j) => h('tr', { 'data-job': j.jid },
          h('td', {}, h('a', { href: `#/jobs/${j.jid}`, 'data-key': `job-${j.jid}` }, h('code', {}, j.jid))),
          h('td', {}, j.name), h('td', {}, state(j.state)), h('td', {}, time(j['start-time'])), h('td', { class: 'num' }, duration(j.duration)),
          h('td', {}, j['submitted-by'] || '—')));
        fill(container,
          h('table', { id: 'jobs-table' }, h('caption', { class: 'muted' }, `${shown.length} of ${jobs.length} jobs`), h('thead', {}, head), h('tbody', {}, body)),
          h('div', { class: 'controls' },
            h('button', { type: 'button', class: 'link', 'data-key': 'prev', disabled: v.page === 0, onclick: () => { v.page--; refresh(); } }, 'Previous page'),
            h('span', {}, `page ${v.page + 1} of ${pages}`),
            h('button', { type: 'button', class: 'link', 'data-key': 'next', disabled: v.page >= pages - 1, onclick: () => { v.page++; refresh(); } }, 'Next page')));
      });
    },
  },

  job: {
    title: 'Job',
    build(view, jobId) {
      view.append(h('h2', { id: 'job-title' }, `Job ${jobId}`), h('div', { id: 'job-summary' }),
        h('h3', {}, 'Plan'), h('div', { id: 'job-plan' }),
        h('h3', {}, 'Vertices'), h('div', { id: 'job-vertices' }),
        h('h3', {}, 'Exceptions'), h('div', { id: 'job-exceptions' }),
        h('h3', {}, 'Task log'), h('p', { id: 'log-title', class: 'muted' }, 'Choose "log" on a subtask.'), h('pre', { id: 'task-log', tabindex: '0' }));
    },
    async update(jobId) {
      const summary = document.getElementById('job-summary');
      await leaderOnly(summary, 'Job detail', async () => {
        const [flinkJob, exceptions] = await Promise.all([api(`/jobs/${jobId}`), api(`/jobs/${jobId}/exceptions`)]);
        // Drawn and keyed by the JobGraph's vertex ids (the REST `id` is Flink's 32-hex form).
        const job = { ...flinkJob, vertices: flinkJob.vertices.map((v) => ({ ...v, id: v.vertexId ?? v.id })) };
        document.getElementById('job-title').textContent = `Job ${job.name}`;
        const cancel = TERMINAL.has(job.state) || job.state === 'CANCELLING' ? null
          : h('button', { type: 'button', class: 'action danger', id: 'cancel-job', 'data-key': 'cancel', 'data-write': true, hidden: writesForbidden(),
            onclick: () => cancelJob(jobId) }, 'Cancel job');
        fill(summary, h('dl', { class: 'facts' },
          h('dt', {}, 'Id'), h('dd', {}, h('code', {}, job.jid)),
          h('dt', {}, 'State'), h('dd', { id: 'job-state' }, state(job.state)),
          h('dt', {}, 'Submitted by'), h('dd', { id: 'job-submitted-by' }, job['submitted-by'] || '—'),
          h('dt', {}, 'Started'), h('dd', {}, time(job['start-time'])),
          h('dt', {}, 'Ended'), h('dd', {}, time(job['end-time'])),
          h('dt', {}, 'Duration'), h('dd', {}, duration(job.duration)),
          h('dt', {}, 'Restarts'), h('dd', {}, String(job.restarts)),
          ...(typeof job.priority === 'number'
            ? [h('dt', {}, 'Priority'), h('dd', { id: 'job-priority' }, job['priority-class'] ? `${job['priority-class']} (${job.priority})` : String(job.priority))]
            : [])), cancel);
        fill(document.getElementById('job-plan'), job.vertices.length ? planSvg(job.vertices) : h('p', { class: 'muted' }, 'The plan of a job from an earlier leader term is not kept.'));
        fill(document.getElementById('job-vertices'), job.vertices.map((v) => h('section', { class: 'vertex', 'data-vertex': v.id },
          h('h4', {}, `${v.name} `, state(v.status), ` · parallelism ${v.parallelism} · ${duration(v.duration)}`),
          table(`subtasks-${v.id}`, `Subtasks of ${v.id}`, ['Subtask', 'State', 'Attempt', 'TaskManager', 'Start', 'End', 'Duration', 'Log'],
            v.subtasks.map((s) => row(String(s.subtask), state(s.status), String(s.attempt), s.taskmanager || '—', time(s['start-time']), time(s['end-time']), duration(s.duration),
              s.log && s.taskmanager ? h('button', { type: 'button', class: 'link', 'data-key': `log-${v.id}-${s.subtask}`, onclick: () => showLog(`${v.id}/${s.subtask} attempt ${s.attempt}`, s.log) }, 'log') : '—'))))));
        const entries = exceptions.exceptionHistory.entries;
        fill(document.getElementById('job-exceptions'), entries.length === 0 ? h('p', { id: 'no-exceptions', class: 'muted' }, 'No exceptions.')
          : h('ol', { id: 'exception-list' }, entries.slice().reverse().map((e, i) => h('li', {},
            h('details', { 'data-key': `exc-${i}` }, h('summary', {}, `${time(e.timestamp)} · ${e.exceptionName}${e.taskName ? ` · ${e.taskName}` : ''}${e.location ? ` @ ${e.location}` : ''}`),
              h('pre', {}, e.stacktrace))))));
      });
    },
  },

  taskmanagers: {
    title: 'Task managers',
    build(view) { view.append(h('h2', {}, 'Task managers'), h('div', { id: 'taskmanagers' })); },
    async update() {
      const container = document.getElementById('taskmanagers');
      await leaderOnly(container, 'The TaskManager list', async () => {
        const { taskmanagers } = await api('/taskmanagers');
        fill(container, table('tm-table', `${taskmanagers.length} registered TaskManagers`,
          ['Id', 'Host', 'Address', 'Slots free / total', 'Tasks', 'Last heartbeat', 'Registered'],
          taskmanagers.map((tm) => h('tr', { 'data-tm': tm.id },
            h('th', { scope: 'row' }, tm.id, ...(tm.blocked ? [' ', h('span', { class: 'state state-CANCELING', title: 'drained: no new work; released once its tasks end' }, 'draining')] : [])),
            h('td', {}, tm.host), h('td', {}, tm.address),
            h('td', { class: 'num' }, `${tm.freeSlots} / ${tm.slotsNumber}`),
            h('td', {}, tm.tasks.length ? h('ul', {}, tm.tasks.map((t) => h('li', {}, `${t.vertexId}/${t.subtask} #${t.attempt} `, state(t.state)))) : '0'),
            h('td', {}, `${duration(tm.heartbeatAgeMs)} ago`), h('td', {}, time(tm.registeredAt))))));
      });
    },
  },

  history: {
    title: 'Failover timeline',
    build(view) { view.append(h('h2', {}, 'Failover timeline'), h('p', { class: 'muted' }, 'Leadership terms recorded in ZooKeeper (the last 50), newest first; a term ends when the next one starts.'), h('div', { id: 'history' })); },
    async update() {
      const { terms } = await api('/leadership/history');
      fill(document.getElementById('history'), table('history-table', `${terms.length} terms`,
        ['Epoch', 'Leader', 'Granted', 'Ready', 'Recovery', 'Ended', 'Cause'],
        terms.slice().reverse().map((t) => h('tr', { 'data-epoch': t.epoch },
          h('th', { scope: 'row' }, String(t.epoch)), h('td', {}, t.replicaId), h('td', {}, isoTime(t.grantedAt)), h('td', {}, isoTime(t.readyAt)),
          h('td', { class: 'num' }, duration(t.recoveryMs)), h('td', {}, t.endedAt ? isoTime(t.endedAt) : 'current'), h('td', {}, t.cause || '—')))));
    },
  },

  config: {
    title: 'Configuration',
    build(view) { view.append(h('h2', {}, 'Configuration'), h('p', { class: 'muted' }, 'The leader\'s effective configuration; secrets are redacted.'), h('div', { id: 'config' })); },
    async update() {
      const container = document.getElementById('config');
      await leaderOnly(container, 'The configuration', async () => {
        const entries = await api('/jobmanager/config');
        fill(container, table('config-table', `${entries.length} settings`, ['Key', 'Value'],
          entries.slice().sort((a, b) => a.key.localeCompare(b.key)).map((e) => h('tr', {}, h('th', { scope: 'row' }, h('code', {}, e.key)), h('td', {}, h('code', {}, e.value))))));
      });
    },
  },
};

// ---- the plan as a graph ------------------------------------------------------------------------

/** SVG of the JobGraph: one column per topological level (sources left), an arrow per input edge. */
function planSvg(vertices) {
  const byId = new Map(vertices.map((v) => [v.id, v]));
  const levels = new Map();
  const level = (v, seen = new Set()) => {
    if (levels.has(v.id)) return levels.get(v.id);
    if (seen.has(v.id)) return 0; // a cycle cannot be submitted; never loop on one anyway
    seen.add(v.id);
    const inputs = (v.inputs || []).map((id) => byId.get(id)).filter(Boolean);
    const l = inputs.length ? 1 + Math.max(...inputs.map((i) => level(i, seen))) : 0;
    levels.set(v.id, l);
    return l;
  };
  vertices.forEach((v) => level(v));
  const W = 190, H = 58, GX = 70, GY = 24, PAD = 16;
  const columns = [];
  for (const v of vertices) (columns[levels.get(v.id)] ||= []).push(v);
  const pos = new Map();
  columns.forEach((col, x) => col.forEach((v, y) => pos.set(v.id, { x: PAD + x * (W + GX), y: PAD + y * (H + GY) })));
  const width = PAD * 2 + columns.length * W + (columns.length - 1) * GX;
  const height = PAD * 2 + Math.max(...columns.map((c) => c.length)) * (H + GY) - GY;
  const svg = h('svg:svg', { class: 'plan', viewBox: `0 0 ${width} ${height}`, width, height, role: 'img',
    'aria-label': `Plan: ${vertices.map((v) => `${v.id} (${v.status})${(v.inputs || []).length ? ` reads ${v.inputs.join(', ')}` : ''}`).join('; ')}` },
  h('svg:defs', {}, h('svg:marker', { id: 'arrow', viewBox: '0 0 10 10', refX: '10', refY: '5', markerWidth: '7', markerHeight: '7', orient: 'auto-start-reverse' },
    h('svg:path', { class: 'arrow', d: 'M 0 0 L 10 5 L 0 10 z' }))));
  for (const v of vertices) {
    for (const input of v.inputs || []) {
      const a = pos.get(input), b = pos.get(v.id);
      if (!a) continue;
      const x1 = a.x + W, y1 = a.y + H / 2, x2 = b.x, y2 = b.y + H / 2, mx = (x1 + x2) / 2;
      svg.append(h('svg:path', { class: 'edge', d: `M ${x1} ${y1} C ${mx} ${y1}, ${mx} ${y2}, ${x2} ${y2}`, 'marker-end': 'url(#arrow)', 'data-edge': `${input}->${v.id}` }));
    }
  }
  for (const v of vertices) {
    const { x, y } = pos.get(v.id);
    const counts = Object.entries(v.tasks || {}).map(([s, n]) => `${n} ${s}`).join(', ');
    svg.append(h('svg:g', { class: `vertex vertex-${v.status}`, 'data-id': v.id },
      h('svg:rect', { x, y, width: W, height: H, rx: 6 }),
      h('svg:text', { x: x + 10, y: y + 20, class: 'title' }, `${v.name} ×${v.parallelism}`),
      h('svg:text', { x: x + 10, y: y + 40 }, counts || v.status)));
  }
  return svg;
}

// ---- actions ------------------------------------------------------------------------------------

async function submitJob(textarea, result) {
  let graph;
  try { graph = JSON.parse(textarea.value); } catch (err) { result.textContent = `Not JSON: ${err.message}`; return; }
  try {
    const { jobid } = await api('/jobs', { method: 'POST', body: JSON.stringify(graph) });
    fill(result, 'Submitted: ', h('a', { href: `#/jobs/${jobid}` }, jobid));
    refresh();
  } catch (err) {
    noteForbidden(err);
    result.textContent = err instanceof LeaderElsewhere ? 'Submit on the leader\'s dashboard.' : err.message;
  }
}

async function cancelJob(jobId) {
  const status = document.getElementById('status');
  try {
    await api(`/jobs/${jobId}?mode=cancel`, { method: 'PATCH' });
    refresh();
  } catch (err) {
    noteForbidden(err);
    status.textContent = `Cancel failed: ${err.message}`;
  }
}

async function showLog(title, path) {
  const pre = document.getElementById('task-log');
  document.getElementById('log-title').textContent = `Log of ${title}`;
  try { pre.textContent = await api(path); } catch (err) { pre.textContent = err.message; }
  pre.focus();
}

// ---- routing and refresh ------------------------------------------------------------------------

let current = null;

function route() {
  const m = /^#\/([a-z]+)(?:\/([0-9a-f]{32}))?$/.exec(location.hash);
  if (!m || !views[m[1]]) return { name: 'overview', arg: undefined };
  return { name: m[1] === 'jobs' && m[2] ? 'job' : m[1], arg: m[2] };
}

function navigate() {
  current = route();
  const view = document.getElementById('view');
  view.replaceChildren();
  views[current.name].build(view, current.arg);
  document.title = `${views[current.name].title} · ha-dispatcher`;
  const section = current.name === 'job' ? 'jobs' : current.name;
  for (const a of document.querySelectorAll('nav a')) {
    if (a.getAttribute('href') === `#/${section}`) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
  }
  refresh();
}

let refreshing = null;
async function refresh() {
  if (refreshing) return refreshing;
  refreshing = (async () => {
    const status = document.getElementById('status');
    try {
      health = await fetch('/health?standbyok=true', { cache: 'no-store' }).then((r) => r.json());
      const role = document.getElementById('role');
      role.textContent = health.role;
      role.className = `pill ${health.role === 'leader' ? 'leader' : ''}`;
      document.getElementById('whoami').textContent = `replica ${health.replicaId} · ZooKeeper ${health.zookeeper.state}` +
        (health.leader ? ` · leader ${health.leader.replicaId} (epoch ${health.leader.epoch})` : health.role === 'leader' ? '' : ' · no leader');
      const elsewhere = document.getElementById('leader-elsewhere');
      elsewhere.hidden = servesLeaderCalls();
      if (!elsewhere.hidden) fill(elsewhere, `This replica is a standby. Jobs, TaskManagers and the configuration are served by the leader ${health.leader.replicaId}: open the leader's dashboard: `, leaderLink());
      await views[current.name].update(current.arg);
      if (status.textContent) status.textContent = '';
    } catch (err) {
      status.textContent = `Refresh failed: ${err.message}`;
    } finally {
      refreshing = null;
    }
  })();
  return refreshing;
}

window.addEventListener('hashchange', navigate);
navigate();
setInterval(() => { if (!document.hidden) refresh(); }, REFRESH_MS);
