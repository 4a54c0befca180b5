using System.Text;

namespace Sandstorm.Shield;

/// <summary>A rule's output with Falco's <c>%field</c> placeholders; a field the event lacks renders as <c>&lt;NA&gt;</c>.</summary>
public sealed class OutputTemplate
{
    private readonly List<(string Text, FieldDefinition? Field)> parts;

    private OutputTemplate(List<(string, FieldDefinition?)> parts)
    {
        this.parts = parts;
    }

    /// <summary>The fields the output names, in order, without repeats.</summary>
    public IReadOnlyList<FieldDefinition> Fields => [.. parts.Where(p => p.Field is not null).Select(p => p.Field!).DistinctBy(f => f.Name)];

    /// <summary>Parses a template; a <c>%name</c> that is not a supported field is an error (thrown as <see cref="ConditionException"/>).</summary>
    internal static OutputTemplate Parse(string text)
    {
        var parts = new List<(string, FieldDefinition?)>();
        var literal = new StringBuilder();
        var i = 0;
        while (i < text.Length)
        {
            if (text[i] != '%' || i + 1 >= text.Length || !(char.IsAsciiLetterLower(text[i + 1]) || text[i + 1] == '('))
            {
                literal.Append(text[i++]);
                continue;
            }

            // %field or %(field)
            var parenthesised = text[i + 1] == '(';
            var start = i + (parenthesised ? 2 : 1);
            var end = start;
            while (end < text.Length && (char.IsAsciiLetterOrDigit(text[end]) || text[end] is '.' or '_'))
            {
                end++;
            }

            // A sentence may end right after a field: "%proc.name." names proc.name.
            var name = text[start..end];
            while (!parenthesised && name.EndsWith('.'))
            {
                name = name[..^1];
                end--;
            }

            if (!Shield.Fields.TryGet(name, out var field))
            {
                throw new ConditionException($"output names unknown field '%{name}'", "%" + name);
            }

            if (parenthesised)
            {
                if (end >= text.Length || text[end] != ')')
                {
                    throw new ConditionException($"output field '%({name}' is not closed with ')'", "%(" + name);
                }

                end++;
            }

            if (literal.Length > 0)
            {
                parts.Add((literal.ToString(), null));
                literal.Clear();
            }

            parts.Add((string.Empty, field));
            i = end;
        }

        if (literal.Length > 0)
        {
            parts.Add((literal.ToString(), null));
        }

        return new OutputTemplate(parts);
    }

    public string Render(ShieldEvent e)
    {
        var text = new StringBuilder();
        foreach (var (literal, field) in parts)
        {
            text.Append(field is null ? literal : field.Read(e) ?? "<NA>");
        }

        return text.ToString().Trim();
    }

    /// <summary>The named fields and their values, as Falco's <c>output_fields</c>.</summary>
    public Dictionary<string, string?> RenderFields(ShieldEvent e)
    {
        var fields = new Dictionary<string, string?>(StringComparer.Ordinal);
        foreach (var (_, field) in parts)
        {
            if (field is not null)
            {
                fields[field.Name] = field.Read(e);
            }
        }

        return fields;
    }
}
