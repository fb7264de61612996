using System.Text.Json;
using static TorchSharp.torch;

namespace Trd.Runtime.Checkpoints;

/// <summary>
/// Typed access to config.json's top-level fields, each failure a <see cref="CheckpointException"/> naming the
/// file and the field: missing, null where a value is needed, of the wrong JSON kind, out of range, or given twice.
/// </summary>
internal sealed class ConfigFields
{
    readonly string _source;
    readonly Dictionary<string, JsonElement> _fields = new(StringComparer.Ordinal);

    internal ConfigFields(string source, JsonElement root)
    {
        _source = source;
        if (root.ValueKind != JsonValueKind.Object)
            throw new CheckpointException(source, null, $"the configuration is a JSON {root.ValueKind}, not an object");
        foreach (var property in root.EnumerateObject())
            if (!_fields.TryAdd(property.Name, property.Value))
                throw Error(property.Name, "appears twice");
    }

    internal CheckpointException Error(string field, string text) => new(_source, null, $"field '{field}' {text}");

    JsonElement? Optional(string field) =>
        _fields.TryGetValue(field, out var value) && value.ValueKind != JsonValueKind.Null ? value : null;

    JsonElement Required(string field)
    {
        if (!_fields.TryGetValue(field, out var value))
            throw Error(field, "is missing");
        if (value.ValueKind == JsonValueKind.Null)
            throw Error(field, "is null");
        return value;
    }

    static string Show(JsonElement value)
    {
        var text = value.GetRawText();
        return text.Length <= 40 ? text : text[..40] + "…";
    }

    int AsInt(string field, JsonElement value) =>
        value.ValueKind == JsonValueKind.Number && value.TryGetInt32(out int x) ? x : throw Error(field, $"must be an integer, got {Show(value)}");

    internal int Int(string field) => AsInt(field, Required(field));

    internal int? IntOrNull(string field)
    {
        if (!_fields.ContainsKey(field)) throw Error(field, "is missing");
        return Optional(field) is { } value ? AsInt(field, value) : null;
    }

    internal double Double(string field) => AsDouble(field, Required(field));

    double AsDouble(string field, JsonElement value) =>
        value.ValueKind == JsonValueKind.Number && value.TryGetDouble(out double x) && double.IsFinite(x)
            ? x : throw Error(field, $"must be a number, got {Show(value)}");

    internal bool Bool(string field) => AsBool(field, Required(field));

    internal bool? OptionalBool(string field) => Optional(field) is { } value ? AsBool(field, value) : null;

    bool AsBool(string field, JsonElement value) => value.ValueKind switch
    {
        JsonValueKind.True => true,
        JsonValueKind.False => false,
        _ => throw Error(field, $"must be true or false, got {Show(value)}"),
    };

    internal string String(string field) => AsString(field, Required(field));

    internal string? OptionalString(string field) => Optional(field) is { } value ? AsString(field, value) : null;

    string AsString(string field, JsonElement value) =>
        value.ValueKind == JsonValueKind.String ? value.GetString()! : throw Error(field, $"must be a string, got {Show(value)}");

    internal IReadOnlyList<string>? OptionalStrings(string field)
    {
        if (Optional(field) is not { } value) return null;
        if (value.ValueKind != JsonValueKind.Array) throw Error(field, $"must be a list of strings, got {Show(value)}");
        return value.EnumerateArray().Select(v => AsString(field, v)).ToArray();
    }

    /// <summary>A token id or a list of them (HF allows both for eos_token_id); null when absent or null.</summary>
    internal IReadOnlyList<long>? OptionalTokenIds(string field)
    {
        if (Optional(field) is not { } value) return null;
        long Id(JsonElement v) => v.ValueKind == JsonValueKind.Number && v.TryGetInt64(out long x)
            ? x : throw Error(field, $"must be a token id or a list of them, got {Show(value)}");
        return value.ValueKind == JsonValueKind.Array ? value.EnumerateArray().Select(Id).ToArray() : [Id(value)];
    }

    /// <summary>torch_dtype (transformers 4) or dtype (transformers 5); both present must agree.</summary>
    internal ScalarType TorchDtype()
    {
        ScalarType? Parse(string field)
        {
            if (OptionalString(field) is not { } name) return null;
            return Qwen3Config.ParseDType(name) ?? throw Error(field, $"is '{name}'; Qwen3 weights are float32, bfloat16 or float16");
        }
        var torchDtype = Parse("torch_dtype");
        var dtype = Parse("dtype");
        if (torchDtype is { } a && dtype is { } b && a != b)
            throw Error("dtype", $"({b}) disagrees with torch_dtype ({a})");
        return torchDtype ?? dtype ?? throw Error("torch_dtype", "is missing");
    }

    /// <summary>rope_theta at the top level (transformers 4) or in rope_parameters (transformers 5), default RoPE only.</summary>
    internal double RopeTheta()
    {
        double? nested = null;
        if (Optional("rope_parameters") is { } parameters)
        {
            if (parameters.ValueKind != JsonValueKind.Object)
                throw Error("rope_parameters", $"must be an object, got {Show(parameters)}");
            CheckRopeScaling("rope_parameters");
            if (parameters.TryGetProperty("rope_theta", out var theta) && theta.ValueKind != JsonValueKind.Null)
                nested = AsDouble("rope_parameters.rope_theta", theta);
        }
        var top = Optional("rope_theta") is { } value ? AsDouble("rope_theta", value) : (double?)null;
        if (top is { } t && nested is { } n && t != n)
            throw Error("rope_parameters.rope_theta", $"({n}) disagrees with rope_theta ({t})");
        return top ?? nested ?? throw Error("rope_theta", "is missing");
    }

    /// <summary>Absent, null, or an object whose rope_type (or legacy type) is 'default': plain RoPE.</summary>
    internal void CheckRopeScaling(string field)
    {
        if (Optional(field) is not { } value) return;
        if (value.ValueKind != JsonValueKind.Object)
            throw Error(field, $"must be an object or null, got {Show(value)}");
        foreach (var key in new[] { "rope_type", "type" })
            if (value.TryGetProperty(key, out var type) && type.ValueKind != JsonValueKind.Null
                && !(type.ValueKind == JsonValueKind.String && type.GetString() == "default"))
                throw Error(field, $"asks for RoPE type {Show(type)}; only default RoPE is supported");
    }
}
