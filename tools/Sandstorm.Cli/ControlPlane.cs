using System.Net.Http.Headers;
using Azure;
using Sandstorm.Client;

namespace Sandstorm.Cli;

/// <summary>Where the control plane is and how to authenticate to it, from flags, environment or the local host's files.</summary>
public static class ControlPlane
{
    /// <summary>The SDK's client for the control plane the flags, environment or local host name.</summary>
    public static SandstormClient CreateSandstormClient(IReadOnlyDictionary<string, string> flags, SandstormClientOptions? options = null)
    {
        var (url, key) = Resolve(flags);
        return new SandstormClient(new Uri(url), new AzureKeyCredential(key), options);
    }

    public static HttpClient CreateClient(IReadOnlyDictionary<string, string> flags, TimeSpan timeout)
    {
        var (url, key) = Resolve(flags);
        var http = new HttpClient { BaseAddress = new Uri(url.TrimEnd('/') + "/"), Timeout = timeout };
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);
        return http;
    }

    private static (string Url, string Key) Resolve(IReadOnlyDictionary<string, string> flags)
    {
        var url = flags.GetValueOrDefault("control-plane")
            ?? Environment.GetEnvironmentVariable("SANDSTORM_URL")
            ?? Environment.GetEnvironmentVariable("SANDSTORM_BASE_URL")
            ?? "http://127.0.0.1:7071";
        var key = flags.GetValueOrDefault("api-key")
            ?? Environment.GetEnvironmentVariable("SANDSTORM_API_KEY")
            ?? FindDevKey()
            ?? throw new ArgumentException("no API key: pass --api-key, set SANDSTORM_API_KEY, or start the local host (it writes .sandstorm/dev-api-key)");
        RequireSafeForKey(url);
        return (url, key);
    }

    /// <summary>
    /// The control plane's URL, when an API key may be sent to it: https, or http to a loopback address (the local host).
    /// Anything else is refused before a connection is opened — over plain http to another machine the key, and the
    /// answers trusted on it, would cross the network in clear text.
    /// </summary>
    public static Uri RequireSafeForKey(string url)
    {
        if (!Uri.TryCreate(url, UriKind.Absolute, out var uri) || (uri.Scheme != Uri.UriSchemeHttps && uri.Scheme != Uri.UriSchemeHttp))
        {
            throw new ArgumentException($"control plane URL '{url}' is not an absolute http(s) URL");
        }

        if (uri.Scheme == Uri.UriSchemeHttp && !IsLoopback(uri))
        {
            throw new ArgumentException(
                $"refusing to send the API key to {uri.GetLeftPart(UriPartial.Authority)} over plain http: use https (http is allowed only to a loopback address)");
        }

        return uri;
    }

    private static bool IsLoopback(Uri uri) =>
        uri.IsLoopback
        || string.Equals(uri.IdnHost, "localhost", StringComparison.OrdinalIgnoreCase)
        || (System.Net.IPAddress.TryParse(uri.IdnHost, out var address) && System.Net.IPAddress.IsLoopback(address));

    /// <summary>The local host's development key, looked up from the current directory upwards.</summary>
    public static string? FindDevKey()
    {
        for (var dir = new DirectoryInfo(Directory.GetCurrentDirectory()); dir is not null; dir = dir.Parent)
        {
            var path = Path.Combine(dir.FullName, ".sandstorm", "dev-api-key");
            if (File.Exists(path))
            {
                return File.ReadAllText(path).Trim();
            }
        }

        return null;
    }

    /// <summary>Parses <c>--name value</c> pairs and bare <c>--flag</c>s; positional words are returned separately.</summary>
    public static (Dictionary<string, string> Flags, List<string> Positional) Parse(string[] args, params string[] booleanFlags)
    {
        var flags = new Dictionary<string, string>(StringComparer.Ordinal);
        var positional = new List<string>();
        for (var i = 0; i < args.Length; i++)
        {
            if (args[i].StartsWith("--", StringComparison.Ordinal))
            {
                var name = args[i][2..];
                if (booleanFlags.Contains(name))
                {
                    flags[name] = "true";
                }
                else if (i + 1 < args.Length)
                {
                    flags[name] = args[++i];
                }
                else
                {
                    throw new ArgumentException($"--{name} needs a value");
                }
            }
            else
            {
                positional.Add(args[i]);
            }
        }

        return (flags, positional);
    }
}
