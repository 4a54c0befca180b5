using Sandstorm.Shield;

namespace Sandstorm.Shield.Tests;

public sealed class RuleLoaderTests
{
    private static RuleError SingleError(string yaml)
    {
        var e = Assert.Throws<RuleValidationException>(() => ShieldRules.Load(yaml));
        return Assert.Single(e.Errors);
    }

    private const string Header = """
        - list: tools
          items: [curl, wget]
        - macro: spawned_process
          condition: evt.type in (execve, execveat) and evt.dir = <

        """;

    [Fact]
    public void Load_ListsAndMacros_ExpandInConditions()
    {
        var set = ShieldRules.Load(Header + """
            - list: more_tools
              items: [tools, nc]
            - rule: Tool started
              desc: a download tool ran
              condition: spawned_process and proc.name in (more_tools)
              output: tool %proc.name ran (%proc.cmdline)
              priority: WARNING
              tags: [process]
            """);
        var engine = new RuleEngine(set);

        Assert.Equal(["curl", "wget", "nc"], set.Lists["more_tools"]);
        Assert.Equal("tool nc ran (nc host 80)", Assert.Single(engine.Evaluate(Events.Exec("/usr/bin/nc", "nc host 80"))).Output);
        Assert.Single(engine.Evaluate(Events.Exec("/usr/bin/wget", "wget x")));
        Assert.Empty(engine.Evaluate(Events.Exec("/usr/bin/ls", "ls")));
        Assert.Empty(engine.Evaluate(Events.Open("/usr/bin/nc")));
    }

    [Fact]
    public void Load_Append_ExtendsListsMacrosAndRules()
    {
        var set = ShieldRules.Load(Header + """
            - rule: Tool started
              desc: d
              condition: spawned_process and proc.name in (tools)
              output: tool %proc.name
              priority: WARNING
            - list: tools
              items: [nc]
              append: true
            - rule: Tool started
              condition: and not proc.pname = make
              append: true
            """);
        var engine = new RuleEngine(set);

        Assert.Single(engine.Evaluate(Events.Exec("/usr/bin/nc", "nc x")));
        Assert.Empty(engine.Evaluate(Events.Exec("/usr/bin/nc", "nc x", parent: "make")));
    }

    [Fact]
    public void Load_DisabledRule_IsNotEvaluated()
    {
        var set = ShieldRules.Load(Header + """
            - rule: Tool started
              desc: d
              condition: spawned_process and proc.name in (tools)
              output: tool %proc.name
              priority: WARNING
            - rule: Tool started
              enabled: false
            """);

        Assert.False(Assert.Single(set.Rules).Enabled);
        Assert.Empty(new RuleEngine(set).Evaluate(Events.Exec("/usr/bin/curl", "curl x")));
    }

    [Theory]
    [InlineData("proc.name = bash and proc.nope = x", 4, "unknown field 'proc.nope'")]
    [InlineData("proc.name glob 'ba*'", 4, "operator 'glob' is not supported")]
    [InlineData("proc.name regex 'ba.*'", 4, "operator 'regex' is not supported")]
    [InlineData("(proc.name = bash", 4, "unbalanced parentheses")]
    [InlineData("proc.name = bash)", 4, "unbalanced parentheses")]
    [InlineData("no_such_macro and proc.name = bash", 4, "unknown macro 'no_such_macro'")]
    [InlineData("proc.name in (no_such_list", 4, "never closed")]
    [InlineData("tools", 4, "list 'tools' can only be used inside in")]
    [InlineData("proc.pid = abc", 4, "'abc' is not one")]
    [InlineData("proc.name > 3", 4, "compares numbers")]
    [InlineData("fd.sport contains 1", 4, "works on text")]
    [InlineData("proc.name = val(proc.pname)", 4, "unexpected '('")]
    [InlineData("proc.name = bash bash", 4, "unexpected 'bash'")]
    [InlineData("proc.name", 4, "not followed by an operator")]
    [InlineData("evt.type = open and", 4, "ends where")]
    public void Load_UnsupportedCondition_IsRejectedWithItsLine(string condition, int line, string message)
    {
        var error = SingleError($"""
            - rule: R
              desc: d
              output: o
              condition: {condition}
              priority: INFO
            - list: tools
              items: [a]
            """);

        Assert.Equal(line, error.Line);
        Assert.Contains(message, error.Message, StringComparison.Ordinal);
        Assert.Contains("rule 'R'", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Load_ErrorInsideAFoldedCondition_NamesTheLineOfTheToken()
    {
        var error = SingleError("""
            - rule: R
              desc: d
              condition: >
                evt.type = connect
                and fd.sport in (3333, 4444)
                and proc.exe = xmrig
              output: o
              priority: INFO
            """);

        Assert.Equal(6, error.Line);
        Assert.Contains("'proc.exe'", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Load_SeveralProblems_AreAllReported()
    {
        var e = Assert.Throws<RuleValidationException>(() => ShieldRules.Load("""
            - macro: m
              condition: proc.name startswith
            - rule: A
              desc: d
              condition: m
              output: o
              priority: WARNING
            - rule: B
              desc: d
              condition: proc.name = x
              output: o %proc.bogus
              priority: LOUD
            - rule: C
              desc: d
              condition: evt.type = open
              output: o
              priority: INFO
              exceptions:
                - name: e
            """));

        Assert.Contains(e.Errors, x => x.Line == 2 && x.Message.Contains("macro 'm'", StringComparison.Ordinal));
        Assert.Contains(e.Errors, x => x.Line == 5 && x.Message.Contains("macro 'm' (line 1) does not compile", StringComparison.Ordinal));
        Assert.Contains(e.Errors, x => x.Line == 12 && x.Message.Contains("unknown priority 'LOUD'", StringComparison.Ordinal));
        Assert.Contains(e.Errors, x => x.Line == 18 && x.Message.Contains("exceptions are not supported", StringComparison.Ordinal));
    }

    [Fact]
    public void Load_UnknownOutputField_IsRejected()
    {
        var error = SingleError("""
            - rule: R
              desc: d
              condition: evt.type = open
              output: opened %fd.nam by %proc.name
              priority: INFO
            """);

        Assert.Equal(4, error.Line);
        Assert.Contains("unknown field '%fd.nam'", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Load_MacroCycle_IsRejected()
    {
        var e = Assert.Throws<RuleValidationException>(() => ShieldRules.Load("""
            - macro: a
              condition: b and proc.name = x
            - macro: b
              condition: a
            """));

        Assert.Contains(e.Errors, x => x.Message.Contains("refers to itself", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("- rule: [unclosed\n", 2, "not valid YAML")]
    [InlineData("rule: x\n", 1, "YAML sequence")]
    [InlineData("- rule: R\n  desc: d\n  condition: evt.type = open\n  output: o\n  priority: INFO\n  source: k8s_audit\n", 6, "only source 'syscall'")]
    [InlineData("- rule: R\n  condition: evt.type = open\n", 1, "lacks output, priority, desc")]
    [InlineData("- list: l\n  items: [a]\n- list: l\n  items: [b]\n", 3, "defined twice")]
    [InlineData("- required_plugin_versions:\n  - name: k8saudit\n", 1, "no plugins")]
    [InlineData("- frobnicate: x\n", 1, "unknown item")]
    [InlineData("- list: l\n  items: [a]\n  append: maybe\n", 3, "true or false")]
    public void Load_MalformedFile_IsRejectedWithItsLine(string yaml, int line, string message)
    {
        var error = SingleError(yaml);

        Assert.Equal(line, error.Line);
        Assert.Contains(message, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Evaluate_MissingField_MakesComparisonsFalseAsInFalco()
    {
        var set = ShieldRules.Load("""
            - rule: Not bash
              desc: d
              condition: proc.pname != bash
              output: o
              priority: INFO
            - rule: Not egress
              desc: d
              condition: not fd.sip exists
              output: o
              priority: INFO
            """);
        var engine = new RuleEngine(set);

        // A derived event has no parent: != is false, exists is false.
        var findings = engine.Evaluate(Events.ForkStorm(10));

        Assert.Equal(["Not egress"], findings.Select(f => f.Rule));
    }

    [Theory]
    [InlineData("fd.name pmatch (/etc, /root/.ssh)", "/root/.ssh/id_rsa", true)]
    [InlineData("fd.name pmatch (/etc, /root/.ssh)", "/etcetera", false)]
    [InlineData("fd.name pmatch (/etc)", "/etc", true)]
    [InlineData("fd.name icontains SHADOW", "/etc/shadow", true)]
    [InlineData("fd.name endswith '.key'", "/x/server.key", true)]
    [InlineData("fd.directory = /etc", "/etc/shadow", true)]
    [InlineData("fd.filename = shadow", "/etc/shadow", true)]
    [InlineData("proc.pid >= 4242 and proc.pid < 4243 and user.uid == 65534", "/x", true)]
    [InlineData("not (proc.pid > 4242 or proc.name = ls)", "/x", true)]
    [InlineData("evt.dir = > and evt.dir != <", "/x", true)]
    public void Evaluate_Operators_BehaveAsFalco(string condition, string path, bool fires)
    {
        var set = ShieldRules.Load($"""
            - rule: R
              desc: d
              condition: {condition}
              output: o
              priority: INFO
            """);

        Assert.Equal(fires, new RuleEngine(set).Evaluate(Events.Open(path)).Count == 1);
    }
}
