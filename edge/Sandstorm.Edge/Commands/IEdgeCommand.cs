namespace Sandstorm.Edge.Commands;

/// <summary>
/// One <c>sandstorm-edge</c> sub-command. Every non-abstract implementation in this assembly with a public
/// parameterless constructor is found by <see cref="EdgeCli"/>; adding a command is adding a file.
/// </summary>
public interface IEdgeCommand
{
    /// <summary>The word after <c>sandstorm-edge</c>.</summary>
    string Name { get; }

    /// <summary>One line for the command list.</summary>
    string Summary { get; }

    /// <summary>Usage text shown with <c>--help</c> and after argument errors.</summary>
    string Usage { get; }

    /// <summary>Runs the command; returns the process exit code. Throws <see cref="UsageException"/> for bad arguments (exit 2).</summary>
    Task<int> RunAsync(IReadOnlyList<string> args, EdgeContext context, CancellationToken ct);
}
