using System.Text.Json.Nodes;

namespace Sandstorm.Infra.Tests;

/// <summary>A compiled ARM template, with module (nested deployment) templates flattened for searching.</summary>
internal sealed class ArmTemplate(JsonObject root)
{
    public JsonObject Root { get; } = root;

    /// <summary>The whole template as text, for checks that no function or literal appears anywhere.</summary>
    public string Text { get; } = root.ToJsonString();

    /// <summary>Every resource this template declares (existing references excluded), modules included.</summary>
    public IReadOnlyList<ArmResource> Resources { get; } = Walk(root, module: null).ToList();

    /// <summary>Resources of one type, e.g. <c>Microsoft.Storage/storageAccounts</c>.</summary>
    public IReadOnlyList<ArmResource> OfType(string type) =>
        Resources.Where(r => string.Equals(r.Type, type, StringComparison.OrdinalIgnoreCase)).ToList();

    /// <summary>The single resource of a type; fails the test if there is not exactly one.</summary>
    public ArmResource Single(string type) => Assert.Single(OfType(type));

    private static IEnumerable<ArmResource> Walk(JsonObject template, ArmResource? module)
    {
        // languageVersion 2.0 templates key resources by symbolic name; 1.0 templates list them.
        var resources = template["resources"] switch
        {
            JsonObject byName => byName.Select(p => p.Value!.AsObject()),
            JsonArray list => list.Select(n => n!.AsObject()),
            _ => [],
        };
        foreach (var resource in resources)
        {
            if (resource["existing"]?.GetValue<bool>() == true)
            {
                continue;
            }
            var item = new ArmResource(resource, template, module);
            yield return item;
            if (item.Type == "Microsoft.Resources/deployments" && resource["properties"]?["template"] is JsonObject nested)
            {
                foreach (var inner in Walk(nested, item))
                {
                    yield return inner;
                }
            }
        }
    }
}

/// <summary>One resource, the template that declares it, and the module deployment it sits in (null at top level).</summary>
internal sealed record ArmResource(JsonObject Node, JsonObject Template, ArmResource? Module)
{
    public string Type => Node["type"]!.GetValue<string>();

    public string Name => Node["name"]!.GetValue<string>();

    public JsonNode? Properties => Node["properties"];

    /// <summary>A property by dotted path under <c>properties</c>, e.g. <c>siteConfig.minTlsVersion</c>.</summary>
    public JsonNode? Property(string path)
    {
        JsonNode? node = Properties;
        foreach (var part in path.Split('.'))
        {
            node = node?[part];
        }
        return node;
    }

    /// <summary>The value passed to a module parameter (this resource must be a module deployment).</summary>
    public JsonNode? ModuleParameter(string name) => Node["properties"]?["parameters"]?[name]?["value"];

    /// <summary>A variable of the declaring template.</summary>
    public JsonNode? Variable(string name) => Template["variables"]?[name];
}
