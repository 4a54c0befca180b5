using Sandstorm.Core.Contracts;

namespace Sandstorm.Routing.Simulation;

/// <summary>
/// Hidden behaviour of one provider in the simulated market (docs/market-simulator.md explains each figure).
/// None of these reach the router: it sees list prices, the workload and what its own runs returned.
/// </summary>
public sealed record SimulatedProvider
{
    public required MarketProvider Market { get; init; }

    /// <summary>Sandbox start when a warm one is ready (ms).</summary>
    public double WarmStartMs { get; init; }

    /// <summary>Extra start time on a cold start (image pull, VM boot) (ms).</summary>
    public double ColdStartMs { get; init; }

    /// <summary>Cold-start probability at zero load; grows with load squared as warm pools drain.</summary>
    public double ColdStartBase { get; init; }

    /// <summary>CPU speed relative to the reference machine, per region (missing region = 1).</summary>
    public required IReadOnlyDictionary<string, double> Speed { get; init; }

    /// <summary>Multiplier on package-install time (network to package indexes, caches).</summary>
    public double InstallFactor { get; init; } = 1;

    /// <summary>Sigma of the log-normal run-to-run noise on execution (noisy neighbours).</summary>
    public double Noise { get; init; } = 0.1;

    public double BaseFailureRate { get; init; } = 0.005;

    /// <summary>Control-plane round trips per run (create, upload, execute, fetch).</summary>
    public int RoundTrips { get; init; } = 4;

    /// <summary>Mean wait for capacity at load ρ is this × ρ/(1−ρ) (ms): an edge agent's lease queue, a cloud's scheduler.</summary>
    public double QueueMs { get; init; }

    /// <summary>Mean load and its day/night swing, by region.</summary>
    public double LoadBase { get; init; } = 0.4;

    public double LoadSwing { get; init; } = 0.25;

    /// <summary>Seconds billed after the run (teardown, snapshot) for clouds that bill the sandbox's lifetime.</summary>
    public double TeardownSeconds { get; init; } = 0.3;
}

/// <summary>Settings of a simulated market run.</summary>
public sealed record MarketSettings
{
    public DateTimeOffset Start { get; init; } = new(2026, 11, 28, 0, 0, 0, TimeSpan.Zero);

    public int Requests { get; init; } = 10_000;

    public double Days { get; init; } = 4;

    public int Seed { get; init; } = 42;

    /// <summary>Where the control plane runs; round trips are measured from here.</summary>
    public string HomeRegion { get; init; } = "us-east";

    /// <summary>Round-trip time from the home region, in ms.</summary>
    public IReadOnlyDictionary<string, double> RoundTripMs { get; init; } = new Dictionary<string, double>
    {
        ["us-east"] = 2, ["us-west"] = 62, ["eu-west"] = 76, ["ap-south"] = 190,
    };

    /// <summary>
    /// Round trip between two regions (ms), for a caller in one and a sandbox in the other (symmetric; same region = 1 ms).
    /// The simulator's own figures, not the router's region catalogue.
    /// </summary>
    public IReadOnlyDictionary<string, double> InterRegionRttMs { get; init; } = new Dictionary<string, double>
    {
        ["us-east|us-west"] = 62, ["us-east|eu-west"] = 76, ["us-east|ap-south"] = 190,
        ["us-west|eu-west"] = 135, ["us-west|ap-south"] = 220, ["eu-west|ap-south"] = 120,
    };

    /// <summary>Share of requests whose caller names its region (constraints.preferredRegion), and where callers are.</summary>
    public double CallerRegionShare { get; init; } = 0.35;

    public IReadOnlyList<(string Region, double Weight)> CallerRegions { get; init; } = [("eu-west", 0.55), ("us-east", 0.25), ("us-west", 0.15), ("ap-south", 0.05)];

    /// <summary>Share of requests with a hard region constraint (constraints.allowedRegions = the caller's residency set).</summary>
    public double ResidencyShare { get; init; } = 0.12;

    /// <summary>Round trips a run makes to its caller's region (fetching inputs, posting results), median per workload kind.</summary>
    public (double Snippet, double Analysis, double Batch) CallerRoundTrips { get; init; } = (4, 20, 40);

    /// <summary>UTC offset of each region, for its day/night load cycle.</summary>
    public IReadOnlyDictionary<string, double> UtcOffsetHours { get; init; } = new Dictionary<string, double>
    {
        ["us-east"] = -5, ["us-west"] = -8, ["eu-west"] = 0, ["ap-south"] = 5.5,
    };

    /// <summary>Expected outages per provider-region per day, and their length range in minutes.</summary>
    public double OutagesPerDay { get; init; } = 0.35;

    public (double Min, double Max) OutageMinutes { get; init; } = (15, 120);

    /// <summary>Expected brownouts (elevated failures, slower runs) per provider-region per day.</summary>
    public double BrownoutsPerDay { get; init; } = 0.5;

    public double BrownoutFailureRate { get; init; } = 0.25;

    public IReadOnlyList<SimulatedProvider> Providers { get; init; } = DefaultProviders();

    /// <summary>Scheduled list-price changes: (fraction of the trace elapsed, provider, new price).</summary>
    public IReadOnlyList<(double At, string Provider, PriceSheet Price)> PriceChanges { get; init; } =
    [
        (0.5, "modal", new PriceSheet { VcpuSecond = 0.00001971 * 0.75, GibSecond = 0.00000672 * 0.75, MinimumSeconds = 0, GranularitySeconds = 1 }),
    ];

    /// <summary>
    /// A market shape nobody tuned on: every hidden figure of every provider (start times, cold-start rates, CPU speed per
    /// region, install speed, noise, failure rate, queueing, load), the inter-region round trips, the share of callers that
    /// name a region and of those with a residency constraint, the caller traffic per run and the outage and brownout rates
    /// are each multiplied by a factor drawn log-uniformly from [1/2, 2] (speeds and loads from a narrower range, see the
    /// code) with <paramref name="shapeSeed"/>. List prices and billing rules stay the published ones.
    /// </summary>
    public static MarketSettings Randomized(int shapeSeed, int traceSeed, int requests = 10_000, double days = 4)
    {
        var rng = new Random(unchecked((shapeSeed * 7919) + 17));
        double F(double lo = 0.5, double hi = 2) => Math.Exp(Math.Log(lo) + (rng.NextDouble() * (Math.Log(hi) - Math.Log(lo))));
        var providers = DefaultProviders().Select(p => p with
        {
            WarmStartMs = p.WarmStartMs * F(),
            ColdStartMs = p.ColdStartMs * F(),
            ColdStartBase = Math.Min(0.3, p.ColdStartBase * F()),
            Speed = p.Speed.ToDictionary(kv => kv.Key, kv => kv.Value * F(0.7, 1.4)),
            InstallFactor = p.InstallFactor * F(),
            Noise = p.Noise * F(0.6, 1.6),
            BaseFailureRate = Math.Min(0.05, p.BaseFailureRate * F()),
            QueueMs = p.QueueMs * F(),
            LoadBase = Math.Clamp(p.LoadBase * F(0.7, 1.4), 0.1, 0.8),
            LoadSwing = Math.Clamp(p.LoadSwing * F(0.6, 1.5), 0.05, 0.45),
        }).ToList();
        var defaults = new MarketSettings();
        var callerShare = Math.Clamp(defaults.CallerRegionShare * F(), 0.1, 0.8);
        return defaults with
        {
            Seed = traceSeed,
            Requests = requests,
            Days = days,
            Providers = providers,
            InterRegionRttMs = defaults.InterRegionRttMs.ToDictionary(kv => kv.Key, kv => kv.Value * F(0.7, 1.5)),
            CallerRegionShare = callerShare,
            ResidencyShare = Math.Min(callerShare * 0.8, defaults.ResidencyShare * F()),
            CallerRegions = defaults.CallerRegions.Select(c => (c.Region, c.Weight * F())).ToList(),
            CallerRoundTrips = (defaults.CallerRoundTrips.Snippet * F(), defaults.CallerRoundTrips.Analysis * F(), defaults.CallerRoundTrips.Batch * F()),
            OutagesPerDay = defaults.OutagesPerDay * F(),
            BrownoutsPerDay = defaults.BrownoutsPerDay * F(),
        };
    }

    /// <summary>The default market: published list prices; the rest are documented assumptions.</summary>
    public static IReadOnlyList<SimulatedProvider> DefaultProviders() =>
    [
        new()
        {
            Market = new MarketProvider
            {
                Id = "e2b", Runtime = "firecracker", Isolation = [IsolationLevel.Standard, IsolationLevel.Strong, IsolationLevel.Maximum],
                Regions = ["us-east", "eu-west"],
                Price = new PriceSheet { VcpuSecond = 0.000014, GibSecond = 0.0000045, MinimumSeconds = 0, GranularitySeconds = 1 },
            },
            WarmStartMs = 180, ColdStartMs = 800, ColdStartBase = 0.03, Speed = new Dictionary<string, double> { ["us-east"] = 1.0, ["eu-west"] = 1.0 },
            InstallFactor = 1.0, Noise = 0.10, BaseFailureRate = 0.004, QueueMs = 150, LoadBase = 0.45, LoadSwing = 0.25,
        },
        new()
        {
            Market = new MarketProvider
            {
                Id = "daytona", Runtime = "container", Isolation = [IsolationLevel.Standard],
                Regions = ["us-east", "eu-west"],
                Price = new PriceSheet { VcpuSecond = 0.000014, GibSecond = 0.0000045, MinimumSeconds = 0, GranularitySeconds = 1 },
            },
            WarmStartMs = 110, ColdStartMs = 2500, ColdStartBase = 0.05, Speed = new Dictionary<string, double> { ["us-east"] = 0.95, ["eu-west"] = 0.95 },
            InstallFactor = 0.85, Noise = 0.10, BaseFailureRate = 0.006, QueueMs = 200, LoadBase = 0.4, LoadSwing = 0.3,
        },
        new()
        {
            Market = new MarketProvider
            {
                Id = "modal", Runtime = "gvisor", Isolation = [IsolationLevel.Standard, IsolationLevel.Strong],
                Regions = ["us-east", "us-west", "eu-west"],
                // $0.00003942 per physical core-second = 2 vCPU.
                Price = new PriceSheet { VcpuSecond = 0.00001971, GibSecond = 0.00000672, MinimumSeconds = 0, GranularitySeconds = 1 },
            },
            WarmStartMs = 350, ColdStartMs = 2000, ColdStartBase = 0.06, Speed = new Dictionary<string, double> { ["us-east"] = 1.3, ["us-west"] = 1.3, ["eu-west"] = 1.25 },
            InstallFactor = 0.7, Noise = 0.08, BaseFailureRate = 0.004, QueueMs = 250, LoadBase = 0.5, LoadSwing = 0.25,
        },
        new()
        {
            Market = new MarketProvider
            {
                Id = "edge", Runtime = "runsc", Isolation = [IsolationLevel.None, IsolationLevel.Standard, IsolationLevel.Strong],
                Regions = ["us-east", "eu-west", "ap-south"],
                // $0.02 per core-hour, no memory charge; leases are billed per started minute.
                Price = new PriceSheet { VcpuSecond = 0.02 / 3600, GibSecond = 0, MinimumSeconds = 60, GranularitySeconds = 60 },
            },
            WarmStartMs = 60, ColdStartMs = 400, ColdStartBase = 0.05, Speed = new Dictionary<string, double> { ["us-east"] = 0.8, ["eu-west"] = 0.75, ["ap-south"] = 0.65 },
            InstallFactor = 1.5, Noise = 0.18, BaseFailureRate = 0.015, RoundTrips = 3, QueueMs = 1200, LoadBase = 0.45, LoadSwing = 0.3, TeardownSeconds = 0,
        },
    ];
}

/// <summary>
/// Generates a market trace: requests with the outcome every feasible candidate would have had. The dynamics (cold starts,
/// load, round trips, outages, brownouts, price changes, billing rules) live here only; the replay sees the trace.
/// </summary>
public static class MarketSimulator
{
    private sealed record Incident(DateTimeOffset From, DateTimeOffset To);

    public static MarketTrace Generate(MarketSettings settings)
    {
        var rng = new Random(settings.Seed);
        var end = settings.Start + TimeSpan.FromDays(settings.Days);
        var times = ArrivalTimes(settings, rng);
        var candidates = settings.Providers.SelectMany(p => p.Market.Regions.Select(r => (P: p, Region: r))).ToList();
        var outages = candidates.ToDictionary(c => Key(c.P, c.Region), _ => Incidents(rng, settings.Start, end, settings.OutagesPerDay, settings.OutageMinutes));
        var brownouts = candidates.ToDictionary(c => Key(c.P, c.Region), _ => Incidents(rng, settings.Start, end, settings.BrownoutsPerDay, (30, 90)));
        // Slow load drift per provider-region (AR(1) on a 15-minute grid): busy spells the router cannot see coming.
        var drift = candidates.ToDictionary(c => Key(c.P, c.Region), _ => Drift(rng, settings.Days));

        var prices = settings.Providers.ToDictionary(p => p.Market.Id, p => p.Market.Price, StringComparer.Ordinal);
        var pendingPrices = settings.PriceChanges
            .Select(c => (Time: settings.Start + TimeSpan.FromDays(settings.Days * c.At), c.Provider, c.Price))
            .OrderBy(c => c.Time)
            .ToList();
        var events = new List<TraceEvent>(settings.Requests + pendingPrices.Count);
        long seq = 0;
        foreach (var time in times)
        {
            while (pendingPrices.Count > 0 && pendingPrices[0].Time <= time)
            {
                var change = pendingPrices[0];
                pendingPrices.RemoveAt(0);
                prices[change.Provider] = change.Price;
                events.Add(new TracePriceEvent(change.Time, change.Provider, change.Price));
            }

            var (request, work) = Request(settings, rng);
            var outcomes = new Dictionary<string, TraceOutcome>(StringComparer.Ordinal);
            foreach (var (p, region) in candidates)
            {
                if (!p.Market.Isolation.Contains(request.IsolationLevel))
                {
                    continue;
                }

                var key = Key(p, region);
                if (Active(outages[key], time))
                {
                    continue;
                }

                var load = Load(settings, p, region, time, drift[key]);
                outcomes[$"{p.Market.Id}/{p.Market.Runtime}/{region}"] =
                    Outcome(settings, rng, p, region, prices[p.Market.Id], request, work, load, Active(brownouts[key], time));
            }

            events.Add(new TraceRequestEvent(++seq, time, request, outcomes));
        }

        return new MarketTrace(settings.Providers.Select(p => p.Market).ToList(), events);
    }

    private static TraceOutcome Outcome(
        MarketSettings s, Random rng, SimulatedProvider p, string region, PriceSheet price, TraceRequest r, Work work, double load, bool brownout)
    {
        var speed = p.Speed.GetValueOrDefault(region, 1.0);
        var queue = p.QueueMs * load / (1 - load) * Exponential(rng);
        var coldProbability = Math.Min(0.9, p.ColdStartBase + (0.3 * load * load));
        var start = (p.WarmStartMs * (1 + load)) + (rng.NextDouble() < coldProbability ? p.ColdStartMs * LogNormal(rng, 0.3) : 0);
        var install = r.Requirements * 3000 * p.InstallFactor * LogNormal(rng, 0.25);
        var parallel = 0.4 + (0.6 / Math.Max(1, r.Cpu));
        var exec = work.Seconds * 1000 * parallel / speed * LogNormal(rng, p.Noise) * (brownout ? 1.5 : 1);
        var rtt = p.RoundTrips * s.RoundTripMs.GetValueOrDefault(region, 100);
        // The run's own traffic with its caller's services (inputs, results): the hop a region away costs every time.
        var callerIo = r.Constraints?.PreferredRegion is { } caller ? work.CallerRoundTrips * Rtt(s, caller, region) * LogNormal(rng, 0.2) : 0;
        var latency = queue + start + install + exec + rtt + callerIo;
        var lifetimeSeconds = (start + install + exec + rtt + callerIo) / 1000 + p.TeardownSeconds;
        var ok = true;
        if (latency - queue > r.Timeout)
        {
            // Killed at the timeout: the time until then is paid.
            ok = false;
            latency = queue + r.Timeout + rtt;
            lifetimeSeconds = (r.Timeout / 1000.0) + p.TeardownSeconds;
        }
        else if (rng.NextDouble() < p.BaseFailureRate + (brownout ? s.BrownoutFailureRate : 0))
        {
            // Crashed part-way (host lost, OOM on a noisy host): a share of the run is paid.
            ok = false;
            var share = 0.2 + (0.8 * rng.NextDouble());
            latency = queue + ((latency - queue) * share);
            lifetimeSeconds *= share;
        }

        var cost = (double)price.CostFor(r.Cpu, r.Memory, lifetimeSeconds);
        return new TraceOutcome(ok, Math.Round(latency, 1), cost);
    }

    private sealed record Work(double Seconds, double CallerRoundTrips);

    private static double Rtt(MarketSettings s, string a, string b) =>
        a == b ? 1 : s.InterRegionRttMs.GetValueOrDefault($"{a}|{b}") is > 0 and var x ? x : s.InterRegionRttMs.GetValueOrDefault($"{b}|{a}", 150);

    /// <summary>A request and its hidden amount of work (reference-CPU seconds), drawn from a mix of AI-agent workloads.</summary>
    private static (TraceRequest Request, Work Work) Request(MarketSettings settings, Random rng)
    {
        var kind = rng.NextDouble();
        var language = rng.NextDouble() switch { < 0.6 => Languages.Python, < 0.85 => Languages.JavaScript, _ => Languages.Bash };
        var languageFactor = language switch { Languages.Python => 1.0, Languages.JavaScript => 0.8, _ => 0.6 };
        double work, codeMedian;
        int timeout;
        double cpu;
        int memory;
        if (kind < 0.72)
        {
            // Snippets: a tool call, a quick computation.
            work = 0.8 * LogNormal(rng, 0.8);
            codeMedian = 600;
            timeout = Pick(rng, 30_000, 30_000, 60_000);
            cpu = Pick(rng, 0.5, 1.0, 1.0, 1.0);
            memory = Pick(rng, 256, 512, 512, 1024);
        }
        else if (kind < 0.92)
        {
            // Analyses: a data frame, a test suite.
            work = 20 * LogNormal(rng, 0.6);
            codeMedian = 2500;
            timeout = Pick(rng, 120_000, 180_000);
            cpu = Pick(rng, 1.0, 2.0);
            memory = Pick(rng, 1024, 2048);
        }
        else
        {
            // Batch jobs: a simulation, a model fit.
            work = 180 * LogNormal(rng, 0.5);
            codeMedian = 6000;
            timeout = Pick(rng, 600_000, 900_000);
            cpu = Pick(rng, 2.0, 4.0);
            memory = Pick(rng, 2048, 4096);
        }

        var requirements = language == Languages.Python && rng.NextDouble() < 0.55 ? 1 + rng.Next(6) : 0;
        var strategy = rng.NextDouble() < 0.5 ? RoutingStrategy.OptimizeCost : RoutingStrategy.OptimizeLatency;
        var budget = kind < 0.72 ? 0.005m : kind < 0.92 ? 0.02m : 0.2m;
        var constraints = new RunConstraints
        {
            MaxCost = rng.NextDouble() < 0.4 ? budget : null,
            MaxLatency = strategy == RoutingStrategy.OptimizeCost
                ? (rng.NextDouble() < 0.5 ? (int)(timeout * 0.8) : null)
                : (rng.NextDouble() < 0.3 ? timeout / 2 : null),
            PreferredRegion = rng.NextDouble() < settings.CallerRegionShare ? Weighted(rng, settings.CallerRegions) : null,
        };
        if (constraints.PreferredRegion is { } home && rng.NextDouble() < settings.ResidencyShare / settings.CallerRegionShare && !home.StartsWith("ap", StringComparison.Ordinal))
        {
            // Data residency: the caller's continent only (European and American callers; the market has no cloud in Asia).
            constraints = constraints with { AllowedRegions = [home.StartsWith("eu", StringComparison.Ordinal) ? "eu" : "us"] };
        }

        var io = kind < 0.72 ? settings.CallerRoundTrips.Snippet : kind < 0.92 ? settings.CallerRoundTrips.Analysis : settings.CallerRoundTrips.Batch;
        var request = new TraceRequest
        {
            Language = language,
            CodeLength = (int)Math.Max(20, codeMedian * LogNormal(rng, 0.7)),
            Requirements = requirements,
            Files = rng.Next(3),
            Cpu = cpu,
            Memory = memory,
            Timeout = timeout,
            IsolationLevel = rng.NextDouble() < 0.75 ? IsolationLevel.Standard : IsolationLevel.Strong,
            Strategy = strategy,
            Constraints = constraints.MaxCost is null && constraints.MaxLatency is null && constraints.PreferredRegion is null ? null : constraints,
        };
        return (request, new Work(work * languageFactor, io * LogNormal(rng, 0.5)));
    }

    /// <summary>Arrival times over the days, thinned by a diurnal rate peaking at 15:00 UTC (Europe's afternoon, America's morning).</summary>
    private static List<DateTimeOffset> ArrivalTimes(MarketSettings s, Random rng)
    {
        var times = new List<DateTimeOffset>(s.Requests);
        while (times.Count < s.Requests)
        {
            var offset = rng.NextDouble() * s.Days;
            var hour = (offset * 24) % 24;
            var rate = 0.55 + (0.45 * Math.Cos((hour - 15) / 24 * 2 * Math.PI));
            if (rng.NextDouble() < rate)
            {
                times.Add(s.Start + TimeSpan.FromDays(offset));
            }
        }

        times.Sort();
        return times;
    }

    private static double Load(MarketSettings s, SimulatedProvider p, string region, DateTimeOffset time, double[] drift)
    {
        var localHour = (time.UtcDateTime.TimeOfDay.TotalHours + s.UtcOffsetHours.GetValueOrDefault(region, 0) + 24) % 24;
        var diurnal = Math.Cos((localHour - 14) / 24 * 2 * Math.PI);
        var slot = Math.Clamp((int)((time - s.Start).TotalMinutes / 15), 0, drift.Length - 1);
        return Math.Clamp(p.LoadBase + (p.LoadSwing * diurnal) + drift[slot], 0.02, 0.93);
    }

    private static double[] Drift(Random rng, double days)
    {
        var slots = (int)Math.Ceiling(days * 24 * 4) + 1;
        var drift = new double[slots];
        for (var i = 1; i < slots; i++)
        {
            drift[i] = (0.9 * drift[i - 1]) + (0.05 * Normal(rng));
        }

        return drift;
    }

    private static List<Incident> Incidents(Random rng, DateTimeOffset start, DateTimeOffset end, double perDay, (double Min, double Max) minutes)
    {
        var list = new List<Incident>();
        var t = start;
        while (true)
        {
            t += TimeSpan.FromDays(Exponential(rng) / perDay);
            if (t >= end)
            {
                return list;
            }

            var length = TimeSpan.FromMinutes(minutes.Min + ((minutes.Max - minutes.Min) * rng.NextDouble()));
            list.Add(new Incident(t, t + length));
            t += length;
        }
    }

    private static bool Active(List<Incident> incidents, DateTimeOffset time) => incidents.Any(i => i.From <= time && time < i.To);

    private static string Key(SimulatedProvider p, string region) => $"{p.Market.Id}/{region}";

    private static T Pick<T>(Random rng, params T[] values) => values[rng.Next(values.Length)];

    private static string Weighted(Random rng, IReadOnlyList<(string Value, double Weight)> choices)
    {
        var x = rng.NextDouble() * choices.Sum(c => c.Weight);
        foreach (var (value, weight) in choices)
        {
            x -= weight;
            if (x <= 0)
            {
                return value;
            }
        }

        return choices[^1].Value;
    }

    private static double Exponential(Random rng) => -Math.Log(1 - rng.NextDouble());

    private static double Normal(Random rng) => Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble());

    /// <summary>Median-1 log-normal factor.</summary>
    private static double LogNormal(Random rng, double sigma) => Math.Exp(sigma * Normal(rng));
}
