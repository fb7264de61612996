using Microsoft.Win32.SafeHandles;
using TorchSharp;
using static TorchSharp.torch;

namespace Trd.Runtime.Checkpoints;

/// <summary>
/// Moves bytes between a file and a CPU tensor's own memory through <see cref="Tensor.bytes"/>: a read lands
/// straight in the tensor (no intermediate array, no element loop), a write goes straight from it. A span covers
/// at most 2 GiB, so larger tensors go through 1-D views of at most <see cref="ChunkBytes"/> each.
/// </summary>
internal static class TensorBytes
{
    const long ChunkBytes = 1L << 30;

    delegate void SpanAction(Span<byte> span, long offset);

    /// <summary>Reads <paramref name="tensor"/>'s bytes (CPU, contiguous) from <paramref name="file"/> at <paramref name="fileOffset"/>.</summary>
    internal static void Read(string path, SafeFileHandle file, long fileOffset, Tensor tensor) =>
        ForEachSpan(tensor, (span, offset) => SafeTensorsHeader.ReadExactly(path, file, span, fileOffset + offset));

    /// <summary>Writes <paramref name="tensor"/>'s bytes (CPU, contiguous) to <paramref name="stream"/>.</summary>
    internal static void Write(Stream stream, Tensor tensor) =>
        ForEachSpan(tensor, (span, _) => stream.Write(span));

    /// <summary>Index of the first byte of a bool tensor that is neither 0 nor 1; −1 when there is none.</summary>
    internal static long FirstInvalidBool(Tensor tensor)
    {
        long found = -1;
        ForEachSpan(tensor, (span, offset) =>
        {
            if (found >= 0) return;
            int i = span.IndexOfAnyExcept((byte)0, (byte)1);
            if (i >= 0) found = offset + i;
        });
        return found;
    }

    static void ForEachSpan(Tensor tensor, SpanAction action)
    {
        if (tensor.device_type != DeviceType.CPU || !tensor.is_contiguous())
            throw new InvalidOperationException("TensorBytes needs a contiguous CPU tensor");
        long elements = tensor.NumberOfElements;
        long itemSize = tensor.ElementSize;
        if (elements == 0)
            return;
        if (elements * itemSize <= ChunkBytes)
        {
            action(tensor.bytes, 0);
            return;
        }
        long perChunk = ChunkBytes / itemSize;
        using var flat = tensor.view(-1);
        for (long start = 0; start < elements; start += perChunk)
        {
            using var part = flat.narrow(0, start, Math.Min(perChunk, elements - start));
            action(part.bytes, start * itemSize);
        }
    }
}
