using System.Reflection;

namespace Sandstorm.Runtimes.Internal;

/// <summary>The init of a kept sandbox (<c>sandbox-init.py</c>), started as the sandbox's first process.</summary>
internal static class SandboxInit
{
    private static readonly Lazy<string> Script = new(() =>
    {
        using var stream = Assembly.GetExecutingAssembly().GetManifestResourceStream("sandbox-init.py")
            ?? throw new InvalidOperationException("sandbox-init.py is not embedded");
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd();
    });

    /// <summary>
    /// The system's Python, isolated (<c>-I</c>: no user site, no environment variables, no current directory on the path) and
    /// without <c>site</c> (<c>-S</c>), running the script given on the command line: no file of it lies where the sandbox
    /// could change it.
    /// </summary>
    public static IReadOnlyList<string> Command => ["/usr/bin/python3", "-I", "-S", "-c", Script.Value];
}
