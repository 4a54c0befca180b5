using System.Diagnostics;
using System.Text.Json;
using Sandstorm.Core;
using Sandstorm.Core.Contracts;
using Sandstorm.Runtimes;

namespace Sandstorm.Edge.Tests;

/// <summary>
/// <c>npm install -g @sandstorm/edge-agent</c> as the packages ship: the project's script publishes the self-contained
/// single-file binary (linux-x64 here: the machine the test runs on), packs the launcher and platform packages with
/// <c>npm pack</c>, and the tarballs are installed globally into a temporary prefix, offline, whose
/// <c>bin/sandstorm-edge check</c> must then probe this machine's runtimes.
/// </summary>
public sealed class NpmPackageTests
{
    private const string Version = "0.1.0-test";

    [Fact]
    public async Task GlobalInstall_OfPackedTarballs_RunsCheck()
    {
        var repo = RepositoryRoot();
        var work = Directory.CreateTempSubdirectory("sandstorm-npm-").FullName;

        // bwrap starts as nobody, who must reach the agent's work root below this directory (made 0700).
        File.SetUnixFileMode(work, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute);
        try
        {
            var output = Path.Combine(work, "tarballs");
            var (exit, packed) = await RunAsync("/bin/bash", [Path.Combine(repo, "scripts", "pack-edge-agent-npm.sh"), "--out", output, "--rid", "linux-x64", "--version", Version], work, TimeSpan.FromMinutes(15));
            Assert.True(exit == 0, "pack-edge-agent-npm.sh failed: " + packed);
            var launcher = Path.Combine(output, $"sandstorm-edge-agent-{Version}.tgz");
            var platform = Path.Combine(output, $"sandstorm-edge-agent-linux-x64-{Version}.tgz");
            Assert.True(File.Exists(launcher), packed);
            Assert.True(File.Exists(platform), packed);

            // Offline (no registry holds the packages): npm skips the optional dependencies it cannot fetch, and the platform
            // package goes in beside the launcher, where the launcher looks when its optional dependency is absent.
            var prefix = Path.Combine(work, "prefix");
            (exit, var installed) = await RunAsync(
                "npm",
                ["install", "-g", "--prefix", prefix, "--offline", "--no-audit", "--no-fund", platform, launcher],
                work,
                TimeSpan.FromMinutes(5));
            Assert.True(exit == 0, "npm install -g failed: " + installed);

            var binary = Path.Combine(prefix, "lib", "node_modules", "@sandstorm", "edge-agent-linux-x64", "bin", "sandstorm-edge");
            Assert.True(File.Exists(binary), "the platform binary is missing: " + installed);
            Assert.Empty(Directory.EnumerateFiles(Path.GetDirectoryName(binary)!, "*.dll"));

            var command = Path.Combine(prefix, "bin", "sandstorm-edge");
            Assert.True(File.Exists(command), "npm linked no sandstorm-edge command: " + installed);
            var temp = Directory.CreateDirectory(Path.Combine(work, "tmp")).FullName;
            (exit, var checkedJson) = await RunAsync(command, ["check", "--json"], work, TimeSpan.FromMinutes(5), stdoutOnly: true, ("TMPDIR", temp), ("SANDSTORM_MICROVM_IMAGE_ROOT", TestRuntimes.Options.MicroVmImageRoot!));
            Assert.True(exit == 0, "sandstorm-edge check failed: " + checkedJson);
            var statuses = JsonSerializer.Deserialize<List<EdgeRuntimeStatus>>(checkedJson, SandstormJson.Options)!;
            Assert.Contains(statuses, s => s.Name == BwrapRuntime.RuntimeName && s.Works);
            Assert.Contains(statuses, s => s.Name == MicroVmRuntime.RuntimeName && s.Isolation == IsolationLevel.Maximum);

            (exit, var usage) = await RunAsync(command, ["exec", "--no-such-option"], work, TimeSpan.FromMinutes(1));
            Assert.Equal(2, exit);
            Assert.Contains("usage: sandstorm-edge exec", usage);
        }
        finally
        {
            try
            {
                Directory.Delete(work, recursive: true);
            }
            catch (IOException)
            {
                // A read-only template of a sandbox probe; the next sweep of the temp directory takes it.
            }
        }
    }

    private static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "scripts", "pack-edge-agent-npm.sh")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException("not run from inside the repository: scripts/pack-edge-agent-npm.sh not found above " + AppContext.BaseDirectory);
    }

    private static async Task<(int Exit, string Output)> RunAsync(string file, IReadOnlyList<string> args, string directory, TimeSpan timeout, bool stdoutOnly = false, params (string Name, string Value)[] environment)
    {
        var psi = new ProcessStartInfo(file)
        {
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = directory,
        };
        foreach (var argument in args)
        {
            psi.ArgumentList.Add(argument);
        }

        foreach (var (name, value) in environment)
        {
            psi.Environment[name] = value;
        }

        using var process = Process.Start(psi)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var limit = new CancellationTokenSource(timeout);
        try
        {
            await process.WaitForExitAsync(limit.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{file} {string.Join(' ', args)} took longer than {timeout}");
        }

        return (process.ExitCode, stdoutOnly ? await stdout : await stdout + await stderr);
    }
}
