// The console's shell: sign-in, navigation (hash routes) and the page that is showing. Each page returns a stop()
// that clears its timers when the person leaves it.
import { auth, api } from './api.js';
import { runsPage, runPage } from './runs.js';
import { costsPage } from './costs.js';
import { sandboxesPage, agentsPage, shieldPage } from './pages.js';

const pages = {
  runs: runsPage,
  costs: costsPage,
  sandboxes: sandboxesPage,
  agents: agentsPage,
  shield: shieldPage,
};

const $ = id => document.getElementById(id);
let stop = null;

function show() {
  stop?.();
  stop = null;
  const signedIn = !!auth.key;
  $('sign-in').hidden = signedIn;
  $('nav').hidden = !signedIn;
  $('sign-out').hidden = !signedIn;
  const root = $('page');
  root.replaceChildren();
  if (!signedIn) {
    $('api-key').focus();
    return;
  }

  const [, name = 'runs', id] = location.hash.split('/');
  for (const link of document.querySelectorAll('#nav a')) {
    if (link.dataset.page === name) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  const page = name === 'runs' && id ? () => runPage(root, decodeURIComponent(id)) : () => (pages[name] ?? runsPage)(root);
  stop = page();
  document.title = `${name[0].toUpperCase()}${name.slice(1)} · Sandstorm console`;
}

$('sign-in-form').addEventListener('submit', async event => {
  event.preventDefault();
  const key = $('api-key').value.trim();
  auth.set(key);
  try {
    await api('/v1/usage?from=' + encodeURIComponent(new Date(Date.now() - 60000).toISOString()));
    $('api-key').value = '';
    $('sign-in-error').textContent = '';
    // Setting the hash shows the page through hashchange; show it here only when the hash stays as it is.
    if (!location.hash || location.hash === '#') location.hash = '#/runs';
    else show();
    $('main').focus();
  } catch (e) {
    auth.clear();
    $('sign-in-error').textContent = e.status === 401 ? 'That API key is not valid.' : `Could not sign in: ${e.message}`;
  }
});

$('sign-out').addEventListener('click', () => { auth.clear(); show(); });
window.addEventListener('sandstorm:unauthorized', () => { auth.clear(); show(); });
window.addEventListener('hashchange', show);
show();
