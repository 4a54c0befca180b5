using System.Diagnostics;
using System.Reflection;

namespace Sandstorm.Infra.Tests;

/// <summary>Runs the Bicep CLI from the NuGet package this project restores (Azure.Bicep.CommandLine.linux-x64).</summary>
internal static class BicepCli
{
    private const string PackageId = "azure.bicep.commandline.linux-x64";

    /// <summary>Environment variables the parameter files read; the tests set them so results do not depend on the shell.</summary>
    public static readonly IReadOnlyDictionary<string, string> TestEnvironment = new Dictionary<string, string>
    {
        ["AZURE_ENV_NAME"] = "sandstorm-ci",
        ["AZURE_LOCATION"] = "eastus2",
        ["AZURE_PRINCIPAL_ID"] = "00000000-0000-0000-0000-000000000001",
        ["AZURE_PRINCIPAL_TYPE"] = "User",
    };

    private static readonly Lazy<string> Executable = new(Locate);

    public static string Path => Executable.Value;

    public static async Task<BicepResult> RunAsync(string workingDirectory, params string[] arguments)
    {
        var start = new ProcessStartInfo(Path)
        {
            WorkingDirectory = workingDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        // Parameter files read AZURE_* and SANDSTORM_* variables: start from none, then set the test values.
        foreach (var name in start.Environment.Keys.Where(IsDeploymentVariable).ToList())
        {
            start.Environment.Remove(name);
        }
        foreach (var (name, value) in TestEnvironment)
        {
            start.Environment[name] = value;
        }
        start.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";

        using var process = Process.Start(start) ?? throw new InvalidOperationException($"Could not start {Path}");
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(3));
        var stdout = process.StandardOutput.ReadToEndAsync(timeout.Token);
        var stderr = process.StandardError.ReadToEndAsync(timeout.Token);
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"bicep {string.Join(' ', arguments)} did not finish in 3 minutes");
        }

        return new BicepResult(process.ExitCode, await stdout, await stderr);
    }

    private static bool IsDeploymentVariable(string name) =>
        name.StartsWith("AZURE_", StringComparison.OrdinalIgnoreCase) ||
        name.StartsWith("SANDSTORM_", StringComparison.OrdinalIgnoreCase);

    private static string Locate()
    {
        var candidates = new List<string>();
        var packageDirectory = Metadata("BicepPackageDirectory");
        if (!string.IsNullOrEmpty(packageDirectory))
        {
            candidates.Add(System.IO.Path.Combine(packageDirectory, "tools", "bicep"));
        }

        // Fallbacks: the global packages folder as the build saw it, as NUGET_PACKAGES says, or the default.
        var roots = new[]
        {
            Metadata("NuGetPackageRoot"),
            Environment.GetEnvironmentVariable("NUGET_PACKAGES"),
            System.IO.Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages"),
        };
        foreach (var root in roots.Where(r => !string.IsNullOrEmpty(r)))
        {
            var packageRoot = System.IO.Path.Combine(root!, PackageId);
            if (Directory.Exists(packageRoot))
            {
                candidates.AddRange(Directory.GetDirectories(packageRoot)
                    .OrderByDescending(d => d, StringComparer.Ordinal)
                    .Select(d => System.IO.Path.Combine(d, "tools", "bicep")));
            }
        }

        var found = candidates.FirstOrDefault(File.Exists)
            ?? throw new FileNotFoundException(
                $"Bicep CLI not found; restore the {PackageId} package. Looked at: {string.Join(", ", candidates)}");

        // NuGet extraction does not always keep the execute bit.
        var mode = File.GetUnixFileMode(found);
        if (!mode.HasFlag(UnixFileMode.UserExecute))
        {
            File.SetUnixFileMode(found, mode | UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute);
        }
        return found;
    }

    private static string? Metadata(string key) =>
        typeof(BicepCli).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>()
            .FirstOrDefault(a => a.Key == key)?.Value;
}

/// <summary>Exit code and output of one Bicep CLI run.</summary>
internal sealed record BicepResult(int ExitCode, string StandardOutput, string StandardError)
{
    /// <summary>Diagnostic lines (errors, warnings, infos) Bicep printed, in its default format.</summary>
    public IReadOnlyList<string> Diagnostics =>
        StandardError.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Where(line => line.Contains(" : Error ", StringComparison.Ordinal) ||
                           line.Contains(" : Warning ", StringComparison.Ordinal) ||
                           line.Contains(" : Info ", StringComparison.Ordinal))
            .ToList();

    public override string ToString() => $"exit {ExitCode}\n{StandardError}";
}
