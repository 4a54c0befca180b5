using Sandstorm.Core.Contracts;

namespace Sandstorm.Client;

/// <summary>Builds the client's models for tests that mock <see cref="SandstormClient"/>.</summary>
public static class SandstormModelFactory
{
    public static RunResult RunResult(string id, RunStatus status, string? stdout = null, string? stderr = null, int? exitCode = null, string? provider = null, string? runtime = null, decimal cost = 0m) =>
        new() { Id = id, Status = status, Stdout = stdout, Stderr = stderr, ExitCode = exitCode, Provider = provider, Runtime = runtime, Cost = new CostBreakdown(cost, 0m, cost) };

    public static SandboxInfo SandboxInfo(string id, SandboxStatus status = SandboxStatus.Running, string? provider = "local", string? runtime = null, IReadOnlyDictionary<string, string>? metadata = null) =>
        new() { Id = id, Status = status, Provider = provider, Runtime = runtime, Metadata = metadata ?? new Dictionary<string, string>() };

    public static CommandEvent CommandEvent(long id, CommandEventKind kind, string? data = null, int? exitCode = null, string? status = null, string? commandId = null) =>
        new(id, kind) { Data = data, ExitCode = exitCode, Status = status, CommandId = commandId };

    public static CommandResult CommandResult(string commandId, int? exitCode, string stdout = "", string stderr = "", string status = "exited", string? error = null) =>
        new(commandId, status, exitCode, stdout, stderr, error);

    public static SandboxFileEntry SandboxFileEntry(string name, string path, string type = "file", long size = 0) => new(name, type, path, size);

    public static BatchInfo BatchInfo(string id, string status, int total, int succeeded = 0, int failed = 0, int cancelled = 0, decimal cost = 0m) =>
        new(id, status, total, succeeded, failed, cancelled, cost);
}
