using Microsoft.DurableTask;
using Microsoft.Extensions.Logging;
using Sandstorm.Core.Contracts;
using Sandstorm.Core.Pricing;
using Sandstorm.Providers;
using Sandstorm.Security.Provenance;
using Sandstorm.Storage;
using Sandstorm.Storage.Sandboxes;

namespace Sandstorm.Orchestrations.Sandboxes;

/// <summary>Input of <see cref="EndSandboxActivity"/>: the sandbox, how it ends, and when.</summary>
public sealed record EndSandboxInput(string TenantId, string SandboxId, SandboxStatus Status, DateTimeOffset At);

/// <summary>How the end went: the status it ended with, or — when its expiry moved later meanwhile — that it still runs.</summary>
public sealed record EndSandboxOutcome(SandboxStatus Status, DateTimeOffset? StillRunningUntil = null);

/// <summary>
/// Ends a kept sandbox, once: destroys it at its provider (a sandbox already gone is fine), bills its seconds of life
/// (from ready to end) at the provider's price with the tier fees (the ledger row key is the sandbox id, so a retry bills
/// nothing twice), signs the provenance of every command in order, and writes the final record. Every step is idempotent.
/// </summary>
public sealed class EndSandboxActivity(
    IProviderCatalog catalog,
    SandboxStore sandboxes,
    LedgerStore ledger,
    IProvenanceService provenance,
    ISandboxEndListener listener,
    TimeProvider time,
    ILogger<EndSandboxActivity> logger)
    : TaskActivity<EndSandboxInput, EndSandboxOutcome>
{
    public override Task<EndSandboxOutcome> RunAsync(TaskActivityContext context, EndSandboxInput input) => ExecuteAsync(input, CancellationToken.None);

    public async Task<EndSandboxOutcome> ExecuteAsync(EndSandboxInput input, CancellationToken cancellationToken)
    {
        if (await sandboxes.GetAsync(input.TenantId, input.SandboxId, cancellationToken) is not var (record, etag))
        {
            // A create that was refused and undone: nothing to end.
            return new EndSandboxOutcome(SandboxStatus.Failed);
        }

        if (record.Status.IsEnded() && record.Cost is not null)
        {
            return new EndSandboxOutcome(record.Status);
        }

        if (input.Status == SandboxStatus.Expired && record.ExpiresAt > input.At.AddSeconds(1) && !record.Status.IsEnded())
        {
            return new EndSandboxOutcome(SandboxStatus.Running, record.ExpiresAt);
        }

        // An end already recorded (lost, quarantined, failed) wins over a later reason.
        var status = record.Status.IsEnded() ? record.Status : input.Status;
        var endedAt = record.EndedAt ?? input.At;
        var lease = LeaseOf(record);
        var provider = record.Provider is { } id ? catalog.All.FirstOrDefault(p => p.Capabilities.Provider == id) : null;
        if (lease is not null && provider is ISandboxKeeper keeper)
        {
            await keeper.DestroySandboxAsync(lease, cancellationToken);
        }

        await listener.OnEndedAsync(record.TenantId, record.SandboxId, status, endedAt, cancellationToken);

        var seconds = record.ReadyAt is { } ready ? Math.Max(0, (endedAt - ready).TotalSeconds) : 0;
        var fees = new FeeBreakdown(0m, 0m, 0m, null, 0m);
        if (provider is not null && lease is not null && seconds > 0)
        {
            var providerCost = provider.Capabilities.Price.CostFor(record.Request.Cpu, record.Request.Memory, seconds);
            fees = SettleRouting.Fees(record.Provider!, providerCost, record.Request.SecurityTier, record.Route);
        }

        var cost = fees.ToCost();
        if (provider is not null && lease is not null)
        {
            var (entry, _) = await ledger.AddOnceAsync(
                new LedgerEntry
                {
                    TenantId = record.TenantId,
                    RunId = record.SandboxId,
                    Kind = LedgerEntry.SandboxKind,
                    Provider = record.Provider!,
                    Runtime = record.Runtime ?? "",
                    Region = record.Region ?? "",
                    Status = status is SandboxStatus.Quarantined ? RunStatus.Quarantined : status is SandboxStatus.Lost or SandboxStatus.Failed ? RunStatus.Failed : RunStatus.Succeeded,
                    ProviderCost = fees.ProviderCost,
                    Fees = cost.Fees,
                    Total = cost.Total,
                    AutopilotFee = fees.AutopilotFee,
                    ShieldFee = fees.ShieldFee,
                    BaselineProvider = record.Route?.Baseline?.Provider,
                    BaselineCost = fees.BaselineCost,
                    Savings = fees.Savings,
                    SecurityTier = record.Request.SecurityTier,
                    DurationMs = (long)(seconds * 1000),
                    LatencyMs = 0,
                    SettledAt = time.GetUtcNow(),
                    Language = Languages.Bash,
                    Cpu = record.Request.Cpu,
                    MemoryMiB = record.Request.Memory,
                    IsolationLevel = record.Request.IsolationLevel,
                    Strategy = record.Request.Strategy,
                },
                cancellationToken);
            cost = new CostBreakdown(entry.ProviderCost, entry.Fees, entry.Total);
        }

        ProvenanceRef? signed = null;
        var commands = lease is null ? [] : await sandboxes.CommandsAsync(record.TenantId, record.SandboxId, cancellationToken);
        if (lease is not null)
        {
            var recorded = await provenance.RecordSandboxAsync(ProvenanceOf(record, commands, status, endedAt, cost), cancellationToken);
            signed = recorded.ToRef();
        }

        var final = record with { Status = status, EndedAt = endedAt, Cost = cost, Provenance = signed, Commands = commands.Count };
        if (!await sandboxes.TryUpdateAsync(final, etag, cancellationToken))
        {
            // Changed meanwhile (a command's count, a status): write over it once more from a fresh read.
            var again = await sandboxes.GetAsync(input.TenantId, input.SandboxId, cancellationToken);
            await sandboxes.TryUpdateAsync(again!.Value.Record with { Status = status, EndedAt = endedAt, Cost = cost, Provenance = signed, Commands = commands.Count }, null, cancellationToken);
        }

        logger.LogInformation("Sandbox {SandboxId} ended: {Status} after {Seconds:0.0} s, {Total} USD", record.SandboxId, status, seconds, cost.Total);
        return new EndSandboxOutcome(status);
    }

    /// <summary>The provider lease a record names, or null when it was never placed.</summary>
    public static SandboxLease? LeaseOf(SandboxRecord record) =>
        record is { Provider: { } provider, ProviderSandboxId: { } id }
            ? new SandboxLease(provider, id, record.Runtime ?? "", record.Region ?? "") { Data = record.LeaseData, TenantId = record.TenantId }
            : null;

    private static SandboxProvenanceInput ProvenanceOf(SandboxRecord record, IReadOnlyList<SandboxCommandRecord> commands, SandboxStatus status, DateTimeOffset endedAt, CostBreakdown cost) => new()
    {
        SandboxId = record.SandboxId,
        TenantId = record.TenantId,
        Request = new SandboxProvenanceRequest
        {
            IsolationLevel = record.Request.IsolationLevel,
            SecurityTier = record.Request.SecurityTier,
            Strategy = record.Request.Strategy,
            Constraints = record.Request.Constraints,
            Template = record.Request.Template,
            Cpu = record.Request.Cpu,
            Memory = record.Request.Memory,
            Disk = record.Request.Disk,
            EnvironmentNames = [.. record.EnvVars.Keys.Order(StringComparer.Ordinal)],
            Metadata = record.Request.Metadata ?? new Dictionary<string, string>(),
        },
        Route = record.Route,
        Provider = record.Provider!,
        Runtime = record.Runtime ?? "",
        Region = record.Region,
        CreatedAt = record.CreatedAt,
        ReadyAt = record.ReadyAt,
        EndedAt = endedAt,
        Status = status,
        Cost = cost,
        Commands = [.. commands.Select(c => new AttestedCommand(
            new SandboxProvenanceCommand
            {
                Sequence = c.Sequence,
                Cwd = c.Cwd,
                Status = c.Status,
                ExitCode = c.ExitCode,
                Signal = c.Signal,
                StartedAt = c.StartedAt,
                EndedAt = c.EndedAt,
                StdoutBytes = c.StdoutBytes,
                StderrBytes = c.StderrBytes,
            },
            c.CmdSha256,
            c.StdoutSha256 ?? RunIntent.Sha256Hex(""),
            c.StderrSha256 ?? RunIntent.Sha256Hex("")))],
    };
}
