using System.Net;
using Microsoft.AspNetCore.Server.Kestrel.Core;

namespace Sandstorm.Local;

/// <summary>Explicit listeners: the API's URL beside the gRPC sidecar's port (Kestrel ignores URLs once any Listen is set).</summary>
public static class KestrelExtensions
{
    public static void ListenOn(this KestrelServerOptions kestrel, string url)
    {
        var uri = new Uri(url);
        if (uri.Host is "localhost")
        {
            kestrel.ListenLocalhost(uri.Port);
        }
        else
        {
            kestrel.Listen(IPAddress.Parse(uri.Host), uri.Port);
        }
    }
}
