using System.Globalization;
using System.Text;

namespace Sandstorm.Shield;

/// <summary>A construct the condition compiler rejects; <see cref="Token"/> is the text at fault (to find its line).</summary>
internal sealed class ConditionException(string message, string? token) : Exception(message)
{
    public string? Token { get; } = token;
}

/// <summary>What a condition may refer to besides fields: lists (already expanded) and macros (compiled on demand).</summary>
internal interface IConditionScope
{
    bool TryGetList(string name, out IReadOnlyList<string> items);

    /// <summary>The compiled macro, or false when there is no such macro; throws for a macro that does not compile.</summary>
    bool TryGetMacro(string name, out Condition condition);
}

/// <summary>
/// Compiles Falco's condition language, the subset Shield supports: <c>and</c>, <c>or</c>, <c>not</c>, parentheses;
/// <c>= == != &lt; &lt;= &gt; &gt;=</c>, <c>in (...)</c>, <c>startswith</c>, <c>endswith</c>, <c>contains</c>,
/// <c>icontains</c>, <c>pmatch (...)</c>, <c>exists</c>; fields of <see cref="Fields"/>; macros and lists by name.
/// Anything else (another operator, field or function, an unbalanced parenthesis, an unknown name) is an error.
/// </summary>
internal sealed class ConditionParser
{
    private static readonly HashSet<string> UnsupportedOperators = new(StringComparer.Ordinal)
    {
        "glob", "iglob", "regex", "bcontains", "bstartswith", "intersects", "endswith_any", "startswith_any",
    };

    private readonly List<Token> tokens;
    private readonly IConditionScope scope;
    private int position;

    private ConditionParser(List<Token> tokens, IConditionScope scope)
    {
        this.tokens = tokens;
        this.scope = scope;
    }

    public static Condition Compile(string text, IConditionScope scope)
    {
        var parser = new ConditionParser(Tokenize(text), scope);
        if (parser.tokens.Count == 0)
        {
            throw new ConditionException("the condition is empty", null);
        }

        var condition = parser.ParseOr();
        if (parser.position < parser.tokens.Count)
        {
            var extra = parser.tokens[parser.position];
            throw new ConditionException(
                extra.Kind == TokenKind.RParen ? "unbalanced parentheses: ')' without a matching '('" : $"unexpected '{extra.Text}' after a complete condition (missing 'and'/'or'?)",
                extra.Text);
        }

        return condition;
    }

    private Token? Peek => position < tokens.Count ? tokens[position] : null;

    private bool IsWord(string word) => Peek is { Kind: TokenKind.Word } t && t.Text == word;

    private Condition ParseOr()
    {
        var left = ParseAnd();
        while (IsWord("or"))
        {
            position++;
            left = new OrCondition(left, ParseAnd());
        }

        return left;
    }

    private Condition ParseAnd()
    {
        var left = ParseNot();
        while (IsWord("and"))
        {
            position++;
            left = new AndCondition(left, ParseNot());
        }

        return left;
    }

    private Condition ParseNot()
    {
        if (IsWord("not"))
        {
            position++;
            return new NotCondition(ParseNot());
        }

        return ParsePrimary();
    }

    private Condition ParsePrimary()
    {
        var token = Peek ?? throw new ConditionException("the condition ends where a field, macro or '(' was expected", null);
        position++;
        switch (token.Kind)
        {
            case TokenKind.LParen:
            {
                var inner = ParseOr();
                if (Peek is not { Kind: TokenKind.RParen })
                {
                    throw new ConditionException("unbalanced parentheses: '(' is never closed", "(");
                }

                position++;
                return inner;
            }

            case TokenKind.Word when token.Text is "and" or "or":
                throw new ConditionException($"'{token.Text}' where a field, macro or '(' was expected", token.Text);
            case TokenKind.Word:
                return ParseWord(token);
            default:
                throw new ConditionException($"unexpected '{token.Text}' where a field, macro or '(' was expected", token.Text);
        }
    }

    private Condition ParseWord(Token token)
    {
        var name = token.Text;
        if (Peek is { Kind: TokenKind.LParen })
        {
            throw new ConditionException($"functions such as '{name}(...)' are not supported", name);
        }

        if (Fields.TryGet(name, out var field))
        {
            return ParseComparison(field);
        }

        if (scope.TryGetMacro(name, out var macro))
        {
            return macro;
        }

        if (scope.TryGetList(name, out _))
        {
            throw new ConditionException($"list '{name}' can only be used inside in (...) or pmatch (...)", name);
        }

        if (name.Contains('.', StringComparison.Ordinal))
        {
            throw new ConditionException($"unknown field '{name}' (supported: {string.Join(", ", Fields.Known.Select(f => f.Name))}, evt.arg.<{string.Join("|", Fields.ArgumentNames)}>)", name);
        }

        throw new ConditionException($"unknown macro '{name}'", name);
    }

    private Condition ParseComparison(FieldDefinition field)
    {
        var token = Peek ?? throw new ConditionException($"field '{field.Name}' is not followed by an operator", field.Name);
        position++;
        if (token.Kind == TokenKind.Operator)
        {
            var op = token.Text switch
            {
                "=" or "==" => CompareOperator.Equal,
                "!=" => CompareOperator.NotEqual,
                "<" => CompareOperator.Less,
                "<=" => CompareOperator.LessOrEqual,
                ">" => CompareOperator.Greater,
                _ => CompareOperator.GreaterOrEqual,
            };
            var value = ReadValue(field, token.Text);
            if (op is not (CompareOperator.Equal or CompareOperator.NotEqual) && field.Kind == FieldKind.Text)
            {
                throw new ConditionException($"'{token.Text}' compares numbers; field '{field.Name}' is text", token.Text);
            }

            CheckNumber(field, value, op is not (CompareOperator.Equal or CompareOperator.NotEqual));
            return new CompareCondition(field, op, [value]);
        }

        if (token.Kind != TokenKind.Word)
        {
            throw new ConditionException($"'{token.Text}' after field '{field.Name}' where an operator was expected", token.Text);
        }

        switch (token.Text)
        {
            case "exists":
                return new ExistsCondition(field);
            case "in" or "pmatch":
            {
                var op = token.Text == "in" ? CompareOperator.In : CompareOperator.PMatch;
                if (op == CompareOperator.PMatch && field.Kind == FieldKind.Number)
                {
                    throw new ConditionException($"'pmatch' matches paths; field '{field.Name}' is a number", token.Text);
                }

                var items = ReadList(token.Text);
                foreach (var item in items)
                {
                    CheckNumber(field, item, false);
                }

                return new CompareCondition(field, op, items);
            }

            case "startswith" or "endswith" or "contains" or "icontains":
            {
                if (field.Kind == FieldKind.Number)
                {
                    throw new ConditionException($"'{token.Text}' works on text; field '{field.Name}' is a number", token.Text);
                }

                var value = ReadValue(field, token.Text);
                var op = token.Text switch
                {
                    "startswith" => CompareOperator.StartsWith,
                    "endswith" => CompareOperator.EndsWith,
                    "contains" => CompareOperator.Contains,
                    _ => CompareOperator.IContains,
                };
                return new CompareCondition(field, op, [value]);
            }

            default:
                if (UnsupportedOperators.Contains(token.Text))
                {
                    throw new ConditionException($"operator '{token.Text}' is not supported (supported: = == != < <= > >= in startswith endswith contains icontains pmatch exists)", token.Text);
                }

                throw new ConditionException($"unknown operator '{token.Text}' after field '{field.Name}'", token.Text);
        }
    }

    private static void CheckNumber(FieldDefinition field, string value, bool numericOperator)
    {
        if ((field.Kind == FieldKind.Number || (field.Kind == FieldKind.Argument && numericOperator))
            && !long.TryParse(value, NumberStyles.Integer, CultureInfo.InvariantCulture, out _))
        {
            throw new ConditionException($"field '{field.Name}' is compared as a number but '{value}' is not one", value);
        }
    }

    private string ReadValue(FieldDefinition field, string op)
    {
        var token = Peek ?? throw new ConditionException($"'{field.Name} {op}' has no value", op);
        position++;
        return token.Kind switch
        {
            TokenKind.Word or TokenKind.String => token.Text,

            // Falco writes `evt.dir = <`: after an operator, < and > are values.
            TokenKind.Operator when token.Text is "<" or ">" => token.Text,
            _ => throw new ConditionException($"'{token.Text}' where the value of '{field.Name} {op}' was expected", token.Text),
        };
    }

    private List<string> ReadList(string op)
    {
        if (Peek is not { Kind: TokenKind.LParen })
        {
            throw new ConditionException($"'{op}' must be followed by a parenthesised list of values", op);
        }

        position++;
        var items = new List<string>();
        var expectItem = true;
        while (true)
        {
            var token = Peek ?? throw new ConditionException($"unbalanced parentheses: the list after '{op}' is never closed", op);
            position++;
            if (token.Kind == TokenKind.RParen && (!expectItem || items.Count == 0))
            {
                return items;
            }

            if (expectItem && token.Kind is TokenKind.Word or TokenKind.String)
            {
                if (token.Kind == TokenKind.Word && scope.TryGetList(token.Text, out var listed))
                {
                    items.AddRange(listed);
                }
                else
                {
                    items.Add(token.Text);
                }

                expectItem = false;
                continue;
            }

            if (!expectItem && token.Kind == TokenKind.Comma)
            {
                expectItem = true;
                continue;
            }

            throw new ConditionException($"unexpected '{token.Text}' in the list after '{op}'", token.Text);
        }
    }

    private enum TokenKind
    {
        Word,
        String,
        Operator,
        LParen,
        RParen,
        Comma,
    }

    private sealed record Token(TokenKind Kind, string Text);

    private static List<Token> Tokenize(string text)
    {
        var tokens = new List<Token>();
        var i = 0;
        while (i < text.Length)
        {
            var c = text[i];
            if (char.IsWhiteSpace(c))
            {
                i++;
                continue;
            }

            switch (c)
            {
                case '(':
                    tokens.Add(new Token(TokenKind.LParen, "("));
                    i++;
                    continue;
                case ')':
                    tokens.Add(new Token(TokenKind.RParen, ")"));
                    i++;
                    continue;
                case ',':
                    tokens.Add(new Token(TokenKind.Comma, ","));
                    i++;
                    continue;
                case '"' or '\'':
                {
                    var value = new StringBuilder();
                    var j = i + 1;
                    for (; j < text.Length && text[j] != c; j++)
                    {
                        if (text[j] == '\\' && j + 1 < text.Length)
                        {
                            j++;
                        }

                        value.Append(text[j]);
                    }

                    if (j >= text.Length)
                    {
                        throw new ConditionException($"unterminated string starting with {c}", text[i..Math.Min(text.Length, i + 20)]);
                    }

                    tokens.Add(new Token(TokenKind.String, value.ToString()));
                    i = j + 1;
                    continue;
                }

                case '=' or '<' or '>' or '!':
                {
                    var two = i + 1 < text.Length && text[i + 1] == '=';
                    if (c == '!' && !two)
                    {
                        throw new ConditionException("'!' is not an operator (use 'not' or '!=')", "!");
                    }

                    tokens.Add(new Token(TokenKind.Operator, two ? text.Substring(i, 2) : c.ToString()));
                    i += two ? 2 : 1;
                    continue;
                }
            }

            var start = i;
            while (i < text.Length && !char.IsWhiteSpace(text[i]) && text[i] is not ('(' or ')' or ',' or '=' or '<' or '>' or '!' or '"' or '\''))
            {
                i++;
            }

            tokens.Add(new Token(TokenKind.Word, text[start..i]));
        }

        return tokens;
    }
}
