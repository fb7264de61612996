namespace Trd.Runtime.Export;

/// <summary>GGUF's metadata value types (gguf.h, <c>enum gguf_type</c>), as stored before each value.</summary>
public enum GgufValueType : uint
{
    /// <summary>uint8.</summary>
    UInt8 = 0,
    /// <summary>int8.</summary>
    Int8 = 1,
    /// <summary>uint16.</summary>
    UInt16 = 2,
    /// <summary>int16.</summary>
    Int16 = 3,
    /// <summary>uint32 (sizes and token ids).</summary>
    UInt32 = 4,
    /// <summary>int32 (token types).</summary>
    Int32 = 5,
    /// <summary>float32 (RoPE base, RMSNorm ε).</summary>
    Float32 = 6,
    /// <summary>bool, one byte.</summary>
    Bool = 7,
    /// <summary>A UTF-8 string: uint64 length, then the bytes.</summary>
    String = 8,
    /// <summary>An array: element type, uint64 count, then the elements.</summary>
    Array = 9,
    /// <summary>uint64.</summary>
    UInt64 = 10,
    /// <summary>int64.</summary>
    Int64 = 11,
    /// <summary>float64.</summary>
    Float64 = 12,
}

/// <summary>
/// One metadata value: a scalar, a string, or an array of one element type. Built by the factories below, so a
/// value always holds the .NET type its <see cref="Type"/> says.
/// </summary>
public sealed record GgufValue
{
    GgufValue(GgufValueType type, object value, GgufValueType element = GgufValueType.UInt8)
    {
        Type = type;
        Value = value;
        ElementType = element;
    }

    /// <summary>The stored type.</summary>
    public GgufValueType Type { get; }

    /// <summary>uint, int, float, bool, ulong, long, double, string, or an array of one of them.</summary>
    public object Value { get; }

    /// <summary>For an array, its elements' type.</summary>
    public GgufValueType ElementType { get; }

    /// <summary>A uint32.</summary>
    public static GgufValue UInt32(uint value) => new(GgufValueType.UInt32, value);
    /// <summary>An int32.</summary>
    public static GgufValue Int32(int value) => new(GgufValueType.Int32, value);
    /// <summary>A uint64.</summary>
    public static GgufValue UInt64(ulong value) => new(GgufValueType.UInt64, value);
    /// <summary>A float32.</summary>
    public static GgufValue Float32(float value) => new(GgufValueType.Float32, value);
    /// <summary>A bool.</summary>
    public static GgufValue Bool(bool value) => new(GgufValueType.Bool, value);
    /// <summary>A string.</summary>
    public static GgufValue String(string value) => new(GgufValueType.String, value);
    /// <summary>An array of strings.</summary>
    public static GgufValue Strings(IReadOnlyList<string> values) => new(GgufValueType.Array, values.ToArray(), GgufValueType.String);
    /// <summary>An array of int32.</summary>
    public static GgufValue Int32s(IReadOnlyList<int> values) => new(GgufValueType.Array, values.ToArray(), GgufValueType.Int32);
    /// <summary>An array of float32.</summary>
    public static GgufValue Float32s(IReadOnlyList<float> values) => new(GgufValueType.Array, values.ToArray(), GgufValueType.Float32);

    /// <summary>A value read from a file: any type, as <see cref="GgufReader"/> decodes it.</summary>
    internal static GgufValue Read(GgufValueType type, object value, GgufValueType element = GgufValueType.UInt8) => new(type, value, element);

    /// <summary>The value as a string (a string value), else an exception naming the type.</summary>
    public string AsString() => Value as string ?? throw new InvalidCastException($"a GGUF {Type}, not a string");

    /// <summary>A scalar integer value of any width, as a long.</summary>
    public long AsInteger() => Value switch
    {
        byte v => v, sbyte v => v, ushort v => v, short v => v, uint v => v, int v => v, ulong v => checked((long)v), long v => v,
        _ => throw new InvalidCastException($"a GGUF {Type}, not an integer"),
    };

    /// <summary>A float32 or float64 value, as a double.</summary>
    public double AsFloat() => Value switch
    {
        float v => v, double v => v,
        _ => throw new InvalidCastException($"a GGUF {Type}, not a float"),
    };

    /// <summary>A short form for listings: the value, or an array's length and element type.</summary>
    public override string ToString() => Value switch
    {
        string s => s.Length <= 60 ? s : s[..60] + "…",
        Array a => $"[{a.Length} × {ElementType}]",
        _ => Convert.ToString(Value, System.Globalization.CultureInfo.InvariantCulture) ?? "",
    };
}
