using System.Net;
using System.Text.Json;
using Sandstorm.Api;
using Sandstorm.Api.OpenApi;
using Sandstorm.Core.Errors;

namespace Sandstorm.IntegrationTests;

/// <summary>The OpenAPI document the local host generates from its endpoints (<c>/openapi/v1.json</c>) and Scalar's page (<c>/docs</c>).</summary>
[Collection(LocalHostCollection.Name)]
public sealed class OpenApiDocumentTests(LocalHostFixture fixture)
{
    [Fact]
    public void ApiOperations_DescribeEveryRouteOfTheRouteTable_AndNoOther()
    {
        Assert.Equal(
            ApiRoutes.All.Select(r => r.Function).Order(StringComparer.Ordinal),
            ApiOperations.All.Keys.Order(StringComparer.Ordinal));
    }

    [Fact]
    public async Task OpenApiDocument_HasEveryRoute_WithSchemasAndProblemJsonErrors()
    {
        using var http = new HttpClient { BaseAddress = new Uri(fixture.Host.Url) };

        using var response = await http.GetAsync("openapi/v1.json");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        using var document = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        var root = document.RootElement;
        var paths = root.GetProperty("paths");
        foreach (var (function, method, route) in ApiRoutes.All)
        {
            // A catch-all parameter ({*path}) is written as a plain one in OpenAPI.
            Assert.True(paths.TryGetProperty("/" + route.Replace("{*", "{", StringComparison.Ordinal), out var path), $"{function}: /{route} is in the document");
            Assert.True(path.TryGetProperty(method.ToLowerInvariant(), out var operation), $"{function}: {method} /{route} is in the document");
            Assert.Equal(function, operation.GetProperty("operationId").GetString());
            var spec = ApiOperations.All[function];
            var responses = operation.GetProperty("responses");
            foreach (var success in spec.Responses)
            {
                Assert.True(responses.TryGetProperty(Status(success.Status), out var documented), $"{function} documents {success.Status}");
                if (success.Type is not null)
                {
                    Assert.True(documented.GetProperty("content").GetProperty(success.MediaType!).GetProperty("schema").ValueKind == JsonValueKind.Object, $"{function} {success.Status} has a schema");
                }
            }

            if (spec.Request is { } request)
            {
                Assert.True(
                    operation.GetProperty("requestBody").GetProperty("content").TryGetProperty(request.MediaType, out var body) && body.TryGetProperty("schema", out _),
                    $"{function} documents its {request.MediaType} body");
            }

            Assert.NotEmpty(spec.Errors);
            foreach (var status in spec.Errors)
            {
                Assert.True(responses.TryGetProperty(Status(status), out var error), $"{function} documents its {status}");
                if (spec.E2BWire)
                {
                    Assert.True(error.GetProperty("content").TryGetProperty("application/json", out _), $"{function} {status}: E2B's error shape");
                    continue;
                }

                Assert.True(error.GetProperty("content").TryGetProperty("application/problem+json", out var problem), $"{function} {status} is problem+json");
                Assert.EndsWith("/ApiProblem", problem.GetProperty("schema").GetProperty("$ref").GetString(), StringComparison.Ordinal);
                var types = error.GetProperty(ApiDocument.ProblemTypesExtension).EnumerateArray().Select(t => t.GetString()!).ToList();
                Assert.NotEmpty(types);
                Assert.All(types, t => Assert.StartsWith(ErrorCodes.TypePrefix, t, StringComparison.Ordinal));
            }
        }

        // Schemas are the wire's: enum values as the API takes them, problem fields as it answers them.
        var schemas = root.GetProperty("components").GetProperty("schemas");
        var isolation = schemas.GetProperty("RunRequest").GetProperty("properties").GetProperty("isolationLevel");
        var values = Flatten(isolation).ToList();
        values.AddRange(values.Where(v => v.StartsWith("#/components/schemas/", StringComparison.Ordinal)).ToList()
            .SelectMany(r => Flatten(schemas.GetProperty(r["#/components/schemas/".Length..]))));
        Assert.Contains("strong", values, StringComparer.Ordinal);
        Assert.True(schemas.GetProperty("ApiProblem").GetProperty("properties").TryGetProperty("code", out _));
    }

    [Fact]
    public async Task Docs_ServesTheReferencePage_OverTheDocument()
    {
        using var http = new HttpClient { BaseAddress = new Uri(fixture.Host.Url) };

        using var response = await http.GetAsync("docs");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/html", response.Content.Headers.ContentType?.MediaType);
        Assert.Contains("Sandstorm API", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    private static string Status(int status) => status.ToString(System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>Every string value in a schema (enum members may sit behind a reference or a oneOf).</summary>
    private static IEnumerable<string> Flatten(JsonElement element) => element.ValueKind switch
    {
        JsonValueKind.String => [element.GetString()!],
        JsonValueKind.Array => element.EnumerateArray().SelectMany(Flatten),
        JsonValueKind.Object => element.EnumerateObject().SelectMany(p => Flatten(p.Value)),
        _ => [],
    };
}
