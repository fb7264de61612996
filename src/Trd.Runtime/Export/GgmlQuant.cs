using System.Buffers.Binary;

namespace Trd.Runtime.Export;

/// <summary>
/// float32 values to the bytes of a <see cref="GgmlType"/> and back, element by element as ggml's reference
/// routines do (ggml-quants.c <c>quantize_row_q8_0_ref</c>, ggml-impl.h <c>ggml_compute_fp32_to_bf16</c>, IEEE
/// round-to-nearest-even for float16), so a file written here holds the bytes llama.cpp's own converter would.
/// </summary>
public static class GgmlQuant
{
    /// <summary>Writes <paramref name="values"/> as <paramref name="type"/> into <paramref name="destination"/>
    /// (exactly <see cref="GgmlTypes.RowBytes"/> bytes).</summary>
    public static void Encode(ReadOnlySpan<float> values, GgmlType type, Span<byte> destination)
    {
        var bytes = GgmlTypes.RowBytes(type, values.Length);
        if (destination.Length != bytes)
            throw new ArgumentException($"{values.Length} {type} values take {bytes} bytes, not {destination.Length}", nameof(destination));
        switch (type)
        {
            case GgmlType.F32:
                for (var i = 0; i < values.Length; i++) BinaryPrimitives.WriteSingleLittleEndian(destination[(4 * i)..], values[i]);
                break;
            case GgmlType.F16:
                for (var i = 0; i < values.Length; i++) BinaryPrimitives.WriteHalfLittleEndian(destination[(2 * i)..], (Half)values[i]);
                break;
            case GgmlType.BF16:
                for (var i = 0; i < values.Length; i++) BinaryPrimitives.WriteUInt16LittleEndian(destination[(2 * i)..], ToBf16(values[i]));
                break;
            case GgmlType.Q8_0:
                for (var b = 0; b < values.Length / 32; b++) EncodeQ8Block(values.Slice(32 * b, 32), destination.Slice(34 * b, 34));
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(type), type, "not a type Trd writes");
        }
    }

    /// <summary>Reads <paramref name="count"/> values of <paramref name="type"/> back as float32.</summary>
    public static float[] Decode(ReadOnlySpan<byte> source, GgmlType type, int count)
    {
        var bytes = GgmlTypes.RowBytes(type, count);
        if (source.Length < bytes) throw new ArgumentException($"{count} {type} values take {bytes} bytes; {source.Length} given", nameof(source));
        var result = new float[count];
        switch (type)
        {
            case GgmlType.F32:
                for (var i = 0; i < count; i++) result[i] = BinaryPrimitives.ReadSingleLittleEndian(source[(4 * i)..]);
                break;
            case GgmlType.F16:
                for (var i = 0; i < count; i++) result[i] = (float)BinaryPrimitives.ReadHalfLittleEndian(source[(2 * i)..]);
                break;
            case GgmlType.BF16:
                for (var i = 0; i < count; i++) result[i] = BitConverter.Int32BitsToSingle(BinaryPrimitives.ReadUInt16LittleEndian(source[(2 * i)..]) << 16);
                break;
            case GgmlType.Q8_0:
                for (var b = 0; b < count / 32; b++)
                {
                    var d = (float)BinaryPrimitives.ReadHalfLittleEndian(source[(34 * b)..]);
                    for (var j = 0; j < 32; j++) result[32 * b + j] = d * (sbyte)source[34 * b + 2 + j];
                }
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(type), type, "not a type Trd reads");
        }
        return result;
    }

    /// <summary>
    /// float32 → bfloat16 bits as ggml rounds: to nearest, ties to even; a NaN stays a (quiet) NaN.
    /// </summary>
    public static ushort ToBf16(float value)
    {
        var u = BitConverter.SingleToUInt32Bits(value);
        if ((u & 0x7fffffff) > 0x7f800000) return (ushort)((u >> 16) | 64);   // NaN: keep it a NaN, force quiet
        return (ushort)((u + (0x7fff + ((u >> 16) & 1))) >> 16);
    }

    /// <summary>
    /// One Q8_0 block: d = max|x| / 127 stored as float16, q_j = round(x_j / d) half away from zero (C's roundf),
    /// with x_j · (1/d) computed in float32 as ggml does; an all-zero block has d = 0 and q = 0.
    /// </summary>
    static void EncodeQ8Block(ReadOnlySpan<float> x, Span<byte> block)
    {
        var amax = 0f;
        foreach (var v in x) amax = MathF.Max(amax, MathF.Abs(v));
        var d = amax / 127f;
        var id = d != 0f ? 1f / d : 0f;
        BinaryPrimitives.WriteHalfLittleEndian(block, (Half)d);
        for (var j = 0; j < 32; j++)
            block[2 + j] = (byte)(sbyte)MathF.Round(x[j] * id, MidpointRounding.AwayFromZero);
    }
}
