using System.Collections.Frozen;

namespace Sandstorm.Routing.Regions;

/// <summary>Where a region is: its residency set (<c>eu</c>, <c>us</c>, <c>uk</c>, <c>ap</c>) and its approximate location.</summary>
public sealed record RegionInfo(string Name, string Residency, double Latitude, double Longitude);

/// <summary>
/// Names of the regions providers report, what residency set each belongs to, and an estimate of the network round trip
/// between two of them. Providers name regions their own way (<c>us-east</c>, <c>us-east-1</c>, <c>eastus</c>, <c>eu</c>),
/// so every known alias maps to one location. The round trip is estimated from the great-circle distance: 5 ms plus
/// 0.014 ms per km (light in fibre at ~200 km/ms over routes ~1.4× the great circle, there and back), which puts
/// us-east↔eu-west at ~81 ms and us-east↔ap-south at ~187 ms, near the published inter-region figures. A region the catalogue
/// does not know has no residency (it never matches a residency set) and is <see cref="UnknownRoundTripMs"/> from anywhere else.
/// </summary>
public sealed class RegionCatalog
{
    /// <summary>Round trip assumed between two different regions when either is unknown.</summary>
    public const double UnknownRoundTripMs = 100;

    private readonly FrozenDictionary<string, RegionInfo> _byName;

    // Names providers and clouds use for the same metro, its residency set and its location (approximate, public knowledge).
    private static readonly (string[] Names, string Residency, double Lat, double Lon)[] Defaults =
    [
        (["us-east", "us-east-1", "eastus", "eastus2", "us-east1", "us-east4", "iad", "us"], "us", 38.9, -77.4),
        (["us-central", "centralus", "us-central1", "us-east-2", "ord"], "us", 41.6, -93.6),
        (["us-west", "us-west-2", "westus2", "us-west1", "us-west2", "westus", "sjc", "sea"], "us", 45.6, -121.2),
        (["eu-west", "eu-west-1", "northeurope", "dub"], "eu", 53.3, -6.3),
        (["westeurope", "europe-west4", "europe-west1", "ams"], "eu", 52.4, 4.9),
        (["eu-central", "eu-central-1", "germanywestcentral", "europe-west3", "fra", "eu"], "eu", 50.1, 8.7),
        (["eu-north", "eu-north-1", "swedencentral", "arn"], "eu", 59.3, 18.1),
        (["uk-south", "eu-west-2", "uksouth", "europe-west2", "lhr"], "uk", 51.5, -0.1),
        (["ap-south", "ap-south-1", "centralindia", "asia-south1", "bom"], "ap", 19.1, 72.9),
        (["ap-southeast", "ap-southeast-1", "southeastasia", "asia-southeast1", "sin"], "ap", 1.35, 103.8),
        (["ap-northeast", "ap-northeast-1", "japaneast", "asia-northeast1", "nrt"], "ap", 35.7, 139.7),
        (["ap-southeast-2", "australiaeast", "australia-southeast1", "syd"], "ap", -33.9, 151.2),
    ];

    public RegionCatalog(IEnumerable<RegionInfo>? extra = null)
    {
        var map = new Dictionary<string, RegionInfo>(StringComparer.OrdinalIgnoreCase);
        foreach (var (names, residency, lat, lon) in Defaults)
        {
            foreach (var name in names)
            {
                map[name] = new RegionInfo(name, residency, lat, lon);
            }
        }

        foreach (var r in extra ?? [])
        {
            map[r.Name] = r;
        }

        _byName = map.ToFrozenDictionary(StringComparer.OrdinalIgnoreCase);
    }

    /// <summary>The catalogue with the built-in regions only.</summary>
    public static RegionCatalog Default { get; } = new();

    /// <summary>Residency sets <see cref="Allows"/> understands.</summary>
    public static IReadOnlyList<string> ResidencySets { get; } = ["eu", "us", "uk", "ap"];

    public RegionInfo? Find(string region) => _byName.GetValueOrDefault(region);

    /// <summary>
    /// True when <paramref name="region"/> is named by <paramref name="allowed"/>: the same name (or an alias of the same
    /// location), or a residency set the region belongs to. Names compare case-insensitively.
    /// </summary>
    public bool Allows(IReadOnlyList<string> allowed, string region)
    {
        var info = Find(region);
        foreach (var a in allowed)
        {
            if (string.Equals(a, region, StringComparison.OrdinalIgnoreCase))
            {
                return true;
            }

            if (ResidencySets.Contains(a, StringComparer.OrdinalIgnoreCase))
            {
                if (info is not null && string.Equals(info.Residency, a, StringComparison.OrdinalIgnoreCase))
                {
                    return true;
                }

                continue;
            }

            // An alias of the same location (us-east-1 allows us-east).
            if (info is not null && Find(a) is { } other && other.Latitude == info.Latitude && other.Longitude == info.Longitude)
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>Estimated network round trip between two regions (0 for the same one).</summary>
    public double RoundTripMs(string? from, string to)
    {
        if (from is null || string.Equals(from, to, StringComparison.OrdinalIgnoreCase))
        {
            return 0;
        }

        if (Find(from) is not { } a || Find(to) is not { } b)
        {
            return UnknownRoundTripMs;
        }

        var km = GreatCircleKm(a, b);
        return km < 1 ? 0 : 5 + (0.014 * km);
    }

    private static double GreatCircleKm(RegionInfo a, RegionInfo b)
    {
        const double R = 6371;
        static double Rad(double d) => d * Math.PI / 180;
        var dLat = Rad(b.Latitude - a.Latitude);
        var dLon = Rad(b.Longitude - a.Longitude);
        var h = (Math.Sin(dLat / 2) * Math.Sin(dLat / 2)) + (Math.Cos(Rad(a.Latitude)) * Math.Cos(Rad(b.Latitude)) * Math.Sin(dLon / 2) * Math.Sin(dLon / 2));
        return 2 * R * Math.Asin(Math.Min(1, Math.Sqrt(h)));
    }

}
