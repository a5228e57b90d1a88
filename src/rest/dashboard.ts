/** The web dashboard: one static page that polls the REST API (works on every replica). */
export const DASHBOARD_HTML = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>ha-dispatcher</title>
<style>
 body{font-family:system-ui,sans-serif;margin:2rem;color:#222} h1{font-size:1.4rem} h2{font-size:1.1rem;margin-top:1.5rem}
 table{border-collapse:collapse;min-width:40rem} td,th{border-bottom:1px solid #ddd;padding:.3rem .6rem;text-align:left;font-size:.9rem}
 .pill{padding:.1rem .5rem;border-radius:.6rem;background:#eee} .leader{background:#cfe8cf} .err{color:#a00}
</style></head><body>
<h1>ha-dispatcher <span id="role" class="pill">…</span></h1>
<div id="health"></div>
<h2>Replicas (latch order)</h2><table id="replicas"></table>
<h2>Cluster</h2><div id="overview"></div>
<h2>Jobs</h2><table id="jobs"></table>
<script>
const esc = (s) => String(s ?? '').replace(/[&<>"]/g, (c) => ({'&':'&amp;','<':'&lt;','>':'&gt;','"':'&quot;'}[c]));
const row = (cells, tag = 'td') => '<tr>' + cells.map((c) => '<' + tag + '>' + esc(c) + '</' + tag + '>').join('') + '</tr>';
// With security.rest.token, open the page once as /#token=<token>: kept for this tab only, then dropped from the URL.
const token = (() => {
  const m = /(?:^|[#&])token=([^&]+)/.exec(location.hash);
  if (m) { sessionStorage.setItem('ha-dispatcher-token', decodeURIComponent(m[1])); history.replaceState(null, '', location.pathname); }
  return sessionStorage.getItem('ha-dispatcher-token');
})();
const auth = token ? { headers: { authorization: 'Bearer ' + token } } : {};
async function get(path) {
  const r = await fetch(path, auth);
  if (r.status === 401 || r.status === 403) throw new Error('this cluster needs its REST token: open this page as /#token=<security.rest.token>');
  if (!r.ok) throw new Error(path + ': ' + r.status);
  return r.json();
}
async function refresh() {
  try {
    const h = await fetch('/health?standbyok=true').then((r) => r.json());
    document.getElementById('role').textContent = h.role;
    document.getElementById('role').className = 'pill' + (h.role === 'leader' ? ' leader' : '');
    document.getElementById('health').textContent = 'replica ' + h.replicaId + ' · ZooKeeper ' + h.zookeeper.state +
      ' · leader ' + (h.leader ? h.leader.replicaId + ' (epoch ' + h.leader.epoch + ')' : 'none');
    const reps = await get('/replicas');
    document.getElementById('replicas').innerHTML = row(['#', 'replica', 'rest', 'sequence'], 'th') +
      reps.replicas.map((r) => row([r.position, r.replicaId, r.restUrl, r.sequence])).join('');
    const o = await get('/overview');
    document.getElementById('overview').textContent = o.taskmanagers + ' TaskManagers · ' + o['slots-available'] + '/' + o['slots-total'] +
      ' slots free · running ' + o['jobs-running'] + ' · finished ' + o['jobs-finished'] + ' · failed ' + o['jobs-failed'] + ' · canceled ' + o['jobs-cancelled'];
    const jobs = await get('/jobs/overview');
    document.getElementById('jobs').innerHTML = row(['job id', 'name', 'state', 'duration (s)'], 'th') +
      jobs.jobs.map((j) => row([j.jid, j.name, j.state, (j.duration / 1000).toFixed(1)])).join('');
  } catch (e) { document.getElementById('health').innerHTML = '<span class="err">' + esc(e.message) + '</span>'; }
}
refresh(); setInterval(refresh, 2000);
</script></body></html>`;
