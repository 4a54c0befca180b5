/** How strongly code is isolated: a plain process, containers, a user-space kernel (gVisor), a microVM. */
export type IsolationLevel = 'none' | 'standard' | 'strong' | 'maximum';
/** What the router optimises for. */
export type Strategy = 'optimize_cost' | 'optimize_latency' | 'balanced' | 'optimize_carbon';
/** Security monitoring tier. */
export type SecurityTier = 'basic' | 'shield';
export type Language = 'python' | 'javascript' | 'typescript' | 'bash' | 'shell' | (string & {});
export type RunStatus = 'queued' | 'running' | 'succeeded' | 'failed' | 'timed_out' | 'cancelled' | 'quarantined';

/** Limits and preferences the router honours. `cpu`, `memory`, `timeout` and `isolation` are aliases of the run's own fields. */
export interface RunConstraints {
  maxCost?: number;
  maxLatency?: number;
  preferredProviders?: string[];
  excludeProviders?: string[];
  preferredRegion?: string;
  allowedRegions?: string[];
  maxCarbon?: number;
  cpu?: number;
  memory?: number;
  timeout?: number;
  /** The launch post's name for `isolationLevel`: the stronger of the two applies. */
  isolation?: IsolationLevel;
  gpu?: boolean;
  requireGpu?: boolean;
  requireShieldCoverage?: boolean;
}

/** What to run. `code` is the program, or the bare name of a file among `files` (`main.py`). */
export interface RunRequest {
  code: string;
  language?: Language;
  files?: Record<string, string>;
  environment?: Record<string, string>;
  requirements?: string[];
  cpu?: number;
  memory?: number;
  /** Milliseconds. */
  timeout?: number;
  isolationLevel?: IsolationLevel;
  runtimePreference?: string;
  securityTier?: SecurityTier;
  strategy?: Strategy;
  constraints?: RunConstraints;
  gpu?: boolean;
  gpuType?: string;
}

export interface RunError {
  code: string;
  message: string;
}

/** The v1 answer of `run`: output, exit code, where it ran and what it cost (USD). */
export interface SandboxResult {
  id: string;
  status: RunStatus;
  stdout: string;
  stderr: string;
  exitCode?: number | null;
  /** Milliseconds. */
  duration: number;
  provider?: string | null;
  runtime?: string | null;
  cost: number;
  truncated: boolean;
  error?: RunError | null;
}

export interface CostBreakdown {
  provider: number;
  fees: number;
  total: number;
}

export interface ProvenanceRef {
  envelopeUrl: string;
  logIndex: number;
}

/** A run as `GET /v1/runs/{id}` shows it. */
export interface RunResult {
  id: string;
  status: RunStatus;
  provider?: string;
  runtime?: string;
  region?: string;
  stdout?: string;
  stderr?: string;
  exitCode?: number;
  duration?: number;
  cost?: CostBreakdown;
  truncated?: boolean;
  route?: unknown;
  provenance?: ProvenanceRef;
  shield?: unknown;
  error?: RunError;
  createdAt?: string;
  completedAt?: string;
}

/** The v1 `getUsage` answer, with the v2 fields beside. */
export interface Usage {
  totalRuns: number;
  totalCost: number;
  avgLatency: number;
  providerBreakdown: Record<string, number>;
  runs: number;
  total: number;
  providers: Array<Record<string, unknown> & { provider: string; runs: number; total: number }>;
  from: string;
  to: string;
  [field: string]: unknown;
}

export type SandboxStatus = 'starting' | 'running' | 'stopped' | 'expired' | 'lost' | 'quarantined' | 'failed';

export interface SandboxCreateOptions {
  isolationLevel?: IsolationLevel;
  strategy?: Strategy;
  securityTier?: SecurityTier;
  constraints?: RunConstraints;
  runtimePreference?: string;
  template?: string;
  metadata?: Record<string, string>;
  envVars?: Record<string, string>;
  cpu?: number;
  /** MiB. */
  memory?: number;
  /** MiB. */
  disk?: number;
  /** Lifetime in seconds from now. */
  timeout?: number;
}

/** A kept sandbox as the API shows it. */
export interface SandboxInfo {
  id: string;
  status: SandboxStatus;
  provider?: string;
  runtime?: string;
  region?: string;
  isolationLevel: IsolationLevel;
  securityTier: SecurityTier;
  template?: string;
  metadata: Record<string, string>;
  cpu: number;
  memory: number;
  disk: number;
  createdAt: string;
  expiresAt: string;
  endedAt?: string;
  commands: number;
  cost?: CostBreakdown;
  provenance?: ProvenanceRef;
  error?: RunError;
}

export interface CommandOptions {
  cwd?: string;
  env?: Record<string, string>;
  /** The command's own limit in milliseconds (default 60 s; 0: until the sandbox ends). */
  timeoutMs?: number;
  /** Called with each chunk of standard output as it comes. */
  onStdout?: (data: string) => void;
  /** Called with each chunk of standard error as it comes. */
  onStderr?: (data: string) => void;
  signal?: AbortSignal;
}

/** How a command ended. */
export interface CommandResult {
  commandId: string;
  pid?: number;
  /** `exited`, `killed`, `timed_out`, `sandbox_ended`. */
  status: string;
  exitCode?: number;
  signal?: number;
  error?: string;
  durationMs?: number;
  stdout: string;
  stderr: string;
}

/** One entry of a sandbox directory. */
export interface FileEntry {
  name: string;
  type: string;
  path: string;
  size: number;
  mode?: number;
  permissions?: string;
  owner?: string;
  group?: string;
  modifiedAt?: string;
  symlinkTarget?: string | null;
}

export type BatchStatus = 'queued' | 'running' | 'completed' | 'cancelling' | 'cancelled';

export interface Batch {
  id: string;
  status: BatchStatus;
  total: number;
  counts: { queued: number; running: number; succeeded: number; failed: number; cancelled: number };
  cost: number;
  createdAt: string;
  completedAt?: string | null;
  results: string;
}
