namespace Sandstorm.Orchestrations;

/// <summary>Tunables of the run pipeline (section <c>Sandstorm:Runs</c>).</summary>
public sealed class RunPipelineOptions
{
    public const string Section = "Sandstorm:Runs";

    /// <summary>Time allowed beyond a run's execution timeout for routing, provisioning and settling.</summary>
    public TimeSpan Overhead { get; set; } = TimeSpan.FromMinutes(2);

    /// <summary>The whole-run budget of a run with this execution timeout.</summary>
    public int DeadlineMs(int timeoutMs) => checked(timeoutMs + (int)Overhead.TotalMilliseconds);
}
