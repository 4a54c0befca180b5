using Sandstorm.Core.Contracts;

namespace Sandstorm.Orchestrations.Batches;

/// <summary>
/// One line of a batch's results (JSON Lines, input order). Outputs are inline when small; larger ones are named by
/// blob (<c>stdoutBlob</c>/<c>stderrBlob</c>) and served whole by <c>GET /v1/runs/{runId}</c>.
/// </summary>
public sealed record BatchResultLine
{
    public required int Index { get; init; }

    public required string RunId { get; init; }

    public required RunStatus Status { get; init; }

    public int? ExitCode { get; init; }

    public string? Stdout { get; init; }

    public string? Stderr { get; init; }

    public string? StdoutBlob { get; init; }

    public string? StderrBlob { get; init; }

    public decimal Cost { get; init; }

    public RunError? Error { get; init; }
}
