using System.Diagnostics;
using System.Globalization;
using Sandstorm.Core.Contracts;
using Sandstorm.Runtimes;

namespace Sandstorm.Edge.Commands;

/// <summary>
/// <c>sandstorm-edge bench</c>: start-up overhead of every working runtime against the bare interpreter, for a
/// hello-world in each language. Runtimes are interleaved within each iteration, in an order that rotates from one
/// iteration to the next, so machine noise (and being first or last) hits all alike; besides p50/p95 and the ratio
/// of medians, each runtime's paired ratio is the median over iterations of its time divided by the bare time of
/// the same iteration, which shrugs off load that drifts during the run.
/// </summary>
public sealed class BenchCommand : IEdgeCommand
{
    private const string Bare = "bare";

    private static readonly Dictionary<string, string> Hello = new(StringComparer.Ordinal)
    {
        [Languages.Python] = "print('hello')",
        [Languages.JavaScript] = "console.log('hello')",
        [Languages.Bash] = "echo hello",
    };

    public string Name => "bench";

    public string Summary => "measure sandbox start-up overhead of each working runtime against the bare process";

    public string Usage => """
        usage: sandstorm-edge bench [--iterations N] [--runtimes a,b,...] [--languages python,javascript,bash] [--concurrency N]
          --iterations   measured runs per runtime and language (default 30; one warm-up run is not counted)
          --runtimes     runtimes to include (default: every working one, plus gvisor-cold)
          --concurrency  also measure throughput: runs/s with N executions at once, 3 rounds of max(iterations, 4N)
                         runs per runtime and language, interleaved; the median round is printed (gVisor keeps one
                         warm sandbox here, so at concurrency most of its executions boot their own)
        Figures are end-to-end wall times of ExecuteAsync (cgroup, scratch, launch, run, cleanup); "bare" starts the
        interpreter directly on the same script, with the same flags and environment, and nothing else. "gvisor" runs
        as the agent runs it, in a sandbox booted ahead (each measurement waits until one is); "gvisor-cold" boots one
        per execution.
        """;

    public async Task<int> RunAsync(IReadOnlyList<string> args, EdgeContext context, CancellationToken ct)
    {
        var parsed = ParsedArguments.Parse(args, ["iterations", "runtimes", "languages", "concurrency"], []);
        var iterations = parsed.Int("iterations", 30, 1, 10_000);
        var concurrency = parsed.Int("concurrency", 1, 1, 256);
        var languages = Split(parsed.Value("languages")) ?? [.. Languages.Supported];
        foreach (var language in languages.Where(l => !Languages.IsSupported(l)))
        {
            throw new UsageException($"unsupported language '{language}'");
        }

        var wanted = Split(parsed.Value("runtimes"));
        // As the agent runs them: gVisor with a warm sandbox at hand. Its cold start (booting a sandbox per
        // execution, what a burst beyond the pool gets) is measured too, as "gvisor-cold".
        var options = context.RuntimeOptions with { WarmGvisorSandboxes = 1 };
        var all = context.CreateRuntimes(options).Select(r => (Label: r.Name, Runtime: r)).ToList();
        if (all.Any(r => r.Runtime is GvisorRuntime))
        {
            all.Add(("gvisor-cold", new GvisorRuntime(context.RuntimeOptions)));
        }

        var runtimes = new List<(string Label, ISandboxRuntime Runtime)>();
        foreach (var (label, runtime) in all)
        {
            if (wanted is not null && !wanted.Contains(label))
            {
                continue;
            }

            var probe = await runtime.ProbeAsync(ct);
            if (probe.Works)
            {
                runtimes.Add((label, runtime));
            }
            else
            {
                await context.Error.WriteLineAsync($"skipping {label}: {probe.Reason}");
            }
        }

        // A microVM boots per execution (seconds under TCG): measured on its own, a few runs of python beside bare python.
        var microVm = runtimes.FirstOrDefault(r => r.Runtime is MicroVmRuntime);
        runtimes.RemoveAll(r => r.Runtime is MicroVmRuntime);
        try
        {
            if (microVm.Runtime is MicroVmRuntime vm)
            {
                await MeasureMicroVmAsync(vm, Math.Min(iterations, 5), context, ct);
            }

            var exit = runtimes.Count == 0 && microVm.Runtime is not null ? 0 : await MeasureAsync(runtimes, languages, iterations, context, ct);
            if (exit == 0 && concurrency > 1)
            {
                await MeasureThroughputAsync(runtimes, languages, Math.Max(iterations, 4 * concurrency), concurrency, context, ct);
            }

            return exit;
        }
        finally
        {
            foreach (var (_, runtime) in all)
            {
                if (runtime is IAsyncDisposable disposable)
                {
                    await disposable.DisposeAsync();
                }
            }
        }
    }

    private static async Task<int> MeasureAsync(List<(string Label, ISandboxRuntime Runtime)> runtimes, string[] languages, int iterations, EdgeContext context, CancellationToken ct)
    {
        var samples = new Dictionary<(string Runtime, string Language), List<double>>();
        var paired = new Dictionary<(string Runtime, string Language), List<double>>();
        string[] contenders = [Bare, .. runtimes.Select(r => r.Label)];
        var bareDir = Directory.CreateTempSubdirectory("sandstorm-bench-");
        try
        {
            for (var i = 0; i <= iterations; i++)
            {
                foreach (var language in languages)
                {
                    var spec = new ExecutionSpec { Language = language, Code = Hello[language], MemoryMiB = 256, Timeout = TimeSpan.FromSeconds(60) };
                    var times = new Dictionary<string, double>(StringComparer.Ordinal);
                    for (var k = 0; k < contenders.Length; k++)
                    {
                        var name = contenders[(i + k) % contenders.Length];

                        // A warm sandbox booting in the background would slow whatever is measured next.
                        await WaitWarmAsync(runtimes, ct);
                        times[name] = name == Bare
                            ? await RunBareAsync(spec, bareDir.FullName, ct)
                            : await RunSandboxAsync(runtimes.Single(r => r.Label == name).Runtime, spec, language, context, ct);
                        Record(samples, i, name, language, times[name]);
                    }

                    foreach (var (name, ms) in times)
                    {
                        Record(paired, i, name, language, ms / times[Bare]);
                    }
                }

                await context.Error.WriteAsync(i == 0 ? "warm-up done; measuring" : ".");
            }
        }
        finally
        {
            bareDir.Delete(recursive: true);
        }

        await context.Error.WriteLineAsync();
        await context.Out.WriteLineAsync($"start-up of hello-world, {iterations} iterations, wall ms end to end (ratio = p50 / bare p50; paired = median of per-iteration runtime / bare)");
        await context.Out.WriteLineAsync($"{"language",-11}{"runtime",-10}{"p50",9}{"p95",9}{"ratio",8}{"paired",8}");
        foreach (var language in languages)
        {
            var bareP50 = Percentile(samples[(Bare, language)], 50);
            foreach (var name in contenders)
            {
                var values = samples[(name, language)];
                var p50 = Percentile(values, 50);
                await context.Out.WriteLineAsync(string.Create(
                    CultureInfo.InvariantCulture,
                    $"{language,-11}{name,-10}{p50,9:F1}{Percentile(values, 95),9:F1}{p50 / bareP50,7:F2}x{Percentile(paired[(name, language)], 50),7:F2}x"));
            }
        }

        foreach (var (label, runtime) in runtimes)
        {
            if (runtime is GvisorRuntime { WarmClaims: > 0 } gvisor)
            {
                var executions = (iterations + 1) * languages.Length;
                await context.Out.WriteLineAsync($"{label}: {gvisor.WarmClaims} of {executions} executions ran in a warm sandbox");
            }
        }

        return 0;
    }

    // Runs/s with `concurrency` executions in flight: each block is `runs` executions of one contender fed by
    // `concurrency` workers; contenders take turns block by block in a rotating order, three rounds, and the median
    // round is printed, so drifting machine load hits all alike.
    private static async Task MeasureThroughputAsync(List<(string Label, ISandboxRuntime Runtime)> runtimes, string[] languages, int runs, int concurrency, EdgeContext context, CancellationToken ct)
    {
        const int Rounds = 3;
        string[] contenders = [Bare, .. runtimes.Select(r => r.Label)];
        var rates = new Dictionary<(string Runtime, string Language), List<double>>();
        var bareDirs = Enumerable.Range(0, concurrency).Select(_ => Directory.CreateTempSubdirectory("sandstorm-bench-")).ToArray();
        try
        {
            for (var round = 0; round < Rounds; round++)
            {
                foreach (var language in languages)
                {
                    var spec = new ExecutionSpec { Language = language, Code = Hello[language], MemoryMiB = 256, Timeout = TimeSpan.FromSeconds(60) };
                    for (var k = 0; k < contenders.Length; k++)
                    {
                        var name = contenders[(round + k) % contenders.Length];
                        var runtime = runtimes.SingleOrDefault(r => r.Label == name).Runtime;
                        await WaitWarmAsync(runtimes, ct);
                        var next = 0;
                        var started = Stopwatch.GetTimestamp();
                        await Task.WhenAll(Enumerable.Range(0, concurrency).Select(worker => Task.Run(
                            async () =>
                            {
                                while (Interlocked.Increment(ref next) <= runs)
                                {
                                    _ = runtime is null
                                        ? await RunBareAsync(spec, bareDirs[worker].FullName, ct)
                                        : await RunSandboxAsync(runtime, spec, language, context, ct);
                                }
                            },
                            ct)));
                        Record(rates, round + 1, name, language, runs / Stopwatch.GetElapsedTime(started).TotalSeconds);
                    }
                }

                await context.Error.WriteAsync(".");
            }
        }
        finally
        {
            foreach (var directory in bareDirs)
            {
                directory.Delete(recursive: true);
            }
        }

        await context.Error.WriteLineAsync();
        await context.Out.WriteLineAsync($"throughput of hello-world at concurrency {concurrency}, {runs} runs per block, median of {Rounds} rounds");
        await context.Out.WriteLineAsync($"{"language",-11}{"runtime",-10}{"runs/s",9}{"ratio",8}");
        foreach (var language in languages)
        {
            var bare = Percentile(rates[(Bare, language)], 50);
            foreach (var name in contenders)
            {
                var rate = Percentile(rates[(name, language)], 50);
                await context.Out.WriteLineAsync(string.Create(CultureInfo.InvariantCulture, $"{language,-11}{name,-10}{rate,9:F1}{rate / bare,7:F2}x"));
            }
        }
    }

    private static async Task WaitWarmAsync(List<(string Label, ISandboxRuntime Runtime)> runtimes, CancellationToken ct)
    {
        foreach (var (label, runtime) in runtimes)
        {
            if (runtime is GvisorRuntime gvisor && !await gvisor.WaitWarmAsync(TimeSpan.FromSeconds(60), ct))
            {
                throw new InvalidOperationException($"{label}: no warm sandbox after 60 s");
            }
        }
    }

    private static void Record(Dictionary<(string, string), List<double>> samples, int iteration, string runtime, string language, double ms)
    {
        if (iteration == 0)
        {
            return;
        }

        if (!samples.TryGetValue((runtime, language), out var list))
        {
            samples[(runtime, language)] = list = [];
        }

        list.Add(ms);
    }

    // Cold boot: end-to-end time of an execution minus the time its code ran in the guest (QEMU start, kernel, init,
    // job transfer, teardown). Command overhead: the in-guest time of print('hello') minus bare python's.
    private static async Task MeasureMicroVmAsync(MicroVmRuntime runtime, int iterations, EdgeContext context, CancellationToken ct)
    {
        var spec = new ExecutionSpec { Language = Languages.Python, Code = Hello[Languages.Python], MemoryMiB = 256, Timeout = TimeSpan.FromSeconds(60), IsolationLevel = IsolationLevel.Maximum };
        var bareDir = Directory.CreateTempSubdirectory("sandstorm-bench-");
        List<double> total = [], boot = [], command = [], bare = [];
        try
        {
            for (var i = 0; i <= iterations; i++)
            {
                var started = Stopwatch.GetTimestamp();
                var result = await runtime.ExecuteAsync(spec, ct);
                var elapsed = Stopwatch.GetElapsedTime(started).TotalMilliseconds;
                if (result.ExitCode != 0 || result.Stdout.Trim() != "hello")
                {
                    await context.Error.WriteLineAsync($"{runtime.Name}/python: unexpected result (exit {result.ExitCode}): {result.Stderr.Trim()}");
                }

                var bareMs = await RunBareAsync(spec, bareDir.FullName, ct);
                if (i == 0)
                {
                    continue;
                }

                total.Add(elapsed);
                boot.Add(elapsed - result.WallTimeMs);
                command.Add(result.WallTimeMs);
                bare.Add(bareMs);
            }
        }
        finally
        {
            bareDir.Delete(recursive: true);
        }

        static string Ms(double value) => value.ToString("F0", CultureInfo.InvariantCulture) + " ms";
        await context.Out.WriteLineAsync($"qemu-microvm (python, {iterations} runs after a warm-up, accelerator {runtime.Accelerator}), medians:");
        await context.Out.WriteLineAsync($"  cold boot (QEMU start to guest ready, plus teardown)  {Ms(Percentile(boot, 50))}");
        await context.Out.WriteLineAsync($"  warm-pool ready                                       not measured: no warm pool yet, every run boots");
        await context.Out.WriteLineAsync($"  command in the guest                                  {Ms(Percentile(command, 50))}  (bare python {Ms(Percentile(bare, 50))}, overhead {Ms(Percentile(command, 50) - Percentile(bare, 50))})");
        await context.Out.WriteLineAsync($"  end to end                                            {Ms(Percentile(total, 50))}  ({(Percentile(total, 50) / Percentile(bare, 50)).ToString("F0", CultureInfo.InvariantCulture)}x bare python)");
    }

    private static async Task<double> RunSandboxAsync(ISandboxRuntime runtime, ExecutionSpec spec, string language, EdgeContext context, CancellationToken ct)
    {
        var started = Stopwatch.GetTimestamp();
        var result = await runtime.ExecuteAsync(spec, ct);
        var elapsed = Stopwatch.GetElapsedTime(started).TotalMilliseconds;
        if (result.ExitCode != 0 || result.Stdout.Trim() != "hello")
        {
            await context.Error.WriteLineAsync($"{runtime.Name}/{language}: unexpected result (exit {result.ExitCode}): {result.Stderr.Trim()}");
        }

        return elapsed;
    }

    // The baseline: the same interpreter with the same flags and environment on the same script, started directly
    // with captured output.
    private static async Task<double> RunBareAsync(ExecutionSpec spec, string directory, CancellationToken ct)
    {
        var path = Path.Combine(directory, Languages.MainFile(spec.Language));
        await File.WriteAllTextAsync(path, spec.Code, ct);
        var (command, arguments) = Languages.Interpreter(spec.Language);
        // stdin closed as in the runtimes, so no interpreter behaves differently for the baseline.
        var psi = new ProcessStartInfo(command) { UseShellExecute = false, RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = directory };
        foreach (var argument in arguments)
        {
            psi.ArgumentList.Add(argument);
        }

        psi.ArgumentList.Add(path);

        // Like with like: the sandboxes' own environment rather than this process's (which may carry PYTHON* settings).
        psi.Environment.Clear();
        foreach (var (key, value) in SandboxRuntimeBase.BaseEnvironment(directory))
        {
            psi.Environment[key] = value;
        }

        var started = Stopwatch.GetTimestamp();
        using var process = Process.Start(psi)!;
        process.StandardInput.Close();
        var output = process.StandardOutput.ReadToEndAsync(ct);
        var error = process.StandardError.ReadToEndAsync(ct);
        await process.WaitForExitAsync(ct);
        await output;
        await error;
        return Stopwatch.GetElapsedTime(started).TotalMilliseconds;
    }

    private static double Percentile(List<double> values, int percentile)
    {
        var sorted = values.Order().ToArray();
        var rank = (int)Math.Ceiling(percentile / 100.0 * sorted.Length) - 1;
        return sorted[Math.Clamp(rank, 0, sorted.Length - 1)];
    }

    private static string[]? Split(string? list) =>
        list?.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
}
