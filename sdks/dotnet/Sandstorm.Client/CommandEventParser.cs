using System.Globalization;
using System.Text.Json;

namespace Sandstorm.Client;

/// <summary>Turns the lines of a command's <c>text/event-stream</c> into <see cref="CommandEvent"/>s (comments skipped).</summary>
internal sealed class CommandEventParser
{
    private readonly List<string> _data = [];
    private string? _id;
    private string _event = "message";

    /// <summary>The id of the last event seen, to resume after it.</summary>
    public string? LastEventId { get; private set; }

    /// <summary>Feeds one line; returns the event a blank line completes.</summary>
    public CommandEvent? Feed(string line)
    {
        if (line.Length == 0)
        {
            if (_data.Count == 0)
            {
                return null;
            }

            var result = Build(_id, _event, string.Join('\n', _data));
            LastEventId = _id ?? LastEventId;
            _data.Clear();
            _id = null;
            _event = "message";
            return result;
        }

        if (line[0] == ':')
        {
            return null;
        }

        var colon = line.IndexOf(':', StringComparison.Ordinal);
        var field = colon < 0 ? line : line[..colon];
        var value = colon < 0 ? "" : line[(colon + 1)..];
        if (value.StartsWith(' '))
        {
            value = value[1..];
        }

        switch (field)
        {
            case "id":
                _id = value;
                break;
            case "event":
                _event = value;
                break;
            case "data":
                _data.Add(value);
                break;
        }

        return null;
    }

    private static CommandEvent Build(string? id, string name, string data)
    {
        using var document = JsonDocument.Parse(data);
        var root = document.RootElement;
        var kind = name switch
        {
            "start" => CommandEventKind.Start,
            "stdout" => CommandEventKind.Stdout,
            "stderr" => CommandEventKind.Stderr,
            "end" => CommandEventKind.End,
            _ => CommandEventKind.Gap,
        };
        return new CommandEvent(id is null ? 0 : long.Parse(id, CultureInfo.InvariantCulture), kind)
        {
            CommandId = String(root, "commandId"),
            Pid = Int(root, "pid"),
            Data = String(root, "data"),
            Status = String(root, "status"),
            ExitCode = Int(root, "exitCode"),
            Signal = Int(root, "signal"),
            Error = String(root, "error") ?? String(root, "message"),
            DurationMs = root.TryGetProperty("durationMs", out var d) && d.ValueKind == JsonValueKind.Number ? d.GetInt64() : null,
        };
    }

    private static string? String(JsonElement e, string name) => e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;

    private static int? Int(JsonElement e, string name) => e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Number ? v.GetInt32() : null;
}
