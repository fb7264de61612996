using static TorchSharp.torch;

namespace Trd.Runtime.Checkpoints;

/// <summary>
/// The safetensors dtype names (the header's <c>"dtype"</c>) and the TorchSharp scalar types they load as.
/// TorchSharp has no unsigned 16/32/64-bit, float8 or complex-half tensors, so those safetensors dtypes are
/// recognised but rejected with a message saying so.
/// </summary>
public static class SafeTensorsDType
{
    static readonly (string Name, ScalarType Type, int Size)[] Loadable =
    {
        ("F64", ScalarType.Float64, 8),
        ("F32", ScalarType.Float32, 4),
        ("F16", ScalarType.Float16, 2),
        ("BF16", ScalarType.BFloat16, 2),
        ("I64", ScalarType.Int64, 8),
        ("I32", ScalarType.Int32, 4),
        ("I16", ScalarType.Int16, 2),
        ("I8", ScalarType.Int8, 1),
        ("U8", ScalarType.Byte, 1),
        ("BOOL", ScalarType.Bool, 1),
    };

    static readonly string[] KnownButUnsupported =
        { "U16", "U32", "U64", "F8_E4M3", "F8_E5M2", "F8_E8M0", "F6_E2M3", "F6_E3M2", "F4", "C64" };

    /// <summary>The dtype names this toolkit loads and writes, in the order above.</summary>
    public static IReadOnlyList<string> Names { get; } = Loadable.Select(d => d.Name).ToArray();

    /// <summary>The scalar type and item size of a safetensors dtype name; false for any other name.</summary>
    public static bool TryParse(string name, out ScalarType type, out int itemSize)
    {
        foreach (var d in Loadable)
            if (d.Name == name)
            {
                (type, itemSize) = (d.Type, d.Size);
                return true;
            }
        (type, itemSize) = (default, 0);
        return false;
    }

    /// <summary>The safetensors dtype name of a scalar type; false for types safetensors cannot hold here.</summary>
    public static bool TryGetName(ScalarType type, out string name)
    {
        foreach (var d in Loadable)
            if (d.Type == type)
            {
                name = d.Name;
                return true;
            }
        name = "";
        return false;
    }

    /// <summary>Why <paramref name="name"/> cannot be loaded: a known safetensors dtype TorchSharp lacks, or an unknown one.</summary>
    internal static string Rejection(string name) =>
        KnownButUnsupported.Contains(name)
            ? $"dtype '{name}' is a safetensors dtype TorchSharp has no tensor type for (loadable: {string.Join(", ", Names)})"
            : $"unknown dtype '{name}' (known: {string.Join(", ", Names)})";
}
