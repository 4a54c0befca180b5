/** Prefix of Sandstorm's problem `type` URIs; the rest is the stable error code. */
export const PROBLEM_TYPE_PREFIX = 'https://sandstorm.dev/problems/';

/** An RFC 9457 problem as the API answers it. */
export interface Problem {
  type?: string;
  title?: string;
  status?: number;
  detail?: string;
  code?: string;
  /** Field errors of a `validation-failed` problem: field name to messages. */
  errors?: Record<string, string[]>;
  [extension: string]: unknown;
}

/** Any failure the API answered with a problem (or a non-2xx status), or that the client detected itself. */
export class SandstormError extends Error {
  /** The problem `type` URI (`https://sandstorm.dev/problems/not-found`). */
  readonly type: string;
  /** The stable code: the last segment of `type` (`not-found`, `validation-failed`, `not-supported`). */
  readonly code: string;
  /** HTTP status; 0 when no answer came (network failure). */
  readonly status: number;
  /** Field errors (`{language: ['language is required']}`), empty when none. */
  readonly errors: Record<string, string[]>;
  /** The whole problem body, when there was one. */
  readonly problem?: Problem;
  /** `Retry-After` in seconds, when the API gave one (429, 503). */
  readonly retryAfter?: number;

  constructor(message: string, init: { type?: string; code?: string; status: number; errors?: Record<string, string[]>; problem?: Problem; retryAfter?: number }) {
    super(message);
    this.name = 'SandstormError';
    this.code = init.code ?? (init.type?.startsWith(PROBLEM_TYPE_PREFIX) ? init.type.slice(PROBLEM_TYPE_PREFIX.length) : 'error');
    this.type = init.type ?? PROBLEM_TYPE_PREFIX + this.code;
    this.status = init.status;
    this.errors = init.errors ?? {};
    this.problem = init.problem;
    this.retryAfter = init.retryAfter;
  }

  /** Builds the error from a response that is not a success. */
  static async fromResponse(response: Response): Promise<SandstormError> {
    const text = await response.text().catch(() => '');
    let problem: Problem | undefined;
    try {
      const parsed: unknown = text ? JSON.parse(text) : undefined;
      if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) {
        problem = parsed as Problem;
      }
    } catch {
      problem = undefined;
    }

    const retry = Number(response.headers.get('retry-after'));
    const detail = problem?.detail ?? problem?.title ?? (text || response.statusText || `HTTP ${response.status}`);
    return new SandstormError(`${response.status} ${problem?.code ?? ''}${problem?.code ? ': ' : ''}${detail}`, {
      type: problem?.type,
      code: problem?.code,
      status: response.status,
      errors: problem?.errors,
      problem,
      retryAfter: Number.isFinite(retry) && retry > 0 ? retry : undefined,
    });
  }
}
