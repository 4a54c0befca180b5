using System.Collections.Concurrent;
using System.Text;
using Sandstorm.Core.Sandboxes;
using Sandstorm.Runtimes;

namespace Sandstorm.Edge.Tests;

/// <summary>
/// Kept sandboxes on each runtime that can keep one (bwrap, runc, gVisor): state persists between commands, output
/// streams as it comes, stdin, signals, the file operations and their refusals, limits shared by every command, and a
/// destroyed sandbox leaves nothing on the host.
/// </summary>
public sealed class KeptSandboxTests
{
    public static TheoryData<string> Keepers() => [.. TestRuntimes.WorkingSandboxes().Where(name => ((SandboxRuntimeBase)TestRuntimes.Get(name)).CanKeep)];

    [Theory]
    [MemberData(nameof(Keepers))]
    public async Task Commands_ShareTheSandboxAndItsFiles(string runtime)
    {
        await using (var sandbox = await StartAsync(runtime))
        {
            var first = await RunAsync(sandbox, "echo kept > notes.txt; whoami; pwd; echo $HOME");
            Assert.Equal(0, first.Exit.Code);
            Assert.Equal("user\n/home/user\n/home/user\n", first.Stdout);

            var second = await RunAsync(sandbox, "cat /home/user/notes.txt; cat ~/notes.txt");
            Assert.Equal("kept\nkept\n", second.Stdout);

            var failing = await RunAsync(sandbox, "echo oops >&2; exit 7");
            Assert.Equal(7, failing.Exit.Code);
            Assert.Equal("oops\n", failing.Stderr);
        }

        HostState.AssertClean();
    }

    [Theory]
    [MemberData(nameof(Keepers))]
    public async Task Output_StreamsBeforeTheCommandEnds(string runtime)
    {
        await using var sandbox = await StartAsync(runtime);
        var sink = new RecordingSink();
        var process = await sandbox.StartProcessAsync(
            new ProcessSpec { Arguments = ProcessSpec.Shell("echo first; read go; echo second"), Environment = Env(), Stdin = true },
            sink,
            CancellationToken.None);

        // The first line arrives while the command is still waiting on stdin.
        await Sandstorm.Testing.Poll.UntilAsync(() => Task.FromResult(sink.Text(ProcessStream.Stdout)), t => t == "first\n", TimeSpan.FromSeconds(30), "the first line");
        Assert.False(process.Exited.IsCompleted);

        await process.SendInputAsync("go\n"u8.ToArray(), CancellationToken.None);
        var exit = await process.Exited.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(0, exit.Code);
        Assert.Equal("first\nsecond\n", sink.Text(ProcessStream.Stdout));
    }

    [Theory]
    [MemberData(nameof(Keepers))]
    public async Task Stdin_IsPipedAndClosed(string runtime)
    {
        await using var sandbox = await StartAsync(runtime);
        var sink = new RecordingSink();
        var process = await sandbox.StartProcessAsync(new ProcessSpec { Arguments = ["cat"], Environment = Env(), Stdin = true }, sink, CancellationToken.None);
        await process.SendInputAsync("hello stdin\n"u8.ToArray(), CancellationToken.None);
        await process.CloseInputAsync();

        Assert.Equal(0, (await process.Exited.WaitAsync(TimeSpan.FromSeconds(30))).Code);
        Assert.Equal("hello stdin\n", sink.Text(ProcessStream.Stdout));
    }

    [Theory]
    [MemberData(nameof(Keepers))]
    public async Task Signal_KillsTheCommandAndItsChildren_AndTheSandboxStaysUsable(string runtime)
    {
        await using var sandbox = await StartAsync(runtime);
        var process = await sandbox.StartProcessAsync(
            new ProcessSpec { Arguments = ProcessSpec.Shell("sleep 300 & sleep 300; echo never"), Environment = Env() },
            new RecordingSink(),
            CancellationToken.None);
        Assert.NotNull(sandbox.FindProcess(process.Pid));

        await process.SignalAsync();
        var exit = await process.Exited.WaitAsync(TimeSpan.FromSeconds(30));

        Assert.Equal(9, exit.Signal);
        Assert.Null(sandbox.FindProcess(process.Pid));
        await Sandstorm.Testing.Poll.UntilAsync(() => sandbox.CountProcessesAsync(CancellationToken.None), n => n == 0, TimeSpan.FromSeconds(30), "the background sleep to be killed too");
    }

    [Theory]
    [MemberData(nameof(Keepers))]
    public async Task Files_WriteReadListMoveRemove(string runtime)
    {
        await using var sandbox = await StartAsync(runtime);
        var written = await sandbox.WriteFileAsync("data/in.txt", new MemoryStream("hello file"u8.ToArray()), 1 << 20, CancellationToken.None);
        Assert.Equal("/home/user/data/in.txt", written.Path);
        Assert.Equal(10, written.Size);
        Assert.Equal("user", written.Owner);

        Assert.Equal("hello file", (await RunAsync(sandbox, "cat data/in.txt")).Stdout);
        await RunAsync(sandbox, "printf made > data/out.txt");

        var read = new MemoryStream();
        var info = await sandbox.ReadFileAsync("/home/user/data/out.txt", 1 << 20, _ => read, CancellationToken.None);
        Assert.Equal("made", Encoding.UTF8.GetString(read.ToArray()));
        Assert.Equal(4, info.Size);

        var listing = await sandbox.ListAsync("~", depth: 2, CancellationToken.None);
        Assert.Equal(["/home/user/data", "/home/user/data/in.txt", "/home/user/data/out.txt"], listing.Select(e => e.Path));
        Assert.Equal("dir", listing[0].Type);

        var made = await sandbox.MakeDirectoryAsync("data/sub", CancellationToken.None);
        Assert.Equal("dir", made.Type);
        Assert.Equal("exists", (await Assert.ThrowsAsync<SandboxException>(() => sandbox.MakeDirectoryAsync("data/sub", CancellationToken.None))).Code);

        var moved = await sandbox.MoveAsync("data/in.txt", "data/sub/renamed.txt", CancellationToken.None);
        Assert.Equal("/home/user/data/sub/renamed.txt", moved.Path);
        await sandbox.RemoveAsync("data", CancellationToken.None);
        Assert.Equal("not_found", (await Assert.ThrowsAsync<SandboxException>(() => sandbox.StatAsync("data", CancellationToken.None))).Code);

        var tmp = await sandbox.WriteFileAsync("/tmp/scratch.txt", new MemoryStream("t"u8.ToArray()), 1 << 20, CancellationToken.None);
        Assert.Equal("/tmp/scratch.txt", tmp.Path);
    }

    [Theory]
    [MemberData(nameof(Keepers))]
    public async Task Files_OutsideTheWorkDirectory_AreRefused(string runtime)
    {
        await using var sandbox = await StartAsync(runtime);
        await RunAsync(sandbox, "ln -s /etc escape; ln -s /home/user/inner ok; mkdir inner; echo in > inner/f");

        foreach (var path in new[] { "../../etc/passwd", "/etc/passwd", "escape/passwd", "/home/user/../../usr/bin/python3", "/proc/self/environ" })
        {
            var refused = await Assert.ThrowsAsync<SandboxException>(() => sandbox.ReadFileAsync(path, 1 << 20, _ => Stream.Null, CancellationToken.None));
            Assert.Equal("outside", refused.Code);
            Assert.Equal("outside", (await Assert.ThrowsAsync<SandboxException>(() => sandbox.WriteFileAsync(path, new MemoryStream("x"u8.ToArray()), 1 << 20, CancellationToken.None))).Code);
        }

        // A symlink that stays inside is followed.
        var inside = new MemoryStream();
        await sandbox.ReadFileAsync("ok/f", 1 << 20, _ => inside, CancellationToken.None);
        Assert.Equal("in\n", Encoding.UTF8.GetString(inside.ToArray()));
    }

    [Theory]
    [MemberData(nameof(Keepers))]
    public async Task Files_OverTheLimit_AreRefusedAndLeaveNothing(string runtime)
    {
        await using var sandbox = await StartAsync(runtime);
        await sandbox.WriteFileAsync("keep.txt", new MemoryStream("old"u8.ToArray()), 1 << 20, CancellationToken.None);

        var refused = await Assert.ThrowsAsync<SandboxException>(() =>
            sandbox.WriteFileAsync("keep.txt", new MemoryStream(new byte[200_000]), 100_000, CancellationToken.None));

        Assert.Equal("too_large", refused.Code);
        Assert.Equal("old", (await RunAsync(sandbox, "cat keep.txt")).Stdout);
        Assert.Equal("0\n", (await RunAsync(sandbox, "ls -a | grep -c sandstorm-upload || true")).Stdout);
    }

    [Theory]
    [MemberData(nameof(Keepers))]
    public async Task BackgroundForkBomb_IsBounded_AndKillAllFreesTheSandbox(string runtime)
    {
        const int limit = 64;
        await using var sandbox = await StartAsync(runtime, maxProcesses: limit);
        await sandbox.StartProcessAsync(
            new ProcessSpec { Arguments = ProcessSpec.Shell("bomb() { bomb | bomb & }; bomb; sleep 300"), Environment = Env() },
            new RecordingSink(),
            CancellationToken.None);

        // The bomb fills the sandbox's process limit, and never more.
        var peak = 0;
        await Sandstorm.Testing.Poll.UntilAsync(
            () => sandbox.CountProcessesAsync(CancellationToken.None),
            n => (peak = Math.Max(peak, n)) >= limit / 2,
            TimeSpan.FromSeconds(60),
            "the bomb to fill the sandbox");
        Assert.InRange(peak, limit / 2, limit);

        // The next command cannot start while the bomb holds every slot; killing everything frees the sandbox.
        await Sandstorm.Testing.Poll.UntilAsync(
            async () =>
            {
                await sandbox.KillAllAsync(CancellationToken.None);
                return await sandbox.CountProcessesAsync(CancellationToken.None);
            },
            n => n == 0,
            TimeSpan.FromSeconds(60),
            "every process of the bomb to be gone");
        Assert.Equal("alive\n", (await RunAsync(sandbox, "echo alive")).Stdout);
    }

    [Theory]
    [MemberData(nameof(Keepers))]
    public async Task Destroy_WithCommandsRunning_EndsThemAndLeavesNothing(string runtime)
    {
        var sandbox = await StartAsync(runtime);
        var running = await sandbox.StartProcessAsync(
            new ProcessSpec { Arguments = ProcessSpec.Shell("sleep 300"), Environment = Env() },
            new RecordingSink(),
            CancellationToken.None);

        await sandbox.DisposeAsync();

        Assert.True((await running.Exited.WaitAsync(TimeSpan.FromSeconds(30))).SandboxEnded);
        Assert.False(sandbox.IsAlive);
        await Assert.ThrowsAsync<SandboxException>(() => sandbox.StatAsync("~", CancellationToken.None));
        HostState.AssertClean();
    }

    private static async Task<KeptSandbox> StartAsync(string runtime, int maxProcesses = 128) =>
        await ((SandboxRuntimeBase)TestRuntimes.Get(runtime)).StartKeptAsync(
            new KeptSandboxSpec { MemoryMiB = 256, MaxProcesses = maxProcesses, DiskMiB = 32 },
            CancellationToken.None);

    private static Dictionary<string, string> Env() => new()
    {
        ["PATH"] = "/usr/local/bin:/usr/bin:/bin",
        ["HOME"] = KeptSandbox.Home,
        ["USER"] = KeptSandbox.User,
        ["LANG"] = "C.UTF-8",
    };

    private static async Task<(ProcessExit Exit, string Stdout, string Stderr)> RunAsync(KeptSandbox sandbox, string command)
    {
        var sink = new RecordingSink();
        var process = await sandbox.StartProcessAsync(new ProcessSpec { Arguments = ProcessSpec.Shell(command), Environment = Env() }, sink, CancellationToken.None);
        var exit = await process.Exited.WaitAsync(TimeSpan.FromSeconds(60));
        return (exit, sink.Text(ProcessStream.Stdout), sink.Text(ProcessStream.Stderr));
    }

    private sealed class RecordingSink : IProcessSink
    {
        private readonly ConcurrentDictionary<ProcessStream, MemoryStream> _streams = new();

        public void OnOutput(ProcessStream stream, ReadOnlySpan<byte> data)
        {
            var buffer = _streams.GetOrAdd(stream, _ => new MemoryStream());
            lock (buffer)
            {
                buffer.Write(data);
            }
        }

        public string Text(ProcessStream stream)
        {
            var buffer = _streams.GetOrAdd(stream, _ => new MemoryStream());
            lock (buffer)
            {
                return Encoding.UTF8.GetString(buffer.ToArray());
            }
        }
    }
}
