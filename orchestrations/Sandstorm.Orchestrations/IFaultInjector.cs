namespace Sandstorm.Orchestrations;

/// <summary>Named points where tests inject failures (crash between billing and recording, for example). No-op in production.</summary>
public interface IFaultInjector
{
    ValueTask AtAsync(string point);
}

/// <summary>The production injector: does nothing.</summary>
public sealed class NoFaults : IFaultInjector
{
    public ValueTask AtAsync(string point) => ValueTask.CompletedTask;
}

/// <summary>Fault points of the pipeline.</summary>
public static class FaultPoints
{
    public const string SettleAfterLedger = "settle.after-ledger";
}
