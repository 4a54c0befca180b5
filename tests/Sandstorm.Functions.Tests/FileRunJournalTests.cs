using Sandstorm.Core.Contracts;
using Sandstorm.Local;
using Sandstorm.Orchestrations;

namespace Sandstorm.Functions.Tests;

/// <summary>The local host's intake journal on a real file: what survives a reopen (a restart after a crash) and what does not.</summary>
public sealed class FileRunJournalTests : IDisposable
{
    private readonly string _state = Directory.CreateTempSubdirectory("sandstorm-journal-").FullName;

    public void Dispose() => Directory.Delete(_state, recursive: true);

    [Fact]
    public async Task Reopen_AcceptedAndStartedRuns_AreKeptWithTheirStartMark()
    {
        using (var journal = new FileRunJournal(_state, TimeProvider.System))
        {
            await journal.AcceptedAsync(Run("run_a"), CancellationToken.None);
            await journal.AcceptedAsync(Run("run_b"), CancellationToken.None);
            Assert.True(await journal.StartingAsync("run_a", CancellationToken.None));
        }

        using var reopened = new FileRunJournal(_state, TimeProvider.System);
        Assert.Equal(["run_a", "run_b"], reopened.Runs.Select(r => r.RunId).Order());
        Assert.True(reopened.Runs.Single(r => r.RunId == "run_a").Started);
        Assert.False(reopened.Runs.Single(r => r.RunId == "run_b").Started);
        Assert.Equal("print(1)", reopened.Runs[0].Request.Code);
        // A redelivered Execute after the restart must not start the code again.
        Assert.False(await reopened.StartingAsync("run_a", CancellationToken.None));
        Assert.True(await reopened.StartingAsync("run_b", CancellationToken.None));
    }

    [Fact]
    public async Task StartingAsync_AfterNeverStarted_MayStartAgain()
    {
        using var journal = new FileRunJournal(_state, TimeProvider.System);
        await journal.AcceptedAsync(Run("run_a"), CancellationToken.None);
        Assert.True(await journal.StartingAsync("run_a", CancellationToken.None));
        Assert.False(await journal.StartingAsync("run_a", CancellationToken.None));
        await journal.NeverStartedAsync("run_a", CancellationToken.None);
        Assert.True(await journal.StartingAsync("run_a", CancellationToken.None));
    }

    [Fact]
    public async Task AcceptedAsync_AfterTheCodeStarted_CarriesTheStartMark()
    {
        using (var journal = new FileRunJournal(_state, TimeProvider.System))
        {
            // Execute can run before the acceptance that follows scheduling is appended.
            Assert.True(await journal.StartingAsync("run_a", CancellationToken.None));
            await journal.AcceptedAsync(Run("run_a"), CancellationToken.None);
            Assert.True(await journal.StartingAsync("run_b", CancellationToken.None));
            await journal.NeverStartedAsync("run_b", CancellationToken.None);
            await journal.AcceptedAsync(Run("run_b"), CancellationToken.None);
        }

        using var reopened = new FileRunJournal(_state, TimeProvider.System);
        Assert.True(reopened.Runs.Single(r => r.RunId == "run_a").Started);
        Assert.False(reopened.Runs.Single(r => r.RunId == "run_b").Started);
    }

    [Fact]
    public async Task Reopen_TornLastLine_IsIgnored()
    {
        using (var journal = new FileRunJournal(_state, TimeProvider.System))
        {
            await journal.AcceptedAsync(Run("run_a"), CancellationToken.None);
        }

        // A crash in the middle of an append (never acknowledged) leaves a partial line.
        await File.AppendAllTextAsync(Path.Combine(_state, FileRunJournal.FileName), "{\"accepted\":{\"runId\":\"run_b\",\"ten");
        using var reopened = new FileRunJournal(_state, TimeProvider.System);
        Assert.Equal(["run_a"], reopened.Runs.Select(r => r.RunId));
        await reopened.AcceptedAsync(Run("run_c"), CancellationToken.None);
        reopened.Dispose();
        using var again = new FileRunJournal(_state, TimeProvider.System);
        Assert.Equal(["run_a", "run_c"], again.Runs.Select(r => r.RunId).Order());
    }

    [Fact]
    public async Task Drop_SettledRun_IsGoneAfterReopen_OthersKept()
    {
        using (var journal = new FileRunJournal(_state, TimeProvider.System))
        {
            await journal.AcceptedAsync(Run("run_a"), CancellationToken.None);
            await journal.AcceptedAsync(Run("run_b"), CancellationToken.None);
            journal.Settled("run_a");
            Assert.Empty(journal.SettledBefore(DateTimeOffset.UtcNow.AddMinutes(-1)));
            var saved = journal.SettledBefore(DateTimeOffset.UtcNow.AddSeconds(1));
            Assert.Equal(["run_a"], saved);
            journal.Drop(saved);
            await journal.AcceptedAsync(Run("run_c"), CancellationToken.None);
        }

        using var reopened = new FileRunJournal(_state, TimeProvider.System);
        Assert.Equal(["run_b", "run_c"], reopened.Runs.Select(r => r.RunId).Order());
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(Path.Combine(_state, FileRunJournal.FileName)));
    }

    private static JournaledRun Run(string id) => new()
    {
        RunId = id,
        TenantId = "dev",
        Request = new RunRequest { Code = "print(1)", Language = "python" },
        RequestHash = "hash",
        DeadlineMs = 60_000,
        SubmittedAt = DateTimeOffset.UtcNow,
    };
}
