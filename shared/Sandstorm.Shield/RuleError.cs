namespace Sandstorm.Shield;

/// <summary>One problem in a rule file: where (1-based line) and what.</summary>
public sealed record RuleError(int Line, string Message)
{
    public override string ToString() => $"line {Line}: {Message}";
}

/// <summary>A rule file that does not load; every problem found is listed, each with its line.</summary>
public sealed class RuleValidationException : Exception
{
    public RuleValidationException(IReadOnlyList<RuleError> errors)
        : base("rule file rejected: " + string.Join("; ", errors))
    {
        Errors = errors;
    }

    public RuleValidationException()
        : this([])
    {
    }

    public RuleValidationException(string message)
        : base(message)
    {
        Errors = [];
    }

    public RuleValidationException(string message, Exception innerException)
        : base(message, innerException)
    {
        Errors = [];
    }

    public IReadOnlyList<RuleError> Errors { get; } = [];
}
