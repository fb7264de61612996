using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using Trd.Core;
using ScalarType = TorchSharp.torch.ScalarType;

namespace Trd.Runtime.Pipeline;

/// <summary>What stage 3 does with a refinement whose y_r is empty (or whose prompt was over budget).</summary>
public enum EmptyRewritePolicy
{
    /// <summary>Not trained on (counted).</summary>
    Skip,
    /// <summary>Train on the problem's y_o instead (counted).</summary>
    Rollout,
}

/// <summary>What stage 3 does with a refinement whose y_r reached the response budget.</summary>
public enum TruncatedRewritePolicy
{
    /// <summary>Not trained on (counted).</summary>
    Skip,
    /// <summary>Train on the problem's y_o instead (counted).</summary>
    Rollout,
    /// <summary>Train on the truncated y_r (counted).</summary>
    Keep,
}

/// <summary>
/// The config's words for the domain's types, parsed at the JSON edge: each typed config field reads and writes one
/// of a fixed list of words (case ignored on reading). A word outside the list is a <see cref="ConfigWordException"/>
/// that <see cref="PipelineConfig.Parse"/> turns into "file: key: unknown value 'x' (expected …)".
/// </summary>
public static class ConfigWords
{
    /// <summary>"opd", "opsd".</summary>
    public static readonly IReadOnlyList<(string Word, Setting Value)> Settings = Setting.All.Select(s => (s.ConfigName, s)).ToArray();
    /// <summary>"all", "fail", "succ", "fail-to-succ" (App. B.3).</summary>
    public static readonly IReadOnlyList<(string Word, SubsetFilter Value)> Subsets =
        CorpusAnalysis.Filters.Select(f => (CorpusAnalysis.FilterName(f), f)).ToArray();
    /// <summary>"float32", "bfloat16".</summary>
    public static readonly IReadOnlyList<(string Word, ScalarType Value)> Dtypes = [("float32", ScalarType.Float32), ("bfloat16", ScalarType.BFloat16)];
    /// <summary>"vllm", "sglang".</summary>
    public static readonly IReadOnlyList<(string Word, ServingEngine Value)> Engines = [("vllm", ServingEngine.Vllm), ("sglang", ServingEngine.Sglang)];
    /// <summary>"skip", "rollout".</summary>
    public static readonly IReadOnlyList<(string Word, EmptyRewritePolicy Value)> OnEmpty = [("skip", EmptyRewritePolicy.Skip), ("rollout", EmptyRewritePolicy.Rollout)];
    /// <summary>"skip", "rollout", "keep".</summary>
    public static readonly IReadOnlyList<(string Word, TruncatedRewritePolicy Value)> OnTruncated =
        [("skip", TruncatedRewritePolicy.Skip), ("rollout", TruncatedRewritePolicy.Rollout), ("keep", TruncatedRewritePolicy.Keep)];

    /// <summary>The value a word names (case and surrounding space ignored), or a <see cref="ConfigWordException"/> listing the words.</summary>
    public static T Parse<T>(IReadOnlyList<(string Word, T Value)> words, string? word)
    {
        var key = word?.Trim().ToLowerInvariant();
        foreach (var (w, v) in words) if (w == key) return v;
        throw new ConfigWordException($"unknown value '{word}' (expected {Expected(words)})");
    }

    /// <summary>The word of a value.</summary>
    public static string Word<T>(IReadOnlyList<(string Word, T Value)> words, T value)
    {
        foreach (var (w, v) in words) if (EqualityComparer<T>.Default.Equals(v, value)) return w;
        throw new ArgumentOutOfRangeException(nameof(value), value, $"no config word for {value}");
    }

    /// <summary>"'a', 'b' or 'c'".</summary>
    public static string Expected<T>(IReadOnlyList<(string Word, T Value)> words)
    {
        var quoted = words.Select(w => $"'{w.Word}'").ToArray();
        return quoted.Length == 1 ? quoted[0] : $"{string.Join(", ", quoted[..^1])} or {quoted[^1]}";
    }

    /// <summary>Every typed word field's words, the message listing them and its JSON converter, by type.</summary>
    static readonly Dictionary<Type, (string[] Words, string Expected, JsonConverter Converter)> ByType = new[]
    {
        Entry(Settings), Entry(Subsets), Entry(Dtypes), Entry(OnEmpty), Entry(OnTruncated), Entry(Engines),
    }.ToDictionary(e => e.Type, e => (e.Words, e.Expected, e.Converter));

    static (Type Type, string[] Words, string Expected, JsonConverter Converter) Entry<T>(IReadOnlyList<(string Word, T Value)> words) =>
        (typeof(T), words.Select(w => w.Word).ToArray(), Expected(words), new WordConverter<T>(words));

    /// <summary>
    /// Every word field of a config object (read as <paramref name="type"/>, recursively) whose value is not one of its
    /// words: each is reported as "key: unknown value 'x' (expected …)" and removed from the node, so that the rest
    /// still parses and a config's problems are all listed at once.
    /// </summary>
    internal static List<string> TakeUnknownWords(JsonObject node, Type type, string prefix = "")
    {
        var problems = new List<string>();
        foreach (var property in type.GetProperties(System.Reflection.BindingFlags.Instance | System.Reflection.BindingFlags.Public))
        {
            if (property.GetCustomAttributes(typeof(JsonIgnoreAttribute), true).Length > 0) continue;
            var key = JsonNamingPolicy.SnakeCaseLower.ConvertName(property.Name);
            if (!node.TryGetPropertyValue(key, out var value) || value is null) continue;
            var valueType = Nullable.GetUnderlyingType(property.PropertyType) ?? property.PropertyType;
            if (ByType.TryGetValue(valueType, out var entry))
            {
                var problem = value.GetValueKind() != JsonValueKind.String ? $"expected a string ({entry.Expected}), got {value.ToJsonString()}"
                    : entry.Words.Contains(value.GetValue<string>().Trim().ToLowerInvariant()) ? null
                    : $"unknown value '{value.GetValue<string>()}' (expected {entry.Expected})";
                if (problem is null) continue;
                problems.Add($"{prefix}{key}: {problem}");
                node.Remove(key);
            }
            else if (value is JsonObject inner && valueType.Assembly == typeof(ConfigWords).Assembly)
                problems.AddRange(TakeUnknownWords(inner, valueType, $"{prefix}{key}."));
        }
        return problems;
    }

    /// <summary>Serializer options with the converters of every typed word field added.</summary>
    internal static JsonSerializerOptions With(JsonSerializerOptions options)
    {
        foreach (var entry in ByType.Values) options.Converters.Add(entry.Converter);
        return options;
    }

    sealed class WordConverter<T>(IReadOnlyList<(string Word, T Value)> words) : JsonConverter<T>
    {
        public override T Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) =>
            reader.TokenType == JsonTokenType.String ? Parse(words, reader.GetString())
                : throw new ConfigWordException($"expected a string ({Expected(words)}), got {reader.TokenType}");

        public override void Write(Utf8JsonWriter writer, T value, JsonSerializerOptions options) => writer.WriteStringValue(Word(words, value));
    }
}

/// <summary>A config word outside its list; the JSON reader adds the key's path.</summary>
public sealed class ConfigWordException(string message) : JsonException(message)
{
    /// <summary>The key: the reader's path without its root ("$.refine.on_empty" → "refine.on_empty").</summary>
    public string Key => Path is { } p && p.StartsWith("$.", StringComparison.Ordinal) ? p[2..] : Path ?? "config";
}
