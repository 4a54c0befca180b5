using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using Sandstorm.Core;
using Sandstorm.Security.Compliance;
using Sandstorm.Security.Provenance;
using Sandstorm.Security.Signing;
using Sandstorm.Security.TransparencyLog;
using Sandstorm.Security.Verification;

namespace Sandstorm.Cli.Commands;

/// <summary>
/// <c>sandstorm verify [BUNDLE] [--key PUBLIC_KEY_PEM] [--control-plane URL] [--pin] [--stdout FILE] [--stderr FILE] [--code FILE] [--file PATH=FILE]...</c>:
/// checks a provenance bundle — or a signed compliance report (<c>GET /v1/compliance/reports</c>), recognised by its
/// envelope's payload type — against a trusted key (<c>--key</c>, or one pinned with <c>--pin</c>; never the key the
/// bundle embeds), then checks its signed tree head against the last one verified for that log, by a consistency proof.
/// Exit 0 when every check holds, 1 naming what failed, 2 on bad usage.
/// </summary>
public static class VerifyCommand
{
    private const string Usage =
        "usage: sandstorm verify BUNDLE|REPORT [--key PUBLIC_KEY_PEM] [--control-plane URL] [--stdout FILE] [--stderr FILE] [--code FILE] [--file PATH=FILE]...\n"
        + "       sandstorm verify --pin (--key PUBLIC_KEY_PEM | --control-plane URL) [BUNDLE ...]   (trust this key from now on)";

    private const string NoTrustedKey =
        "no trusted key: pass --key PUBLIC_KEY_PEM, or pin the control plane's key once with `sandstorm verify --pin --control-plane URL` "
        + "(the key embedded in a bundle is never trusted: whoever forged the bundle chose it)";

    /// <summary>Runs the command with the arguments after <c>verify</c>.</summary>
    public static async Task<int> RunAsync(string[] args)
    {
        string? bundlePath = null, keyPath = null, controlPlane = null, apiKey = null, stdout = null, stderr = null, code = null;
        var pin = false;
        var files = new Dictionary<string, string>(StringComparer.Ordinal);
        for (var i = 0; i < args.Length; i++)
        {
            var arg = args[i];
            if (arg is "-h" or "--help")
            {
                Console.WriteLine(Usage);
                return 0;
            }

            if (arg is "--pin" or "--trust-on-first-use")
            {
                pin = true;
                continue;
            }

            if (arg.StartsWith("--", StringComparison.Ordinal))
            {
                if (i + 1 >= args.Length)
                {
                    return UsageError($"{arg} needs a value");
                }

                var value = args[++i];
                switch (arg)
                {
                    case "--key": keyPath = value; break;
                    case "--control-plane": controlPlane = value; break;
                    case "--api-key": apiKey = value; break;
                    case "--stdout": stdout = value; break;
                    case "--stderr": stderr = value; break;
                    case "--code": code = value; break;
                    case "--file" when value.Split('=', 2) is [var path, var local] && path.Length > 0:
                        files[path] = local;
                        break;
                    default: return UsageError($"unknown option {arg}");
                }
            }
            else if (bundlePath is null)
            {
                bundlePath = arg;
            }
            else
            {
                return UsageError($"unexpected argument {arg}");
            }
        }

        if (bundlePath is null && !pin)
        {
            return UsageError("BUNDLE is required");
        }

        if (pin && keyPath is not null && controlPlane is not null)
        {
            return UsageError("--pin takes the key from --key or from --control-plane, not both");
        }

        if (pin && keyPath is null && controlPlane is null)
        {
            return UsageError("--pin needs --key PUBLIC_KEY_PEM or --control-plane URL");
        }

        Uri? controlPlaneUri;
        try
        {
            // Checked before anything is read or sent: the API key goes to this URL.
            controlPlaneUri = controlPlane is null ? null : ControlPlane.RequireSafeForKey(controlPlane);
        }
        catch (ArgumentException e)
        {
            return UsageError(e.Message);
        }

        try
        {
            var state = await TrustStore.LoadAsync();
            var changed = false;
            string? trustedKey = null;
            if (keyPath is not null)
            {
                trustedKey = await File.ReadAllTextAsync(keyPath);
            }

            if (pin)
            {
                var key = keyPath is not null
                    ? DescribePem(trustedKey!)
                    : await FetchKeyAsync(controlPlaneUri!, apiKey);
                trustedKey = key.PublicKeyPem;
                changed |= Pin(state, key, controlPlaneUri);
            }

            var result = 0;
            if (bundlePath is not null)
            {
                var bytes = await File.ReadAllBytesAsync(bundlePath);
                if (IsComplianceReport(bytes))
                {
                    if (stdout is not null || stderr is not null || code is not null || files.Count > 0)
                    {
                        return UsageError("--stdout, --stderr, --code and --file are for run bundles, not compliance reports");
                    }

                    var report = JsonSerializer.Deserialize<ComplianceReportBundle>(bytes, SandstormJson.Options) ?? throw new JsonException("empty report");
                    var reportKey = trustedKey ?? FindPinned(state, report.KeyId, report.PublicKeyPem)?.PublicKeyPem;
                    if (reportKey is null)
                    {
                        return Fail(UnpinnedMessage(state, report.KeyId));
                    }

                    var head = VerifyReport(report, reportKey);
                    result = head is null ? 1 : await WitnessAsync(state, head, ProofSource(state, controlPlaneUri, reportKey, apiKey), () => changed = true);
                }
                else
                {
                    var bundle = JsonSerializer.Deserialize<ProvenanceBundle>(bytes, SandstormJson.Options) ?? throw new JsonException("empty bundle");
                    var bundleKey = trustedKey ?? FindPinned(state, bundle.KeyId, bundle.PublicKeyPem)?.PublicKeyPem;
                    if (bundleKey is null)
                    {
                        return Fail(UnpinnedMessage(state, bundle.KeyId));
                    }

                    var options = new BundleVerificationOptions
                    {
                        TrustedPublicKeyPem = bundleKey,
                        Stdout = stdout is null ? null : await File.ReadAllBytesAsync(stdout),
                        Stderr = stderr is null ? null : await File.ReadAllBytesAsync(stderr),
                        Code = code is null ? null : await File.ReadAllBytesAsync(code),
                        Files = files.Count == 0 ? null : await ReadFilesAsync(files),
                    };
                    result = VerifyBundle(bundle, options)
                        ? await WitnessAsync(state, bundle.TreeHead, ProofSource(state, controlPlaneUri, bundleKey, apiKey), () => changed = true)
                        : 1;
                    if (result == 0)
                    {
                        Console.WriteLine($"verified: run provenance at log index {bundle.LogIndex} of {bundle.TreeHead.TreeSize} ({bundle.TreeHead.LogName}), key {bundle.KeyId}");
                    }
                }
            }

            if (changed)
            {
                await TrustStore.SaveAsync(state);
            }

            return result;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or JsonException or HttpRequestException or NotSupportedException
            or System.Security.Cryptography.CryptographicException or ArgumentException or TaskCanceledException)
        {
            return Fail(ex.Message);
        }
    }

    private static bool VerifyBundle(ProvenanceBundle bundle, BundleVerificationOptions options)
    {
        var result = BundleVerifier.Verify(bundle, options);
        Print(result);
        if (!result.Ok)
        {
            Console.WriteLine($"verification failed: {string.Join("; ", result.Failures)}");
        }

        return result.Ok;
    }

    // The report's end tree head when every check holds, else null.
    private static SignedTreeHead? VerifyReport(ComplianceReportBundle bundle, string trustedKey)
    {
        var result = ComplianceReportVerifier.Verify(bundle, trustedKey);
        Print(result);
        if (!result.Ok)
        {
            Console.WriteLine($"verification failed: {string.Join("; ", result.Failures)}");
            return null;
        }

        var report = JsonSerializer.Deserialize<ComplianceReport>(Convert.FromBase64String(bundle.Envelope.Payload), SandstormJson.Options)!;
        Console.WriteLine($"verified: {report.Standard} compliance report of tenant {report.TenantId}, {report.From:u} to {report.To:u}: "
            + $"{report.Runs.Count} run(s), {report.Controls.Count} controls, log {report.Log.LogName} from size {report.Log.StartSize} to {report.Log.EndTreeHead.TreeSize}, key {bundle.KeyId}");
        return report.Log.EndTreeHead;
    }

    /// <summary>
    /// Ties a verified tree head to the last one remembered for its log: the first is remembered as seen; after that a
    /// larger head must extend it and a smaller one be its prefix (a consistency proof from the control plane), and a
    /// head of the same size must be the same head. A larger consistent head replaces the remembered one.
    /// </summary>
    private static async Task<int> WitnessAsync(
        TrustState state, SignedTreeHead head, Func<long, long, CancellationToken, Task<ConsistencyProof>>? proofs, Action changed)
    {
        if (!state.TreeHeads.TryGetValue(head.LogName, out var remembered))
        {
            state.TreeHeads[head.LogName] = head;
            changed();
            Console.WriteLine($"ok    tree head remembered (log {head.LogName}, size {head.TreeSize}; later verifications must be consistent with it)");
            return 0;
        }

        var outcome = await TreeHeadWitness.CheckAsync(remembered, head, proofs, CancellationToken.None);
        if (!outcome.Ok)
        {
            Console.Error.WriteLine($"FAIL  {outcome.Message}");
            Console.WriteLine($"verification failed: {outcome.Message}");
            return 1;
        }

        Console.WriteLine($"ok    {outcome.Message}");
        if (outcome.Advance)
        {
            state.TreeHeads[head.LogName] = head;
            changed();
        }

        return 0;
    }

    // Consistency proofs come from --control-plane, else the control plane the trusted key was pinned from. They need
    // not be trusted: a proof only verifies between two roots that the trusted key signed.
    private static Func<long, long, CancellationToken, Task<ConsistencyProof>>? ProofSource(TrustState state, Uri? controlPlane, string trustedKey, string? apiKey)
    {
        var pinnedFrom = FindPinned(state, keyId: null, trustedKey)?.ControlPlane;
        var uri = controlPlane ?? (pinnedFrom is null ? null : ControlPlane.RequireSafeForKey(pinnedFrom));
        if (uri is null)
        {
            return null;
        }

        return async (from, to, cancellationToken) =>
        {
            using var http = CreateHttp(uri, apiKey);
            return await http.GetFromJsonAsync<ConsistencyProof>($"v1/log/consistency?from={from}&to={to}", SandstormJson.Options, cancellationToken)
                ?? throw new JsonException("control plane returned no consistency proof");
        };
    }

    private static bool Pin(TrustState state, SigningKey key, Uri? controlPlane)
    {
        if (state.Keys.Any(k => Normalise(k.PublicKeyPem) == Normalise(key.PublicKeyPem)))
        {
            Console.WriteLine($"ok    key {key.KeyId} is already pinned ({TrustStore.FilePath})");
            return false;
        }

        state.Keys.Add(new PinnedKey(key.KeyId, key.PublicKeyPem, controlPlane?.ToString() ?? "file", DateTimeOffset.UtcNow, controlPlane?.ToString()));
        Console.WriteLine($"ok    pinned key {key.KeyId}{(controlPlane is null ? string.Empty : $" of {controlPlane}")} ({TrustStore.FilePath})");
        return true;
    }

    // A pinned key is chosen by the PEM or the key id the bundle names; the bundle's signatures are then checked with the
    // pinned PEM, so a bundle that names a pinned key but was signed by another fails.
    private static PinnedKey? FindPinned(TrustState state, string? keyId, string publicKeyPem) =>
        state.Keys.FirstOrDefault(k => Normalise(k.PublicKeyPem) == Normalise(publicKeyPem))
        ?? (keyId is null ? null : state.Keys.FirstOrDefault(k => k.KeyId == keyId));

    private static string UnpinnedMessage(TrustState state, string keyId) =>
        state.Keys.Count == 0
            ? NoTrustedKey
            : $"the bundle is signed by key {keyId}, which is not pinned (pinned: {string.Join(", ", state.Keys.Select(k => k.KeyId))}); "
              + "pass --key, or pin that key with `sandstorm verify --pin` if you trust it";

    private static SigningKey DescribePem(string pem)
    {
        using var key = EcKeys.ImportPublicPem(pem);
        return EcKeys.Describe(EcKeys.LocalKeyId(key), key);
    }

    // GET {url}/v1/log/key returns the signing key ({keyId, publicKeyPem, jwk}).
    private static async Task<SigningKey> FetchKeyAsync(Uri controlPlane, string? apiKey)
    {
        using var http = CreateHttp(controlPlane, apiKey);
        var key = await http.GetFromJsonAsync<SigningKey>("v1/log/key", SandstormJson.Options)
            ?? throw new JsonException("control plane returned no key");
        using var _ = EcKeys.ImportPublicPem(key.PublicKeyPem);
        return key;
    }

    // The URI was checked by ControlPlane.RequireSafeForKey: https, or http to loopback.
    private static HttpClient CreateHttp(Uri controlPlane, string? apiKey)
    {
        var http = new HttpClient { BaseAddress = new Uri(controlPlane.ToString().TrimEnd('/') + "/"), Timeout = TimeSpan.FromSeconds(30) };
        if ((apiKey ?? Environment.GetEnvironmentVariable("SANDSTORM_API_KEY") ?? ControlPlane.FindDevKey()) is { Length: > 0 } key)
        {
            http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);
        }

        return http;
    }

    // A compliance report (GET /v1/compliance/reports) is a bundle whose envelope carries the report's payload type.
    private static bool IsComplianceReport(byte[] json)
    {
        try
        {
            using var document = JsonDocument.Parse(json);
            return document.RootElement.ValueKind == JsonValueKind.Object
                && document.RootElement.TryGetProperty("envelope", out var envelope)
                && envelope.ValueKind == JsonValueKind.Object
                && envelope.TryGetProperty("payloadType", out var type)
                && type.ValueKind == JsonValueKind.String
                && type.GetString() == ComplianceReport.PayloadType;
        }
        catch (JsonException)
        {
            return false;
        }
    }

    private static void Print(BundleVerificationResult result)
    {
        foreach (var check in result.Passed)
        {
            Console.WriteLine($"ok    {check}");
        }

        foreach (var warning in result.Warnings)
        {
            Console.WriteLine($"warn  {warning}");
        }

        foreach (var failure in result.Failures)
        {
            Console.Error.WriteLine($"FAIL  {failure}");
        }
    }

    private static async Task<IReadOnlyDictionary<string, byte[]>> ReadFilesAsync(Dictionary<string, string> files)
    {
        var contents = new Dictionary<string, byte[]>(StringComparer.Ordinal);
        foreach (var (path, local) in files)
        {
            contents[path] = await File.ReadAllBytesAsync(local);
        }

        return contents;
    }

    private static string Normalise(string pem) => string.Concat(pem.Where(c => !char.IsWhiteSpace(c)));

    private static int Fail(string message)
    {
        Console.Error.WriteLine($"verification failed: {message}");
        return 1;
    }

    private static int UsageError(string message)
    {
        Console.Error.WriteLine(message);
        Console.Error.WriteLine(Usage);
        return 2;
    }
}
