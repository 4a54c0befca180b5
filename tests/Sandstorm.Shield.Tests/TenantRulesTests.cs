using Microsoft.Extensions.Time.Testing;
using Sandstorm.Shield;

namespace Sandstorm.Shield.Tests;

public sealed class TenantRulesTests
{
    private const string CurlRule = """
        - list: download_tools
          items: [curl, wget]
        - rule: Download tool
          desc: a download tool started in a sandbox
          condition: spawned_process and proc.name in (download_tools) and not proc.pname in (shell_binaries)
          output: download tool %proc.name started (%proc.cmdline)
          priority: CRITICAL
          tags: [tenant]
        """;

    [Fact]
    public void CompileTenant_UsesDefaultMacrosAndLists()
    {
        var set = ShieldRules.CompileTenant("tenant-a", CurlRule);
        var engine = RuleEngine.For(set);

        var finding = Assert.Single(engine.Evaluate(Events.Exec("/usr/bin/curl", "curl http://example.test/x")));
        Assert.Equal("Download tool", finding.Rule);
        Assert.Equal("tenant-a", finding.TenantId);
        Assert.Empty(engine.Evaluate(Events.Exec("/usr/bin/curl", "curl x", parent: "bash")));
    }

    [Fact]
    public void Engine_TenantRule_NeverFiresForAnotherTenant()
    {
        var a = RuleEngine.For(ShieldRules.CompileTenant("tenant-a", CurlRule));
        var b = RuleEngine.For(ShieldRules.CompileTenant("tenant-b", """
            - rule: Nothing much
              desc: d
              condition: evt.type = openat and fd.name = /nonexistent
              output: o
              priority: INFO
            """));
        var curl = Events.Exec("/usr/bin/curl", "curl x");

        Assert.Single(a.Evaluate(curl));
        Assert.Empty(b.Evaluate(curl));
        Assert.Empty(RuleEngine.For(null).Evaluate(curl));

        // The defaults still apply to both.
        Assert.Single(b.Evaluate(Events.Open("/etc/shadow")));
    }

    [Theory]
    [InlineData("- list: shell_binaries\n  items: [python3]\n", "default list")]
    [InlineData("- list: miner_ports\n  items: [80]\n  append: true\n", "default list")]
    [InlineData("- macro: spawned_process\n  condition: evt.type = nothing\n", "default macro")]
    [InlineData("- macro: open_file\n  condition: and proc.name = nobody\n  append: true\n", "default macro")]
    [InlineData("- rule: Reverse shell\n  enabled: false\n", "default rule")]
    [InlineData("- rule: Fork storm\n  condition: and evt.arg.count > 1000000\n  append: true\n", "default rule")]
    [InlineData("- rule: Fork storm\n  desc: d\n  condition: evt.type = x\n  output: o\n  priority: INFO\n", "default rule")]
    public void Validate_TenantTouchingDefaults_IsRejected(string yaml, string message)
    {
        var errors = ShieldRules.Validate("tenant-a", yaml);

        var error = Assert.Single(errors);
        Assert.Equal(1, error.Line);
        Assert.Contains(message, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Validate_GoodFile_HasNoErrors()
    {
        Assert.Empty(ShieldRules.Validate("tenant-a", CurlRule));
    }

    [Fact]
    public void Evaluate_StampsDetectionTimeFromTheTimeProvider()
    {
        var clock = new FakeTimeProvider(new DateTimeOffset(2030, 1, 1, 0, 0, 0, TimeSpan.Zero));
        var engine = RuleEngine.For(null, clock);

        var finding = Assert.Single(engine.Evaluate(Events.Open("/etc/shadow")));

        Assert.Equal(clock.GetUtcNow(), finding.DetectedAt);
        Assert.Equal(Events.At, finding.EventTime);
    }
}
