using System.Text;
using System.Text.Json;
using Sandstorm.Core;
using Sandstorm.Core.Contracts;
using Sandstorm.Core.Errors;
using Sandstorm.Core.Validation;

namespace Sandstorm.Orchestrations.Batches;

/// <summary>
/// A batch's run requests: parsed from a JSON array or JSON Lines, every item validated before anything is stored,
/// and kept in Blob storage as JSON Lines (one canonical request per line, in input order).
/// </summary>
public static class BatchManifest
{
    /// <summary>
    /// Parses and validates every item, returning them canonical (aliases folded, see <see cref="RunRequestValidator.Normalize"/>);
    /// throws a <see cref="SandstormException"/> naming the first bad item's index and fields.
    /// </summary>
    public static IReadOnlyList<RunRequest> Parse(string text, bool jsonLines, int maxItems) =>
        Validate(jsonLines ? ParseLines(text, maxItems) : ParseArray(text, maxItems));

    /// <summary>
    /// As <see cref="Parse(string, bool, int)"/>, from a stream read item by item: the body is never held as one string,
    /// and more than <paramref name="maxBytes"/> of it is a 413 <c>payload-too-large</c> as soon as the limit is crossed.
    /// </summary>
    public static async Task<IReadOnlyList<RunRequest>> ParseAsync(Stream body, bool jsonLines, int maxItems, long maxBytes, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(body);
        await using var limited = new SizeLimitedStream(body, maxBytes);
        return Validate(jsonLines
            ? await ParseLinesAsync(limited, maxItems, cancellationToken)
            : await ParseArrayAsync(limited, maxItems, cancellationToken));
    }

    private static List<RunRequest> Validate(List<RunRequest> items)
    {
        if (items.Count == 0)
        {
            throw new SandstormException(ErrorCodes.ValidationFailed, "the batch holds no run requests", 400,
                new Dictionary<string, string[]> { ["items"] = ["at least one run request is required"] });
        }

        for (var i = 0; i < items.Count; i++)
        {
            NullElements.Reject(items[i], $"items[{i}]");
            var (canonical, errors) = RunRequestValidator.Check(items[i]);
            items[i] = canonical!;
            if (errors.Count > 0)
            {
                throw new SandstormException(
                    ErrorCodes.ValidationFailed,
                    $"item {i} is not a valid run request: {string.Join("; ", errors.SelectMany(e => e.Value))}",
                    400,
                    errors.ToDictionary(e => $"items[{i}].{e.Key}", e => e.Value));
            }
        }

        return items;
    }

    /// <summary>The manifest as stored: one request per line.</summary>
    public static string ToJsonLines(IEnumerable<RunRequest> requests)
    {
        var text = new StringBuilder();
        foreach (var request in requests)
        {
            text.Append(JsonSerializer.Serialize(request, SandstormJson.Options)).Append('\n');
        }

        return text.ToString();
    }

    private static List<RunRequest> ParseArray(string text, int maxItems)
    {
        RunRequest?[]? items;
        try
        {
            items = JsonSerializer.Deserialize<RunRequest?[]>(text, SandstormJson.Strict);
        }
        catch (JsonException e)
        {
            // The path names the item: "$[3].timeout" → items[3].timeout.
            var where = e.Path is { Length: > 1 } path ? "items" + path[1..] : "items";
            throw new SandstormException(ErrorCodes.MalformedJson, $"the batch is not a JSON array of run requests at {where}", 400,
                new Dictionary<string, string[]> { [where] = [FirstSentence(e.Message)] });
        }

        if (items is null)
        {
            throw new SandstormException(ErrorCodes.MalformedJson, "the batch is empty or null", 400);
        }

        ThrowIfTooMany(items.Length, maxItems);
        return [.. items.Select((r, i) => r ?? throw NullItem(i))];
    }

    private static List<RunRequest> ParseLines(string text, int maxItems)
    {
        var items = new List<RunRequest>();
        foreach (var raw in text.Split('\n'))
        {
            AddLine(items, raw, maxItems);
        }

        return items;
    }

    // One JSON Lines line: blank lines are skipped; a line that is not a run request names its line and item.
    private static void AddLine(List<RunRequest> items, string raw, int maxItems)
    {
        var line = raw.Trim();
        if (line.Length == 0)
        {
            return;
        }

        ThrowIfTooMany(items.Count + 1, maxItems);
        try
        {
            items.Add(JsonSerializer.Deserialize<RunRequest>(line, SandstormJson.Strict) ?? throw NullItem(items.Count));
        }
        catch (JsonException e)
        {
            var where = $"items[{items.Count}]" + (e.Path is { Length: > 1 } path ? path[1..] : "");
            throw new SandstormException(ErrorCodes.MalformedJson, $"line {items.Count + 1} is not a run request ({where})", 400,
                new Dictionary<string, string[]> { [where] = [FirstSentence(e.Message)] });
        }
    }

    private static async Task<List<RunRequest>> ParseArrayAsync(Stream body, int maxItems, CancellationToken cancellationToken)
    {
        var items = new List<RunRequest>();
        try
        {
            await foreach (var item in JsonSerializer.DeserializeAsyncEnumerable<RunRequest?>(body, SandstormJson.Strict, cancellationToken))
            {
                ThrowIfTooMany(items.Count + 1, maxItems);
                items.Add(item ?? throw NullItem(items.Count));
            }
        }
        catch (JsonException e)
        {
            var where = e.Path is { Length: > 1 } path ? "items" + path[1..] : "items";
            throw new SandstormException(ErrorCodes.MalformedJson, $"the batch is not a JSON array of run requests at {where}", 400,
                new Dictionary<string, string[]> { [where] = [FirstSentence(e.Message)] });
        }

        return items;
    }

    private static async Task<List<RunRequest>> ParseLinesAsync(Stream body, int maxItems, CancellationToken cancellationToken)
    {
        var items = new List<RunRequest>();
        using var reader = new StreamReader(body, Encoding.UTF8, detectEncodingFromByteOrderMarks: false, leaveOpen: true);
        while (await reader.ReadLineAsync(cancellationToken) is { } raw)
        {
            AddLine(items, raw, maxItems);
        }

        return items;
    }

    private static void ThrowIfTooMany(int count, int maxItems)
    {
        if (count > maxItems)
        {
            throw new SandstormException(ErrorCodes.PayloadTooLarge, $"a batch holds at most {maxItems} run requests; this one has more", 413,
                new Dictionary<string, string[]> { ["items"] = [$"at most {maxItems} items"] });
        }
    }

    private static SandstormException NullItem(int index) =>
        new(ErrorCodes.ValidationFailed, $"item {index} is null", 400, new Dictionary<string, string[]> { [$"items[{index}]"] = ["a run request is required"] });

    private static string FirstSentence(string message)
    {
        var end = message.IndexOf(". ", StringComparison.Ordinal);
        return end > 0 ? message[..end] : message;
    }
}
