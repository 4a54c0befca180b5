import { SandstormError } from './errors.js';

declare const process: { env: Record<string, string | undefined> } | undefined;

/** Reads a variable of the environment (Node), or nothing where there is none (browsers). */
export function env(name: string): string | undefined {
  return typeof process !== 'undefined' && process?.env ? process.env[name] : undefined;
}

export interface TransportOptions {
  apiKey: string;
  baseUrl: string;
  fetch: typeof fetch;
  timeoutMs: number;
}

export type Query = Record<string, string | number | boolean | undefined | string[]>;

/** One place that sends requests: authentication, the base URL, JSON, timeouts and problems as typed errors. */
export class Transport {
  constructor(readonly options: TransportOptions) {}

  url(path: string, query?: Query): string {
    const url = new URL(path.replace(/^\//, ''), this.options.baseUrl.endsWith('/') ? this.options.baseUrl : this.options.baseUrl + '/');
    for (const [name, value] of Object.entries(query ?? {})) {
      if (value === undefined) continue;
      for (const v of Array.isArray(value) ? value : [value]) url.searchParams.append(name, String(v));
    }
    return url.toString();
  }

  /** Sends a request; any status that is not 2xx throws a {@link SandstormError} carrying the problem. */
  async send(method: string, path: string, init: { query?: Query; json?: unknown; body?: BodyInit; headers?: Record<string, string>; signal?: AbortSignal; timeoutMs?: number | null } = {}): Promise<Response> {
    const headers: Record<string, string> = { authorization: `Bearer ${this.options.apiKey}`, accept: 'application/json', ...init.headers };
    let body = init.body;
    if (init.json !== undefined) {
      headers['content-type'] = 'application/json';
      body = JSON.stringify(init.json);
    }

    const timeout = init.timeoutMs === undefined ? this.options.timeoutMs : init.timeoutMs;
    const signals = [init.signal, timeout === null ? undefined : (AbortSignal as unknown as { timeout(ms: number): AbortSignal }).timeout(timeout)].filter((s): s is AbortSignal => s !== undefined);
    let response: Response;
    try {
      response = await this.options.fetch(this.url(path, init.query), { method, headers, body, signal: anySignal(signals) });
    } catch (e) {
      if (init.signal?.aborted) throw e;
      const message = e instanceof Error ? e.message : String(e);
      throw new SandstormError(`${method} ${path}: ${message}`, { code: 'network', status: 0 });
    }

    if (!response.ok) throw await SandstormError.fromResponse(response);
    return response;
  }

  async json<T>(method: string, path: string, init: Parameters<Transport['send']>[2] = {}): Promise<T> {
    const response = await this.send(method, path, init);
    return (await response.json()) as T;
  }
}

function anySignal(signals: AbortSignal[]): AbortSignal | undefined {
  if (signals.length <= 1) return signals[0];
  const controller = new AbortController();
  for (const s of signals) {
    if (s.aborted) {
      controller.abort(s.reason);
      break;
    }
    s.addEventListener('abort', () => controller.abort(s.reason), { once: true });
  }
  return controller.signal;
}
