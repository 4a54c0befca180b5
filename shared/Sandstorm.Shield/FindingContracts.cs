using Sandstorm.Core.Contracts;

namespace Sandstorm.Shield;

/// <summary>Converts Shield's <see cref="Finding"/> to and from the contract that results, stores and the API carry.</summary>
public static class FindingContracts
{
    /// <summary>The contract of a finding; <paramref name="quarantined"/> marks the one that killed the sandbox.</summary>
    public static ShieldFinding ToContract(this Finding finding, string? id = null, bool quarantined = false)
    {
        ArgumentNullException.ThrowIfNull(finding);
        return new ShieldFinding
        {
            Id = id,
            Rule = finding.Rule,
            Priority = finding.Priority.WireName(),
            Output = finding.Output,
            Tags = finding.Tags,
            EventTime = finding.EventTime,
            DetectedAt = finding.DetectedAt,
            Detector = finding.Detector,
            TenantId = finding.TenantId,
            SandboxId = finding.SandboxId,
            OutputFields = finding.OutputFields.Count == 0 ? null : finding.OutputFields,
            Quarantined = quarantined,
            QuarantineLatencyMs = finding.QuarantineLatency is { } latency ? Math.Round(latency.TotalMilliseconds, 3) : null,
        };
    }

    /// <summary>The lower-case name results and stores use (<c>critical</c>, <c>informational</c>...).</summary>
    public static string WireName(this Priority priority) => priority.ToString().ToLowerInvariant();

    /// <summary>The priority of a contract's finding (<see cref="Priority.Debug"/> when it names none Falco knows).</summary>
    public static Priority PriorityOf(ShieldFinding finding)
    {
        ArgumentNullException.ThrowIfNull(finding);
        return Priorities.TryParse(finding.Priority, out var priority) ? priority : Priority.Debug;
    }
}
