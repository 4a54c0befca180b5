import { SandstormError } from './errors.js';
import { verifyBundle, type ProvenanceBundle, type VerificationResult, type VerifyOptions } from './provenance.js';
import { Sandbox, Sandboxes } from './sandbox.js';
import { env, Transport } from './transport.js';
import type { Batch, RunConstraints, RunRequest, RunResult, SandboxResult, SecurityTier, Strategy, Usage } from './types.js';

export * from './errors.js';
export * from './provenance.js';
export * from './sandbox.js';
export * from './types.js';

export interface SandstormOptions {
  /** Tenant API key; default `SANDSTORM_API_KEY`. */
  apiKey?: string;
  /** Where the API is; default `SANDSTORM_BASE_URL`, else the local host (`http://127.0.0.1:7071`). */
  baseUrl?: string;
  /** Routing strategy of every run and sandbox that does not give its own. */
  strategy?: Strategy;
  /** Security tier (`basic` or `shield`) of every run and sandbox that does not give its own. */
  security?: SecurityTier;
  /** Per-request timeout in milliseconds (default 5 minutes); command streams are not limited by it. */
  timeoutMs?: number;
  /** Replaces the global `fetch` (for tests or proxies). */
  fetch?: typeof fetch;
}

const TERMINAL = new Set(['succeeded', 'failed', 'timed_out', 'cancelled', 'quarantined']);

/** The Sandstorm client: `new Sandstorm({ apiKey })`, then `run`, `sandboxes`, `batches`, `provenance`. */
export class Sandstorm {
  readonly sandboxes: Sandboxes;
  readonly batches: Batches;
  readonly provenance: Provenance;
  private readonly transport: Transport;
  private readonly strategy?: Strategy;
  private readonly security?: SecurityTier;

  constructor(options: SandstormOptions = {}) {
    const apiKey = options.apiKey ?? env('SANDSTORM_API_KEY');
    if (!apiKey) {
      throw new SandstormError('no API key: pass apiKey or set SANDSTORM_API_KEY', { code: 'unauthorized', status: 0 });
    }

    this.transport = new Transport({
      apiKey,
      baseUrl: options.baseUrl ?? env('SANDSTORM_BASE_URL') ?? 'http://127.0.0.1:7071',
      fetch: options.fetch ?? globalThis.fetch.bind(globalThis),
      timeoutMs: options.timeoutMs ?? 300_000,
    });
    this.strategy = options.strategy;
    this.security = options.security;
    this.sandboxes = new Sandboxes(this.transport, { strategy: options.strategy, securityTier: options.security });
    this.batches = new Batches(this.transport, (r) => this.withDefaults(r));
    this.provenance = new Provenance(this.transport);
  }

  /** The API's base URL. */
  get baseUrl(): string {
    return this.transport.options.baseUrl;
  }

  /**
   * Runs code and waits for its outcome (the v1 call). `constraints` may be given here or in the request;
   * `constraints.isolation` asks for an isolation level like `isolationLevel`. A run still going when the server stops
   * waiting is followed until it settles.
   */
  async run(request: RunRequest, constraints?: RunConstraints): Promise<SandboxResult> {
    const spec = this.withDefaults(request);
    const response = await this.transport.send('POST', 'v1/sandboxes/run', { json: { spec, constraints } });
    const body = (await response.json()) as SandboxResult;
    if (response.status !== 202) return body;
    const run = await this.waitForRun(body.id);
    return {
      id: run.id,
      status: run.status,
      stdout: run.stdout ?? '',
      stderr: run.stderr ?? '',
      exitCode: run.exitCode,
      duration: run.duration ?? 0,
      provider: run.provider,
      runtime: run.runtime,
      cost: run.cost?.total ?? 0,
      truncated: run.truncated ?? false,
      error: run.error,
    };
  }

  /** Submits a run without waiting (`POST /v1/runs`); follow it with {@link getRun} or {@link waitForRun}. */
  async submitRun(request: RunRequest, options: { idempotencyKey?: string } = {}): Promise<RunResult> {
    return this.transport.json<RunResult>('POST', 'v1/runs', {
      json: this.withDefaults(request),
      headers: options.idempotencyKey ? { 'idempotency-key': options.idempotencyKey } : {},
    });
  }

  /** A run with its route, cost, provenance reference and Shield report. */
  async getRun(id: string): Promise<RunResult> {
    return this.transport.json<RunResult>('GET', `v1/runs/${encodeURIComponent(id)}`);
  }

  /** Waits (long-polling the API) until the run has settled. */
  async waitForRun(id: string, options: { timeoutMs?: number } = {}): Promise<RunResult> {
    const deadline = Date.now() + (options.timeoutMs ?? 15 * 60_000);
    for (;;) {
      const run = await this.getRun(id);
      if (TERMINAL.has(run.status)) return run;
      if (Date.now() > deadline) throw new SandstormError(`run ${id} has not settled in time (still ${run.status})`, { code: 'timeout', status: 0 });
      await new Promise((r) => setTimeout(r, 250));
    }
  }

  /** Cancels a run. */
  async cancelRun(id: string): Promise<void> {
    await this.transport.send('DELETE', `v1/runs/${encodeURIComponent(id)}`);
  }

  /** Billed usage in a period (v1 `start`/`end`), default the last 30 days. */
  async getUsage(period: { start?: Date | string; end?: Date | string } = {}): Promise<Usage> {
    const iso = (d?: Date | string) => (d === undefined ? undefined : d instanceof Date ? d.toISOString() : d);
    return this.transport.json<Usage>('GET', 'v1/usage', { query: { start: iso(period.start), end: iso(period.end) } });
  }

  /** Providers and what they offer this tenant. */
  async getProviders(): Promise<unknown> {
    return this.transport.json('GET', 'v1/providers');
  }

  /** v1: snapshots a sandbox. The API answers 501 `not-supported` until snapshots exist; that is thrown as a {@link SandstormError}. */
  async createSnapshot(sandboxId: string): Promise<unknown> {
    return this.transport.json('POST', `v1/sandboxes/${encodeURIComponent(sandboxId)}/snapshot`, { json: {} });
  }

  /** v1: restores a snapshot into a new sandbox (501 `not-supported` for now). */
  async restoreSnapshot(snapshotId: string): Promise<unknown> {
    return this.transport.json('POST', `v1/snapshots/${encodeURIComponent(snapshotId)}/restore`, { json: {} });
  }

  /** v1: lists snapshots (501 `not-supported` for now). */
  async listSnapshots(): Promise<unknown> {
    return this.transport.json('GET', 'v1/snapshots');
  }

  private withDefaults(request: RunRequest): RunRequest {
    const spec: RunRequest = { ...request };
    if (spec.strategy === undefined && this.strategy !== undefined) spec.strategy = this.strategy;
    if (spec.securityTier === undefined && this.security !== undefined) spec.securityTier = this.security;
    // The v1 SDK defaulted the language to python; a bare file name (`main.ts`) lets the server take it from the extension.
    if (spec.language === undefined && !/^[\w.-]+\.[A-Za-z0-9]+$/.test(spec.code)) spec.language = 'python';
    return spec;
  }
}

/** Batches of runs. */
export class Batches {
  constructor(private readonly transport: Transport, private readonly defaults: (r: RunRequest) => RunRequest) {}

  /** Submits up to 10,000 runs at once. */
  async submit(requests: RunRequest[], options: { idempotencyKey?: string } = {}): Promise<{ id: string; status: string; results: string }> {
    return this.transport.json('POST', 'v1/batches', {
      json: requests.map(this.defaults),
      headers: options.idempotencyKey ? { 'idempotency-key': options.idempotencyKey } : {},
    });
  }

  async get(id: string): Promise<Batch> {
    return this.transport.json<Batch>('GET', `v1/batches/${encodeURIComponent(id)}`);
  }

  /** The finished items so far, in input order (one JSON object per line of the answer). */
  async results(id: string): Promise<Array<Record<string, unknown>>> {
    const text = await (await this.transport.send('GET', `v1/batches/${encodeURIComponent(id)}/results`)).text();
    return text.split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l) as Record<string, unknown>);
  }

  async cancel(id: string): Promise<void> {
    await this.transport.send('DELETE', `v1/batches/${encodeURIComponent(id)}`);
  }
}

/** Provenance bundles and their offline verification. */
export class Provenance {
  constructor(private readonly transport: Transport) {}

  /** The signed bundle of a settled run. */
  async get(runId: string): Promise<ProvenanceBundle> {
    return this.transport.json<ProvenanceBundle>('GET', `v1/runs/${encodeURIComponent(runId)}/provenance`);
  }

  /** The log's signing key (PEM), to trust when verifying. */
  async key(): Promise<{ keyId: string; publicKeyPem: string }> {
    return this.transport.json('GET', 'v1/log/key');
  }

  /** Verifies a bundle offline (see {@link verifyBundle}). */
  verify(bundle: ProvenanceBundle, options?: VerifyOptions): Promise<VerificationResult> {
    return verifyBundle(bundle, options);
  }
}

export { Sandbox };
export default Sandstorm;
