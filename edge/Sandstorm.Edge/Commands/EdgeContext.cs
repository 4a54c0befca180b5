using Sandstorm.Runtimes;

namespace Sandstorm.Edge.Commands;

/// <summary>What commands write to and run on; tests swap the writers and the runtime set.</summary>
public sealed class EdgeContext
{
    public required TextWriter Out { get; init; }

    public required TextWriter Error { get; init; }

    /// <summary>Standard input (the enrollment token with <c>init --enrollment-token-file -</c>).</summary>
    public TextReader Input { get; init; } = TextReader.Null;

    public required RuntimeOptions RuntimeOptions { get; init; }

    /// <summary>Creates the runtimes commands use (defaults to every registered runtime).</summary>
    public Func<RuntimeOptions, IReadOnlyList<ISandboxRuntime>> CreateRuntimes { get; init; } = RuntimeRegistry.CreateAll;

    /// <summary>HTTP handler for control-plane calls (null: the default); tests put a network switch here.</summary>
    public HttpMessageHandler? HttpHandler { get; init; }

    public static EdgeContext CreateDefault() => new()
    {
        Out = Console.Out,
        Error = Console.Error,
        Input = Console.In,
        // An operator (or a test) may point several agents at one microVM image cache instead of a build per work root.
        RuntimeOptions = new RuntimeOptions { MicroVmImageRoot = Environment.GetEnvironmentVariable("SANDSTORM_MICROVM_IMAGE_ROOT") is { Length: > 0 } images ? images : null },
    };
}
