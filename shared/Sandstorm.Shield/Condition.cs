using System.Globalization;

namespace Sandstorm.Shield;

/// <summary>A compiled condition: macros and lists are already expanded, fields resolved, values typed.</summary>
public abstract class Condition
{
    public abstract bool Evaluate(ShieldEvent e);
}

internal sealed class AndCondition(Condition left, Condition right) : Condition
{
    public override bool Evaluate(ShieldEvent e) => left.Evaluate(e) && right.Evaluate(e);
}

internal sealed class OrCondition(Condition left, Condition right) : Condition
{
    public override bool Evaluate(ShieldEvent e) => left.Evaluate(e) || right.Evaluate(e);
}

internal sealed class NotCondition(Condition inner) : Condition
{
    public override bool Evaluate(ShieldEvent e) => !inner.Evaluate(e);
}

internal sealed class ExistsCondition(FieldDefinition field) : Condition
{
    public override bool Evaluate(ShieldEvent e) => field.Read(e) is not null;
}

/// <summary>Comparison operators of the supported subset.</summary>
public enum CompareOperator
{
    Equal,
    NotEqual,
    Less,
    LessOrEqual,
    Greater,
    GreaterOrEqual,
    In,
    StartsWith,
    EndsWith,
    Contains,
    IContains,
    PMatch,
}

/// <summary>
/// <c>field op value(s)</c>. As in Falco, a field the event does not have makes every comparison false (also
/// <c>!=</c>); <c>not</c> around it is then true.
/// </summary>
internal sealed class CompareCondition : Condition
{
    private readonly FieldDefinition field;
    private readonly CompareOperator op;
    private readonly string[] values;
    private readonly long[] numbers;
    private readonly HashSet<string>? set;

    public CompareCondition(FieldDefinition field, CompareOperator op, IReadOnlyList<string> values)
    {
        this.field = field;
        this.op = op;
        this.values = [.. values];
        numbers = field.Kind == FieldKind.Text ? [] : [.. values.Select(v => long.TryParse(v, NumberStyles.Integer, CultureInfo.InvariantCulture, out var n) ? n : long.MinValue)];
        if (op == CompareOperator.In && field.Kind != FieldKind.Number)
        {
            set = new HashSet<string>(values, StringComparer.Ordinal);
        }
    }

    public override bool Evaluate(ShieldEvent e)
    {
        var actual = field.Read(e);
        if (actual is null)
        {
            return false;
        }

        switch (op)
        {
            case CompareOperator.Equal:
                return EqualsValue(actual, 0);
            case CompareOperator.NotEqual:
                return !EqualsValue(actual, 0);
            case CompareOperator.In:
                if (set is not null)
                {
                    return set.Contains(actual);
                }

                for (var i = 0; i < values.Length; i++)
                {
                    if (EqualsValue(actual, i))
                    {
                        return true;
                    }
                }

                return false;
            case CompareOperator.StartsWith:
                return actual.StartsWith(values[0], StringComparison.Ordinal);
            case CompareOperator.EndsWith:
                return actual.EndsWith(values[0], StringComparison.Ordinal);
            case CompareOperator.Contains:
                return actual.Contains(values[0], StringComparison.Ordinal);
            case CompareOperator.IContains:
                return actual.Contains(values[0], StringComparison.OrdinalIgnoreCase);
            case CompareOperator.PMatch:
                foreach (var prefix in values)
                {
                    if (IsUnder(actual, prefix))
                    {
                        return true;
                    }
                }

                return false;
            default:
                if (!long.TryParse(actual, NumberStyles.Integer, CultureInfo.InvariantCulture, out var number))
                {
                    return false;
                }

                return op switch
                {
                    CompareOperator.Less => number < numbers[0],
                    CompareOperator.LessOrEqual => number <= numbers[0],
                    CompareOperator.Greater => number > numbers[0],
                    _ => number >= numbers[0],
                };
        }
    }

    private bool EqualsValue(string actual, int index)
    {
        if (field.Kind == FieldKind.Number)
        {
            return long.TryParse(actual, NumberStyles.Integer, CultureInfo.InvariantCulture, out var n) && n == numbers[index];
        }

        return string.Equals(actual, values[index], StringComparison.Ordinal);
    }

    // Falco's pmatch: the path is the prefix itself or lies below it.
    private static bool IsUnder(string path, string prefix)
    {
        var trimmed = prefix.Length > 1 ? prefix.TrimEnd('/') : prefix;
        return path == trimmed || path.StartsWith(trimmed == "/" ? "/" : trimmed + "/", StringComparison.Ordinal);
    }
}
