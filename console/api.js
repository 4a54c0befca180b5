// The tenant's API key lives in sessionStorage only (this tab, this origin); every call sends it as a bearer token.
const KEY = 'sandstorm.apiKey';

export const auth = {
  get key() { return sessionStorage.getItem(KEY); },
  set(key) { sessionStorage.setItem(KEY, key); },
  clear() { sessionStorage.removeItem(KEY); },
};

export class ApiError extends Error {
  constructor(status, problem) {
    super(problem?.detail || problem?.title || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
  }
}

/** Calls the API on this origin; JSON in and out; throws ApiError with the problem's detail. */
export async function api(path, { method = 'GET', body } = {}) {
  const headers = { Authorization: `Bearer ${auth.key}` };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await response.text();
  const json = text ? JSON.parse(text) : null;
  if (!response.ok) {
    if (response.status === 401) window.dispatchEvent(new Event('sandstorm:unauthorized'));
    throw new ApiError(response.status, json);
  }
  return json;
}
