import { api } from './api.js';
import { h, table, usd, emptyState, errorBox } from './dom.js';

const DAYS = 14;
const PALETTE = ['#2563eb', '#d97706', '#059669', '#dc2626', '#7c3aed', '#0891b2', '#4b5563'];

/** Spend per day and provider, fees by kind and tier, savings against Autopilot's baseline (GET /v1/usage), as charts; CSV export. */
export function costsPage(root) {
  const charts = [];
  let stopped = false;
  const body = h('div', {});
  root.append(h('div', { class: 'page-head' }, h('h1', {}, 'Costs'), h('p', { class: 'muted' }, `Last ${DAYS} days, UTC days`)), body);
  load();
  return () => { stopped = true; charts.forEach(c => c.destroy()); };

  async function load() {
    const to = new Date(Date.now() + 60000);
    const from = new Date(Date.UTC(to.getUTCFullYear(), to.getUTCMonth(), to.getUTCDate() - (DAYS - 1)));
    let usage;
    try {
      usage = await api(`/v1/usage?from=${encodeURIComponent(from.toISOString())}&to=${encodeURIComponent(to.toISOString())}`);
    } catch (e) {
      body.replaceChildren(errorBox(e));
      return;
    }
    if (stopped) return;
    if (usage.runs === 0) {
      body.replaceChildren(emptyState('No spend yet',
        h('p', {}, 'Costs appear once runs have settled. Go to ', h('a', { href: '#/runs' }, 'Runs'), ' and run the sample.')));
      return;
    }

    const t = usage.totals;
    const dayLabels = [];
    for (let d = new Date(from); d <= to; d.setUTCDate(d.getUTCDate() + 1)) dayLabels.push(d.toISOString().slice(0, 10));
    const providers = [...new Set(usage.days.map(d => d.provider))];
    const csv = () => {
      const rows = [['day', 'provider', 'runs', 'total_usd', 'fees_usd', 'savings_usd'],
        ...usage.days.map(d => [d.day, d.provider, d.runs, d.total, d.fees, d.savings])];
      const text = rows.map(r => r.map(v => /[",\n]/.test(String(v)) ? `"${String(v).replaceAll('"', '""')}"` : v).join(',')).join('\n') + '\n';
      const link = h('a', { href: URL.createObjectURL(new Blob([text], { type: 'text/csv' })), download: `sandstorm-usage-${dayLabels[0]}-${dayLabels.at(-1)}.csv` });
      document.body.append(link);
      link.click();
      link.remove();
    };

    body.replaceChildren(
      h('div', { class: 'tiles' },
        tile('Spend', usd(t.total), `${t.runs} runs`),
        tile('Provider charges', usd(t.providerCost)),
        tile('Sandstorm fees', usd(t.fees), `Autopilot ${usd(t.autopilotFees)} · Shield ${usd(t.shieldFees)}`),
        tile('Savings', usd(t.savings), t.runsWithBaseline ? `vs ${usd(t.baselineCost)} on the best single provider (${t.runsWithBaseline} runs)` : 'no run had a baseline')),
      h('div', { class: 'actions' }, h('button', { type: 'button', id: 'export-csv', onclick: csv }, 'Export CSV (per day and provider)')),
      chartCard('chart-days', 'Spend per day and provider (USD)'),
      h('div', { class: 'grid2' },
        chartCard('chart-providers', 'Spend per provider (USD)'),
        chartCard('chart-fees', 'Fees by kind and security tier (USD)')),
      chartCard('chart-savings', 'Savings per day against the best single provider (USD)'),
      table('Per provider', ['Provider', 'Runs', 'Provider cost', 'Fees', 'Total', 'Savings'],
        usage.providers.map(p => h('tr', {}, h('td', {}, p.provider), h('td', { class: 'num' }, p.runs), h('td', { class: 'num' }, usd(p.providerCost)),
          h('td', { class: 'num' }, usd(p.fees)), h('td', { class: 'num' }, usd(p.total)), h('td', { class: 'num' }, usd(p.savings))))));

    if (typeof window.Chart !== 'function') {
      body.prepend(h('p', { class: 'error', role: 'alert' }, 'The charting library did not load: run scripts/setup.sh (npm ci) and rebuild the host.'));
      return;
    }
    const sumFor = (day, provider, field) => usage.days.filter(d => d.day === day && (provider === null || d.provider === provider)).reduce((n, d) => n + d[field], 0);
    const common = { responsive: true, maintainAspectRatio: false, animation: false };
    const money = { beginAtZero: true, ticks: { callback: v => `$${Number(v).toPrecision(2)}` } };
    charts.push(new window.Chart(body.querySelector('#chart-days'), {
      type: 'bar',
      data: { labels: dayLabels, datasets: providers.map((p, i) => ({ label: p, data: dayLabels.map(d => sumFor(d, p, 'total')), backgroundColor: PALETTE[i % PALETTE.length] })) },
      options: { ...common, scales: { x: { stacked: true }, y: { ...money, stacked: true } } },
    }));
    charts.push(new window.Chart(body.querySelector('#chart-providers'), {
      type: 'doughnut',
      data: { labels: usage.providers.map(p => p.provider), datasets: [{ data: usage.providers.map(p => p.total), backgroundColor: PALETTE }] },
      options: common,
    }));
    const tiers = usage.tiers ?? [];
    charts.push(new window.Chart(body.querySelector('#chart-fees'), {
      type: 'bar',
      data: {
        labels: ['Autopilot fees', 'Shield fees', ...tiers.map(x => `${x.tier} tier total`)],
        datasets: [{ label: 'USD', data: [t.autopilotFees, t.shieldFees, ...tiers.map(x => x.total)], backgroundColor: PALETTE }],
      },
      options: { ...common, plugins: { legend: { display: false } }, scales: { y: money } },
    }));
    charts.push(new window.Chart(body.querySelector('#chart-savings'), {
      type: 'line',
      data: { labels: dayLabels, datasets: [{ label: 'Savings (USD)', data: dayLabels.map(d => sumFor(d, null, 'savings')), borderColor: PALETTE[2], backgroundColor: PALETTE[2] }] },
      options: { ...common, scales: { y: money } },
    }));
  }
}

function tile(label, value, note) {
  return h('div', { class: 'tile card' }, h('p', { class: 'tile-label' }, label), h('p', { class: 'tile-value' }, value), note ? h('p', { class: 'muted' }, note) : null);
}

function chartCard(id, title) {
  return h('figure', { class: 'card chart' },
    h('figcaption', {}, title),
    h('div', { class: 'canvas-box' }, h('canvas', { id, role: 'img', 'aria-label': title })));
}
