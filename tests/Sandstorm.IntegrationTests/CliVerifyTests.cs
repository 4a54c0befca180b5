using System.Net;
using System.Net.NetworkInformation;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Sandstorm.Core;
using Sandstorm.Security.Dsse;
using Sandstorm.Security.Provenance;
using Sandstorm.Security.Signing;
using Sandstorm.Security.TransparencyLog;
using Sandstorm.Security.Verification;

namespace Sandstorm.IntegrationTests;

/// <summary><c>sandstorm verify</c> as an auditor uses it: only a trusted key counts, and the log must never go back on what was seen.</summary>
[Collection(LocalHostCollection.Name)]
public sealed class CliVerifyTests(LocalHostFixture fixture)
{
    [Fact]
    public async Task Verify_NothingPinnedAndNoKey_FailsSayingHowToTrustAKey()
    {
        var (dir, env) = await NewAuditorAsync();
        var bundle = await RunAndFetchBundleAsync(env["SANDSTORM_API_KEY"], dir);

        var result = await CliProcess.RunAsync(env, "verify", bundle);

        Assert.Equal(1, result.ExitCode);
        Assert.Contains("no trusted key", result.Stderr, StringComparison.Ordinal);
        Assert.Contains("--pin", result.Stderr, StringComparison.Ordinal);
        Assert.False(File.Exists(Path.Combine(dir, "config", "trust.json")), "nothing is remembered from an unverified bundle");
    }

    [Fact]
    public async Task Verify_ForgedBundleWithItsOwnEmbeddedKey_Fails()
    {
        var (dir, env) = await NewAuditorAsync();
        var genuine = await RunAndFetchBundleAsync(env["SANDSTORM_API_KEY"], dir);
        var forged = await ForgeAsync(genuine, dir);

        var unpinned = await CliProcess.RunAsync(env, "verify", forged);
        var pinned = await CliProcess.RunAsync(env, "verify", "--pin", "--control-plane", fixture.Host.Url, genuine);
        var againstPin = await CliProcess.RunAsync(env, "verify", forged);
        var keyFile = Path.Combine(dir, "control-plane.pem");
        await File.WriteAllTextAsync(keyFile, JsonSerializer.Deserialize<ProvenanceBundle>(await File.ReadAllBytesAsync(genuine), SandstormJson.Options)!.PublicKeyPem);
        var againstKey = await CliProcess.RunAsync(env, "verify", forged, "--key", keyFile);

        Assert.Equal(1, unpinned.ExitCode);
        Assert.Contains("no trusted key", unpinned.Stderr, StringComparison.Ordinal);
        Assert.True(pinned.ExitCode == 0, pinned.Stdout + pinned.Stderr);
        Assert.Contains("pinned key", pinned.Stdout, StringComparison.Ordinal);
        Assert.Equal(1, againstPin.ExitCode);
        Assert.Contains("not pinned", againstPin.Stderr, StringComparison.Ordinal);
        Assert.Equal(1, againstKey.ExitCode);
        Assert.Contains("envelope signature invalid", againstKey.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Verify_LaterBundle_ProvesConsistencyWithTheRememberedHeadAndAdvancesIt()
    {
        var (dir, env) = await NewAuditorAsync();
        var first = await RunAndFetchBundleAsync(env["SANDSTORM_API_KEY"], dir);
        var second = await RunAndFetchBundleAsync(env["SANDSTORM_API_KEY"], dir);

        var pinned = await CliProcess.RunAsync(env, "verify", "--pin", "--control-plane", fixture.Host.Url, first);
        var later = await CliProcess.RunAsync(env, "verify", second);
        var earlierAgain = await CliProcess.RunAsync(env, "verify", first);

        Assert.True(pinned.ExitCode == 0, pinned.Stdout + pinned.Stderr);
        Assert.Contains("tree head remembered", pinned.Stdout, StringComparison.Ordinal);
        Assert.True(later.ExitCode == 0, later.Stdout + later.Stderr);
        Assert.Contains("consistency from the remembered head", later.Stdout, StringComparison.Ordinal);
        Assert.Equal(HeadOf(second).TreeSize, RememberedHead(dir)["treeSize"]!.GetValue<long>());
        Assert.True(earlierAgain.ExitCode == 0, earlierAgain.Stdout + earlierAgain.Stderr);
        Assert.Contains("to the remembered head", earlierAgain.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Verify_LogForkedSinceTheRememberedHead_Fails()
    {
        var (dir, env) = await NewAuditorAsync();
        var first = await RunAndFetchBundleAsync(env["SANDSTORM_API_KEY"], dir);
        Assert.Equal(0, (await CliProcess.RunAsync(env, "verify", "--pin", "--control-plane", fixture.Host.Url, first)).ExitCode);
        var second = await RunAndFetchBundleAsync(env["SANDSTORM_API_KEY"], dir);

        // As if the auditor had been shown another history of the same size before: the server cannot prove its log extends it.
        EditRememberedHead(dir, head => head["rootHash"] = Convert.ToBase64String(new byte[32]));
        var result = await CliProcess.RunAsync(env, "verify", second);

        Assert.Equal(1, result.ExitCode);
        Assert.Contains("does not extend the remembered head", result.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Verify_LogRolledBackBelowTheRememberedHead_Fails()
    {
        var (dir, env) = await NewAuditorAsync();
        var first = await RunAndFetchBundleAsync(env["SANDSTORM_API_KEY"], dir);
        Assert.Equal(0, (await CliProcess.RunAsync(env, "verify", "--pin", "--control-plane", fixture.Host.Url, first)).ExitCode);

        // As if the auditor had seen the log 1,000 entries larger than the server now says it is.
        EditRememberedHead(dir, head => head["treeSize"] = head["treeSize"]!.GetValue<long>() + 1000);
        var result = await CliProcess.RunAsync(env, "verify", first);

        Assert.Equal(1, result.ExitCode);
        Assert.Contains("rolled back", result.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Verify_HttpControlPlaneNotOnLoopback_RefusedBeforeAnyRequest()
    {
        var (dir, env) = await NewAuditorAsync();
        var address = NetworkInterface.GetAllNetworkInterfaces()
            .Where(n => n.OperationalStatus == OperationalStatus.Up)
            .SelectMany(n => n.GetIPProperties().UnicastAddresses)
            .Select(a => a.Address)
            .First(a => a.AddressFamily == AddressFamily.InterNetwork && !IPAddress.IsLoopback(a));
        using var listener = new TcpListener(address, 0);
        listener.Start();
        var url = $"http://{address}:{((IPEndPoint)listener.LocalEndpoint).Port}";
        var bundle = await RunAndFetchBundleAsync(env["SANDSTORM_API_KEY"], dir);

        var pin = await CliProcess.RunAsync(env, "verify", "--pin", "--control-plane", url);
        var verify = await CliProcess.RunAsync(env, "verify", bundle, "--control-plane", url);
        var status = await CliProcess.RunAsync(env, "status", "run_x", "--control-plane", url);

        Assert.Equal(2, pin.ExitCode);
        Assert.Contains("refusing to send the API key", pin.Stderr, StringComparison.Ordinal);
        Assert.Equal(2, verify.ExitCode);
        Assert.Equal(2, status.ExitCode);
        Assert.Contains("refusing to send the API key", status.Stderr, StringComparison.Ordinal);
        Assert.False(listener.Pending(), "no connection reached the http listener");
    }

    private async Task<(string Dir, Dictionary<string, string> Env)> NewAuditorAsync()
    {
        var (_, key) = await Tenants.CreateAsync(fixture.Azurite.ConnectionString);
        var dir = Directory.CreateTempSubdirectory("sandstorm-verify-").FullName;
        return (dir, new Dictionary<string, string> { ["SANDSTORM_CONFIG_DIR"] = Path.Combine(dir, "config"), ["SANDSTORM_API_KEY"] = key });
    }

    private async Task<string> RunAndFetchBundleAsync(string key, string dir)
    {
        using var http = fixture.Host.Client(key);
        using var response = await http.PostAsync(
            "v1/runs?wait=60", new StringContent("""{"code":"print(1)","language":"python","isolationLevel":"none"}""", Encoding.UTF8, "application/json"));
        var id = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("id").GetString()!;
        var path = Path.Combine(dir, $"{id}.json");
        await File.WriteAllBytesAsync(path, await http.GetByteArrayAsync($"v1/runs/{id}/provenance"));
        return path;
    }

    // The same statement, signed by a key the forger made, in a one-leaf log of its own: consistent in itself.
    private static async Task<string> ForgeAsync(string genuinePath, string dir)
    {
        var genuine = JsonSerializer.Deserialize<ProvenanceBundle>(await File.ReadAllBytesAsync(genuinePath), SandstormJson.Options)!;
        using var signer = new LocalSigner(Path.Combine(dir, "forger.pem"));
        var key = await signer.GetPublicKeyAsync(CancellationToken.None);
        var envelope = await DsseV1.SignAsync(signer, genuine.Envelope.PayloadType, Convert.FromBase64String(genuine.Envelope.Payload), CancellationToken.None);
        var tree = new MerkleTree();
        tree.AppendLeafHash(MerkleHash.Leaf(envelope.ToCanonicalJson()));
        var head = await SignedTreeHead.SignAsync(signer, genuine.TreeHead.LogName, 1, tree.Root(1), DateTimeOffset.UtcNow, CancellationToken.None);
        var forged = genuine with
        {
            Envelope = envelope,
            KeyId = key.KeyId,
            PublicKeyPem = key.PublicKeyPem,
            LogIndex = 0,
            InclusionProof = new InclusionProof(0, 1, []),
            TreeHead = head,
            TreeHeadPublicKeyPem = null,
        };
        Assert.True(BundleVerifier.Verify(forged, new BundleVerificationOptions()).Ok, "the forgery holds together under its own key");
        var path = Path.Combine(dir, "forged.json");
        await File.WriteAllBytesAsync(path, JsonSerializer.SerializeToUtf8Bytes(forged, SandstormJson.Options));
        return path;
    }

    private static SignedTreeHead HeadOf(string bundlePath) =>
        JsonSerializer.Deserialize<ProvenanceBundle>(File.ReadAllBytes(bundlePath), SandstormJson.Options)!.TreeHead;

    private static JsonObject RememberedHead(string dir) =>
        JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "config", "trust.json")))!["treeHeads"]!.AsObject().Single().Value!.AsObject();

    private static void EditRememberedHead(string dir, Action<JsonObject> edit)
    {
        var path = Path.Combine(dir, "config", "trust.json");
        var state = JsonNode.Parse(File.ReadAllText(path))!;
        edit(state["treeHeads"]!.AsObject().Single().Value!.AsObject());
        File.WriteAllText(path, state.ToJsonString());
    }
}
