import { SandstormError } from './errors.js';
import type { ProvenanceBundle } from './provenance.js';
import { readEvents } from './sse.js';
import type { Transport } from './transport.js';
import type { CommandOptions, CommandResult, FileEntry, SandboxCreateOptions, SandboxInfo } from './types.js';

/** A kept sandbox: run commands in it, read and write its files, kill it. */
export class Sandbox {
  /** Commands: `sandbox.commands.run('ls -la', { onStdout })`. */
  readonly commands: Commands;
  /** Files under `/home/user` (relative paths) or `/tmp`. */
  readonly files: Files;

  constructor(private readonly transport: Transport, public info: SandboxInfo) {
    this.commands = new Commands(transport, info.id);
    this.files = new Files(transport, info.id);
  }

  get id(): string {
    return this.info.id;
  }

  /** Reads the sandbox's current state. */
  async refresh(): Promise<SandboxInfo> {
    this.info = await this.transport.json<SandboxInfo>('GET', `v1/sandboxes/${encodeURIComponent(this.id)}`);
    return this.info;
  }

  /** Sets its lifetime to `seconds` from now. */
  async setTimeout(seconds: number): Promise<SandboxInfo> {
    this.info = await this.transport.json<SandboxInfo>('POST', `v1/sandboxes/${encodeURIComponent(this.id)}/timeout`, { json: { timeout: seconds } });
    return this.info;
  }

  /** Ends it now: everything in it is killed, its life billed and its record signed. */
  async kill(): Promise<void> {
    await this.transport.send('DELETE', `v1/sandboxes/${encodeURIComponent(this.id)}`);
  }

  /** The signed record of every command; the API answers 409 `conflict` until the sandbox has ended. */
  async provenance(): Promise<ProvenanceBundle> {
    return this.transport.json<ProvenanceBundle>('GET', `v1/sandboxes/${encodeURIComponent(this.id)}/provenance`);
  }
}

/** The `sandboxes` namespace of the client. */
export class Sandboxes {
  constructor(private readonly transport: Transport, private readonly defaults: Pick<SandboxCreateOptions, 'strategy' | 'securityTier'>) {}

  /** Creates a sandbox, placed by the same intent as a run; it lives `timeout` seconds (default 5 minutes). */
  async create(options: SandboxCreateOptions = {}): Promise<Sandbox> {
    const body = { ...clean(this.defaults), ...options };
    return new Sandbox(this.transport, await this.transport.json<SandboxInfo>('POST', 'v1/sandboxes', { json: body }));
  }

  /** A sandbox by id (another tenant's answers 404 like a missing one). */
  async get(id: string): Promise<Sandbox> {
    return new Sandbox(this.transport, await this.transport.json<SandboxInfo>('GET', `v1/sandboxes/${encodeURIComponent(id)}`));
  }

  /** Every sandbox matching the filters, page after page. */
  async *list(options: { metadata?: Record<string, string>; state?: 'running' | 'all'; pageSize?: number } = {}): AsyncGenerator<SandboxInfo> {
    let next: string | undefined;
    do {
      const page = await this.transport.json<{ sandboxes: SandboxInfo[]; next?: string | null }>('GET', 'v1/sandboxes', {
        query: {
          metadata: Object.entries(options.metadata ?? {}).map(([k, v]) => `${k}=${v}`),
          state: options.state,
          limit: options.pageSize,
          next,
        },
      });
      for (const sandbox of page.sandboxes) yield sandbox;
      next = page.next ?? undefined;
    } while (next);
  }

  /** Ends a sandbox by id. */
  async kill(id: string): Promise<void> {
    await this.transport.send('DELETE', `v1/sandboxes/${encodeURIComponent(id)}`);
  }
}

/** Commands of one sandbox. */
export class Commands {
  constructor(private readonly transport: Transport, private readonly sandboxId: string) {}

  /**
   * Runs a command line (`/bin/bash -l -c`) and streams its output to `onStdout`/`onStderr` as it comes; resolves when it
   * ends, whatever its exit code. A dropped connection resumes from the last event seen.
   */
  async run(cmd: string, options: CommandOptions = {}): Promise<CommandResult> {
    const base = `v1/sandboxes/${encodeURIComponent(this.sandboxId)}/commands`;
    const out: string[] = [];
    const err: string[] = [];
    let commandId: string | undefined;
    let pid: number | undefined;
    let lastId: string | undefined;
    let response = await this.transport.send('POST', base, {
      json: { cmd, cwd: options.cwd, env: options.env, timeout: options.timeoutMs },
      headers: { accept: 'text/event-stream' },
      signal: options.signal,
      timeoutMs: null,
    });
    commandId = response.headers.get('location')?.split('/').pop() ?? undefined;
    for (let attempt = 0; ; attempt++) {
      if (!response.body) throw new SandstormError('the command stream has no body', { code: 'stream-ended', status: response.status });
      try {
        for await (const event of readEvents(response.body)) {
          lastId = event.id ?? lastId;
          const data = JSON.parse(event.data) as Record<string, unknown>;
          switch (event.event) {
            case 'start':
              commandId = String(data.commandId);
              pid = data.pid as number;
              break;
            case 'stdout':
              out.push(String(data.data ?? ''));
              options.onStdout?.(String(data.data ?? ''));
              break;
            case 'stderr':
              err.push(String(data.data ?? ''));
              options.onStderr?.(String(data.data ?? ''));
              break;
            case 'end':
              return {
                commandId: commandId ?? '',
                pid,
                status: String(data.status),
                exitCode: data.exitCode as number | undefined,
                signal: data.signal as number | undefined,
                error: data.error as string | undefined,
                durationMs: data.durationMs as number | undefined,
                stdout: out.join(''),
                stderr: err.join(''),
              };
            default:
              // 'gap': older output is no longer kept; what follows is still in order.
              break;
          }
        }
      } catch (e) {
        if (options.signal?.aborted || e instanceof SyntaxError) throw e;
      }

      if (!commandId || attempt >= 3) {
        throw new SandstormError(`the command stream ended before the command did${commandId ? ` (command ${commandId})` : ''}`, { code: 'stream-ended', status: 0 });
      }

      response = await this.transport.send('GET', `${base}/${encodeURIComponent(commandId)}/events`, {
        headers: { accept: 'text/event-stream', ...(lastId ? { 'last-event-id': lastId } : {}) },
        signal: options.signal,
        timeoutMs: null,
      });
    }
  }

  /** Kills a running command and its process group. */
  async kill(commandId: string): Promise<void> {
    await this.transport.send('DELETE', `v1/sandboxes/${encodeURIComponent(this.sandboxId)}/commands/${encodeURIComponent(commandId)}`);
  }
}

/** Files of one sandbox. */
export class Files {
  constructor(private readonly transport: Transport, private readonly sandboxId: string) {}

  private get base(): string {
    return `v1/sandboxes/${encodeURIComponent(this.sandboxId)}/files`;
  }

  /** Writes a whole file (text as UTF-8); its directories are created. */
  async write(path: string, data: string | Uint8Array | ArrayBuffer): Promise<FileEntry> {
    return this.transport.json<FileEntry>('PUT', `${this.base}/content`, {
      query: { path },
      body: typeof data === 'string' ? new TextEncoder().encode(data) : data,
      headers: { 'content-type': 'application/octet-stream' },
    });
  }

  /** Reads a file as UTF-8 text. */
  async read(path: string): Promise<string> {
    return new TextDecoder().decode(await this.readBytes(path));
  }

  /** Reads a file's bytes. */
  async readBytes(path: string): Promise<Uint8Array> {
    const response = await this.transport.send('GET', `${this.base}/content`, { query: { path }, headers: { accept: 'application/octet-stream' } });
    return new Uint8Array(await response.arrayBuffer());
  }

  /** A directory's entries (`depth` levels down, default 1). */
  async list(path = '/home/user', options: { depth?: number } = {}): Promise<FileEntry[]> {
    return (await this.transport.json<{ entries: FileEntry[] }>('GET', this.base, { query: { path, depth: options.depth } })).entries;
  }

  async stat(path: string): Promise<FileEntry> {
    return this.transport.json<FileEntry>('GET', `${this.base}/stat`, { query: { path } });
  }

  async remove(path: string): Promise<void> {
    await this.transport.send('DELETE', this.base, { query: { path } });
  }

  async makeDir(path: string): Promise<FileEntry> {
    return this.transport.json<FileEntry>('POST', `${this.base}/mkdir`, { json: { path } });
  }

  async move(path: string, destination: string): Promise<FileEntry> {
    return this.transport.json<FileEntry>('POST', `${this.base}/move`, { json: { path, destination } });
  }
}

function clean<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}
