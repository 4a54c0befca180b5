using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace Sandstorm.Shield;

/// <summary>
/// Loads a rule file in Falco's YAML format: a sequence of <c>rule</c>, <c>macro</c> and <c>list</c> items
/// (and <c>required_engine_version</c>). Every problem is collected with its line; the file loads only when there is none.
/// </summary>
internal sealed class RuleLoader : IConditionScope
{
    private static readonly HashSet<string> RuleKeys = new(StringComparer.Ordinal) { "rule", "desc", "condition", "output", "priority", "tags", "enabled", "append", "source", "warn_evttypes" };
    private static readonly HashSet<string> MacroKeys = new(StringComparer.Ordinal) { "macro", "condition", "append" };
    private static readonly HashSet<string> ListKeys = new(StringComparer.Ordinal) { "list", "items", "append" };

    private readonly string[] sourceLines;
    private readonly string? tenantId;
    private readonly RuleSet? baseSet;
    private readonly List<RuleError> errors = [];
    private readonly Dictionary<string, ListDef> lists = new(StringComparer.Ordinal);
    private readonly Dictionary<string, MacroDef> macros = new(StringComparer.Ordinal);
    private readonly List<RuleDef> rules = [];
    private readonly Dictionary<string, IReadOnlyList<string>> expandedLists = new(StringComparer.Ordinal);

    private RuleLoader(string yaml, string? tenantId, RuleSet? baseSet)
    {
        sourceLines = yaml.Split('\n');
        this.tenantId = tenantId;
        this.baseSet = baseSet;
    }

    public static RuleSet Load(string yaml, string? tenantId, RuleSet? baseSet)
    {
        var loader = new RuleLoader(yaml, tenantId, baseSet);
        var set = loader.Run(yaml);
        if (loader.errors.Count > 0)
        {
            throw new RuleValidationException([.. loader.errors.OrderBy(e => e.Line)]);
        }

        return set!;
    }

    private RuleSet? Run(string yaml)
    {
        var stream = new YamlStream();
        try
        {
            stream.Load(new StringReader(yaml));
        }
        catch (YamlException e)
        {
            errors.Add(new RuleError((int)e.Start.Line, "not valid YAML: " + (e.InnerException?.Message ?? e.Message)));
            return null;
        }

        if (stream.Documents.Count == 0 || stream.Documents[0].RootNode is YamlScalarNode { Value: null or "" })
        {
            return Build();
        }

        if (stream.Documents.Count > 1)
        {
            errors.Add(new RuleError(Line(stream.Documents[1].RootNode), "a rule file holds one YAML document"));
        }

        if (stream.Documents[0].RootNode is not YamlSequenceNode items)
        {
            errors.Add(new RuleError(Line(stream.Documents[0].RootNode), "a rule file is a YAML sequence of rule, macro and list items"));
            return null;
        }

        foreach (var item in items)
        {
            if (item is not YamlMappingNode map)
            {
                errors.Add(new RuleError(Line(item), "each item must be a mapping with a 'rule', 'macro' or 'list' key"));
                continue;
            }

            ReadItem(map);
        }

        return Build();
    }

    private void ReadItem(YamlMappingNode map)
    {
        var keys = map.Children.Keys.OfType<YamlScalarNode>().Select(k => k.Value ?? string.Empty).ToList();
        if (keys.Contains("rule"))
        {
            ReadRule(map, keys);
        }
        else if (keys.Contains("macro"))
        {
            ReadMacro(map, keys);
        }
        else if (keys.Contains("list"))
        {
            ReadList(map, keys);
        }
        else if (keys.Contains("required_engine_version"))
        {
            // Falco's engine version check: this engine implements its own subset, checked rule by rule instead.
            if (keys.Count != 1)
            {
                errors.Add(new RuleError(Line(map), "a required_engine_version item has no other keys"));
            }
        }
        else if (keys.Contains("required_plugin_versions"))
        {
            errors.Add(new RuleError(Line(map), "required_plugin_versions is not supported: Shield has no plugins (source syscall only)"));
        }
        else
        {
            errors.Add(new RuleError(Line(map), $"unknown item with keys {string.Join(", ", keys)} (expected rule, macro or list)"));
        }
    }

    private bool CheckKeys(YamlMappingNode map, IEnumerable<string> keys, HashSet<string> allowed, string kind)
    {
        var ok = true;
        foreach (var key in keys)
        {
            if (!allowed.Contains(key))
            {
                var why = key switch
                {
                    "exceptions" => "exceptions are not supported; write the exclusion into the condition with 'and not'",
                    "override" => "override is not supported; use append: true",
                    "skip-if-unknown-filter" => "skip-if-unknown-filter is not supported: an unknown field always rejects the file",
                    _ => $"unknown key '{key}' in a {kind} item",
                };
                errors.Add(new RuleError(LineOfKey(map, key), why));
                ok = false;
            }
        }

        return ok;
    }

    private void ReadList(YamlMappingNode map, List<string> keys)
    {
        if (!CheckKeys(map, keys, ListKeys, "list") || !TryName(map, "list", out var name))
        {
            return;
        }

        var items = new List<string>();
        if (Child(map, "items") is { } node)
        {
            if (node is YamlSequenceNode sequence)
            {
                foreach (var entry in sequence)
                {
                    if (entry is YamlScalarNode { Value: { } value })
                    {
                        items.Add(value);
                    }
                    else
                    {
                        errors.Add(new RuleError(Line(entry), $"list '{name}': items must be plain values"));
                    }
                }
            }
            else
            {
                errors.Add(new RuleError(Line(node), $"list '{name}': items must be a sequence"));
                return;
            }
        }
        else
        {
            errors.Add(new RuleError(Line(map), $"list '{name}' has no items"));
            return;
        }

        if (ReadBool(map, "append", false))
        {
            if (IsBase(name, isList: true))
            {
                errors.Add(new RuleError(Line(map), $"list '{name}' is a default list: a tenant's rules cannot change it"));
            }
            else if (lists.TryGetValue(name, out var existing))
            {
                existing.Items.AddRange(items);
            }
            else
            {
                errors.Add(new RuleError(Line(map), $"list '{name}' is appended to before it is defined"));
            }

            return;
        }

        if (IsBase(name, isList: true) || lists.ContainsKey(name))
        {
            errors.Add(new RuleError(Line(map), IsBase(name, isList: true) ? $"list '{name}' is a default list: a tenant's rules cannot redefine it" : $"list '{name}' is defined twice (use append: true to add items)"));
            return;
        }

        lists[name] = new ListDef(name, items, Line(map));
    }

    private void ReadMacro(YamlMappingNode map, List<string> keys)
    {
        if (!CheckKeys(map, keys, MacroKeys, "macro") || !TryName(map, "macro", out var name))
        {
            return;
        }

        if (Child(map, "condition") is not YamlScalarNode { Value: { } condition } conditionNode)
        {
            errors.Add(new RuleError(Line(map), $"macro '{name}' has no condition"));
            return;
        }

        if (ReadBool(map, "append", false))
        {
            if (IsBase(name, isList: false))
            {
                errors.Add(new RuleError(Line(map), $"macro '{name}' is a default macro: a tenant's rules cannot change it"));
            }
            else if (macros.TryGetValue(name, out var existing))
            {
                existing.Parts.Add((condition, conditionNode));
            }
            else
            {
                errors.Add(new RuleError(Line(map), $"macro '{name}' is appended to before it is defined"));
            }

            return;
        }

        if (IsBase(name, isList: false) || macros.ContainsKey(name))
        {
            errors.Add(new RuleError(Line(map), IsBase(name, isList: false) ? $"macro '{name}' is a default macro: a tenant's rules cannot redefine it" : $"macro '{name}' is defined twice (use append: true to extend it)"));
            return;
        }

        macros[name] = new MacroDef(name, Line(map), [(condition, conditionNode)]);
    }

    private void ReadRule(YamlMappingNode map, List<string> keys)
    {
        if (!CheckKeys(map, keys, RuleKeys, "rule") || !TryName(map, "rule", out var name))
        {
            return;
        }

        if (Child(map, "source") is { } sourceNode && (sourceNode as YamlScalarNode)?.Value != "syscall")
        {
            errors.Add(new RuleError(Line(sourceNode), $"rule '{name}': only source 'syscall' is supported"));
            return;
        }

        var existing = rules.FirstOrDefault(r => r.Name == name);
        var isBase = baseSet?.Rules.Any(r => r.Name == name) == true;
        var append = ReadBool(map, "append", false);
        var conditionNode = Child(map, "condition") as YamlScalarNode;
        if (append || (conditionNode is null && keys.Contains("enabled") && keys.All(k => k is "rule" or "enabled")))
        {
            if (isBase)
            {
                errors.Add(new RuleError(Line(map), $"rule '{name}' is a default rule: a tenant's rules cannot change or disable it"));
                return;
            }

            if (existing is null)
            {
                errors.Add(new RuleError(Line(map), $"rule '{name}' is {(append ? "appended to" : "enabled or disabled")} before it is defined"));
                return;
            }

            if (append)
            {
                if (conditionNode?.Value is null)
                {
                    errors.Add(new RuleError(Line(map), $"rule '{name}': append needs a condition"));
                    return;
                }

                existing.Conditions.Add((conditionNode.Value, conditionNode));
            }

            if (keys.Contains("enabled"))
            {
                existing.Enabled = ReadBool(map, "enabled", true);
            }

            return;
        }

        if (isBase || existing is not null)
        {
            errors.Add(new RuleError(Line(map), isBase ? $"rule '{name}' is a default rule: choose another name" : $"rule '{name}' is defined twice"));
            return;
        }

        var missing = new[] { "condition", "output", "priority", "desc" }.Where(k => Child(map, k) is not YamlScalarNode { Value: not null }).ToList();
        if (missing.Count > 0)
        {
            errors.Add(new RuleError(Line(map), $"rule '{name}' lacks {string.Join(", ", missing)}"));
            return;
        }

        var priorityNode = (YamlScalarNode)Child(map, "priority")!;
        if (!Priorities.TryParse(priorityNode.Value, out var priority))
        {
            errors.Add(new RuleError(Line(priorityNode), $"rule '{name}': unknown priority '{priorityNode.Value}' (emergency, alert, critical, error, warning, notice, informational, debug)"));
            return;
        }

        var tags = new List<string>();
        if (Child(map, "tags") is { } tagsNode)
        {
            if (tagsNode is YamlSequenceNode tagSequence && tagSequence.All(t => t is YamlScalarNode))
            {
                tags.AddRange(tagSequence.Cast<YamlScalarNode>().Select(t => t.Value ?? string.Empty));
            }
            else
            {
                errors.Add(new RuleError(Line(tagsNode), $"rule '{name}': tags must be a sequence of words"));
            }
        }

        var outputNode = (YamlScalarNode)Child(map, "output")!;
        rules.Add(new RuleDef(name, Line(map))
        {
            Description = ((YamlScalarNode)Child(map, "desc")!).Value ?? string.Empty,
            Conditions = [(conditionNode!.Value!, conditionNode)],
            Output = (outputNode.Value!, outputNode),
            Priority = priority,
            Tags = tags,
            Enabled = ReadBool(map, "enabled", true),
        });
    }

    private RuleSet Build()
    {
        foreach (var list in lists.Values)
        {
            Expand(list, []);
        }

        foreach (var macro in macros.Values)
        {
            TryGetMacro(macro.Name, out _, report: true);
        }

        var compiled = new List<CompiledRule>();
        foreach (var rule in rules)
        {
            var text = string.Join(' ', rule.Conditions.Select(c => c.Text));
            Condition? condition = null;
            try
            {
                condition = ConditionParser.Compile(text, this);
            }
            catch (ConditionException e)
            {
                errors.Add(new RuleError(LineOf(e.Token, rule.Conditions.Select(c => (YamlNode)c.Node)), $"rule '{rule.Name}': {e.Message}"));
            }

            OutputTemplate? output = null;
            try
            {
                output = OutputTemplate.Parse(rule.Output.Text);
            }
            catch (ConditionException e)
            {
                errors.Add(new RuleError(LineOf(e.Token, [rule.Output.Node]), $"rule '{rule.Name}': {e.Message}"));
            }

            if (condition is not null && output is not null)
            {
                compiled.Add(new CompiledRule
                {
                    Name = rule.Name,
                    Description = rule.Description,
                    Condition = condition,
                    Output = output,
                    Priority = rule.Priority,
                    Tags = rule.Tags,
                    Enabled = rule.Enabled,
                    Line = rule.Line,
                    TenantId = tenantId,
                });
            }
        }

        var compiledMacros = macros.Values.Where(m => m.Compiled is not null).ToDictionary(m => m.Name, m => m.Compiled!, StringComparer.Ordinal);
        return new RuleSet(tenantId, compiled, new Dictionary<string, IReadOnlyList<string>>(expandedLists, StringComparer.Ordinal), compiledMacros);
    }

    private IReadOnlyList<string>? Expand(ListDef list, HashSet<string> visiting)
    {
        if (expandedLists.TryGetValue(list.Name, out var done))
        {
            return done;
        }

        if (!visiting.Add(list.Name))
        {
            errors.Add(new RuleError(list.Line, $"list '{list.Name}' contains itself (through {string.Join(" -> ", visiting)})"));
            return null;
        }

        var items = new List<string>();
        foreach (var item in list.Items)
        {
            if (lists.TryGetValue(item, out var inner))
            {
                items.AddRange(Expand(inner, visiting) ?? []);
            }
            else if (baseSet?.Lists.TryGetValue(item, out var baseItems) == true)
            {
                items.AddRange(baseItems);
            }
            else
            {
                items.Add(item);
            }
        }

        visiting.Remove(list.Name);
        expandedLists[list.Name] = items;
        return items;
    }

    public bool TryGetList(string name, out IReadOnlyList<string> items)
    {
        if (expandedLists.TryGetValue(name, out items!))
        {
            return true;
        }

        if (baseSet?.Lists.TryGetValue(name, out items!) == true)
        {
            return true;
        }

        items = [];
        return lists.ContainsKey(name);
    }

    public bool TryGetMacro(string name, out Condition condition) => TryGetMacro(name, out condition, report: false);

    private bool TryGetMacro(string name, out Condition condition, bool report)
    {
        condition = null!;
        if (!macros.TryGetValue(name, out var macro))
        {
            if (baseSet?.Macros.TryGetValue(name, out var baseMacro) == true)
            {
                condition = baseMacro;
                return true;
            }

            return false;
        }

        if (macro.Compiled is not null)
        {
            condition = macro.Compiled;
            return true;
        }

        if (macro.Failed)
        {
            if (report)
            {
                return false;
            }

            throw new ConditionException($"macro '{name}' (line {macro.Line}) does not compile", name);
        }

        if (macro.Compiling)
        {
            throw new ConditionException($"macro '{name}' refers to itself", name);
        }

        macro.Compiling = true;
        try
        {
            macro.Compiled = ConditionParser.Compile(string.Join(' ', macro.Parts.Select(p => p.Text)), this);
            condition = macro.Compiled;
            return true;
        }
        catch (ConditionException e)
        {
            macro.Failed = true;
            errors.Add(new RuleError(LineOf(e.Token, macro.Parts.Select(p => (YamlNode)p.Node)), $"macro '{name}': {e.Message}"));
            if (report)
            {
                return false;
            }

            throw new ConditionException($"macro '{name}' (line {macro.Line}) does not compile", name);
        }
        finally
        {
            macro.Compiling = false;
        }
    }

    private bool IsBase(string name, bool isList) =>
        baseSet is not null && (isList ? baseSet.Lists.ContainsKey(name) : baseSet.Macros.ContainsKey(name));

    private bool TryName(YamlMappingNode map, string key, out string name)
    {
        name = (Child(map, key) as YamlScalarNode)?.Value ?? string.Empty;
        if (string.IsNullOrWhiteSpace(name))
        {
            errors.Add(new RuleError(Line(map), $"'{key}' needs a name"));
            return false;
        }

        return true;
    }

    private bool ReadBool(YamlMappingNode map, string key, bool fallback)
    {
        if (Child(map, key) is not { } node)
        {
            return fallback;
        }

        if (node is YamlScalarNode { Value: { } text } && bool.TryParse(text, out var value))
        {
            return value;
        }

        errors.Add(new RuleError(Line(node), $"'{key}' must be true or false"));
        return fallback;
    }

    private static YamlNode? Child(YamlMappingNode map, string key) =>
        map.Children.TryGetValue(new YamlScalarNode(key), out var node) ? node : null;

    private static int Line(YamlNode node) => (int)node.Start.Line;

    private static int LineOfKey(YamlMappingNode map, string key) =>
        map.Children.Keys.FirstOrDefault(k => (k as YamlScalarNode)?.Value == key) is { } node ? Line(node) : Line(map);

    // The line of the token at fault: searched in the source lines the scalar(s) span, else the scalar's first line.
    private int LineOf(string? token, IEnumerable<YamlNode> nodes)
    {
        var list = nodes.ToList();
        if (token is not null)
        {
            foreach (var node in list)
            {
                for (var line = (int)node.Start.Line; line <= (int)node.End.Line && line <= sourceLines.Length; line++)
                {
                    var text = sourceLines[line - 1];
                    var from = line == (int)node.Start.Line ? Math.Min(text.Length, (int)node.Start.Column - 1) : 0;
                    if (text.IndexOf(token, from, StringComparison.Ordinal) >= 0)
                    {
                        return line;
                    }
                }
            }
        }

        return list.Count > 0 ? Line(list[0]) : 0;
    }

    private sealed record ListDef(string Name, List<string> Items, int Line);

    private sealed class MacroDef(string name, int line, List<(string Text, YamlScalarNode Node)> parts)
    {
        public string Name { get; } = name;

        public int Line { get; } = line;

        public List<(string Text, YamlScalarNode Node)> Parts { get; } = parts;

        public Condition? Compiled { get; set; }

        public bool Compiling { get; set; }

        public bool Failed { get; set; }
    }

    private sealed class RuleDef(string name, int line)
    {
        public string Name { get; } = name;

        public int Line { get; } = line;

        public string Description { get; init; } = string.Empty;

        public List<(string Text, YamlScalarNode Node)> Conditions { get; init; } = [];

        public (string Text, YamlScalarNode Node) Output { get; init; }

        public Priority Priority { get; init; }

        public List<string> Tags { get; init; } = [];

        public bool Enabled { get; set; } = true;
    }
}
