using Microsoft.Extensions.Logging;
using Polly;
using Polly.CircuitBreaker;
using Polly.Timeout;
using Sandstorm.Providers.Cloud;
using Sandstorm.Providers.Health;

namespace Sandstorm.Providers.Resilience;

/// <summary>
/// Runs one provider operation through the provider's pipeline, records its latency and outcome in the health window,
/// and turns Polly's own exceptions (timeout, open circuit) into <see cref="ProviderException"/>s.
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

    public async Task<T> RunAsync<T>(
        string operation,
        bool idempotent,
        TimeSpan attemptTimeout,
        Func<CancellationToken, Task<T>> call,
        CancellationToken cancellationToken,
        bool sampleLatency = true)
    {
        var context = ResilienceContextPool.Shared.Get(operation, cancellationToken);
        context.Properties.Set(ProviderResilience.Idempotent, idempotent);
        context.Properties.Set(ProviderResilience.AttemptTimeout, attemptTimeout);
        var started = _time.GetTimestamp();
        try
        {
            var result = await _pipeline.ExecuteAsync(
                static async (ctx, state) => await state(ctx.CancellationToken),
                context,
                call);
            _health.Record(Latency(started, sampleLatency), success: true);
            return result;
        }
        catch (BrokenCircuitException ex)
        {
            // Fast failure: nothing was sent, so it is not a latency sample.
            _logger.LogWarning("{Provider} {Operation} refused: circuit open", _provider, operation);
            throw new ProviderException(_provider, CloudErrorCodes.Unavailable, $"{_provider} is unavailable (circuit open)", transient: true, ex);
        }
        catch (TimeoutRejectedException ex)
        {
            _health.Record(Latency(started, sampleLatency), success: false);
            _logger.LogWarning("{Provider} {Operation} timed out after {Timeout}", _provider, operation, attemptTimeout);
            throw new ProviderException(_provider, CloudErrorCodes.Timeout, $"{_provider} {operation}: no answer within {attemptTimeout}", transient: true, ex);
        }
        catch (ProviderException ex)
        {
            // A 404 on a lookup or delete says nothing about the provider's health.
            if (ex.Code != CloudErrorCodes.NotFound)
            {
                _health.Record(Latency(started, sampleLatency), success: false);
            }

            _logger.LogWarning("{Provider} {Operation} failed: {Code} (transient: {Transient}) {Message}", _provider, operation, ex.Code, ex.Transient, ex.Message);
            throw;
        }
        finally
        {
            ResilienceContextPool.Shared.Return(context);
        }
    }

    private TimeSpan? Latency(long started, bool sample) => sample ? _time.GetElapsedTime(started) : null;

    public Task RunAsync(string operation, bool idempotent, TimeSpan attemptTimeout, Func<CancellationToken, Task> call, CancellationToken cancellationToken) =>
        RunAsync<bool>(operation, idempotent, attemptTimeout, async ct =>
        {
            await call(ct);
            return true;
        }, cancellationToken);
}
