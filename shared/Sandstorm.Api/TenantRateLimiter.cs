using System.Globalization;
using System.Threading.RateLimiting;
using Sandstorm.Core.Errors;
using Sandstorm.Storage;

namespace Sandstorm.Api;

/// <summary>What a tenant is rate-limited on.</summary>
public enum RateLimitedAction
{
    SubmitRun,
    SubmitBatch,
}

/// <summary>
/// Per-tenant token buckets for run and batch submission, sized by each tenant's <see cref="Core.Contracts.TenantSettings"/>:
/// one tenant's bursts never spend another's tokens. A refusal is a 429 <c>quota-exceeded</c> with <c>Retry-After</c>.
/// Limits hold per process (each host instance counts its own submissions).
/// </summary>
public sealed class TenantRateLimiter(TenantStore tenants) : IDisposable
{
    // The partition key carries the limits, so changed settings get a fresh bucket; idle buckets are dropped by the
    // partitioned limiter itself, so unknown or departed tenants do not accumulate.
    private readonly PartitionedRateLimiter<Partition> _limiter = PartitionedRateLimiter.Create<Partition, Partition>(
        key => RateLimitPartition.GetTokenBucketLimiter(key, k => k.Options()));

    /// <summary>Takes one token of <paramref name="action"/> for <paramref name="tenantId"/>, or throws the 429.</summary>
    public async Task AcquireAsync(string tenantId, RateLimitedAction action, CancellationToken cancellationToken)
    {
        var settings = await tenants.GetAsync(tenantId, cancellationToken);
        var (perMinute, burst, what) = action switch
        {
            RateLimitedAction.SubmitRun => (settings.RunsPerMinute, settings.RunBurst, "runs"),
            _ => (settings.BatchesPerMinute, settings.BatchBurst, "batches"),
        };
        if (perMinute <= 0)
        {
            return;
        }

        var partition = new Partition(tenantId, action, perMinute, Math.Max(1, burst));
        using var lease = _limiter.AttemptAcquire(partition);
        if (!lease.IsAcquired)
        {
            var after = lease.TryGetMetadata(MetadataName.RetryAfter, out var retryAfter) ? retryAfter : partition.Period;
            throw new SandstormException(
                ErrorCodes.QuotaExceeded,
                string.Create(CultureInfo.InvariantCulture, $"this tenant may submit {perMinute} {what} a minute (bursts of {partition.Burst}); try again in {Math.Max(1, (int)Math.Ceiling(after.TotalSeconds))} s"),
                429)
            { RetryAfter = after };
        }
    }

    public void Dispose() => _limiter.Dispose();

    private readonly record struct Partition(string TenantId, RateLimitedAction Action, int PerMinute, int Burst)
    {
        // At least a token a second when the rate allows it; slower rates add one token per 60/perMinute seconds.
        public TimeSpan Period => PerMinute >= 60 ? TimeSpan.FromSeconds(1) : TimeSpan.FromSeconds(60.0 / PerMinute);

        public TokenBucketRateLimiterOptions Options() => new()
        {
            TokenLimit = Burst,
            TokensPerPeriod = PerMinute >= 60 ? PerMinute / 60 : 1,
            ReplenishmentPeriod = Period,
            AutoReplenishment = true,
            QueueLimit = 0,
        };
    }
}
