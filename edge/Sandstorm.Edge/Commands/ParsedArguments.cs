using System.Globalization;

namespace Sandstorm.Edge.Commands;

/// <summary>
/// A small parser for <c>--name value</c>, <c>--name=value</c> and <c>--flag</c> arguments. Each command declares
/// which names take values and which are flags; anything else is a usage error.
/// </summary>
public sealed class ParsedArguments
{
    private readonly Dictionary<string, string> values = new(StringComparer.Ordinal);
    private readonly HashSet<string> flags = new(StringComparer.Ordinal);
    private readonly Dictionary<string, List<string>> repeated = new(StringComparer.Ordinal);

    private ParsedArguments()
    {
    }

    public static ParsedArguments Parse(IReadOnlyList<string> args, IReadOnlyCollection<string> valueOptions, IReadOnlyCollection<string> flagOptions) =>
        Parse(args, valueOptions, flagOptions, []);

    /// <summary>As above, plus options that may be given several times (<c>--label a=b --label c=d</c>).</summary>
    public static ParsedArguments Parse(IReadOnlyList<string> args, IReadOnlyCollection<string> valueOptions, IReadOnlyCollection<string> flagOptions, IReadOnlyCollection<string> repeatedOptions)
    {
        var parsed = new ParsedArguments();
        for (var i = 0; i < args.Count; i++)
        {
            var arg = args[i];
            if (!arg.StartsWith("--", StringComparison.Ordinal) || arg.Length == 2)
            {
                throw new UsageException($"unexpected argument '{arg}'");
            }

            var name = arg[2..];
            string? inline = null;
            var eq = name.IndexOf('=', StringComparison.Ordinal);
            if (eq >= 0)
            {
                inline = name[(eq + 1)..];
                name = name[..eq];
            }

            if (flagOptions.Contains(name))
            {
                if (inline is not null)
                {
                    throw new UsageException($"--{name} takes no value");
                }

                parsed.flags.Add(name);
            }
            else if (repeatedOptions.Contains(name))
            {
                if (inline is null)
                {
                    if (i + 1 >= args.Count)
                    {
                        throw new UsageException($"--{name} needs a value");
                    }

                    inline = args[++i];
                }

                if (!parsed.repeated.TryGetValue(name, out var list))
                {
                    parsed.repeated[name] = list = [];
                }

                list.Add(inline);
            }
            else if (valueOptions.Contains(name))
            {
                if (parsed.values.ContainsKey(name))
                {
                    throw new UsageException($"--{name} given more than once");
                }

                if (inline is null)
                {
                    if (i + 1 >= args.Count)
                    {
                        throw new UsageException($"--{name} needs a value");
                    }

                    inline = args[++i];
                }

                parsed.values[name] = inline;
            }
            else
            {
                throw new UsageException($"unknown option '--{name}'");
            }
        }

        return parsed;
    }

    public bool Has(string flag) => flags.Contains(flag);

    /// <summary>Every value of a repeatable option, in order.</summary>
    public IReadOnlyList<string> Values(string name) => repeated.TryGetValue(name, out var list) ? list : [];

    public string? Value(string name) => values.GetValueOrDefault(name);

    public string Required(string name) => Value(name) ?? throw new UsageException($"--{name} is required");

    public string OneOf(string name, IReadOnlyCollection<string> allowed, string? fallback = null)
    {
        var value = Value(name) ?? fallback ?? throw new UsageException($"--{name} is required (one of: {string.Join(", ", allowed)})");
        return allowed.Contains(value)
            ? value
            : throw new UsageException($"--{name} must be one of: {string.Join(", ", allowed)} (got '{value}')");
    }

    public int Int(string name, int fallback, int min, int max)
    {
        var text = Value(name);
        if (text is null)
        {
            return fallback;
        }

        return int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var value) && value >= min && value <= max
            ? value
            : throw new UsageException($"--{name} must be a whole number from {min} to {max} (got '{text}')");
    }

    public double Number(string name, double fallback, double minExclusive, double max)
    {
        var text = Value(name);
        if (text is null)
        {
            return fallback;
        }

        return double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var value) && value > minExclusive && value <= max
            ? value
            : throw new UsageException($"--{name} must be a number above {minExclusive} and at most {max} (got '{text}')");
    }
}
