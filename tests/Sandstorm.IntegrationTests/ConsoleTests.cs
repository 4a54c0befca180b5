using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Playwright;
using Sandstorm.Testing;

namespace Sandstorm.IntegrationTests;

/// <summary>
/// The console (docs/console.md) in a real browser: Debian's chromium driven by Playwright against the shared local host.
/// Every page's screenshot is saved under the test output's <c>screenshots/console</c>.
/// </summary>
[Collection(LocalHostCollection.Name)]
public sealed class ConsoleTests(LocalHostFixture fixture, ConsoleBrowserFixture browser) : IClassFixture<ConsoleBrowserFixture>
{
    private const string Hello = """{"code":"print('console', 6*7)","language":"python","isolationLevel":"none"}""";

    private const float Expect = 60_000;

    private LocalHostProcess Host => fixture.Host;

    [Fact]
    public async Task Console_SignInAndSubmitRun_RunAppearsFinishesAndVerifies()
    {
        var (context, page, errors) = await OpenAsync();
        await using var _ = context;
        await SignInAsync(page);

        using var http = Host.Client();
        using var submitted = await http.PostAsync("v1/runs", Json(Hello));
        Assert.Equal(HttpStatusCode.Accepted, submitted.StatusCode);
        var id = (await submitted.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("id").GetString()!;

        // The table is polled: the new run shows up, then settles, without a reload.
        var row = page.Locator($"tr[data-run='{id}']");
        await Assertions.Expect(row).ToBeVisibleAsync(new() { Timeout = Expect });
        await Assertions.Expect(page.Locator($"tr[data-run='{id}'][data-status='succeeded']")).ToBeVisibleAsync(new() { Timeout = Expect });
        await ShotAsync(page, "runs");

        await row.GetByRole(AriaRole.Link).ClickAsync();
        await Assertions.Expect(page.Locator("#provenance-verdict")).ToHaveTextAsync("✔ Verified", new() { Timeout = Expect });
        await Assertions.Expect(page.Locator("#run-stdout")).ToHaveTextAsync("console 42\n");
        await Assertions.Expect(page.GetByText("The stdout shown above matches the record's digest")).ToBeVisibleAsync();
        await Assertions.Expect(page.GetByRole(AriaRole.Heading, new() { Name = "Routing decision" })).ToBeVisibleAsync();
        await ShotAsync(page, "run");

        // Phone width: the same page stays usable (no horizontal scroll of the page itself).
        await page.SetViewportSizeAsync(390, 844);
        await page.GotoAsync($"{Host.Url}console/#/runs");
        await Assertions.Expect(page.Locator($"tr[data-run='{id}']")).ToBeVisibleAsync(new() { Timeout = Expect });
        Assert.True(await page.EvaluateAsync<bool>("document.documentElement.scrollWidth <= window.innerWidth + 1"), "the runs page scrolls sideways at phone width");
        await ShotAsync(page, "runs-phone");
        Assert.True(errors.Count == 0, "browser errors: " + string.Join(" | ", errors));
    }

    [Fact]
    public async Task Console_TamperedProvenance_ShowsFailed()
    {
        var id = await SettledRunAsync();
        var (context, page, errors) = await OpenAsync();
        await using var _ = context;
        await SignInAsync(page);

        // One byte of the signed payload flipped on its way to the browser.
        await page.RouteAsync("**/v1/runs/*/provenance", async route =>
        {
            var response = await route.FetchAsync();
            var bundle = JsonNode.Parse(await response.TextAsync())!;
            var payload = Convert.FromBase64String(bundle["envelope"]!["payload"]!.GetValue<string>());
            payload[payload.Length / 2] ^= 0x01;
            bundle["envelope"]!["payload"] = Convert.ToBase64String(payload);
            await route.FulfillAsync(new() { Response = response, Body = bundle.ToJsonString() });
        });
        await page.GotoAsync($"{Host.Url}console/#/runs/{id}");
        await Assertions.Expect(page.Locator("#provenance-verdict")).ToHaveTextAsync("✘ Failed", new() { Timeout = Expect });
        await Assertions.Expect(page.Locator(".checks li.bad").First).ToContainTextAsync("Envelope signature");
        await ShotAsync(page, "run-tampered");
        Assert.True(errors.Count == 0, "browser errors: " + string.Join(" | ", errors));
    }

    [Fact]
    public async Task Console_CostsPage_DrawsTheChartsAndExportsCsv()
    {
        await SettledRunAsync();
        var (context, page, errors) = await OpenAsync();
        await using var _ = context;
        await SignInAsync(page);
        await page.GotoAsync($"{Host.Url}console/#/costs");

        var canvas = page.Locator("#chart-days");
        await Assertions.Expect(canvas).ToBeVisibleAsync(new() { Timeout = Expect });
        // Drawn: some pixel of the spend-per-day chart is not transparent.
        var painted = await Poll.UntilAsync(
            () => canvas.EvaluateAsync<int>("c => { const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data; let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i]) n++; return n; }"),
            n => n > 0,
            TimeSpan.FromSeconds(20),
            "the cost chart to draw");
        Assert.True(painted > 100, $"only {painted} pixels drawn");
        await ShotAsync(page, "costs");

        var download = await page.RunAndWaitForDownloadAsync(() => page.GetByRole(AriaRole.Button, new() { Name = "Export CSV (per day and provider)" }).ClickAsync());
        var csv = await File.ReadAllTextAsync((await download.PathAsync())!);
        Assert.StartsWith("day,provider,runs,total_usd,fees_usd,savings_usd\n", csv, StringComparison.Ordinal);
        Assert.Contains(",local,", csv, StringComparison.Ordinal);
        Assert.True(errors.Count == 0, "browser errors: " + string.Join(" | ", errors));
    }

    [Fact]
    public async Task Console_AgentsPage_CreatesATokenAndRevokesTheEnrolledAgent()
    {
        var (context, page, errors) = await OpenAsync();
        await using var _ = context;
        await SignInAsync(page);
        await page.GotoAsync($"{Host.Url}console/#/agents");
        await Assertions.Expect(page.GetByRole(AriaRole.Table, new() { Name = "Enrolled agents" }).Or(page.Locator(".empty"))).ToBeVisibleAsync(new() { Timeout = Expect });
        await page.GetByRole(AriaRole.Button, new() { Name = "Create enrollment token" }).ClickAsync();
        var shown = page.Locator("#enrollment-token");
        try
        {
            await Assertions.Expect(shown).ToBeVisibleAsync(new() { Timeout = Expect });
        }
        catch (PlaywrightException e)
        {
            await ShotAsync(page, "agents-failure");
            throw new InvalidOperationException($"no token shown; page:\n{await page.InnerTextAsync("body")}\nerrors: {string.Join(" | ", errors)}", e);
        }

        var token = (await shown.TextContentAsync())!.Trim();

        using var anonymous = new HttpClient { BaseAddress = new Uri(Host.Url) };
        using var enrol = new HttpRequestMessage(HttpMethod.Post, "v1/edge/agents") { Content = Json("""{"name":"console-test-agent"}""") };
        enrol.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        using var enrolled = await anonymous.SendAsync(enrol);
        Assert.Equal(HttpStatusCode.Created, enrolled.StatusCode);
        var agent = await enrolled.Content.ReadFromJsonAsync<JsonElement>();
        var agentId = agent.GetProperty("agentId").GetString()!;
        var agentToken = agent.GetProperty("agentToken").GetString()!;

        var row = page.Locator($"tr[data-agent='{agentId}']");
        await Assertions.Expect(row).ToBeVisibleAsync(new() { Timeout = Expect });
        await ShotAsync(page, "agents");
        await row.GetByRole(AriaRole.Button, new() { Name = "Revoke console-test-agent" }).ClickAsync();
        await row.GetByRole(AriaRole.Button, new() { Name = "Confirm revoking console-test-agent" }).ClickAsync();
        await Assertions.Expect(page.Locator("#agents-status")).ToHaveTextAsync($"Revoked console-test-agent ({agentId}).", new() { Timeout = Expect });
        await Assertions.Expect(row).ToHaveCountAsync(0, new() { Timeout = Expect });

        // Revoked means its token no longer works.
        using var beat = new HttpRequestMessage(HttpMethod.Post, $"v1/edge/agents/{agentId}/heartbeat") { Content = Json("""{"runtimes":[{"name":"bwrap"}]}""") };
        beat.Headers.Authorization = new AuthenticationHeaderValue("Bearer", agentToken);
        using var refused = await anonymous.SendAsync(beat);
        Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);
        Assert.True(errors.Count == 0, "browser errors: " + string.Join(" | ", errors));
    }

    [Fact]
    public async Task Console_OtherPages_ShowTheirEmptyStatesOrData()
    {
        var (context, page, errors) = await OpenAsync();
        await using var _ = context;
        await SignInAsync(page);
        foreach (var (name, heading) in new[] { ("sandboxes", "Sandboxes"), ("shield", "Shield findings") })
        {
            await page.GotoAsync($"{Host.Url}console/#/{name}");
            await Assertions.Expect(page.GetByRole(AriaRole.Heading, new() { Name = heading, Exact = true })).ToBeVisibleAsync(new() { Timeout = Expect });
            await Assertions.Expect(page.Locator("table, .empty").First).ToBeVisibleAsync(new() { Timeout = Expect });
            await ShotAsync(page, name);
        }

        // Keyboard: on a fresh load the first Tab reaches the skip link.
        await page.ReloadAsync();
        await Assertions.Expect(page.GetByRole(AriaRole.Heading, new() { Name = "Shield findings" })).ToBeVisibleAsync(new() { Timeout = Expect });
        await page.Keyboard.PressAsync("Tab");
        Assert.Equal("Skip to content", await page.EvaluateAsync<string>("document.activeElement.textContent"));
        Assert.True(errors.Count == 0, "browser errors: " + string.Join(" | ", errors));
    }

    [Fact]
    public async Task Console_SignInWithAWrongKey_IsRefusedAndNothingIsStored()
    {
        var (context, page, _) = await OpenAsync();
        await using var __ = context;
        await page.GotoAsync($"{Host.Url}console/");
        await page.GetByLabel("API key").FillAsync("not-a-key");
        await page.GetByRole(AriaRole.Button, new() { Name = "Sign in" }).ClickAsync();
        await Assertions.Expect(page.Locator("#sign-in-error")).ToHaveTextAsync("That API key is not valid.");
        await ShotAsync(page, "sign-in");

        await SignInAsync(page);
        Assert.Equal(0, await page.EvaluateAsync<int>("localStorage.length"));
        Assert.Equal(Host.ApiKey, await page.EvaluateAsync<string>("sessionStorage.getItem('sandstorm.apiKey')"));
        Assert.DoesNotContain(Host.ApiKey, page.Url, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ConsoleAssets_WithoutACredential_AreServedWithAStrictPolicy()
    {
        using var http = new HttpClient(new HttpClientHandler { AllowAutoRedirect = false }) { BaseAddress = new Uri(Host.Url) };
        using var bare = await http.GetAsync("console");
        Assert.Equal(HttpStatusCode.Redirect, bare.StatusCode);
        Assert.Equal("/console/", bare.Headers.Location!.OriginalString);

        using var index = await http.GetAsync("console/");
        Assert.Equal(HttpStatusCode.OK, index.StatusCode);
        Assert.Equal("text/html", index.Content.Headers.ContentType!.MediaType);
        Assert.Contains("script-src 'self'", index.Headers.GetValues("Content-Security-Policy").Single(), StringComparison.Ordinal);

        using var chart = await http.GetAsync("console/vendor/chart.umd.js");
        Assert.Equal(HttpStatusCode.OK, chart.StatusCode);
        Assert.Contains("Chart.js", await chart.Content.ReadAsStringAsync(), StringComparison.Ordinal);

        using var missing = await http.GetAsync("console/nope.js");
        Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
    }

    [Fact]
    public async Task ListRuns_FilteredByStatusAndProvider_ReturnsNewestFirstWithoutOutputs()
    {
        var id = await SettledRunAsync();
        using var http = Host.Client();
        var list = await http.GetFromJsonAsync<JsonElement>("v1/runs?status=succeeded&provider=local&limit=200");
        var runs = list.GetProperty("runs").EnumerateArray().ToList();
        var run = Assert.Single(runs, r => r.GetProperty("id").GetString() == id);
        Assert.False(run.TryGetProperty("stdout", out _));
        Assert.All(runs, r => Assert.Equal("succeeded", r.GetProperty("status").GetString()));
        var created = runs.Select(r => r.GetProperty("createdAt").GetDateTimeOffset()).ToList();
        Assert.Equal(created.OrderDescending(), created);

        var none = await http.GetFromJsonAsync<JsonElement>("v1/runs?status=succeeded&provider=no-such-provider");
        Assert.Empty(none.GetProperty("runs").EnumerateArray());
        using var bad = await http.GetAsync("v1/runs?status=finished");
        Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
    }

    private async Task<string> SettledRunAsync()
    {
        using var http = Host.Client();
        using var response = await http.PostAsync("v1/runs?wait=30", Json(Hello));
        var run = await response.Content.ReadFromJsonAsync<JsonElement>();
        Assert.Equal("succeeded", run.GetProperty("status").GetString());
        return run.GetProperty("id").GetString()!;
    }

    private async Task<(IBrowserContext Context, IPage Page, List<string> Errors)> OpenAsync()
    {
        var context = await browser.Browser.NewContextAsync(new() { ViewportSize = new() { Width = 1280, Height = 900 }, AcceptDownloads = true });
        var page = await context.NewPageAsync();
        var errors = new List<string>();
        page.Console += (_, m) =>
        {
            // A 401 of a wrong key is logged by the browser as a failed resource, and a poll cut off by a navigation as
            // aborted; anything else is a console bug (CSP included).
            if (m.Type == "error" && !m.Text.Contains("401", StringComparison.Ordinal)
                && !m.Text.Contains("ERR_ABORTED", StringComparison.Ordinal) && !m.Text.Contains("AbortError", StringComparison.Ordinal))
            {
                lock (errors)
                {
                    errors.Add(m.Text);
                }
            }
        };
        page.PageError += (_, e) =>
        {
            if (e.Contains("AbortError", StringComparison.Ordinal))
            {
                return;
            }

            lock (errors)
            {
                errors.Add(e);
            }
        };
        return (context, page, errors);
    }

    private async Task SignInAsync(IPage page)
    {
        await page.GotoAsync($"{Host.Url}console/");
        await page.GetByLabel("API key").FillAsync(Host.ApiKey);
        await page.GetByRole(AriaRole.Button, new() { Name = "Sign in" }).ClickAsync();
        await Assertions.Expect(page.GetByRole(AriaRole.Navigation, new() { Name = "Console pages" })).ToBeVisibleAsync(new() { Timeout = Expect });
    }

    private static async Task ShotAsync(IPage page, string name)
    {
        Directory.CreateDirectory(ConsoleBrowserFixture.ScreenshotDirectory);
        await page.ScreenshotAsync(new() { Path = Path.Combine(ConsoleBrowserFixture.ScreenshotDirectory, name + ".png"), FullPage = true });
    }

    private static StringContent Json(string body) => new(body, Encoding.UTF8, "application/json");
}

/// <summary>One chromium for the console's tests: Debian's package (scripts/setup.sh), launched by Playwright.</summary>
public sealed class ConsoleBrowserFixture : IAsyncLifetime
{
    public const string Chromium = "/usr/bin/chromium";

    /// <summary>Where the tests save a screenshot of each page.</summary>
    public static string ScreenshotDirectory { get; } = Path.Combine(AppContext.BaseDirectory, "screenshots", "console");

    private IPlaywright? _playwright;

    public IBrowser Browser { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        if (!File.Exists(Chromium))
        {
            throw new InvalidOperationException($"{Chromium} is missing: scripts/setup.sh installs Debian's chromium package");
        }

        _playwright = await Playwright.CreateAsync();
        Browser = await _playwright.Chromium.LaunchAsync(new() { ExecutablePath = Chromium });
    }

    public async Task DisposeAsync()
    {
        if (Browser is not null)
        {
            await Browser.DisposeAsync();
        }

        _playwright?.Dispose();
    }
}
