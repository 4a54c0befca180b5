namespace Sandstorm.Shield;

/// <summary>A rule that fired: from Shield's own engine or from a customer's Falco alert.</summary>
public sealed record Finding
{
    public required string Rule { get; init; }

    public required Priority Priority { get; init; }

    /// <summary>The rule's output template, filled in from the event.</summary>
    public required string Output { get; init; }

    public IReadOnlyList<string> Tags { get; init; } = [];

    /// <summary>When the event that fired the rule happened.</summary>
    public DateTimeOffset EventTime { get; init; }

    /// <summary>The sandbox (Falco's <c>container.id</c>) the event belongs to, if known.</summary>
    public string? SandboxId { get; init; }

    /// <summary>When the finding was made (the engine evaluated the event, or the alert was received).</summary>
    public DateTimeOffset DetectedAt { get; init; }

    /// <summary><c>shield</c> for Shield's own engine; <c>falco</c> for an ingested Falco alert.</summary>
    public string Detector { get; init; } = "shield";

    /// <summary>Falco's event source (<c>syscall</c>, <c>k8s_audit</c>...).</summary>
    public string Source { get; init; } = "syscall";

    /// <summary>Tenant whose rule fired, or null for a default rule.</summary>
    public string? TenantId { get; init; }

    /// <summary>The fields the output names, by Falco's name (as Falco's <c>output_fields</c>); null values were not available.</summary>
    public IReadOnlyDictionary<string, string?> OutputFields { get; init; } = new Dictionary<string, string?>();

    /// <summary>Falco's <c>hostname</c>, for ingested alerts.</summary>
    public string? Hostname { get; init; }

    /// <summary>
    /// Time from the event to the last process of the sandbox gone, when the finding quarantined the sandbox; null
    /// when it did not (below the threshold, or quarantine is not the monitor's to do).
    /// </summary>
    public TimeSpan? QuarantineLatency { get; init; }
}
