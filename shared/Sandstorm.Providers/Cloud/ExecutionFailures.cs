namespace Sandstorm.Providers.Cloud;

/// <summary>
/// How the sandbox clouds report a failed execution so that nothing runs the code twice: a failure is retry-safe
/// (<see cref="ProviderException.NeverStarted"/>) only when the code provably did not start; every other failure after the
/// start request may have reached the provider is final.
/// </summary>
internal static class ExecutionFailures
{
    /// <summary>A failure before the start request was sent (a lookup, an upload, a token): the code did not start.</summary>
    public static ProviderException BeforeStart(ProviderException failure) => failure.AsNeverStarted();

    /// <summary>
    /// A failure of the start request or of anything after it. A start the provider refused or never received stays as it
    /// is (retry-safe); a definite answer about the run (out of memory, the sandbox died) keeps its code but becomes final;
    /// anything else means the provider stopped answering while the code may have been running: a final
    /// <c>execution-interrupted</c>.
    /// </summary>
    public static ProviderException AfterStart(string provider, ProviderException failure)
    {
        if (failure.NeverStarted)
        {
            return failure;
        }

        if (failure.Code is CloudErrorCodes.OutOfMemory or CloudErrorCodes.SandboxLost or CloudErrorCodes.ExecutionInterrupted)
        {
            return failure.Transient ? new ProviderException(provider, failure.Code, failure.Message, transient: false, failure.InnerException) : failure;
        }

        return Interrupted(provider, $"{failure.Code}: {failure.Message}", failure);
    }

    /// <summary>The final error of an execution whose outcome was lost while the code may have been running.</summary>
    public static ProviderException Interrupted(string provider, string detail, Exception? inner = null) =>
        new(provider, CloudErrorCodes.ExecutionInterrupted,
            $"{provider}: the provider stopped answering while the code may have been running; it was not run again ({detail})",
            transient: false, inner);
}
