using System.Text;

namespace Trd.Runtime.Export;

/// <summary>
/// Writes GGUF version 3 (ggml's docs/gguf.md), little-endian: the header ("GGUF", version, tensor count, metadata
/// count), the metadata key–value pairs, the tensor infos with offsets aligned to <see cref="Alignment"/>, padding,
/// then each tensor's data, aligned. Tensors are written one at a time by a callback, so a model never needs to be
/// in memory whole.
/// </summary>
public static class GgufWriter
{
    /// <summary>"GGUF" read as a little-endian uint32.</summary>
    public const uint Magic = 0x46554747;

    /// <summary>The format version written.</summary>
    public const uint Version = 3;

    /// <summary>The data alignment (general.alignment's default, which Trd does not override).</summary>
    public const int Alignment = 32;

    /// <summary>
    /// Writes the file to <paramref name="output"/>. Offsets are computed from the infos' sizes; then
    /// <paramref name="writeTensor"/> is called with each tensor's index, in order, and must write exactly its
    /// <see cref="GgufTensorInfo.ByteCount"/> bytes (checked). Returns the infos with their offsets.
    /// </summary>
    public static IReadOnlyList<GgufTensorInfo> Write(Stream output, IReadOnlyList<KeyValuePair<string, GgufValue>> metadata,
        IReadOnlyList<GgufTensorInfo> tensors, Action<int, Stream> writeTensor)
    {
        var keys = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (key, _) in metadata)
            if (!keys.Add(key)) throw new ArgumentException($"metadata key '{key}' appears twice", nameof(metadata));
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var t in tensors)
            if (!names.Add(t.Name)) throw new ArgumentException($"tensor '{t.Name}' appears twice", nameof(tensors));

        var placed = new List<GgufTensorInfo>(tensors.Count);
        long offset = 0;
        foreach (var t in tensors)
        {
            placed.Add(t with { Offset = offset });
            offset = Align(offset + t.ByteCount);
        }

        var counted = new CountingStream(output);
        using (var w = new BinaryWriter(counted, Encoding.UTF8, leaveOpen: true))
        {
            w.Write(Magic);
            w.Write(Version);
            w.Write((ulong)tensors.Count);
            w.Write((ulong)metadata.Count);
            foreach (var (key, value) in metadata)
            {
                WriteString(w, key);
                w.Write((uint)value.Type);
                WriteValue(w, value);
            }
            foreach (var t in placed)
            {
                WriteString(w, t.Name);
                w.Write((uint)t.Dimensions.Length);
                foreach (var d in t.Dimensions) w.Write((ulong)d);
                w.Write((uint)t.Type);
                w.Write((ulong)t.Offset);
            }
            w.Flush();
        }
        Pad(counted);
        var dataStart = counted.Written;
        for (var i = 0; i < placed.Count; i++)
        {
            var before = counted.Written;
            writeTensor(i, counted);
            var wrote = counted.Written - before;
            if (wrote != placed[i].ByteCount)
                throw new InvalidOperationException($"tensor {placed[i]} needs {placed[i].ByteCount} bytes; {wrote} were written");
            Pad(counted);
            if (i + 1 < placed.Count && counted.Written - dataStart != placed[i + 1].Offset)
                throw new InvalidOperationException($"tensor {placed[i + 1].Name} does not start at its offset");
        }
        counted.Flush();
        return placed;
    }

    /// <summary>The next multiple of <see cref="Alignment"/> at or after <paramref name="position"/>.</summary>
    public static long Align(long position) => (position + Alignment - 1) / Alignment * Alignment;

    static void Pad(CountingStream s)
    {
        var pad = (int)(Align(s.Written) - s.Written);
        if (pad > 0) s.Write(new byte[pad]);
    }

    static void WriteString(BinaryWriter w, string s)
    {
        var bytes = Encoding.UTF8.GetBytes(s);
        w.Write((ulong)bytes.Length);
        w.Write(bytes);
    }

    static void WriteValue(BinaryWriter w, GgufValue value)
    {
        switch (value.Type)
        {
            case GgufValueType.Array:
                w.Write((uint)value.ElementType);
                var items = (Array)value.Value;
                w.Write((ulong)items.Length);
                foreach (var item in items) WriteScalar(w, value.ElementType, item!);
                break;
            default:
                WriteScalar(w, value.Type, value.Value);
                break;
        }
    }

    static void WriteScalar(BinaryWriter w, GgufValueType type, object v)
    {
        switch (type)
        {
            case GgufValueType.UInt8: w.Write((byte)v); break;
            case GgufValueType.Int8: w.Write((sbyte)v); break;
            case GgufValueType.UInt16: w.Write((ushort)v); break;
            case GgufValueType.Int16: w.Write((short)v); break;
            case GgufValueType.UInt32: w.Write((uint)v); break;
            case GgufValueType.Int32: w.Write((int)v); break;
            case GgufValueType.Float32: w.Write((float)v); break;
            case GgufValueType.Bool: w.Write((bool)v ? (byte)1 : (byte)0); break;
            case GgufValueType.String: WriteString(w, (string)v); break;
            case GgufValueType.UInt64: w.Write((ulong)v); break;
            case GgufValueType.Int64: w.Write((long)v); break;
            case GgufValueType.Float64: w.Write((double)v); break;
            default: throw new ArgumentOutOfRangeException(nameof(type), type, "nested arrays are not written");
        }
    }

    /// <summary>A write-only view of a stream that counts the bytes written through it.</summary>
    sealed class CountingStream(Stream inner) : Stream
    {
        public long Written { get; private set; }
        public override bool CanRead => false;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => Written;
        public override long Position { get => Written; set => throw new NotSupportedException(); }
        public override void Flush() => inner.Flush();
        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) { inner.Write(buffer, offset, count); Written += count; }
        public override void Write(ReadOnlySpan<byte> buffer) { inner.Write(buffer); Written += buffer.Length; }
    }
}
