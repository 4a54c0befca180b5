using Sandstorm.Shield;

namespace Sandstorm.Shield.Tests;

public sealed class FalcoAlertsTests
{
    // As Falco writes it with json_output: true (fields in Falco's order; time with nanoseconds; numbers stay numbers).
    private const string FalcoLine = """
        {"hostname":"node-7","output":"10:22:33.123456789: Critical A shell was spawned in a container with an attached terminal (evt_type=execve user=root user_uid=0 process=sh proc_exepath=/bin/sh parent=runc command=sh -i terminal=34816 container_id=ss0123456789 container_name=<NA>)","output_fields":{"container.id":"ss0123456789","container.name":null,"evt.time":1714558953123456789,"evt.type":"execve","k8s.ns.name":"default","k8s.pod.name":"sandbox-0","proc.cmdline":"sh -i","proc.exepath":"/bin/sh","proc.pid":4242,"proc.tty":34816,"user.name":"root","user.uid":0},"priority":"Critical","rule":"Terminal shell in container","source":"syscall","tags":["T1059","container","maturity_stable","mitre_execution","shell"],"time":"2024-05-01T10:22:33.123456789Z"}
        """;

    // As falcosidekick's webhook output posts it (Go's encoding of its FalcoPayload: RFC 3339 time with nanoseconds).
    private const string SidekickBody = """
        {"uuid":"2f1b8a52-7d3c-4b8e-9a0e-3f7c2d1e5b6a","output":"10:22:33.123456789: Warning Sensitive file opened for reading by non-trusted program (file=/etc/shadow gparent=<NA> ggparent=<NA> gggparent=<NA> evt_type=openat user=nobody user_uid=65534 process=cat proc_exepath=/usr/bin/cat parent=python3 command=cat /etc/shadow)","priority":"Warning","rule":"Read sensitive file untrusted","time":"2024-05-01T10:22:33.1234567Z","output_fields":{"container.id":"host","evt.type":"openat","fd.name":"/etc/shadow","proc.cmdline":"cat /etc/shadow","proc.pid":777,"user.uid":65534},"source":"syscall","tags":["filesystem","mitre_credential_access"],"hostname":"edge-1"}
        """;

    [Fact]
    public void Parse_FalcoJsonOutput_BecomesAFinding()
    {
        var finding = FalcoAlerts.Parse(FalcoLine);

        Assert.Equal("Terminal shell in container", finding.Rule);
        Assert.Equal(Priority.Critical, finding.Priority);
        Assert.Equal("falco", finding.Detector);
        Assert.Equal("syscall", finding.Source);
        Assert.Equal("node-7", finding.Hostname);
        Assert.Equal("ss0123456789", finding.SandboxId);
        Assert.Equal(new DateTimeOffset(2024, 5, 1, 10, 22, 33, TimeSpan.Zero).AddTicks(1234567), finding.EventTime);
        Assert.Equal("4242", finding.OutputFields["proc.pid"]);
        Assert.Equal("sh -i", finding.OutputFields["proc.cmdline"]);
        Assert.Null(finding.OutputFields["container.name"]);
        Assert.Equal("sandbox-0", finding.OutputFields["k8s.pod.name"]);
        Assert.Contains("mitre_execution", finding.Tags);
        Assert.StartsWith("10:22:33.123456789: Critical", finding.Output, StringComparison.Ordinal);
        Assert.True(FalcoAlerts.NamesSandbox(finding, "ss0123456789abcdef"));
        Assert.False(FalcoAlerts.NamesSandbox(finding, "ss9999999999abcdef"));
    }

    [Fact]
    public void Parse_SidekickPayload_HostEventHasNoSandbox()
    {
        var finding = FalcoAlerts.Parse(SidekickBody);

        Assert.Equal("Read sensitive file untrusted", finding.Rule);
        Assert.Equal(Priority.Warning, finding.Priority);
        Assert.Null(finding.SandboxId);
        Assert.Equal("/etc/shadow", finding.OutputFields["fd.name"]);
        Assert.Equal("edge-1", finding.Hostname);
        Assert.False(finding.Priority.IsAtLeast(Priority.Critical));
    }

    [Fact]
    public void ParseMany_FalcoFileOutput_ReadsEveryLine()
    {
        var findings = FalcoAlerts.ParseMany(FalcoLine + "\n\n" + SidekickBody + "\n");

        Assert.Equal(["Terminal shell in container", "Read sensitive file untrusted"], findings.Select(f => f.Rule));
    }

    [Theory]
    [InlineData("""{"priority":"Critical","time":"2024-05-01T10:22:33Z","output":"x"}""", "'rule'")]
    [InlineData("""{"rule":"r","priority":"Loud","time":"2024-05-01T10:22:33Z"}""", "unknown priority")]
    [InlineData("""{"rule":"r","priority":"Critical","time":"yesterday"}""", "not ISO 8601")]
    [InlineData("""{"rule":"r","priority":"Critical","time":"2024-05-01T10:22:33Z","output_fields":[1]}""", "output_fields")]
    [InlineData("""[1,2]""", "JSON object")]
    [InlineData("""not json""", "JSON object")]
    public void Parse_MalformedAlert_SaysWhatIsWrong(string json, string message)
    {
        var e = Assert.Throws<FormatException>(() => FalcoAlerts.Parse(json));

        Assert.Contains(message, e.Message, StringComparison.Ordinal);
    }
}
