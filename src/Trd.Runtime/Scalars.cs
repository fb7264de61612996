using TorchSharp;
using static TorchSharp.torch;

namespace Trd.Runtime;

/// <summary>
/// Scalars held for the whole of every native call that reads them. TorchSharp turns a number argument
/// (<c>t * 0.5</c>, <c>clamp_max(c)</c>, even <c>a + b</c>, which is <c>a.add(b, 1)</c>) into a Scalar: a native
/// object with a finalizer that no DisposeScope tracks. Once its handle is read nothing references it, so a garbage
/// collection started by another thread during the call can free it while libtorch reads it ("Expected false to be
/// true", "Unknown scalar type", a segfault; docs/performance.md, "Stress"). The build rejects such temporaries
/// (build/Trd.Analyzers: TRD001, TRD002). Constants live here for the life of the process; a value that changes is
/// a <c>using var s = value.ToScalar();</c> local, disposed after the call.
/// </summary>
public static class Scalars
{
    /// <summary>0, an int64 Scalar: valid for integer and floating tensors alike.</summary>
    public static readonly Scalar Zero = 0L.ToScalar();
    /// <summary>1, an int64 Scalar: <c>a.add(b, One)</c> is <c>a + b</c>.</summary>
    public static readonly Scalar One = 1L.ToScalar();
    /// <summary>2, an int64 Scalar.</summary>
    public static readonly Scalar Two = 2L.ToScalar();
    /// <summary>−1, an int64 Scalar: <c>a.add(b, MinusOne)</c> is <c>a − b</c>.</summary>
    public static readonly Scalar MinusOne = (-1L).ToScalar();
    /// <summary>0.5.</summary>
    public static readonly Scalar Half = 0.5.ToScalar();
    /// <summary>−∞, the masked logit.</summary>
    public static readonly Scalar NegativeInfinity = double.NegativeInfinity.ToScalar();

    /// <summary><c>arange(stop)</c>: 0, 1, …, stop − 1 (int64) on the device, with held Scalars.</summary>
    public static Tensor Range(long stop, Device? device = null) => Range(0, stop, device);

    /// <summary><c>arange(start, stop)</c>: start, …, stop − 1 (int64) on the device, with held Scalars.</summary>
    public static Tensor Range(long start, long stop, Device? device = null, ScalarType dtype = ScalarType.Int64)
    {
        using var first = start.ToScalar();
        using var end = stop.ToScalar();
        return arange(first, end, One, dtype, device);
    }
}
