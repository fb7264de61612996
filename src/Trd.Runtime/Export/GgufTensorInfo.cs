namespace Trd.Runtime.Export;

/// <summary>
/// A tensor's entry in a GGUF file: its name, its dimensions in ggml's order (ne[0] the fastest-varying, so a
/// PyTorch weight [out, in] is ne = [in, out]), its type, and its data's offset from the start of the data section.
/// </summary>
public sealed record GgufTensorInfo(string Name, long[] Dimensions, GgmlType Type, long Offset = 0)
{
    /// <summary>The number of elements.</summary>
    public long ElementCount => Dimensions.Aggregate(1L, (a, b) => a * b);

    /// <summary>The bytes of the data: rows of ne[0] elements, each a whole number of blocks.</summary>
    public long ByteCount => GgmlTypes.RowBytes(Type, Dimensions[0]) * (ElementCount / Dimensions[0]);

    /// <summary>The PyTorch shape (the dimensions reversed).</summary>
    public long[] TorchShape => Dimensions.Reverse().ToArray();

    /// <summary>"name [ne0, ne1] TYPE", for messages.</summary>
    public override string ToString() => $"{Name} [{string.Join(", ", Dimensions)}] {Type}";
}
