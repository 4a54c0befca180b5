import { api } from './api.js';
import { h, table, usd, when, ms, emptyState, errorBox } from './dom.js';
import { verifyBundle, hexDigest } from './verify.js';

const STATUSES = ['queued', 'running', 'succeeded', 'failed', 'timed_out', 'cancelled', 'quarantined'];
const TERMINAL = new Set(['succeeded', 'failed', 'timed_out', 'cancelled', 'quarantined']);
const POLL_MS = 2000;
const SAMPLE = { code: "print('hello from Sandstorm', 6 * 7)", language: 'python' };

const badge = status => h('span', { class: `badge s-${status}` }, status.replace('_', ' '));
const placement = r => r.provider ? `${r.provider}/${r.runtime ?? '?'}/${r.region ?? '?'}` : '—';

/** The runs table: polled every 2 s (runs have no event stream), filtered by status, provider and period. */
export function runsPage(root) {
  const status = h('select', { id: 'f-status', name: 'status' }, h('option', { value: '' }, 'Any status'), STATUSES.map(s => h('option', { value: s }, s.replace('_', ' '))));
  const provider = h('select', { id: 'f-provider', name: 'provider' }, h('option', { value: '' }, 'Any provider'));
  const since = h('select', { id: 'f-since', name: 'since' },
    h('option', { value: '3600' }, 'Last hour'), h('option', { value: '86400', selected: true }, 'Last 24 hours'), h('option', { value: '604800' }, 'Last 7 days'));
  const updated = h('p', { class: 'muted', id: 'runs-updated' });
  const body = h('div', { id: 'runs-body' });
  const sample = h('button', { type: 'button', id: 'run-sample', onclick: runSample }, 'Run the sample');
  const providers = new Set();
  root.append(
    h('div', { class: 'page-head' }, h('h1', {}, 'Runs'), sample),
    h('form', { class: 'filters', 'aria-label': 'Filter runs', onsubmit: e => e.preventDefault() },
      h('label', { for: 'f-status' }, 'Status'), status,
      h('label', { for: 'f-provider' }, 'Provider'), provider,
      h('label', { for: 'f-since' }, 'Period'), since),
    updated, body);

  async function runSample() {
    sample.disabled = true;
    try {
      const run = await api('/v1/runs', { method: 'POST', body: SAMPLE });
      location.hash = `#/runs/${encodeURIComponent(run.id)}`;
    } catch (e) {
      body.prepend(errorBox(e));
    } finally {
      sample.disabled = false;
    }
  }

  let timer = null;
  let stopped = false;
  async function refresh() {
    const q = new URLSearchParams({ limit: '100', since: new Date(Date.now() - Number(since.value) * 1000).toISOString() });
    if (status.value) q.set('status', status.value);
    if (provider.value) q.set('provider', provider.value);
    try {
      const { runs } = await api(`/v1/runs?${q}`);
      for (const r of runs) {
        if (r.provider && !providers.has(r.provider)) {
          providers.add(r.provider);
          provider.append(h('option', { value: r.provider }, r.provider));
        }
      }
      const filtered = status.value || provider.value;
      body.replaceChildren(table('Runs, newest first', ['Run', 'Status', 'Placement', 'Created', 'Duration', 'Cost'],
        runs.map(r => h('tr', { 'data-run': r.id, 'data-status': r.status },
          h('td', {}, h('a', { href: `#/runs/${encodeURIComponent(r.id)}` }, r.id)),
          h('td', {}, badge(r.status)),
          h('td', {}, placement(r)),
          h('td', {}, when(r.createdAt)),
          h('td', {}, ms(r.duration)),
          h('td', { class: 'num' }, usd(r.cost?.total)))),
        {
          empty: filtered
            ? emptyState('No runs match these filters', h('p', {}, 'Clear a filter or choose a longer period.'))
            : emptyState('No runs yet',
              h('p', {}, 'Start with the sample: press "Run the sample" above, or submit code through the API:'),
              h('pre', {}, `curl -X POST ${location.origin}/v1/runs?wait=30 \\\n  -H "Authorization: Bearer $SANDSTORM_API_KEY" \\\n  -H "Content-Type: application/json" \\\n  -d '{"code":"print(6*7)","language":"python"}'`),
              h('p', {}, 'New runs appear here within two seconds.')),
        }));
      updated.textContent = `Updated ${new Date().toLocaleTimeString()} · refreshes every 2 s`;
    } catch (e) {
      body.replaceChildren(errorBox(e));
    }
    if (!stopped) timer = setTimeout(refresh, POLL_MS);
  }

  for (const select of [status, provider, since]) select.addEventListener('change', () => { clearTimeout(timer); refresh(); });
  refresh();
  return () => { stopped = true; clearTimeout(timer); };
}

/** One run: summary, output, timeline, routing decision and its provenance verified here with WebCrypto. */
export function runPage(root, id) {
  const head = h('div', { class: 'page-head' }, h('h1', {}, 'Run ', h('code', {}, id)), h('a', { href: '#/runs' }, '← All runs'));
  const body = h('div', {});
  root.append(head, body);
  let timer = null;
  let stopped = false;

  async function load() {
    let run;
    try {
      run = await api(`/v1/runs/${encodeURIComponent(id)}`);
    } catch (e) {
      body.replaceChildren(errorBox(e));
      return;
    }
    render(run);
    if (!TERMINAL.has(run.status) && !stopped) timer = setTimeout(load, POLL_MS);
  }

  function render(run) {
    const settled = TERMINAL.has(run.status);
    const slot = h('div', { id: 'provenance-slot' });
    body.replaceChildren(
      h('section', { class: 'card', 'aria-labelledby': 'h-summary' },
        h('h2', { id: 'h-summary' }, 'Summary'),
        h('dl', { class: 'facts' },
          h('dt', {}, 'Status'), h('dd', { id: 'run-status' }, badge(run.status)),
          h('dt', {}, 'Placement'), h('dd', {}, placement(run)),
          h('dt', {}, 'Exit code'), h('dd', {}, run.exitCode ?? '—'),
          h('dt', {}, 'Duration'), h('dd', {}, ms(run.duration)),
          h('dt', {}, 'Cost'), h('dd', {}, run.cost ? `${usd(run.cost.total)} (provider ${usd(run.cost.provider)}, fees ${usd(run.cost.fees)})` : '—'),
          h('dt', {}, 'Created'), h('dd', {}, when(run.createdAt)),
          h('dt', {}, 'Completed'), h('dd', {}, when(run.completedAt)),
          run.error && [h('dt', {}, 'Error'), h('dd', { class: 'error' }, `${run.error.code}: ${run.error.message}`)],
          run.shield && [h('dt', {}, 'Shield'), h('dd', {}, `${run.shield.coverage ?? ''} ${(run.shield.findings ?? []).length} finding(s)`)])),
      h('section', { class: 'card', 'aria-labelledby': 'h-output' },
        h('h2', { id: 'h-output' }, 'Output'),
        h('h3', {}, 'stdout'), h('pre', { id: 'run-stdout', class: 'output', tabindex: '0' }, run.stdout ?? (settled ? '(empty)' : 'waiting…')),
        run.stderr ? [h('h3', {}, 'stderr'), h('pre', { class: 'output', tabindex: '0' }, run.stderr)] : null,
        run.truncated ? h('p', { class: 'muted' }, 'Output was truncated.') : null),
      routeSection(run.route),
      slot);
    if (settled) provenance(run, slot);
  }

  // Written into the slot of the render that asked, even if the page has moved on (then it is detached and unseen).
  async function provenance(run, slot) {
    if (!run.provenance) {
      slot.replaceChildren(h('section', { class: 'card' }, h('h2', {}, 'Provenance'), h('p', {}, 'This run has no provenance record.')));
      return;
    }
    slot.replaceChildren(h('section', { class: 'card' }, h('h2', {}, 'Provenance'), h('p', { class: 'muted' }, 'Verifying…')));
    try {
      const [bundle, key] = await Promise.all([api(`/v1/runs/${encodeURIComponent(run.id)}/provenance`), api('/v1/log/key')]);
      const result = await verifyBundle(bundle, key);
      const stdoutDigest = result.statement?.subject?.find(s => s.name === 'stdout')?.digest?.sha256;
      const stdoutMatches = stdoutDigest && run.stdout !== undefined && !run.truncated ? stdoutDigest === await hexDigest(run.stdout ?? '') : null;
      slot.replaceChildren(
        timeline(run, result.statement?.predicate?.timings),
        h('section', { class: 'card', 'aria-labelledby': 'h-prov' },
          h('h2', { id: 'h-prov' }, 'Provenance'),
          h('p', { id: 'provenance-verdict', class: `verdict ${result.ok ? 'ok' : 'bad'}`, role: 'status' },
            result.ok ? '✔ Verified' : '✘ Failed'),
          h('p', { class: 'muted' }, 'Checked in this browser with WebCrypto against the key the control plane publishes (/v1/log/key).'),
          h('ul', { class: 'checks' }, result.checks.map(c =>
            h('li', { class: c.ok ? 'ok' : 'bad' }, `${c.ok ? '✔' : '✘'} ${c.name}`, c.detail ? h('span', { class: 'muted' }, ` — ${c.detail}`) : null)),
            stdoutMatches === null ? null : h('li', { class: stdoutMatches ? 'ok' : 'bad' }, `${stdoutMatches ? '✔' : '✘'} The stdout shown above matches the record's digest`)),
          h('p', {}, `Log index ${bundle.logIndex} of ${bundle.treeHead.treeSize}; signed ${when(bundle.treeHead.timestamp)}.`)));
    } catch (e) {
      slot.replaceChildren(h('section', { class: 'card' }, h('h2', {}, 'Provenance'),
        h('p', { id: 'provenance-verdict', class: 'verdict bad', role: 'status' }, '✘ Failed'), errorBox(e)));
    }
  }

  load();
  return () => { stopped = true; clearTimeout(timer); };
}

function routeSection(route) {
  if (!route) return null;
  const chosen = route.chosen;
  const key = c => `${c.provider}/${c.runtime}/${c.region}`;
  return h('section', { class: 'card', 'aria-labelledby': 'h-route' },
    h('h2', { id: 'h-route' }, 'Routing decision'),
    h('p', {}, 'Chose ', h('strong', {}, key(chosen)), `: ${route.reason}`),
    route.baseline ? h('p', { class: 'muted' }, `Baseline (single-provider choice): ${key(route.baseline)} at ${usd(route.baseline.predictedCostUsd)}`) : null,
    table('Candidates the router considered', ['Candidate', 'Predicted cost', 'Predicted latency', 'Outcome'],
      route.candidates.map(c => h('tr', { class: key(c) === key(chosen) ? 'chosen' : '' },
        h('td', {}, key(c), key(c) === key(chosen) ? h('strong', {}, ' (chosen)') : null),
        h('td', { class: 'num' }, usd(c.predictedCostUsd)),
        h('td', { class: 'num' }, ms(c.predictedLatencyMs)),
        h('td', {}, c.rejected ? `rejected: ${c.rejected}` : c.why ?? '')))));
}

/**
 * What the run's JSON and its record carry about time: queued (created → started), executing (the record's timings),
 * settling (→ completed). The five pipeline steps' own durations are not in the run's JSON, so they are not drawn.
 */
function timeline(run, timings) {
  const created = Date.parse(run.createdAt), completed = Date.parse(run.completedAt);
  const started = timings ? Date.parse(timings.startedAt) : NaN, ended = timings ? Date.parse(timings.completedAt) : NaN;
  if ([created, completed, started, ended].some(Number.isNaN) || completed <= created) return h('span');
  const total = completed - created;
  const phases = [
    ['Queued and placed', created, started],
    ['Executing', started, ended],
    ['Settling (ledger, record, log)', ended, completed],
  ];
  return h('section', { class: 'card', 'aria-labelledby': 'h-timeline' },
    h('h2', { id: 'h-timeline' }, 'Timeline'),
    h('ol', { class: 'timeline' }, phases.map(([name, from, to]) => {
      const width = Math.max(0, (to - from) / total * 100), left = Math.max(0, (from - created) / total * 100);
      const bar = h('span', { class: 'bar' });
      // CSSOM, not a style attribute: the console's CSP allows no inline styles.
      bar.style.marginLeft = `${left}%`;
      bar.style.width = `${Math.max(width, 0.5)}%`;
      return h('li', {},
        h('span', { class: 'phase' }, name), h('span', { class: 'dur' }, ms(Math.max(0, to - from))),
        h('span', { class: 'track', 'aria-hidden': 'true' }, bar));
    })),
    h('p', { class: 'muted' }, 'The five pipeline steps\' own durations are not in the run\'s JSON; this shows the phases its timestamps mark.'));
}
