using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace Sandstorm.Shield;

/// <summary>
/// Reads Falco's JSON alerts (<c>json_output: true</c>, one object per line; falcosidekick's webhook posts the same
/// object): <c>output</c>, <c>priority</c>, <c>rule</c>, <c>time</c>, <c>output_fields</c>, and when present
/// <c>source</c>, <c>tags</c>, <c>hostname</c>, <c>uuid</c>. They become <see cref="Finding"/>s like Shield's own.
/// </summary>
public static partial class FalcoAlerts
{
    /// <summary>Parses one alert object; throws <see cref="FormatException"/> naming what is missing or malformed.</summary>
    public static Finding Parse(string json, TimeProvider? timeProvider = null)
    {
        try
        {
            using var document = JsonDocument.Parse(json);
            return Parse(document.RootElement, timeProvider ?? TimeProvider.System);
        }
        catch (JsonException e)
        {
            throw new FormatException("a Falco alert must be a JSON object: " + e.Message, e);
        }
    }

    /// <summary>Parses Falco's file/stdout output: one alert per line (blank lines skipped); or one JSON array of alerts.</summary>
    public static List<Finding> ParseMany(string text, TimeProvider? timeProvider = null)
    {
        var time = timeProvider ?? TimeProvider.System;
        var trimmed = text.TrimStart();
        if (trimmed.StartsWith('['))
        {
            using var document = JsonDocument.Parse(trimmed);
            return [.. document.RootElement.EnumerateArray().Select(e => Parse(e, time))];
        }

        var findings = new List<Finding>();
        var number = 0;
        foreach (var line in text.Split('\n'))
        {
            number++;
            if (string.IsNullOrWhiteSpace(line))
            {
                continue;
            }

            try
            {
                findings.Add(Parse(line, time));
            }
            catch (FormatException e)
            {
                throw new FormatException($"alert on line {number}: {e.Message}", e);
            }
        }

        return findings;
    }

    /// <summary>
    /// Whether an alert's <c>container.id</c> names the sandbox: equal, or Falco's 12-character short id of it
    /// (Falco shortens container ids to 12 characters).
    /// </summary>
    public static bool NamesSandbox(Finding alert, string sandboxId) =>
        alert.SandboxId is { Length: >= 12 } id && (id == sandboxId || (id.Length == 12 && sandboxId.StartsWith(id, StringComparison.Ordinal)));

    private static Finding Parse(JsonElement root, TimeProvider time)
    {
        if (root.ValueKind != JsonValueKind.Object)
        {
            throw new FormatException("a Falco alert must be a JSON object");
        }

        var rule = RequiredString(root, "rule");
        var priorityText = RequiredString(root, "priority");
        if (!Priorities.TryParse(priorityText, out var priority))
        {
            throw new FormatException($"unknown priority '{priorityText}'");
        }

        var eventTime = ParseTime(RequiredString(root, "time"));
        var output = root.TryGetProperty("output", out var o) && o.ValueKind == JsonValueKind.String ? o.GetString()! : string.Empty;
        var fields = new Dictionary<string, string?>(StringComparer.Ordinal);
        if (root.TryGetProperty("output_fields", out var outputFields))
        {
            if (outputFields.ValueKind != JsonValueKind.Object)
            {
                throw new FormatException("output_fields must be an object");
            }

            foreach (var field in outputFields.EnumerateObject())
            {
                fields[field.Name] = field.Value.ValueKind switch
                {
                    JsonValueKind.Null => null,
                    JsonValueKind.String => field.Value.GetString(),
                    _ => field.Value.GetRawText(),
                };
            }
        }

        var tags = root.TryGetProperty("tags", out var t) && t.ValueKind == JsonValueKind.Array
            ? t.EnumerateArray().Where(x => x.ValueKind == JsonValueKind.String).Select(x => x.GetString()!).ToList()
            : [];
        var container = fields.GetValueOrDefault("container.id");
        return new Finding
        {
            Rule = rule,
            Priority = priority,
            Output = output,
            Tags = tags,
            EventTime = eventTime,

            // Falco says "host" for events outside any container.
            SandboxId = string.IsNullOrEmpty(container) || container == "host" ? null : container,
            DetectedAt = time.GetUtcNow(),
            Detector = "falco",
            Source = root.TryGetProperty("source", out var s) && s.ValueKind == JsonValueKind.String ? s.GetString()! : "syscall",
            OutputFields = fields,
            Hostname = root.TryGetProperty("hostname", out var h) && h.ValueKind == JsonValueKind.String ? h.GetString() : null,
        };
    }

    private static string RequiredString(JsonElement root, string name) =>
        root.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String && !string.IsNullOrEmpty(value.GetString())
            ? value.GetString()!
            : throw new FormatException($"'{name}' is missing or not a string");

    // Falco writes nanoseconds ("2024-05-01T10:00:00.123456789Z"); .NET keeps 100 ns ticks.
    private static DateTimeOffset ParseTime(string text)
    {
        var match = IsoTime().Match(text);
        if (!match.Success)
        {
            throw new FormatException($"time '{text}' is not ISO 8601");
        }

        var fraction = match.Groups[2].Success ? match.Groups[2].Value[1..] : string.Empty;
        fraction = fraction.Length > 7 ? fraction[..7] : fraction;
        var normalized = match.Groups[1].Value + (fraction.Length > 0 ? "." + fraction : string.Empty) + (match.Groups[3].Value == "Z" ? "+00:00" : match.Groups[3].Value);
        return DateTimeOffset.ParseExact(
            normalized,
            fraction.Length > 0 ? "yyyy-MM-dd'T'HH:mm:ss." + new string('F', fraction.Length) + "zzz" : "yyyy-MM-dd'T'HH:mm:sszzz",
            CultureInfo.InvariantCulture);
    }

    [GeneratedRegex(@"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)$")]
    private static partial Regex IsoTime();
}
