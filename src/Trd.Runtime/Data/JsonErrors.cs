using System.Text.Json;
using System.Text.RegularExpressions;

namespace Trd.Runtime.Data;

/// <summary>
/// System.Text.Json's error messages in the project's words (issue 15): "The JSON value could not be converted to
/// System.Int64. Path: $.train.epochs | LineNumber: 12 | BytePositionInLine: 17." becomes "train.epochs: expected an
/// integer (line 13, column 18)". No .NET type name reaches a user.
/// </summary>
public static partial class JsonErrors
{
    /// <summary>The message of <paramref name="e"/>, reworded; the key it concerns first when the reader knew it.</summary>
    public static string Describe(JsonException e, bool omitPosition = false)
    {
        var message = e.Message;
        var where = Position().Match(message);
        var key = e.Path is { Length: > 1 } path ? Key(path) : null;
        var at = e.LineNumber is { } line && !omitPosition ? $"line {line + 1}" + (e.BytePositionInLine is { } column ? $", column {column + 1}" : "") : null;
        if (where.Success) message = message[..where.Index].TrimEnd();
        var converted = Converted().Match(message);
        var unmapped = Unmapped().Match(message);
        var text = unmapped.Success ? $"unknown key '{unmapped.Groups[1].Value}'"
            : converted.Success ? $"expected {Words(converted.Groups["type"].Value)}"
            : message.Contains("doesn't allow setting null values", StringComparison.Ordinal) ? "must not be null"
            : Words(message.TrimEnd('.'));
        return (key is null ? "" : key + ": ") + text + (at is null ? "" : $" ({at})");
    }

    /// <summary>"$.train['lora'].rank" as "train.lora.rank".</summary>
    static string Key(string path) =>
        Bracket().Replace(path.StartsWith("$.", StringComparison.Ordinal) ? path[2..] : path.TrimStart('$'), m => "." + m.Groups[1].Value).TrimStart('.');

    /// <summary>A .NET type as a JSON reader would say it.</summary>
    static string Words(string text) => TypeName().Replace(text, m => m.Value switch
    {
        var t when t.Contains("Nullable", StringComparison.Ordinal) => Words(Inner().Match(t) is { Success: true } i ? i.Groups[1].Value : "System.Object") + " or null",
        "System.Int32" or "System.Int64" or "System.Int16" or "System.UInt32" or "System.UInt64" or "System.Byte" => "an integer",
        "System.Double" or "System.Single" or "System.Decimal" => "a number",
        "System.String" => "a string",
        "System.Boolean" => "true or false",
        var t when t.EndsWith("[]", StringComparison.Ordinal) || t.Contains("List", StringComparison.Ordinal) => "a list",
        var t when t.Contains("Dictionary", StringComparison.Ordinal) => "an object",
        _ => "a value of another kind",
    });

    [GeneratedRegex(@"\s*(Path: |LineNumber: ).*$", RegexOptions.Singleline)]
    private static partial Regex Position();
    [GeneratedRegex(@"could not be converted to (?<type>\S+?)\.?$")]
    private static partial Regex Converted();
    [GeneratedRegex(@"The JSON property '([^']*)' could not be mapped")]
    private static partial Regex Unmapped();
    [GeneratedRegex(@"\['([^']*)'\]")]
    private static partial Regex Bracket();
    [GeneratedRegex(@"(System|Trd|Microsoft)\.[\w.`]+(\[\[[^\]]*\]\])?(\[\])?")]
    private static partial Regex TypeName();
    [GeneratedRegex(@"\[\[([\w.]+)")]
    private static partial Regex Inner();
}
