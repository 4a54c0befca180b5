using System.Text.Json;
using System.Text.Json.Serialization;
using Sandstorm.Core;
using Sandstorm.Core.Contracts;

namespace Sandstorm.Routing.Simulation;

/// <summary>Reads and writes the JSONL trace format (docs/trace-format.md). Reading is strict and names the offending line.</summary>
public static class TraceSerializer
{
    /// <summary>Reads a whole trace.</summary>
    public static async Task<MarketTrace> ReadAsync(TextReader reader, CancellationToken cancellationToken)
    {
        IReadOnlyList<MarketProvider>? providers = null;
        var events = new List<TraceEvent>();
        var lineNumber = 0;
        while (await reader.ReadLineAsync(cancellationToken) is { } line)
        {
            lineNumber++;
            if (string.IsNullOrWhiteSpace(line))
            {
                continue;
            }

            var parsed = ParseLine(line, lineNumber, providers);
            if (parsed is IReadOnlyList<MarketProvider> market)
            {
                providers = market;
            }
            else
            {
                events.Add((TraceEvent)parsed);
            }
        }

        if (providers is null)
        {
            throw new TraceFormatException(Math.Max(1, lineNumber), "empty trace: the first line must be {\"type\":\"market\",...}");
        }

        return new MarketTrace(providers, events);
    }

    /// <summary>Parses a trace held in a string (tests, small traces).</summary>
    public static MarketTrace Parse(string text) => ReadAsync(new StringReader(text), CancellationToken.None).GetAwaiter().GetResult();

    /// <summary>Writes a trace, one JSON object per line.</summary>
    public static async Task WriteAsync(MarketTrace trace, TextWriter writer, CancellationToken cancellationToken)
    {
        await writer.WriteLineAsync(JsonSerializer.Serialize(new MarketLine("market", trace.Providers.Select(ToDto).ToList()), SandstormJson.Options).AsMemory(), cancellationToken);
        foreach (var e in trace.Events)
        {
            var json = e switch
            {
                TraceRequestEvent r => JsonSerializer.Serialize(new RequestLine("request", r.Seq, r.Time, r.Request, r.Outcomes.ToDictionary(o => o.Key, o => (OutcomeDto?)new OutcomeDto(o.Value.Ok, Math.Round(o.Value.LatencyMs, 1), Math.Round(o.Value.CostUsd, 9)))), SandstormJson.Options),
                TracePriceEvent p => JsonSerializer.Serialize(new PriceLine("price", p.Time, p.Provider, p.Price), SandstormJson.Options),
                _ => throw new InvalidOperationException($"unknown trace event {e.GetType().Name}"),
            };
            await writer.WriteLineAsync(json.AsMemory(), cancellationToken);
        }
    }

    private static object ParseLine(string line, int n, IReadOnlyList<MarketProvider>? market)
    {
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(line);
        }
        catch (JsonException e)
        {
            throw new TraceFormatException(n, $"not valid JSON ({e.Message})");
        }

        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object || !doc.RootElement.TryGetProperty("type", out var typeElement) || typeElement.ValueKind != JsonValueKind.String)
            {
                throw new TraceFormatException(n, "each line must be a JSON object with a string \"type\"");
            }

            var type = typeElement.GetString();
            if (market is null && type != "market")
            {
                throw new TraceFormatException(n, $"the first line must be of type \"market\", found \"{type}\"");
            }

            return type switch
            {
                "market" when market is not null => throw new TraceFormatException(n, "a second \"market\" line"),
                "market" => ParseMarket(doc.RootElement, n),
                "request" => ParseRequest(doc.RootElement, n, market!),
                "price" => ParsePrice(doc.RootElement, n, market!),
                _ => throw new TraceFormatException(n, $"unknown type \"{type}\" (expected market, request or price)"),
            };
        }
    }

    private static List<MarketProvider> ParseMarket(JsonElement root, int n)
    {
        var dto = Deserialize<MarketLine>(root, n);
        if (dto.Providers is not { Count: > 0 })
        {
            throw new TraceFormatException(n, "market.providers must list at least one provider");
        }

        var providers = new List<MarketProvider>();
        for (var i = 0; i < dto.Providers.Count; i++)
        {
            var p = dto.Providers[i];
            var where = $"market.providers[{i}]";
            Require(n, !string.IsNullOrWhiteSpace(p.Id), $"{where}.id is required");
            Require(n, !string.IsNullOrWhiteSpace(p.Runtime), $"{where}.runtime is required");
            Require(n, p.Isolation is { Count: > 0 }, $"{where}.isolation must list at least one level");
            Require(n, p.Regions is { Count: > 0 }, $"{where}.regions must list at least one region");
            Require(n, p.Price is not null, $"{where}.price is required");
            CheckPrice(n, p.Price!, $"{where}.price");
            providers.Add(new MarketProvider
            {
                Id = p.Id!,
                Runtime = p.Runtime!,
                Isolation = p.Isolation!,
                Regions = p.Regions!,
                Price = p.Price!,
                Languages = p.Languages,
            });
        }

        return providers;
    }

    private static TraceRequestEvent ParseRequest(JsonElement root, int n, IReadOnlyList<MarketProvider> market)
    {
        var dto = Deserialize<RequestLine>(root, n);
        Require(n, dto.Time != default, "request.time is required (ISO 8601)");
        var r = dto.Request ?? throw new TraceFormatException(n, "request.request is required");
        Require(n, !string.IsNullOrWhiteSpace(r.Language), "request.language is required");
        Require(n, r.Cpu > 0, "request.cpu must be > 0");
        Require(n, r.Memory > 0, "request.memory must be > 0 (MiB)");
        Require(n, r.Timeout > 0, "request.timeout must be > 0 (ms)");
        Require(n, r.CodeLength >= 0 && r.Requirements >= 0 && r.Files >= 0, "request.codeLength, requirements and files must be ≥ 0");
        var outcomes = dto.Outcomes ?? throw new TraceFormatException(n, "request.outcomes is required (may be {})");
        var result = new Dictionary<string, TraceOutcome>(StringComparer.Ordinal);
        foreach (var (key, o) in outcomes)
        {
            var parts = key.Split('/');
            Require(n, parts.Length == 3 && parts.All(p => p.Length > 0), $"outcome key \"{key}\" must be provider/runtime/region");
            Require(n, market.Any(m => m.Id == parts[0] && m.Runtime == parts[1] && m.Regions.Contains(parts[2])), $"outcome key \"{key}\" names no candidate of the market");
            Require(n, o is not null && o.Ok is not null && o.LatencyMs is not null && o.CostUsd is not null, $"outcome \"{key}\" needs ok, latencyMs and costUsd");
            Require(n, o!.LatencyMs >= 0 && o.CostUsd >= 0, $"outcome \"{key}\" has a negative latency or cost");
            result[key] = new TraceOutcome(o.Ok!.Value, o.LatencyMs!.Value, o.CostUsd!.Value);
        }

        return new TraceRequestEvent(dto.Seq, dto.Time, r, result);
    }

    private static TracePriceEvent ParsePrice(JsonElement root, int n, IReadOnlyList<MarketProvider> market)
    {
        var dto = Deserialize<PriceLine>(root, n);
        Require(n, dto.Time != default, "price.time is required (ISO 8601)");
        Require(n, dto.Provider is { Length: > 0 } && market.Any(m => m.Id == dto.Provider), $"price.provider \"{dto.Provider}\" is not in the market");
        Require(n, dto.Price is not null, "price.price is required");
        CheckPrice(n, dto.Price!, "price.price");
        return new TracePriceEvent(dto.Time, dto.Provider!, dto.Price!);
    }

    private static void CheckPrice(int n, PriceSheet p, string where) =>
        Require(n, p.VcpuSecond >= 0 && p.GibSecond >= 0 && p.MinimumSeconds >= 0 && p.GranularitySeconds >= 0, $"{where} fields must be ≥ 0");

    private static T Deserialize<T>(JsonElement root, int n)
    {
        try
        {
            return root.Deserialize<T>(SandstormJson.Options) ?? throw new TraceFormatException(n, "empty object");
        }
        catch (JsonException e)
        {
            var path = string.IsNullOrEmpty(e.Path) ? "" : $" at {e.Path}";
            throw new TraceFormatException(n, $"malformed {typeof(T).Name.Replace("Line", "", StringComparison.Ordinal).ToLowerInvariant()} line{path}: {FirstSentence(e.Message)}");
        }
    }

    private static string FirstSentence(string message) => message.Split(". ")[0];

    private static void Require(int line, bool condition, string message)
    {
        if (!condition)
        {
            throw new TraceFormatException(line, message);
        }
    }

    private static ProviderDto ToDto(MarketProvider p) => new(p.Id, p.Runtime, p.Isolation, p.Regions, p.Price, p.Languages);

    private sealed record MarketLine(string Type, List<ProviderDto>? Providers);

    private sealed record ProviderDto(string? Id, string? Runtime, IReadOnlyList<IsolationLevel>? Isolation, IReadOnlyList<string>? Regions, PriceSheet? Price, IReadOnlyList<string>? Languages);

    private sealed record RequestLine(string Type, long Seq, DateTimeOffset Time, TraceRequest? Request, Dictionary<string, OutcomeDto?>? Outcomes);

    private sealed record OutcomeDto(bool? Ok, double? LatencyMs, double? CostUsd);

    private sealed record PriceLine(string Type, DateTimeOffset Time, string? Provider, PriceSheet? Price);

}
