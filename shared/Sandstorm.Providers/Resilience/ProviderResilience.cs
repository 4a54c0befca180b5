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
/// retry (outermost; idempotent calls only) → circuit breaker (shared by all calls of the provider) → timeout (per attempt).
/// Each call says whether it is idempotent and how long one attempt may take through the <see cref="ResilienceContext"/>.
/// </summary>
public static class ProviderResilience
{
    /// <summary>True when the call may be repeated safely (DELETE, GET, timeout refresh). Create and process start are not.</summary>
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

            builder
                .AddRetry(new RetryStrategyOptions
                {
                    MaxRetryAttempts = Math.Max(1, options.MaxRetries),
                    BackoffType = DelayBackoffType.Exponential,
                    UseJitter = true,
                    Delay = options.RetryBaseDelay,
                    MaxDelay = options.MaxRetryAfter,
                    ShouldHandle = args => ValueTask.FromResult(
                        args.Context.Properties.GetValue(Idempotent, false) && IsTransient(args.Outcome.Exception)),
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
                    ShouldHandle = args => ValueTask.FromResult(IsTransient(args.Outcome.Exception)),
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
