using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Json;
using Microsoft.AspNetCore.OpenApi;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.OpenApi;
using Scalar.AspNetCore;
using Sandstorm.Core;
using Sandstorm.Core.Errors;

namespace Sandstorm.Api.OpenApi;

/// <summary>
/// The OpenAPI document of the API, generated from the mapped endpoints (<c>Microsoft.AspNetCore.OpenApi</c>) at
/// <see cref="DocumentRoute"/>, and Scalar's reference page over it at <see cref="ReferenceRoute"/>. The handlers take the
/// <see cref="HttpContext"/> and read their bodies strictly themselves, so what each operation accepts and answers — request
/// and response schemas, and its problem+json errors with their <c>type</c>s — comes from <see cref="ApiOperations"/>.
/// </summary>
public static class ApiDocument
{
    /// <summary>The document's name (its path is <c>/openapi/v1.json</c>).</summary>
    public const string Name = "v1";

    /// <summary>Route of the document.</summary>
    public const string DocumentRoute = "/openapi/{documentName}.json";

    /// <summary>Route of the reference page.</summary>
    public const string ReferenceRoute = "/docs";

    /// <summary>Media type of every Sandstorm error (RFC 9457), except on E2B's wire, which answers in E2B's own shape.</summary>
    public const string ProblemMediaType = "application/problem+json";

    /// <summary>Extension listing the problem <c>type</c> URIs an error response can carry.</summary>
    public const string ProblemTypesExtension = "x-problem-types";

    public static IServiceCollection AddSandstormApiDocument(this IServiceCollection services)
    {
        // Schemas as the wire has them (snake_case enum strings, camelCase names): the document is generated with these options.
        services.ConfigureHttpJsonOptions(options => SandstormJson.Configure(options.SerializerOptions));
        services.AddOpenApi(Name, options =>
        {
            options.AddDocumentTransformer((document, _, _) =>
            {
                document.Info = new OpenApiInfo
                {
                    Title = "Sandstorm API",
                    Version = "v1",
                    Description = "Run AI-generated code in sandboxes placed by intent. Authenticate with `Authorization: Bearer <api key>`; "
                        + "every error is application/problem+json (RFC 9457) with a stable `type` and `code`, except on E2B's wire. "
                        + "Agents can use the same API as MCP tools at /mcp (docs/mcp.md).",
                };
                return Task.CompletedTask;
            });
            options.AddOperationTransformer(DescribeAsync);
        });
        return services;
    }

    /// <summary>Maps the document and the reference page (no credential needed for either).</summary>
    public static IEndpointRouteBuilder MapSandstormApiDocument(this IEndpointRouteBuilder app)
    {
        app.MapOpenApi(DocumentRoute);
        app.MapScalarApiReference(ReferenceRoute, options => options
            .WithTitle("Sandstorm API")
            .WithOpenApiRoutePattern(DocumentRoute));
        return app;
    }

    private static async Task DescribeAsync(OpenApiOperation operation, OpenApiOperationTransformerContext context, CancellationToken cancellationToken)
    {
        var name = context.Description.ActionDescriptor.EndpointMetadata.OfType<IEndpointNameMetadata>().FirstOrDefault()?.EndpointName;
        if (name is null || !ApiOperations.All.TryGetValue(name, out var spec))
        {
            return;
        }

        operation.OperationId = name;
        operation.Summary = spec.Summary;
        operation.Tags = new HashSet<OpenApiTagReference> { new(spec.Tag, context.Document) };
        if (spec.Request is { } request)
        {
            operation.RequestBody = new OpenApiRequestBody
            {
                Required = true,
                Content = new Dictionary<string, OpenApiMediaType>
                {
                    [request.MediaType] = new() { Schema = request.Type is null ? Opaque(request.MediaType) : await SchemaAsync(request.Type, context, cancellationToken) },
                },
            };
        }

        var responses = new OpenApiResponses();
        foreach (var success in spec.Responses)
        {
            responses[success.Status.ToString(System.Globalization.CultureInfo.InvariantCulture)] = new OpenApiResponse
            {
                Description = success.Description,
                Content = success.MediaType is null
                    ? null
                    : new Dictionary<string, OpenApiMediaType>
                    {
                        [success.MediaType] = new() { Schema = success.Type is null ? Opaque(success.MediaType) : await SchemaAsync(success.Type, context, cancellationToken) },
                    },
            };
        }

        var errorType = spec.E2BWire ? typeof(E2BWireError) : typeof(ApiProblem);
        var errorMediaType = spec.E2BWire ? "application/json" : ProblemMediaType;
        var errorSchema = await SchemaAsync(errorType, context, cancellationToken);
        foreach (var status in spec.Errors)
        {
            var codes = ApiOperations.CodesOf(status);
            var response = new OpenApiResponse
            {
                Description = spec.E2BWire
                    ? $"{ApiOperations.Title(status)} (E2B's error shape)"
                    : $"{ApiOperations.Title(status)}: problem type {string.Join(", ", codes)}",
                Content = new Dictionary<string, OpenApiMediaType> { [errorMediaType] = new() { Schema = errorSchema } },
            };
            if (!spec.E2BWire)
            {
                response.Extensions = new Dictionary<string, IOpenApiExtension>
                {
                    [ProblemTypesExtension] = new JsonNodeExtension(new JsonArray(codes.Select(c => (JsonNode)ErrorCodes.TypeUri(c)).ToArray())),
                };
            }

            responses[status.ToString(System.Globalization.CultureInfo.InvariantCulture)] = response;
        }

        operation.Responses = responses;
    }

    /// <summary>
    /// A reference to the type's schema among the document's components, generated once per document (generating it for each
    /// operation would inline every contract into every operation, and cost seconds per document).
    /// </summary>
    private static async Task<IOpenApiSchema> SchemaAsync(Type type, OpenApiOperationTransformerContext context, CancellationToken cancellationToken)
    {
        if (type.IsArray)
        {
            return new OpenApiSchema { Type = JsonSchemaType.Array, Items = await SchemaAsync(type.GetElementType()!, context, cancellationToken) };
        }

        var document = context.Document ?? throw new InvalidOperationException("an operation transformer runs within a document");
        document.Components ??= new OpenApiComponents();
        document.Components.Schemas ??= new Dictionary<string, IOpenApiSchema>(StringComparer.Ordinal);
        if (!document.Components.Schemas.ContainsKey(type.Name))
        {
            document.Components.Schemas[type.Name] = await context.GetOrCreateSchemaAsync(type, null, cancellationToken);
        }

        return new OpenApiSchemaReference(type.Name, document);
    }

    private static OpenApiSchema Opaque(string mediaType) => mediaType switch
    {
        "application/octet-stream" => new OpenApiSchema { Type = JsonSchemaType.String, Format = "binary" },
        "text/event-stream" or "application/x-ndjson" or "application/yaml" => new OpenApiSchema { Type = JsonSchemaType.String },
        _ => new OpenApiSchema { Type = JsonSchemaType.Object },
    };
}
