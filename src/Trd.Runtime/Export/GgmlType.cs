namespace Trd.Runtime.Export;

/// <summary>
/// The tensor types Trd writes into GGUF, with ggml's numbering (ggml.h, <c>enum ggml_type</c>): a GGUF tensor
/// info stores this number, and llama.cpp dequantises by it.
/// </summary>
public enum GgmlType : uint
{
    /// <summary>IEEE float32, 4 bytes per element.</summary>
    F32 = 0,
    /// <summary>IEEE float16, 2 bytes per element.</summary>
    F16 = 1,
    /// <summary>Blocks of 32 elements: one float16 scale d = max|x| / 127 and 32 int8 q = round(x / d); 34 bytes.</summary>
    Q8_0 = 8,
    /// <summary>bfloat16 (the top half of a float32, rounded to nearest even), 2 bytes per element.</summary>
    BF16 = 30,
}

/// <summary>Sizes of the <see cref="GgmlType"/>s (ggml.c's <c>type_traits</c>: blck_size and type_size).</summary>
public static class GgmlTypes
{
    /// <summary>Elements per block: 32 for Q8_0, 1 for the float types.</summary>
    public static int BlockSize(GgmlType type) => type switch
    {
        GgmlType.F32 or GgmlType.F16 or GgmlType.BF16 => 1,
        GgmlType.Q8_0 => 32,
        _ => throw new ArgumentOutOfRangeException(nameof(type), type, "not a type Trd writes"),
    };

    /// <summary>Bytes per block.</summary>
    public static int BlockBytes(GgmlType type) => type switch
    {
        GgmlType.F32 => 4,
        GgmlType.F16 or GgmlType.BF16 => 2,
        GgmlType.Q8_0 => 2 + 32,
        _ => throw new ArgumentOutOfRangeException(nameof(type), type, "not a type Trd writes"),
    };

    /// <summary>Bytes of a row of <paramref name="elements"/> (a whole number of blocks).</summary>
    public static long RowBytes(GgmlType type, long elements)
    {
        var block = BlockSize(type);
        if (elements % block != 0)
            throw new ArgumentException($"{type} rows hold whole blocks of {block}; a row of {elements} does not", nameof(elements));
        return elements / block * BlockBytes(type);
    }
}

/// <summary>
/// What <c>trd export gguf --dtype</c> writes the weight matrices as; norms and other vectors stay float32, as
/// llama.cpp's converter leaves them.
/// </summary>
public enum GgufDType
{
    /// <summary>float32 everywhere (llama.cpp's ALL_F32).</summary>
    F32,
    /// <summary>Matrices in float16 (MOSTLY_F16).</summary>
    F16,
    /// <summary>Matrices in bfloat16 (MOSTLY_BF16).</summary>
    BF16,
    /// <summary>Matrices in Q8_0 (MOSTLY_Q8_0); a matrix whose rows are not whole blocks of 32 falls back to float16.</summary>
    Q8_0,
}

/// <summary>The words of <see cref="GgufDType"/> and its file type number.</summary>
public static class GgufDTypes
{
    /// <summary>The command-line words, in order.</summary>
    public static IReadOnlyList<string> Words { get; } = ["f32", "f16", "bf16", "q8_0"];

    /// <summary>Parses f32, f16, bf16 or q8_0 (case-insensitive).</summary>
    public static bool TryParse(string word, out GgufDType dtype)
    {
        switch (word.ToLowerInvariant())
        {
            case "f32": dtype = GgufDType.F32; return true;
            case "f16": dtype = GgufDType.F16; return true;
            case "bf16": dtype = GgufDType.BF16; return true;
            case "q8_0": dtype = GgufDType.Q8_0; return true;
            default: dtype = default; return false;
        }
    }

    /// <summary>The word for a dtype.</summary>
    public static string Word(GgufDType dtype) => Words[(int)dtype];

    /// <summary>The type a weight matrix is written as.</summary>
    public static GgmlType MatrixType(GgufDType dtype) => dtype switch
    {
        GgufDType.F32 => GgmlType.F32,
        GgufDType.F16 => GgmlType.F16,
        GgufDType.BF16 => GgmlType.BF16,
        GgufDType.Q8_0 => GgmlType.Q8_0,
        _ => throw new ArgumentOutOfRangeException(nameof(dtype)),
    };

    /// <summary>general.file_type: llama.cpp's <c>enum llama_ftype</c> (ALL_F32 0, MOSTLY_F16 1, MOSTLY_Q8_0 7, MOSTLY_BF16 32).</summary>
    public static uint FileType(GgufDType dtype) => dtype switch
    {
        GgufDType.F32 => 0,
        GgufDType.F16 => 1,
        GgufDType.Q8_0 => 7,
        GgufDType.BF16 => 32,
        _ => throw new ArgumentOutOfRangeException(nameof(dtype)),
    };
}
