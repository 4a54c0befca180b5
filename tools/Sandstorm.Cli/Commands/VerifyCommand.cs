using System.Net.Http.Json;
using System.Text.Json;
using Sandstorm.Core;
using Sandstorm.Security.Compliance;
using Sandstorm.Security.Provenance;
using Sandstorm.Security.Signing;
using Sandstorm.Security.Verification;

namespace Sandstorm.Cli.Commands;

/// <summary>
/// <c>sandstorm verify BUNDLE [--key PUBLIC_KEY_PEM | --control-plane URL] [--stdout FILE] [--stderr FILE] [--code FILE] [--file PATH=FILE]...</c>:
/// checks a provenance bundle offline — or a signed compliance report (<c>GET /v1/compliance/reports</c>), recognised by
/// its envelope's payload type. Exit 0 when every check holds, 1 naming what failed, 2 on bad usage.
/// </summary>
public static class VerifyCommand
{
    private const string Usage =
        "usage: sandstorm verify BUNDLE|REPORT [--key PUBLIC_KEY_PEM | --control-plane URL] [--stdout FILE] [--stderr FILE] [--code FILE] [--file PATH=FILE]...";

    /// <summary>Runs the command with the arguments after <c>verify</c>.</summary>
    public static async Task<int> RunAsync(string[] args)
    {
        string? bundlePath = null, keyPath = null, controlPlane = null, stdout = null, stderr = null, code = null;
        var files = new Dictionary<string, string>(StringComparer.Ordinal);
        for (var i = 0; i < args.Length; i++)
        {
            var arg = args[i];
            if (arg is "-h" or "--help")
            {
                Console.WriteLine(Usage);
                return 0;
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

        if (bundlePath is null)
        {
            return UsageError("BUNDLE is required");
        }

        if (keyPath is not null && controlPlane is not null)
        {
            return UsageError("give --key or --control-plane, not both");
        }

        try
        {
            var bytes = await File.ReadAllBytesAsync(bundlePath);
            if (IsComplianceReport(bytes))
            {
                if (stdout is not null || stderr is not null || code is not null || files.Count > 0)
                {
                    return UsageError("--stdout, --stderr, --code and --file are for run bundles, not compliance reports");
                }

                return await VerifyReportAsync(bytes, keyPath, controlPlane);
            }

            var bundle = JsonSerializer.Deserialize<ProvenanceBundle>(bytes, SandstormJson.Options)
                ?? throw new JsonException("empty bundle");
            var trustedKey = keyPath is not null
                ? await File.ReadAllTextAsync(keyPath)
                : controlPlane is not null ? await FetchKeyAsync(controlPlane) : null;
            var options = new BundleVerificationOptions
            {
                TrustedPublicKeyPem = trustedKey,
                Stdout = stdout is null ? null : await File.ReadAllBytesAsync(stdout),
                Stderr = stderr is null ? null : await File.ReadAllBytesAsync(stderr),
                Code = code is null ? null : await File.ReadAllBytesAsync(code),
                Files = files.Count == 0 ? null : await ReadFilesAsync(files),
            };

            var result = BundleVerifier.Verify(bundle, options);
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

            Console.WriteLine(result.Ok
                ? $"verified: run provenance at log index {bundle.LogIndex} of {bundle.TreeHead.TreeSize} ({bundle.TreeHead.LogName}), key {bundle.KeyId}"
                : $"verification failed: {string.Join("; ", result.Failures)}");
            return result.Ok ? 0 : 1;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or JsonException or HttpRequestException or NotSupportedException)
        {
            Console.Error.WriteLine($"verification failed: {ex.Message}");
            return 1;
        }
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

    private static async Task<int> VerifyReportAsync(byte[] json, string? keyPath, string? controlPlane)
    {
        var bundle = JsonSerializer.Deserialize<ComplianceReportBundle>(json, SandstormJson.Options) ?? throw new JsonException("empty report");
        var trustedKey = keyPath is not null
            ? await File.ReadAllTextAsync(keyPath)
            : controlPlane is not null ? await FetchKeyAsync(controlPlane) : null;
        var result = ComplianceReportVerifier.Verify(bundle, trustedKey);
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

        if (!result.Ok)
        {
            Console.WriteLine($"verification failed: {string.Join("; ", result.Failures)}");
            return 1;
        }

        var report = JsonSerializer.Deserialize<ComplianceReport>(Convert.FromBase64String(bundle.Envelope.Payload), SandstormJson.Options)!;
        Console.WriteLine($"verified: {report.Standard} compliance report of tenant {report.TenantId}, {report.From:u} to {report.To:u}: "
            + $"{report.Runs.Count} run(s), {report.Controls.Count} controls, log {report.Log.LogName} from size {report.Log.StartSize} to {report.Log.EndTreeHead.TreeSize}, key {bundle.KeyId}");
        return 0;
    }

    // GET {url}/v1/log/key returns the signing key ({keyId, publicKeyPem, jwk}); the API key, when set, authenticates.
    private static async Task<string> FetchKeyAsync(string controlPlane)
    {
        using var http = new HttpClient { BaseAddress = new Uri(controlPlane.TrimEnd('/') + "/"), Timeout = TimeSpan.FromSeconds(30) };
        if (Environment.GetEnvironmentVariable("SANDSTORM_API_KEY") is { Length: > 0 } apiKey)
        {
            http.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", apiKey);
        }

        var key = await http.GetFromJsonAsync<SigningKey>("v1/log/key", SandstormJson.Options)
            ?? throw new JsonException("control plane returned no key");
        return key.PublicKeyPem;
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

    private static int UsageError(string message)
    {
        Console.Error.WriteLine(message);
        Console.Error.WriteLine(Usage);
        return 2;
    }
}
