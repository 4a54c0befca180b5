namespace Sandstorm.Edge.Agent;

/// <summary>Which control-plane addresses an agent talks to: https anywhere, plain http only on this machine.</summary>
public static class ControlPlaneUrl
{
    /// <summary>
    /// Null when <paramref name="url"/> is an https URL, or an http URL of a loopback host; otherwise why not. Over plain
    /// http to another host, the enrollment and agent tokens and every job would travel in clear text, and anyone on the
    /// path could hand the agent jobs of their own.
    /// </summary>
    public static string? Problem(string url)
    {
        if (!Uri.TryCreate(url, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https") || string.IsNullOrEmpty(uri.Host))
        {
            return $"the control plane must be an http(s) URL (got '{url}')";
        }

        return uri.Scheme == "https" || uri.IsLoopback
            ? null
            : $"the control plane must be https:// unless it is on this machine (http://127.0.0.1, http://[::1], http://localhost): over plain http to {uri.Host} the tokens and jobs would travel in clear text (got '{url}')";
    }
}
