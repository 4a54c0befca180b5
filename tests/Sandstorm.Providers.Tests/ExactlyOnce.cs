using Sandstorm.Core.Contracts;
using Sandstorm.Providers.Cloud;
using Sandstorm.Providers.StandIns;

namespace Sandstorm.Providers.Tests;

/// <summary>The checks every fault test makes: the code ran at most once, nothing is left allocated, the outcome says what happened.</summary>
internal static class ExactlyOnce
{
    /// <summary>Prints "a", works for a while, prints "b": long enough for a fault to strike while it runs.</summary>
    public const string LongCode = "import time\nprint('a', flush=True)\ntime.sleep(4)\nprint('b')";

    public static void Check(RunAttempt run, Expect expect, ICloudStandIn standIn, string runId, int executions, bool released = true)
    {
        Assert.Equal(executions, standIn.ExecutionsFor(runId));
        if (released)
        {
            Assert.Equal(0, standIn.LiveFor(runId));
        }

        switch (expect)
        {
            case Expect.Succeeds:
                Assert.Null(run.ProvisionError);
                Assert.Null(run.ExecuteError);
                Assert.Equal(0, run.Result!.ExitCode);
                Assert.Contains("b", run.Result.Stdout, StringComparison.Ordinal);
                Assert.False(run.Result.Truncated);
                break;
            case Expect.SucceedsReattached:
                Assert.Null(run.ProvisionError);
                Assert.True(run.ExecuteError is null, run.ExecuteError?.Message);
                Assert.Equal(0, run.Result!.ExitCode);
                Assert.EndsWith("b\n", run.Result.Stdout, StringComparison.Ordinal);
                // envd does not replay what was written while detached: the output is marked as possibly incomplete.
                Assert.True(run.Result.StdoutTruncated);
                break;
            case Expect.ProvisionFails:
                Assert.NotNull(run.ProvisionError);
                Assert.True(run.ProvisionError.Transient, run.ProvisionError.Message);
                Assert.Null(run.Lease);
                break;
            case Expect.NeverStarted:
                Assert.Null(run.Result);
                Assert.NotNull(run.ExecuteError);
                Assert.True(run.ExecuteError.NeverStarted, run.ExecuteError.Message);
                break;
            case Expect.TimedOut:
                Assert.Null(run.ExecuteError);
                Assert.True(run.Result!.TimedOut);
                Assert.Null(run.Result.ExitCode);
                break;
            case Expect.Interrupted:
                Assert.Null(run.Result);
                Assert.NotNull(run.ExecuteError);
                Assert.Equal(CloudErrorCodes.ExecutionInterrupted, run.ExecuteError.Code);
                Assert.False(run.ExecuteError.Transient);
                Assert.False(run.ExecuteError.NeverStarted);
                break;
        }
    }

    /// <summary>A quick run with a short deadline, for synchronous APIs where a lost answer costs the whole deadline.</summary>
    public static ExecutionSpec QuickSpec() => ProviderHarness.Spec("print('a')\nprint('b')", timeout: TimeSpan.FromSeconds(10));

    public static ExecutionSpec LongSpec(TimeSpan? timeout = null) => ProviderHarness.Spec(LongCode, timeout: timeout ?? TimeSpan.FromSeconds(20));
}
