using static TorchSharp.torch;

namespace Trd.Runtime.Checkpoints;

/// <summary>
/// One tensor as a safetensors header describes it, after validation: its dtype, shape and the byte range
/// [<see cref="Begin"/>, <see cref="End"/>) it occupies in the data buffer (the bytes after the header).
/// </summary>
public sealed class SafeTensorsEntry
{
    readonly long[] _shape;

    internal SafeTensorsEntry(string file, string name, string dtype, ScalarType type, long[] shape, long begin, long end)
    {
        File = file;
        Name = name;
        DType = dtype;
        ScalarType = type;
        _shape = shape;
        Begin = begin;
        End = end;
    }

    /// <summary>The safetensors file holding the tensor.</summary>
    public string File { get; }

    /// <summary>The tensor's name (HF parameter names: <c>model.layers.0.self_attn.q_proj.weight</c>, …).</summary>
    public string Name { get; }

    /// <summary>The dtype as the header writes it: F32, BF16, F16, ….</summary>
    public string DType { get; }

    /// <summary>The TorchSharp type the tensor loads as.</summary>
    public ScalarType ScalarType { get; }

    /// <summary>The shape; empty for a scalar.</summary>
    public IReadOnlyList<long> Shape => _shape;

    /// <summary>A copy of the shape, for <c>torch.empty</c> and friends.</summary>
    public long[] ShapeArray() => (long[])_shape.Clone();

    /// <summary>First byte, relative to the start of the data buffer.</summary>
    public long Begin { get; }

    /// <summary>One past the last byte, relative to the start of the data buffer.</summary>
    public long End { get; }

    /// <summary>End − Begin = Π shape · item size.</summary>
    public long ByteCount => End - Begin;

    /// <summary>The shape as <c>[a, b]</c>, for messages.</summary>
    public string ShapeText => FormatShape(_shape);

    internal static string FormatShape(IEnumerable<long> shape) => $"[{string.Join(", ", shape)}]";
}
