using System.Numerics;
using System.Runtime.InteropServices;
using TorchSharp;
using static TorchSharp.torch;

namespace Trd.Runtime.Models;

/// <summary>
/// The output layer's product for a few rows on the CPU — a decode step: logits[r, v] = Σ_h x[r, h] · W[v, h],
/// computed as SIMD dot products over W's stored [V, H] rows, the rows of W split over the intra-op threads
/// (llama.cpp's scheme). libtorch's matrix–vector product on this layout gains nothing from a second core; these row
/// dots are about 1.6× faster inside the decode loop and 3× faster alone (docs/performance.md, "Qwen3 decode").
/// <para>
/// Used only where it applies (<see cref="Applies"/>): no autograd (sampling runs under no_grad), float32 on the CPU,
/// at most <see cref="MaxRows"/> rows, a contiguous weight under 2 GiB; everything else is libtorch's product. Each dot
/// sums in a fixed order (four vector accumulators, their lanes in order, then the tail), so a logit is the same bits
/// on every run and every thread count; it differs from libtorch's by float32 rounding, which the tests bound against
/// a float64 reference.
/// </para>
/// </summary>
public static class RowDotProduct
{
    /// <summary>The most rows the row-dot path takes; more rows are a matrix product, which libtorch does well.</summary>
    public const int MaxRows = 4;

    /// <summary>Whether hidden [R, H] · weightᵀ ([V, H]) takes the row-dot path.</summary>
    public static bool Applies(Tensor hidden, Tensor weight) =>
        !is_grad_enabled()
        && hidden.device_type == DeviceType.CPU && weight.device_type == DeviceType.CPU
        && hidden.dtype == ScalarType.Float32 && weight.dtype == ScalarType.Float32
        && hidden.dim() == 2 && weight.dim() == 2 && hidden.shape[0] >= 1 && hidden.shape[0] <= MaxRows
        && hidden.shape[1] == weight.shape[1] && weight.is_contiguous()
        && weight.NumberOfElements * 4L <= int.MaxValue;

    /// <summary>hidden [R, H] · weightᵀ, weight [V, H] → logits [R, V], float32.</summary>
    public static Tensor Compute(Tensor hidden, Tensor weight)
    {
        var (rows, width, vocabulary) = ((int)hidden.shape[0], (int)hidden.shape[1], (int)weight.shape[0]);
        using var x = hidden.contiguous();
        var input = MemoryMarshal.Cast<byte, float>(x.bytes).ToArray();                 // [R · H], a few KB
        var result = empty(rows, vocabulary, ScalarType.Float32);                         // [R, V]
        if (!Applies(hidden, weight)) throw new ArgumentException("the row-dot product does not apply to these tensors (see RowDotProduct.Applies)");
        var parts = Math.Max(1, Math.Min(get_num_threads(), vocabulary / 1024));
        Parallel.For(0, parts, part =>
        {
            var begin = (int)((long)vocabulary * part / parts);
            var end = (int)((long)vocabulary * (part + 1) / parts);
            var w = MemoryMarshal.Cast<byte, float>(weight.bytes);                        // [V · H]
            var output = MemoryMarshal.Cast<byte, float>(result.bytes);                   // [R · V], parts write disjoint columns
            for (var v = begin; v < end; v++)
            {
                var row = w.Slice(v * width, width);
                for (var r = 0; r < rows; r++)
                    output[r * vocabulary + v] = Dot(row, input.AsSpan(r * width, width));
            }
        });
        return result;
    }

    /// <summary>Σ a_i b_i: four vector accumulators over whole blocks, summed in order, then the tail in order.</summary>
    public static float Dot(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        var lanes = Vector<float>.Count;
        var va = MemoryMarshal.Cast<float, Vector<float>>(a);
        var vb = MemoryMarshal.Cast<float, Vector<float>>(b);
        Vector<float> s0 = default, s1 = default, s2 = default, s3 = default;
        var i = 0;
        for (; i + 4 <= va.Length; i += 4)
        {
            s0 += va[i] * vb[i];
            s1 += va[i + 1] * vb[i + 1];
            s2 += va[i + 2] * vb[i + 2];
            s3 += va[i + 3] * vb[i + 3];
        }
        for (; i < va.Length; i++) s0 += va[i] * vb[i];
        var sum = Vector.Sum((s0 + s1) + (s2 + s3));
        for (var j = va.Length * lanes; j < a.Length; j++) sum += a[j] * b[j];
        return sum;
    }
}
