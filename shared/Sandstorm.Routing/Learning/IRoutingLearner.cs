namespace Sandstorm.Routing.Learning;

/// <summary>
/// Learns from every settled run at once: Settle hands each outcome (where it ran, what was predicted for it, what it cost and
/// took, whether it succeeded) to the router, so its calibration and failure rates move within seconds instead of waiting
/// for the scheduled re-optimisation, which retrains from the same stream of outcomes. Must be cheap and never throw.
/// </summary>
public interface IRoutingLearner
{
    void Observe(RoutingObservation observation);
}
