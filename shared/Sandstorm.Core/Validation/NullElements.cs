using System.Collections;
using System.Reflection;
using System.Text.Json;
using System.Text.Json.Serialization;
using Sandstorm.Core.Errors;

namespace Sandstorm.Core.Validation;

/// <summary>
/// Rejects a null inside a request's lists and maps (<c>labels: {"k": null}</c>, <c>runtimes: [null]</c>), which the
/// deserializer lets through into collections typed as non-null, as a 400 naming the field — before any code that
/// rightly assumes the elements are there can fail on it with a 500.
/// </summary>
public static class NullElements
{
    /// <summary>Throws a <c>validation-failed</c> <see cref="SandstormException"/> naming the first null element found.</summary>
    public static void Reject(object value, string? prefix = null)
    {
        ArgumentNullException.ThrowIfNull(value);
        if (Find(value, prefix ?? string.Empty, depth: 0) is { } field)
        {
            throw new SandstormException(
                ErrorCodes.ValidationFailed,
                $"'{field}' is null; lists and maps in a request hold no nulls",
                400,
                new Dictionary<string, string[]> { [field] = ["must not be null"] });
        }
    }

    private static string? Find(object value, string path, int depth)
    {
        // Request bodies are at most 64 levels deep (SandstormJson.Strict); this bound only guards against a cycle.
        if (depth > 70 || value is string || value.GetType().IsPrimitive || value.GetType().IsEnum)
        {
            return null;
        }

        if (value is IDictionary dictionary)
        {
            foreach (DictionaryEntry entry in dictionary)
            {
                var at = Join(path, Convert.ToString(entry.Key, System.Globalization.CultureInfo.InvariantCulture) ?? string.Empty);
                if (entry.Value is null)
                {
                    return at;
                }

                if (Find(entry.Value, at, depth + 1) is { } inner)
                {
                    return inner;
                }
            }

            return null;
        }

        if (value is IEnumerable items)
        {
            if (value is Array { Rank: 1 } array && array.GetType().GetElementType() is { IsValueType: true } element && Nullable.GetUnderlyingType(element) is null)
            {
                return null;
            }

            var index = 0;
            foreach (var item in items)
            {
                var at = $"{path}[{index++}]";
                if (item is null)
                {
                    return at;
                }

                if (Find(item, at, depth + 1) is { } inner)
                {
                    return inner;
                }
            }

            return null;
        }

        var type = value.GetType();
        if (type.Namespace?.StartsWith("Sandstorm", StringComparison.Ordinal) != true)
        {
            return null;
        }

        foreach (var property in type.GetProperties(BindingFlags.Public | BindingFlags.Instance))
        {
            if (property.GetIndexParameters().Length > 0 || property.GetCustomAttribute<JsonIgnoreAttribute>() is not null
                || property.PropertyType.IsPrimitive || property.PropertyType == typeof(string))
            {
                continue;
            }

            if (property.GetValue(value) is { } child
                && Find(child, Join(path, property.GetCustomAttribute<JsonPropertyNameAttribute>()?.Name ?? JsonNamingPolicy.CamelCase.ConvertName(property.Name)), depth + 1) is { } inner)
            {
                return inner;
            }
        }

        return null;
    }

    private static string Join(string path, string name) => path.Length == 0 ? name : $"{path}.{name}";
}
