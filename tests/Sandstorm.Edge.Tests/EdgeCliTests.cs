using System.Text.Json;
using Sandstorm.Core;
using Sandstorm.Core.Contracts;
using Sandstorm.Edge.Commands;
using Sandstorm.Runtimes;

namespace Sandstorm.Edge.Tests;

/// <summary><c>sandstorm-edge exec</c> and <c>check</c> through the real dispatcher and runtimes.</summary>
public sealed class EdgeCliTests
{
    private readonly StringWriter stdout = new();
    private readonly StringWriter stderr = new();

    [Fact]
    public async Task Exec_Json_PrintsTheExecutionResult()
    {
        var code = await RunAsync("exec", "--isolation", "none", "--language", "python", "--code", "import sys; print(6*7); print('warn', file=sys.stderr); sys.exit(3)", "--memory", "128", "--timeout", "10", "--json");

        Assert.Equal(0, code);
        var result = JsonSerializer.Deserialize<ExecutionResult>(stdout.ToString(), SandstormJson.Options)!;
        Assert.Equal("process", result.Runtime);
        Assert.Equal("42\n", result.Stdout);
        Assert.Equal("warn\n", result.Stderr);
        Assert.Equal(3, result.ExitCode);
        Assert.False(result.TimedOut);
        Assert.True(result.WallTimeMs > 0);
        Assert.True(result.PeakMemoryBytes > 0);
        HostState.AssertClean();
    }

    [Fact]
    public async Task Exec_StandardWithFile_UsesBestSandboxAndSeesNoNetwork()
    {
        var file = Path.Combine(Path.GetTempPath(), $"sandstorm-exec-{Environment.ProcessId}.sh");
        await File.WriteAllTextAsync(file, "cat /proc/net/dev | grep -c : ; echo from-file");
        try
        {
            var code = await RunAsync("exec", "--isolation", "standard", "--language", "bash", "--file", file, "--json");

            Assert.Equal(0, code);
            var result = JsonSerializer.Deserialize<ExecutionResult>(stdout.ToString(), SandstormJson.Options)!;
            Assert.Equal(BwrapRuntime.RuntimeName, result.Runtime);
            // Only the loopback interface exists in the sandbox's network namespace.
            Assert.Equal("1\nfrom-file\n", result.Stdout);
        }
        finally
        {
            File.Delete(file);
        }

        HostState.AssertClean();
    }

    [Fact]
    public async Task Exec_Maximum_RunsInAMicroVm()
    {
        var code = await RunAsync("exec", "--isolation", "maximum", "--language", "python", "--code", "import platform; print(platform.release())", "--json");

        Assert.True(code == 0, stderr.ToString());
        var result = JsonSerializer.Deserialize<ExecutionResult>(stdout.ToString(), SandstormJson.Options)!;
        Assert.Equal(MicroVmRuntime.RuntimeName, result.Runtime);
        // The guest's own kernel (Debian's cloud kernel), not the host's.
        Assert.Contains("-cloud-amd64", result.Stdout);
        HostState.AssertClean();
    }

    [Fact]
    public async Task Exec_RuntimeBelowTheLevel_IsRefused()
    {
        var code = await RunAsync("exec", "--isolation", "strong", "--runtime", "bwrap", "--language", "bash", "--code", "echo hi");

        Assert.Equal(ExecCommand.RefusedExitCode, code);
        Assert.Contains("runtime 'bwrap' provides isolation 'standard', below the requested 'strong'", stderr.ToString());
    }

    [Theory]
    [InlineData("--language python", "--code")]
    [InlineData("--language python --code x --file y", "exactly one of --code TEXT or --file PATH")]
    [InlineData("--code x", "--language is required")]
    [InlineData("--language cobol --code x", "--language must be one of: python, javascript, typescript, bash")]
    [InlineData("--language bash --code x --isolation extreme", "--isolation must be one of")]
    [InlineData("--language bash --code x --memory lots", "--memory must be a whole number")]
    [InlineData("--language bash --code x --memory 8", "--memory must be a whole number from 16")]
    [InlineData("--language bash --code x --timeout -1", "--timeout must be a number above 0")]
    [InlineData("--language bash --code x --cpu 0", "--cpu must be a number above 0")]
    [InlineData("--language bash --code x --verbose", "unknown option '--verbose'")]
    [InlineData("--language bash --code x stray", "unexpected argument 'stray'")]
    [InlineData("--language bash --file /nonexistent/sandstorm.sh", "cannot read --file")]
    [InlineData("--language bash --code x --timeout", "--timeout needs a value")]
    public async Task Exec_BadArguments_ExitTwoWithAMessage(string arguments, string message)
    {
        var code = await RunAsync(["exec", .. arguments.Split(' ')]);

        Assert.Equal(EdgeCli.UsageExitCode, code);
        Assert.Contains(message, stderr.ToString());
        Assert.Contains("usage: sandstorm-edge exec", stderr.ToString());
        Assert.Equal("", stdout.ToString());
    }

    [Fact]
    public async Task UnknownCommand_ExitsTwo()
    {
        Assert.Equal(EdgeCli.UsageExitCode, await RunAsync("explode"));
        Assert.Contains("unknown command 'explode'", stderr.ToString());
        Assert.Contains("exec", stderr.ToString());
    }

    [Fact]
    public async Task Check_Json_ListsEveryRuntimeWithWhyNot()
    {
        var code = await RunAsync("check", "--json");

        Assert.Equal(0, code);
        var statuses = JsonSerializer.Deserialize<List<EdgeRuntimeStatus>>(stdout.ToString(), SandstormJson.Options)!;
        Assert.Equal(["process", "bwrap", "runc", "podman", "gvisor", "qemu-microvm"], statuses.Select(s => s.Name));
        var microVm = statuses.Single(s => s.Name == "qemu-microvm");
        Assert.True(microVm.Works, microVm.Reason);
        Assert.Equal(IsolationLevel.Maximum, microVm.Isolation);
        Assert.Matches("accelerator: (kvm|tcg)", microVm.Limits);
        Assert.All(statuses.Where(s => TestRuntimes.Expected.Contains(s.Name)), s => Assert.True(s.Works, $"{s.Name}: {s.Reason}"));
    }

    [Fact]
    public async Task Check_Table_ShowsWorksAndWhyNot()
    {
        Assert.Equal(0, await RunAsync("check"));

        var lines = stdout.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.StartsWith("RUNTIME", lines[0]);
        Assert.Contains(lines, l => l.StartsWith("gvisor", StringComparison.Ordinal) && l.Contains("strong", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.StartsWith("qemu-microvm", StringComparison.Ordinal) && l.Contains("maximum", StringComparison.Ordinal) && l.Contains(" yes ", StringComparison.Ordinal) && l.Contains("accelerator: ", StringComparison.Ordinal));

        // As root, a working sandbox runtime's limits are cgroups (the unprivileged agent's rlimits: UnprivilegedAgentTests).
        Assert.Contains(lines, l => l.StartsWith("bwrap", StringComparison.Ordinal) && l.Contains("limits: memory, pids, cpu: cgroup v1", StringComparison.Ordinal));
        Assert.Contains("agent user: root", lines[^1]);
    }

    [Fact]
    public async Task Selector_PicksBestWorkingRuntimePerLevel()
    {
        var selector = new RuntimeSelector(TestRuntimes.All);

        Assert.Equal("process", (await selector.SelectAsync(IsolationLevel.None, null, CancellationToken.None)).Name);
        Assert.Equal("bwrap", (await selector.SelectAsync(IsolationLevel.Standard, null, CancellationToken.None)).Name);
        Assert.Equal("gvisor", (await selector.SelectAsync(IsolationLevel.Strong, null, CancellationToken.None)).Name);
        Assert.Equal("runc", (await selector.SelectAsync(IsolationLevel.Standard, "runc", CancellationToken.None)).Name);
        Assert.Equal("gvisor", (await selector.SelectAsync(IsolationLevel.Standard, "gvisor", CancellationToken.None)).Name);
        var refused = await Assert.ThrowsAsync<Core.Errors.SandstormException>(() => selector.SelectAsync(IsolationLevel.Standard, "process", CancellationToken.None));
        Assert.Equal("isolation-unavailable", refused.Code);
        Assert.Equal(MicroVmRuntime.RuntimeName, (await selector.SelectAsync(IsolationLevel.Maximum, null, CancellationToken.None)).Name);
        var below = await Assert.ThrowsAsync<Core.Errors.SandstormException>(() => selector.SelectAsync(IsolationLevel.Maximum, "gvisor", CancellationToken.None));
        Assert.Equal("isolation-unavailable", below.Code);
    }

    [Fact]
    public async Task ProcessRuntime_WithoutCgroups_StillEnforcesTimeoutCapsAndTreeKill()
    {
        // The degraded mode non-root hosts get: no cgroups, so rlimits and the process group do the work.
        var runtime = new ProcessRuntime(TestRuntimes.Options with { UseCgroups = false });

        var loop = await runtime.ExecuteAsync(new ExecutionSpec { Language = Languages.Bash, Code = "sleep 300 & while :; do :; done", Timeout = TimeSpan.FromSeconds(1) }, CancellationToken.None);
        var loud = await runtime.ExecuteAsync(new ExecutionSpec { Language = Languages.Bash, Code = "head -c 10000000 /dev/zero", OutputLimitBytes = 1000 }, CancellationToken.None);

        Assert.True(loop.TimedOut);
        Assert.Null(loop.ExitCode);
        Assert.True(loud.StdoutTruncated);
        Assert.Equal(1000, loud.Stdout.Length);
        Assert.Equal(0, loud.ExitCode);
        Assert.Empty(HostState.SandboxProcesses());
        HostState.AssertClean();
    }

    private Task<int> RunAsync(params string[] args) =>
        EdgeCli.RunAsync(args, new EdgeContext { Out = stdout, Error = stderr, RuntimeOptions = TestRuntimes.Options }, CancellationToken.None);
}
