using Microsoft.Extensions.Logging;
using Polly;
using Polly.CircuitBreaker;
using Polly.Timeout;
using Sandstorm.Providers.Cloud;
using Sandstorm.Providers.Health;

namespace Sandstorm.Providers.Resilience;

/// <summary>
/// Runs one provider operation through the tenant's breaker and the provider's pipeline, records its latency and outcome
/// in the health window, and turns Polly's own exceptions (timeout, open circuit) into <see cref="ProviderException"/>s.
/// </summary>
public sealed class ProviderCaller
{
    private readonly string _provider;
    private readonly ResiliencePipeline _pipeline;
    private readonly ProviderHealthWindow _health;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;

    public ProviderCaller(string provider, ResiliencePipeline pipeline, ProviderHealthWindow health, TimeProvider time, ILogger logger)
    {
        _provider = provider;
        _pipeline = pipeline;
        _health = health;
        _time = time;
        _logger = logger;
    }

    public ProviderHealthWindow Health => _health;

    /// <param name="tenant">The tenant the call is made for: its rejections (429, quota) count against its own breaker only.</param>
    public async Task<T> RunAsync<T>(
        string operation,
        bool idempotent,
        TimeSpan attemptTimeout,
        Func<CancellationToken, Task<T>> call,
        CancellationToken cancellationToken,
        bool sampleLatency = true,
        string? tenant = null)
    {
        var context = ResilienceContextPool.Shared.Get(operation, cancellationToken);
        context.Properties.Set(ProviderResilience.Idempotent, idempotent);
        context.Properties.Set(ProviderResilience.AttemptTimeout, attemptTimeout);
        var tenantBreaker = tenant is not null && _health.Tenants is { } tenants ? tenants.For(tenant) : ResiliencePipeline.Empty;
        var started = _time.GetTimestamp();
        try
        {
            var result = await tenantBreaker.ExecuteAsync(
                static async (ctx, state) => await state.Self.RunProviderPipelineAsync(ctx, state.Call),
                context,
                (Self: this, Call: call));
            _health.Record(Latency(started, sampleLatency), success: true);
            return result;
        }
        catch (BrokenCircuitException ex)
        {
            // The tenant's own circuit (the provider's is turned into a ProviderException inside): nothing was sent.
            _logger.LogWarning("{Provider} {Operation} refused for tenant {Tenant}: its circuit is open after repeated rate limits or quota errors", _provider, operation, tenant);
            throw new ProviderException(_provider, CloudErrorCodes.RateLimited,
                $"{_provider} keeps refusing this tenant's requests (rate limit or quota); its calls are paused for a while", transient: true, ex)
            {
                NeverStarted = true,
            };
        }
        catch (TimeoutRejectedException ex)
        {
            _health.Record(Latency(started, sampleLatency), success: false);
            _logger.LogWarning("{Provider} {Operation} timed out after {Timeout}", _provider, operation, attemptTimeout);
            throw new ProviderException(_provider, CloudErrorCodes.Timeout, $"{_provider} {operation}: no answer within {attemptTimeout}", transient: true, ex);
        }
        catch (ProviderException ex)
        {
            // Not failures of the provider: a 404 on a lookup or delete, a tenant's own rejection. A call the open circuit
            // refused failed, but took no time at the provider: no latency sample.
            if (ex.Code != CloudErrorCodes.NotFound && !ProviderResilience.IsTenantRejection(ex))
            {
                _health.Record(ex.InnerException is BrokenCircuitException ? null : Latency(started, sampleLatency), success: false);
            }

            _logger.LogWarning("{Provider} {Operation} failed: {Code} (transient: {Transient}, never started: {NeverStarted}) {Message}",
                _provider, operation, ex.Code, ex.Transient, ex.NeverStarted, ex.Message);
            throw;
        }
        finally
        {
            ResilienceContextPool.Shared.Return(context);
        }
    }

    public Task RunAsync(string operation, bool idempotent, TimeSpan attemptTimeout, Func<CancellationToken, Task> call, CancellationToken cancellationToken, string? tenant = null) =>
        RunAsync<bool>(operation, idempotent, attemptTimeout, async ct =>
        {
            await call(ct);
            return true;
        }, cancellationToken, tenant: tenant);

    private async ValueTask<T> RunProviderPipelineAsync<T>(ResilienceContext context, Func<CancellationToken, Task<T>> call)
    {
        try
        {
            return await _pipeline.ExecuteAsync(static async (ctx, state) => await state(ctx.CancellationToken), context, call);
        }
        catch (BrokenCircuitException ex)
        {
            // Fast failure: nothing was sent, so a retry elsewhere or later cannot run anything twice.
            _logger.LogWarning("{Provider} {Operation} refused: circuit open", _provider, context.OperationKey);
            throw new ProviderException(_provider, CloudErrorCodes.Unavailable, $"{_provider} is unavailable (circuit open)", transient: true, ex)
            {
                NeverStarted = true,
            };
        }
    }

    private TimeSpan? Latency(long started, bool sample) => sample ? _time.GetElapsedTime(started) : null;
}
