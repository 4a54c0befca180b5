import { api } from './api.js';
import { h, table, usd, when, emptyState, errorBox } from './dom.js';

const POLL_MS = 2000;

function remaining(expiresAt) {
  const s = Math.round((Date.parse(expiresAt) - Date.now()) / 1000);
  if (s <= 0) return 'expired';
  return s < 120 ? `${s} s` : s < 7200 ? `${Math.round(s / 60)} min` : `${Math.round(s / 3600)} h`;
}

/** Kept sandboxes (GET /v1/sandboxes) with their expiry, polled; a batch looked up by id with its progress. */
export function sandboxesPage(root) {
  const scope = h('select', { id: 'sb-state' }, h('option', { value: 'running' }, 'Live only'), h('option', { value: 'all' }, 'All'));
  const list = h('div', {});
  const batchId = h('input', { id: 'batch-id', name: 'batch-id', required: true, spellcheck: 'false', placeholder: 'bat_…' });
  const batch = h('div', { id: 'batch-view' });
  root.append(
    h('div', { class: 'page-head' }, h('h1', {}, 'Sandboxes')),
    h('form', { class: 'filters', onsubmit: e => e.preventDefault() }, h('label', { for: 'sb-state' }, 'Show'), scope),
    list,
    h('h2', {}, 'Batches'),
    h('form', { class: 'filters', onsubmit: e => { e.preventDefault(); showBatch(); } },
      h('label', { for: 'batch-id' }, 'Batch id'), batchId, h('button', { type: 'submit' }, 'Show batch')),
    h('p', { class: 'muted' }, 'The API has no list of batches; POST /v1/batches answers the id of a new one.'),
    batch);

  let timer = null, stopped = false, batchTimer = null;
  async function refresh() {
    try {
      const { sandboxes } = await api(`/v1/sandboxes?state=${scope.value}&limit=100`);
      list.replaceChildren(table('Sandboxes', ['Sandbox', 'Status', 'Placement', 'Isolation', 'Created', 'Expires in', 'Commands', 'Cost'],
        sandboxes.map(s => h('tr', {},
          h('td', {}, h('code', {}, s.id)), h('td', {}, h('span', { class: `badge s-${s.status}` }, s.status)),
          h('td', {}, s.provider ? `${s.provider}/${s.runtime}/${s.region}` : '—'), h('td', {}, s.isolationLevel),
          h('td', {}, when(s.createdAt)), h('td', {}, s.endedAt ? `ended ${when(s.endedAt)}` : remaining(s.expiresAt)),
          h('td', { class: 'num' }, s.commands), h('td', { class: 'num' }, usd(s.cost?.total)))),
        {
          empty: emptyState('No live sandboxes',
            h('p', {}, 'A sandbox is kept between commands when you create one: POST /v1/sandboxes (or the E2B SDK pointed at this host). It appears here with its expiry.')),
        }));
    } catch (e) {
      list.replaceChildren(errorBox(e));
    }
    if (!stopped) timer = setTimeout(refresh, POLL_MS);
  }

  async function showBatch() {
    clearTimeout(batchTimer);
    const id = batchId.value.trim();
    try {
      const b = await api(`/v1/batches/${encodeURIComponent(id)}`);
      const done = b.counts.succeeded + b.counts.failed + b.counts.cancelled;
      batch.replaceChildren(h('section', { class: 'card' },
        h('h3', {}, 'Batch ', h('code', {}, b.id), ' ', h('span', { class: `badge s-${b.status}` }, b.status)),
        h('label', { for: 'batch-progress' }, `${done} of ${b.total} items finished`),
        h('progress', { id: 'batch-progress', max: String(b.total), value: String(done) }),
        h('dl', { class: 'facts' },
          ...Object.entries(b.counts).flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]),
          h('dt', {}, 'Cost'), h('dd', {}, usd(b.cost)),
          h('dt', {}, 'Created'), h('dd', {}, when(b.createdAt)),
          h('dt', {}, 'Completed'), h('dd', {}, when(b.completedAt)))));
      if (done < b.total && !stopped) batchTimer = setTimeout(showBatch, POLL_MS);
    } catch (e) {
      batch.replaceChildren(errorBox(e));
    }
  }

  scope.addEventListener('change', () => { clearTimeout(timer); refresh(); });
  refresh();
  return () => { stopped = true; clearTimeout(timer); clearTimeout(batchTimer); };
}

/** Enrolled edge agents (GET /v1/edge/agents): heartbeat, runtimes, jobs held; create an enrollment token; revoke an agent. */
export function agentsPage(root) {
  const list = h('div', {});
  const tokenOut = h('div', { id: 'token-out', 'aria-live': 'polite' });
  const status = h('p', { id: 'agents-status', role: 'status' });
  const region = h('input', { id: 'token-region', name: 'region', placeholder: 'default', spellcheck: 'false' });
  const ttl = h('input', { id: 'token-ttl', name: 'ttl', type: 'number', min: '1', max: '1440', value: '15' });
  root.append(
    h('div', { class: 'page-head' }, h('h1', {}, 'Edge agents')),
    h('section', { class: 'card', 'aria-labelledby': 'h-enrol' },
      h('h2', { id: 'h-enrol' }, 'Enrol an agent'),
      h('form', { class: 'filters', onsubmit: createToken },
        h('label', { for: 'token-region' }, 'Region'), region,
        h('label', { for: 'token-ttl' }, 'Valid for (minutes)'), ttl,
        h('button', { type: 'submit', id: 'create-token' }, 'Create enrollment token')),
      tokenOut),
    status,
    list);

  async function createToken(event) {
    event.preventDefault();
    try {
      const body = { ttlMinutes: Number(ttl.value) };
      if (region.value.trim()) body.region = region.value.trim();
      const t = await api('/v1/edge/enrollment-tokens', { method: 'POST', body });
      tokenOut.replaceChildren(
        h('p', {}, `Token ${t.id} (shown once; enrols one agent; valid until ${when(t.expiresAt)}, region ${t.region ?? 'any'}):`),
        h('pre', { id: 'enrollment-token', tabindex: '0' }, t.token),
        h('p', {}, 'On the agent machine:'),
        h('pre', {}, `sandstorm-edge init --control-plane ${location.origin} --enrollment-token ${t.token}`));
    } catch (e) {
      tokenOut.replaceChildren(errorBox(e));
    }
  }

  // Two steps instead of a modal confirm(): "Revoke" arms the row, "Confirm revoke" does it.
  let armed = null;
  async function revoke(agent) {
    if (armed !== agent.agentId) {
      armed = agent.agentId;
      status.textContent = `Press "Confirm revoke" to revoke ${agent.name}; its token stops working at once.`;
      refresh();
      return;
    }
    armed = null;
    try {
      await api(`/v1/edge/agents/${encodeURIComponent(agent.agentId)}`, { method: 'DELETE' });
      status.textContent = `Revoked ${agent.name} (${agent.agentId}).`;
    } catch (e) {
      status.textContent = `Could not revoke ${agent.name}: ${e.message}`;
    }
    refresh();
  }

  let timer = null, stopped = false;
  async function refresh() {
    clearTimeout(timer);
    try {
      const { agents } = await api('/v1/edge/agents');
      list.replaceChildren(table('Enrolled agents', ['Agent', 'Region', 'Last heartbeat', 'Runtimes', 'Jobs held', 'Load', ''],
        agents.map(a => h('tr', { 'data-agent': a.agentId },
          h('td', {}, a.name, h('br'), h('code', {}, a.agentId)),
          h('td', {}, a.region),
          h('td', {}, h('span', { class: `badge ${a.live ? 's-succeeded' : 's-failed'}` }, a.live ? 'live' : 'silent'), ' ', when(a.lastHeartbeat)),
          h('td', {}, (a.heartbeat?.runtimes ?? []).map(r => r.name).join(', ') || '—'),
          h('td', { class: 'num' }, a.heartbeat ? a.heartbeat.queueDepth : '—'),
          h('td', { class: 'num' }, a.heartbeat ? a.heartbeat.load.toFixed(2) : '—'),
          h('td', {}, armed === a.agentId
            ? h('button', { type: 'button', class: 'danger', 'aria-label': `Confirm revoking ${a.name}`, onclick: () => revoke(a) }, 'Confirm revoke')
            : h('button', { type: 'button', class: 'danger', 'aria-label': `Revoke ${a.name}`, onclick: () => revoke(a) }, 'Revoke')))),
        {
          empty: emptyState('No agents enrolled',
            h('p', {}, 'Create an enrollment token above, then run sandstorm-edge init with it on the machine that will run jobs (docs/edge-agents.md).')),
        }));
    } catch (e) {
      list.replaceChildren(errorBox(e));
    }
    if (!stopped) timer = setTimeout(refresh, POLL_MS * 2);
  }

  refresh();
  return () => { stopped = true; clearTimeout(timer); };
}

/** Shield's findings of the last 7 days (GET /v1/shield/findings) with the rule and its evidence (the rule's output). */
export function shieldPage(root) {
  const body = h('div', {});
  root.append(h('div', { class: 'page-head' }, h('h1', {}, 'Shield findings'), h('p', { class: 'muted' }, 'Last 7 days')), body);
  (async () => {
    try {
      const r = await api('/v1/shield/findings?limit=500');
      body.replaceChildren(
        r.truncated ? h('p', { class: 'muted' }, `Showing the first ${r.count}.`) : null,
        table('Findings', ['Detected', 'Rule', 'Priority', 'Run or sandbox', 'Action', 'Evidence'],
          r.findings.map(f => h('tr', {},
            h('td', {}, when(f.finding.detectedAt)),
            h('td', {}, f.finding.rule),
            h('td', {}, h('span', { class: `badge p-${f.finding.priority}` }, f.finding.priority)),
            h('td', {}, f.runId ? h('a', { href: `#/runs/${encodeURIComponent(f.runId)}` }, f.runId) : h('code', {}, f.keptSandboxId ?? '—')),
            h('td', {}, f.action ?? '—'),
            h('td', {}, h('code', { class: 'evidence' }, f.finding.output)))),
          {
            empty: emptyState('No findings', h('p', {}, 'Runs with securityTier "shield" are monitored; what their rules catch shows here. Compliance reports: GET /v1/compliance/reports?standard=soc2 (docs/shield.md).')),
          }));
    } catch (e) {
      body.replaceChildren(errorBox(e));
    }
  })();
  return () => { };
}
