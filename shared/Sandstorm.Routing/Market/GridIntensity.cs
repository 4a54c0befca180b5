using Sandstorm.Routing.Regions;

namespace Sandstorm.Routing.Market;

/// <summary>Grid intensity by region and hour from a <see cref="GridIntensityDocument"/>; immutable, safe to share.</summary>
public sealed class GridIntensity
{
    private readonly Dictionary<string, GridIntensityRegion> _regions;
    private readonly Dictionary<(string Region, DateTimeOffset Hour), double> _series = [];
    private readonly RegionCatalog _catalog;

    public GridIntensity(GridIntensityDocument document, RegionCatalog? catalog = null)
    {
        Version = document.Version;
        _catalog = catalog ?? RegionCatalog.Default;
        _regions = new Dictionary<string, GridIntensityRegion>(document.Regions, StringComparer.OrdinalIgnoreCase);
        foreach (var (name, r) in _regions)
        {
            foreach (var p in r.Series ?? [])
            {
                _series[(name.ToLowerInvariant(), Hour(p.Hour))] = p.GramsPerKwh;
            }
        }
    }

    private GridIntensity()
    {
        Version = "none";
        _regions = new Dictionary<string, GridIntensityRegion>(StringComparer.OrdinalIgnoreCase);
        _catalog = RegionCatalog.Default;
    }

    /// <summary>No intensity known anywhere (carbon is then neither predicted nor reported).</summary>
    public static GridIntensity Empty { get; } = new();

    public string Version { get; }

    /// <summary>
    /// Grams CO₂e per kWh in <paramref name="region"/> during the hour of <paramref name="at"/>: a dated value for that hour,
    /// else the region's profile for that UTC hour; a region named by an alias of a listed one takes its values; null if unknown.
    /// </summary>
    public double? GramsPerKwh(string region, DateTimeOffset at)
    {
        var entry = Resolve(region);
        if (entry is null)
        {
            return null;
        }

        if (_series.TryGetValue((entry.Value.Name.ToLowerInvariant(), Hour(at)), out var dated))
        {
            return dated;
        }

        return entry.Value.Region.Hourly is { Count: 24 } hourly ? hourly[at.UtcDateTime.Hour] : null;
    }

    private (string Name, GridIntensityRegion Region)? Resolve(string region)
    {
        if (_regions.TryGetValue(region, out var direct))
        {
            return (region, direct);
        }

        if (_catalog.Find(region) is not { } info)
        {
            return null;
        }

        foreach (var (name, r) in _regions)
        {
            if (_catalog.Find(name) is { } other && other.Latitude == info.Latitude && other.Longitude == info.Longitude)
            {
                return (name, r);
            }
        }

        return null;
    }

    private static DateTimeOffset Hour(DateTimeOffset t)
    {
        var u = t.UtcDateTime;
        return new DateTimeOffset(u.Year, u.Month, u.Day, u.Hour, 0, 0, TimeSpan.Zero);
    }
}

/// <summary>
/// Energy of a sandbox run, from its allocated resources and how long it ran: the Cloud Carbon Footprint coefficients
/// (average of 0.74 W idle and 3.5 W at full load per vCPU, i.e. 50 % utilisation; 0.392 W per GiB of memory; data-centre
/// PUE 1.135). An estimate for ranking regions and reporting, not a meter reading.
/// </summary>
public static class EnergyModel
{
    public const double WattsPerVcpu = (0.74 + 3.5) / 2;
    public const double WattsPerGib = 0.392;
    public const double Pue = 1.135;

    /// <summary>kWh of a run of <paramref name="seconds"/> with <paramref name="cpu"/> vCPUs and <paramref name="memoryMiB"/>.</summary>
    public static double Kwh(double cpu, int memoryMiB, double seconds) =>
        Math.Max(0, seconds) * ((cpu * WattsPerVcpu) + (memoryMiB / 1024.0 * WattsPerGib)) * Pue / 3_600_000;

    /// <summary>Grams CO₂e of such a run at <paramref name="gramsPerKwh"/>.</summary>
    public static double Grams(double cpu, int memoryMiB, double seconds, double gramsPerKwh) => Kwh(cpu, memoryMiB, seconds) * gramsPerKwh;
}
