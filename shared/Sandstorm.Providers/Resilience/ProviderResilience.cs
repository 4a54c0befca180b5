using Microsoft.Extensions.DependencyInjection;
using Polly;
using Polly.CircuitBreaker;
using Polly.Retry;
using Polly.Timeout;
using Sandstorm.Providers.Cloud;
using Sandstorm.Providers.Health;

namespace Sandstorm.Providers.Resilience;

/// <summary>
/// One Polly v8 pipeline per provider, registered under the provider id ("e2b", "daytona", "modal", "aca"):
/// retry (outermost; idempotent calls, or calls that provably never left) → circuit breaker (the provider's own failures,
/// shared by all calls) → timeout (per attempt). Outside it, <see cref="ProviderCaller"/> runs a per-tenant breaker
/// (<see cref="TenantBreakers"/>) for the rejections a tenant brings on itself. Each call says whether it is idempotent
/// and how long one attempt may take through the <see cref="ResilienceContext"/>.
/// </summary>
public static class ProviderResilience
{
    /// <summary>
    /// True when the call may be repeated safely (DELETE, GET, timeout refresh). Create and process start are not: they are
    /// repeated only when the attempt provably never reached the provider (<see cref="ProviderErrors.NotDelivered"/>).
    /// </summary>
    public static readonly ResiliencePropertyKey<bool> Idempotent = new("sandstorm.idempotent");

    /// <summary>Time one attempt may take.</summary>
    public static readonly ResiliencePropertyKey<TimeSpan> AttemptTimeout = new("sandstorm.attempt-timeout");

    /// <summary>Registers the pipeline of <paramref name="provider"/> and links its breaker to the provider's health window.</summary>
    public static IServiceCollection AddProviderPipeline(this IServiceCollection services, string provider, CloudProviderOptions options)
    {
        services.AddResiliencePipeline(provider, (builder, context) =>
        {
            var health = context.ServiceProvider.GetRequiredService<ProviderHealthMonitor>().For(provider);
            var breakerState = new CircuitBreakerStateProvider();
            health.Breaker = breakerState;
            health.Tenants = new TenantBreakers(options, context.ServiceProvider.GetService<TimeProvider>() ?? TimeProvider.System);

            builder
                .AddRetry(new RetryStrategyOptions
                {
                    MaxRetryAttempts = Math.Max(1, options.MaxRetries),
                    BackoffType = DelayBackoffType.Exponential,
                    UseJitter = true,
                    Delay = options.RetryBaseDelay,
                    MaxDelay = options.MaxRetryAfter,
                    // A call that is not idempotent (create, process start) is repeated only when the attempt never left:
                    // a repeat after the request may have arrived could leak a sandbox or run the code twice.
                    ShouldHandle = args => ValueTask.FromResult(
                        IsTransient(args.Outcome.Exception)
                        && (args.Context.Properties.GetValue(Idempotent, false) || ProviderErrors.NotDelivered(args.Outcome.Exception))),
                    // The provider knows best when it can take us again: honour Retry-After on 429/503.
                    DelayGenerator = args => ValueTask.FromResult(RetryAfterOf(args.Outcome.Exception, options.MaxRetryAfter)),
                })
                .AddCircuitBreaker(new CircuitBreakerStrategyOptions
                {
                    FailureRatio = options.BreakerFailureRatio,
                    MinimumThroughput = Math.Max(2, options.BreakerMinimumThroughput),
                    SamplingDuration = options.BreakerSamplingDuration,
                    BreakDuration = options.BreakerBreakDuration,
                    StateProvider = breakerState,
                    // The provider's own failures only: a tenant's 429s and quota errors open that tenant's breaker instead.
                    ShouldHandle = args => ValueTask.FromResult(IsTransient(args.Outcome.Exception) && !IsTenantRejection(args.Outcome.Exception)),
                })
                .AddTimeout(new TimeoutStrategyOptions
                {
                    TimeoutGenerator = args => ValueTask.FromResult(
                        args.Context.Properties.GetValue(AttemptTimeout, options.RequestTimeout)),
                });
        });
        return services;
    }

    /// <summary>Failures that say nothing about the request itself: worth retrying (if idempotent) and counted by the breaker.</summary>
    public static bool IsTransient(Exception? exception) => exception switch
    {
        ProviderException pe => pe.Transient,
        TimeoutRejectedException => true,
        _ => false,
    };

    /// <summary>
    /// A rejection the tenant brought on itself: a rate limit or concurrency cap (429, RESOURCE_EXHAUSTED) or an exhausted
    /// quota. It counts against that tenant's breaker, never the provider's, and is not a sample of the provider's health.
    /// </summary>
    public static bool IsTenantRejection(Exception? exception) =>
        exception is ProviderException { Code: CloudErrorCodes.RateLimited or CloudErrorCodes.QuotaExceeded };

    private static TimeSpan? RetryAfterOf(Exception? exception, TimeSpan max)
    {
        if (exception is ProviderException { InnerException: HttpStatusFailure { RetryAfter: { } retryAfter } })
        {
            // A wait longer than we are willing to block is still capped, not ignored: the caller gets a failure after it.
            return retryAfter <= max ? retryAfter : max;
        }

        return null;
    }
}
