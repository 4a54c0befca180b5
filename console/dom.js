// Builds elements from data with textContent only (never HTML from the API).
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith('on')) el.addEventListener(name.slice(2), value);
    else if (name === 'class') el.className = value;
    else el.setAttribute(name, value === true ? '' : value);
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

export function table(caption, headers, rows, { empty } = {}) {
  if (rows.length === 0 && empty) return empty;
  return h('div', { class: 'table-wrap' },
    h('table', {},
      h('caption', {}, caption),
      h('thead', {}, h('tr', {}, headers.map(x => h('th', { scope: 'col' }, x)))),
      h('tbody', {}, rows)));
}

export const usd = v => v === undefined || v === null ? '—' : `$${Number(v).toFixed(6).replace(/0{1,4}$/, '')}`;
export const when = v => v ? new Date(v).toLocaleString() : '—';
export const ms = v => v === undefined || v === null ? '—' : v < 1000 ? `${Math.round(v)} ms` : `${(v / 1000).toFixed(2)} s`;

export function emptyState(title, ...body) {
  return h('div', { class: 'empty card' }, h('h2', {}, title), ...body);
}

export function errorBox(error) {
  return h('p', { class: 'error', role: 'alert' }, `Error: ${error.message}`);
}
