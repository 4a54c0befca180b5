using System.Diagnostics.CodeAnalysis;
using Azure;
using Azure.Core;

namespace Sandstorm.Client;

internal static class ValueTaskExtensions
{
    /// <summary>The result of a call made with <c>async: false</c>, which has completed synchronously.</summary>
    public static T EnsureCompleted<T>(this ValueTask<T> task) => task.IsCompleted ? task.Result : task.AsTask().GetAwaiter().GetResult();
}

/// <summary>The response standing for a result gathered from a whole event stream (each event came in one long response).</summary>
internal sealed class NoResponse : Response
{
    public override int Status => 200;

    public override string ReasonPhrase => "OK";

    public override Stream? ContentStream { get; set; }

    public override string ClientRequestId { get; set; } = "";

    public override void Dispose()
    {
    }

    protected override bool ContainsHeader(string name) => false;

    protected override IEnumerable<HttpHeader> EnumerateHeaders() => [];

    protected override bool TryGetHeader(string name, [NotNullWhen(true)] out string? value)
    {
        value = null;
        return false;
    }

    protected override bool TryGetHeaderValues(string name, [NotNullWhen(true)] out IEnumerable<string>? values)
    {
        values = null;
        return false;
    }
}
