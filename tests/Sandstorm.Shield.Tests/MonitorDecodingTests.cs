using System.Text;
using Microsoft.Extensions.Time.Testing;
using Sandstorm.Runtimes.Shield;

namespace Sandstorm.Shield.Tests;

/// <summary>The monitor's decoding of what its sources send, without a kernel or a sandbox.</summary>
public sealed class MonitorDecodingTests
{
    // An openat trace point exactly as runsc 20221219 sent it to the remote sink (payload after the 8-byte header):
    // context {container_id "runsc-008286", process_name "cat"}, sysno 257, fd AT_FDCWD, pathname "/etc/shadow".
    private static readonly byte[] OpenPoint = [.. "\n\u00132\u000crunsc-008286J\u0003cat\u0018"u8, 0x81, 0x02, 0x20, 0x9c, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, .. "2\u000b/etc/shadow"u8];

    [Fact]
    public void Decode_GvisorOpenPoint_BecomesAnOpenEvent()
    {
        var e = GvisorTraceSource.Decode(7, OpenPoint, new FakeTimeProvider());

        Assert.NotNull(e);
        Assert.Equal("openat", e.Type);
        Assert.Equal("/etc/shadow", e.FdName);
        Assert.Equal("cat", e.ProcessName);
        Assert.Equal("runsc-008286", e.SandboxId);
        Assert.Equal("gvisor", e.Source);
        Assert.Equal("Read of credentials", Assert.Single(RuleEngine.For(null).Evaluate(e)).Rule);
    }

    [Fact]
    public void Decode_TruncatedPoint_IsRejectedNotTrusted()
    {
        Assert.Throws<FormatException>(() => GvisorTraceSource.Decode(7, OpenPoint.AsSpan(0, OpenPoint.Length - 3), new FakeTimeProvider()));
    }

    [Fact]
    public void Decode_RawPtracePoint_CarriesRequestAndTarget()
    {
        // Syscall{context{container_id "c1"}, sysno 101, arg1 16 (PTRACE_ATTACH), arg2 1}
        byte[] payload = [.. "\n\u00042\u0002c1"u8, 0x20, 101, 0x28, 16, 0x30, 1];

        var e = GvisorTraceSource.Decode(6, payload, new FakeTimeProvider());

        Assert.Equal("ptrace", e!.Type);
        Assert.Equal("PTRACE_ATTACH", e.Args!["request"]);
        Assert.Equal("1", e.Args["pid"]);
    }

    [Fact]
    public void Config_NamesTheRemoteSinkAndValidContextFields()
    {
        var json = GvisorTraceSource.Config("/run/shield.sock");

        Assert.Contains("\"endpoint\":\"/run/shield.sock\"", json, StringComparison.Ordinal);
        Assert.Contains("syscall/sysno/101/enter", json, StringComparison.Ordinal);
        Assert.Contains("\"group_id\"", json, StringComparison.Ordinal);
        Assert.DoesNotContain("thread_group_id", json, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(2, 0x050D, 0x0100007FUL, 0UL, 0UL, "127.0.0.1", 3333)]
    [InlineData(10, 0xBB01, 0UL, 0UL, 0x0100000000000000UL, "::1", 443)]
    public void SocketAddress_KernelSockaddr_IsReadInNetworkOrder(long family, long rawPort, ulong v4, ulong v6High, ulong v6Low, string address, int port)
    {
        Assert.Equal((address, port), BpftraceSource.SocketAddress(family, rawPort, v4, v6High, v6Low));
    }

    [Theory]
    [InlineData("/scratch/../etc/shadow", "/etc/shadow")]
    [InlineData("/etc/./shadow", "/etc/shadow")]
    [InlineData("//root//.ssh/id_rsa", "/root/.ssh/id_rsa")]
    public void ResolvePath_AbsolutePath_IsNormalised(string path, string expected)
    {
        Assert.Equal(expected, BpftraceSource.ResolvePath(Environment.ProcessId, path));
    }

    [Fact]
    public void ResolvePath_RelativePath_UsesTheProcessWorkingDirectory()
    {
        var expected = Path.GetFullPath(Path.Combine(Environment.CurrentDirectory, "../x"));

        Assert.Equal(expected, BpftraceSource.ResolvePath(Environment.ProcessId, "../x"));
        Assert.Equal("../x", BpftraceSource.ResolvePath(int.MaxValue, "../x"));
    }
}
