using System.Reflection;

namespace Sandstorm.Edge.Commands;

/// <summary>Dispatches <c>sandstorm-edge &lt;command&gt; ...</c> to the <see cref="IEdgeCommand"/> of that name.</summary>
public static class EdgeCli
{
    /// <summary>Exit code for bad arguments.</summary>
    public const int UsageExitCode = 2;

    /// <summary>Every command in this assembly, by name.</summary>
    public static IReadOnlyDictionary<string, IEdgeCommand> Commands { get; } = typeof(EdgeCli).Assembly.GetTypes()
        .Where(t => typeof(IEdgeCommand).IsAssignableFrom(t) && t is { IsAbstract: false, IsInterface: false } && t.GetConstructor(Type.EmptyTypes) is not null)
        .Select(t => (IEdgeCommand)Activator.CreateInstance(t)!)
        .ToDictionary(c => c.Name, StringComparer.Ordinal);

    public static async Task<int> RunAsync(IReadOnlyList<string> args, EdgeContext context, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(args);
        ArgumentNullException.ThrowIfNull(context);
        if (args.Count == 0 || args[0] is "--help" or "-h" or "help")
        {
            await context.Out.WriteLineAsync(Help());
            return args.Count == 0 ? UsageExitCode : 0;
        }

        if (!Commands.TryGetValue(args[0], out var command))
        {
            await context.Error.WriteLineAsync($"sandstorm-edge: unknown command '{args[0]}'\n\n{Help()}");
            return UsageExitCode;
        }

        var rest = args.Skip(1).ToArray();
        if (rest.Contains("--help") || rest.Contains("-h"))
        {
            await context.Out.WriteLineAsync(command.Usage);
            return 0;
        }

        try
        {
            return await command.RunAsync(rest, context, ct);
        }
        catch (UsageException e)
        {
            await context.Error.WriteLineAsync($"sandstorm-edge {command.Name}: {e.Message}\n\n{command.Usage}");
            return UsageExitCode;
        }
    }

    private static string Help()
    {
        var version = typeof(EdgeCli).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "";
        var lines = Commands.Values.OrderBy(c => c.Name, StringComparer.Ordinal).Select(c => $"  {c.Name,-8} {c.Summary}");
        return $"sandstorm-edge {version}\nusage: sandstorm-edge <command> [options]   (sandstorm-edge <command> --help)\n\ncommands:\n{string.Join('\n', lines)}";
    }
}
