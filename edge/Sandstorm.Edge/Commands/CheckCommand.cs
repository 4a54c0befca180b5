using System.Text.Json;
using Sandstorm.Core;
using Sandstorm.Core.Contracts;
using Sandstorm.Runtimes;

namespace Sandstorm.Edge.Commands;

/// <summary><c>sandstorm-edge check</c>: probes every runtime with a trial sandbox and reports which work here.</summary>
public sealed class CheckCommand : IEdgeCommand
{
    public string Name => "check";

    public string Summary => "probe every sandbox runtime on this machine and show which work";

    public string Usage => """
        usage: sandstorm-edge check [--json]
          --json   print the statuses as JSON (array of {name, isolation, works, reason, limits})
        """;

    public async Task<int> RunAsync(IReadOnlyList<string> args, EdgeContext context, CancellationToken ct)
    {
        var parsed = ParsedArguments.Parse(args, [], ["json"]);
        var statuses = await ProbeAllAsync(context.CreateRuntimes(context.RuntimeOptions), ct);
        if (parsed.Has("json"))
        {
            await context.Out.WriteLineAsync(JsonSerializer.Serialize(statuses, SandstormJson.Options));
            return 0;
        }

        await context.Out.WriteLineAsync($"{"RUNTIME",-14}{"ISOLATION",-11}{"WORKS",-7}LIMITS / WHY NOT");
        foreach (var s in statuses)
        {
            await context.Out.WriteLineAsync($"{s.Name,-14}{RuntimeSelector.Format(s.Isolation),-11}{(s.Works ? "yes" : "no"),-7}{(s.Works ? "limits: " + s.Limits : s.Reason)}");
        }

        await context.Out.WriteLineAsync(RuntimeRegistry.RunsAsRoot
            ? "agent user: root"
            : $"agent user: {Environment.UserName} (unprivileged: rootless runtimes only, limits as listed)");

        return 0;
    }

    /// <summary>Probes runtimes one after another (they share two cores with the sandboxes they test).</summary>
    public static async Task<IReadOnlyList<EdgeRuntimeStatus>> ProbeAllAsync(IEnumerable<ISandboxRuntime> runtimes, CancellationToken ct)
    {
        var statuses = new List<EdgeRuntimeStatus>();
        foreach (var runtime in runtimes)
        {
            var probe = await runtime.ProbeAsync(ct);
            statuses.Add(new EdgeRuntimeStatus(runtime.Name, runtime.Isolation, probe.Works, probe.Reason) { Limits = probe.Limits });
        }

        return statuses;
    }
}
