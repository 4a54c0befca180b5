using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using Sandstorm.Core.Contracts;

namespace Sandstorm.Routing.Market;

/// <summary>A sheet (price sheet or grid-intensity feed) that does not follow its format; the message names the field.</summary>
public sealed class MarketSheetException : FormatException
{
    public MarketSheetException(string message)
        : base(message)
    {
    }

    public MarketSheetException()
    {
    }

    public MarketSheetException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}

/// <summary>One provider's list prices in a price sheet, with where and when they were taken.</summary>
public sealed record PriceSheetEntry
{
    public double VcpuSecond { get; init; }

    public double GibSecond { get; init; }

    public double MinimumSeconds { get; init; }

    public double GranularitySeconds { get; init; } = 1;

    /// <summary>Where the figures were read (the provider's pricing page or docs).</summary>
    public string? Source { get; init; }

    /// <summary>Date the figures were read from <see cref="Source"/> (yyyy-MM-dd).</summary>
    public string? TakenAt { get; init; }

    public string? Note { get; init; }

    public PriceSheet ToPriceSheet() => new()
    {
        VcpuSecond = VcpuSecond,
        GibSecond = GibSecond,
        MinimumSeconds = MinimumSeconds,
        GranularitySeconds = GranularitySeconds,
    };
}

/// <summary>
/// The operator's price sheet (docs/routing.md, "Price sheet"): a versioned JSON document with each provider's list prices
/// and the date they were taken. <see cref="Parse"/> validates it; a sheet that fails is never applied.
/// </summary>
public sealed record PriceSheetDocument
{
    public const string Kind = "sandstorm.price-sheet";

    public required string Version { get; init; }

    /// <summary>Date the sheet as a whole was compiled (yyyy-MM-dd).</summary>
    public required string TakenAt { get; init; }

    public string Currency { get; init; } = "USD";

    public required IReadOnlyDictionary<string, PriceSheetEntry> Providers { get; init; }

    /// <summary>The list prices by provider id.</summary>
    public IReadOnlyDictionary<string, PriceSheet> Prices() =>
        Providers.ToDictionary(p => p.Key, p => p.Value.ToPriceSheet(), StringComparer.OrdinalIgnoreCase);

    public static PriceSheetDocument Parse(string json)
    {
        var dto = MarketSheetJson.Read<Dto>(json, "price sheet");
        MarketSheetJson.RequireKind(dto.Kind, Kind);
        var version = MarketSheetJson.RequireText(dto.Version, "version");
        var takenAt = MarketSheetJson.RequireDate(dto.TakenAt, "takenAt");
        if (!string.Equals(dto.Currency ?? "USD", "USD", StringComparison.Ordinal))
        {
            throw new MarketSheetException($"currency must be USD, was '{dto.Currency}'");
        }

        if (dto.Providers is not { Count: > 0 })
        {
            throw new MarketSheetException("providers must list at least one provider");
        }

        foreach (var (id, p) in dto.Providers)
        {
            var where = $"providers.{id}";
            if (p is null)
            {
                throw new MarketSheetException($"{where} is null");
            }

            MarketSheetJson.RequireFinite(p.VcpuSecond, $"{where}.vcpuSecond", max: 0.01);
            MarketSheetJson.RequireFinite(p.GibSecond, $"{where}.gibSecond", max: 0.01);
            MarketSheetJson.RequireFinite(p.MinimumSeconds, $"{where}.minimumSeconds", max: 86_400);
            MarketSheetJson.RequireFinite(p.GranularitySeconds, $"{where}.granularitySeconds", max: 86_400);
            if (p.VcpuSecond == 0 && p.GibSecond == 0)
            {
                throw new MarketSheetException($"{where} has no price (vcpuSecond and gibSecond are both 0)");
            }

            if (p.TakenAt is not null)
            {
                MarketSheetJson.RequireDate(p.TakenAt, $"{where}.takenAt");
            }
        }

        return new PriceSheetDocument
        {
            Version = version,
            TakenAt = takenAt,
            Providers = dto.Providers.ToDictionary(p => p.Key, p => p.Value!, StringComparer.OrdinalIgnoreCase),
        };
    }

    private sealed record Dto(string? Kind, string? Version, string? TakenAt, string? Currency, Dictionary<string, PriceSheetEntry?>? Providers);
}

/// <summary>One region's grid intensity in a grid-intensity sheet: a 24-hour profile by UTC hour, and optional dated hours.</summary>
public sealed record GridIntensityRegion
{
    /// <summary>24 values, grams CO₂e per kWh, for UTC hours 0–23 (the region's typical day).</summary>
    public IReadOnlyList<double>? Hourly { get; init; }

    /// <summary>Values for given hours (UTC, start of the hour); they override <see cref="Hourly"/> for that hour.</summary>
    public IReadOnlyList<GridIntensityPoint>? Series { get; init; }

    public string? Source { get; init; }

    public string? TakenAt { get; init; }
}

/// <summary>Grams CO₂e per kWh during one hour.</summary>
public sealed record GridIntensityPoint(DateTimeOffset Hour, double GramsPerKwh);

/// <summary>
/// The per-region hourly grid-intensity feed (docs/routing.md, "Carbon"), in the same versioned form as the price sheet:
/// grams CO₂e per kWh for each region and hour, with where and when the figures were taken.
/// </summary>
public sealed record GridIntensityDocument
{
    public const string Kind = "sandstorm.grid-intensity";

    public required string Version { get; init; }

    public required string TakenAt { get; init; }

    public required IReadOnlyDictionary<string, GridIntensityRegion> Regions { get; init; }

    public static GridIntensityDocument Parse(string json)
    {
        var dto = MarketSheetJson.Read<Dto>(json, "grid-intensity sheet");
        MarketSheetJson.RequireKind(dto.Kind, Kind);
        var version = MarketSheetJson.RequireText(dto.Version, "version");
        var takenAt = MarketSheetJson.RequireDate(dto.TakenAt, "takenAt");
        if (!string.Equals(dto.Unit ?? "gCO2e/kWh", "gCO2e/kWh", StringComparison.Ordinal))
        {
            throw new MarketSheetException($"unit must be gCO2e/kWh, was '{dto.Unit}'");
        }

        if (dto.Regions is not { Count: > 0 })
        {
            throw new MarketSheetException("regions must list at least one region");
        }

        foreach (var (name, r) in dto.Regions)
        {
            var where = $"regions.{name}";
            if (r is null || (r.Hourly is null && r.Series is not { Count: > 0 }))
            {
                throw new MarketSheetException($"{where} needs hourly (24 values) or series");
            }

            if (r.Hourly is { } hourly)
            {
                if (hourly.Count != 24)
                {
                    throw new MarketSheetException($"{where}.hourly must have 24 values (UTC hours 0-23), has {hourly.Count}");
                }

                for (var h = 0; h < 24; h++)
                {
                    MarketSheetJson.RequireFinite(hourly[h], $"{where}.hourly[{h}]", max: 5000);
                }
            }

            foreach (var p in r.Series ?? [])
            {
                MarketSheetJson.RequireFinite(p.GramsPerKwh, $"{where}.series[{p.Hour:O}]", max: 5000);
            }
        }

        return new GridIntensityDocument
        {
            Version = version,
            TakenAt = takenAt,
            Regions = dto.Regions.ToDictionary(p => p.Key, p => p.Value!, StringComparer.OrdinalIgnoreCase),
        };
    }

    private sealed record Dto(string? Kind, string? Version, string? TakenAt, string? Unit, Dictionary<string, GridIntensityRegion?>? Regions);
}

/// <summary>Parsing rules both sheets share.</summary>
internal static class MarketSheetJson
{
    private static readonly JsonSerializerOptions Options = new(JsonSerializerDefaults.Web)
    {
        UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
        NumberHandling = JsonNumberHandling.Strict,
    };

    public static T Read<T>(string json, string what)
    {
        try
        {
            return JsonSerializer.Deserialize<T>(json, Options) ?? throw new MarketSheetException($"the {what} is empty");
        }
        catch (JsonException e)
        {
            var path = string.IsNullOrEmpty(e.Path) ? "" : $" at {e.Path}";
            throw new MarketSheetException($"the {what} is not valid{path}: {e.Message.Split(". ")[0]}", e);
        }
    }

    public static void RequireKind(string? kind, string expected)
    {
        if (!string.Equals(kind, expected, StringComparison.Ordinal))
        {
            throw new MarketSheetException($"kind must be '{expected}', was '{kind}'");
        }
    }

    public static string RequireText(string? value, string field) =>
        string.IsNullOrWhiteSpace(value) ? throw new MarketSheetException($"{field} is required") : value;

    public static string RequireDate(string? value, string field)
    {
        if (!DateOnly.TryParseExact(value, "yyyy-MM-dd", CultureInfo.InvariantCulture, DateTimeStyles.None, out _))
        {
            throw new MarketSheetException($"{field} must be a date (yyyy-MM-dd), was '{value}'");
        }

        return value!;
    }

    public static void RequireFinite(double value, string field, double max)
    {
        if (!double.IsFinite(value) || value < 0 || value > max)
        {
            throw new MarketSheetException($"{field} must be between 0 and {max.ToString(CultureInfo.InvariantCulture)}, was {value.ToString(CultureInfo.InvariantCulture)}");
        }
    }
}
