using System.Text;
using Trd.Runtime.Checkpoints;

namespace Trd.Runtime.Export;

/// <summary>A GGUF file's header, metadata and tensor infos, as <see cref="GgufReader.Read"/> found them.</summary>
public sealed record GgufFile(string Path, uint Version, IReadOnlyList<KeyValuePair<string, GgufValue>> Metadata,
    IReadOnlyList<GgufTensorInfo> Tensors, long DataOffset)
{
    /// <summary>The value of a metadata key; a CheckpointException naming the file when absent.</summary>
    public GgufValue this[string key] =>
        Metadata.FirstOrDefault(kv => kv.Key == key).Value ?? throw new CheckpointException(Path, null, $"no metadata key '{key}'");

    /// <summary>Whether the metadata holds the key.</summary>
    public bool Has(string key) => Metadata.Any(kv => kv.Key == key);

    /// <summary>The tensor info of that name; a CheckpointException naming the file when absent.</summary>
    public GgufTensorInfo Tensor(string name) =>
        Tensors.FirstOrDefault(t => t.Name == name) ?? throw new CheckpointException(Path, name, "no such tensor in the GGUF file");

    /// <summary>A tensor's values, dequantised to float32 (row-major in ggml's order: ne[0] fastest).</summary>
    public float[] ReadFloats(string name)
    {
        var info = Tensor(name);
        using var stream = File.OpenRead(Path);
        stream.Seek(DataOffset + info.Offset, SeekOrigin.Begin);
        var bytes = new byte[info.ByteCount];
        stream.ReadExactly(bytes);
        return GgmlQuant.Decode(bytes, info.Type, checked((int)info.ElementCount));
    }
}

/// <summary>
/// Reads a GGUF (version 2 or 3) file's header, metadata and tensor infos, checking every length and count against
/// the file's size before allocating, so a damaged or hostile file is an error naming the file, never a huge
/// allocation. Tensor data is not read until asked for.
/// </summary>
public static class GgufReader
{
    /// <summary>Reads the file's header, metadata and tensor infos.</summary>
    public static GgufFile Read(string path)
    {
        if (!File.Exists(path)) throw new CheckpointException(path, null, "the GGUF file does not exist");
        using var stream = File.OpenRead(path);
        using var r = new BinaryReader(stream, Encoding.UTF8, leaveOpen: true);
        var length = stream.Length;
        CheckpointException Bad(string why) => new(path, null, why);
        try
        {
            if (length < 24 || r.ReadUInt32() != GgufWriter.Magic) throw Bad("not a GGUF file (no \"GGUF\" magic)");
            var version = r.ReadUInt32();
            if (version is not (2 or 3)) throw Bad($"GGUF version {version} is not supported (2 or 3)");
            var tensorCount = r.ReadUInt64();
            var kvCount = r.ReadUInt64();
            if (tensorCount > (ulong)length / 8 || kvCount > (ulong)length / 8) throw Bad($"counts ({tensorCount} tensors, {kvCount} keys) exceed what the file can hold");
            string ReadString()
            {
                var n = r.ReadUInt64();
                if (n > (ulong)(length - stream.Position)) throw Bad($"a string of {n} bytes at offset {stream.Position} runs past the end of the file");
                return Encoding.UTF8.GetString(r.ReadBytes((int)n));
            }
            object Scalar(GgufValueType t) => t switch
            {
                GgufValueType.UInt8 => r.ReadByte(),
                GgufValueType.Int8 => r.ReadSByte(),
                GgufValueType.UInt16 => r.ReadUInt16(),
                GgufValueType.Int16 => r.ReadInt16(),
                GgufValueType.UInt32 => r.ReadUInt32(),
                GgufValueType.Int32 => r.ReadInt32(),
                GgufValueType.Float32 => r.ReadSingle(),
                GgufValueType.Bool => r.ReadByte() != 0,
                GgufValueType.String => ReadString(),
                GgufValueType.UInt64 => r.ReadUInt64(),
                GgufValueType.Int64 => r.ReadInt64(),
                GgufValueType.Float64 => r.ReadDouble(),
                _ => throw Bad($"unknown value type {(uint)t} at offset {stream.Position - 4}"),
            };
            var metadata = new List<KeyValuePair<string, GgufValue>>();
            for (ulong i = 0; i < kvCount; i++)
            {
                var key = ReadString();
                var type = (GgufValueType)r.ReadUInt32();
                if (type == GgufValueType.Array)
                {
                    var element = (GgufValueType)r.ReadUInt32();
                    var count = r.ReadUInt64();
                    if (count > (ulong)(length - stream.Position)) throw Bad($"key '{key}': an array of {count} elements runs past the end of the file");
                    if (element == GgufValueType.Array) throw Bad($"key '{key}': nested arrays are not supported");
                    var items = Array.CreateInstance(ElementClr(element) ?? throw Bad($"key '{key}': unknown element type {(uint)element}"), (int)count);
                    for (var j = 0; j < (int)count; j++) items.SetValue(Scalar(element), j);
                    metadata.Add(new(key, GgufValue.Read(type, items, element)));
                }
                else metadata.Add(new(key, GgufValue.Read(type, Scalar(type))));
            }
            var alignment = metadata.FirstOrDefault(kv => kv.Key == "general.alignment").Value is { } a ? a.AsInteger() : GgufWriter.Alignment;
            if (alignment <= 0 || (alignment & (alignment - 1)) != 0) throw Bad($"general.alignment {alignment} is not a power of two");
            var tensors = new List<GgufTensorInfo>();
            for (ulong i = 0; i < tensorCount; i++)
            {
                var name = ReadString();
                var dims = r.ReadUInt32();
                if (dims is 0 or > 4) throw Bad($"tensor '{name}' has {dims} dimensions (1 to 4)");
                var shape = new long[dims];
                for (var d = 0; d < dims; d++)
                {
                    var n = r.ReadUInt64();
                    if (n == 0 || n > (ulong)length) throw Bad($"tensor '{name}' has dimension {d} = {n}");
                    shape[d] = (long)n;
                }
                var type = (GgmlType)r.ReadUInt32();
                if (!Enum.IsDefined(type)) throw Bad($"tensor '{name}' has ggml type {(uint)type}, which Trd does not read (F32, F16, BF16, Q8_0)");
                var offset = r.ReadUInt64();
                tensors.Add(new GgufTensorInfo(name, shape, type, checked((long)offset)));
            }
            var dataOffset = (stream.Position + alignment - 1) / alignment * alignment;
            foreach (var t in tensors)
                if (t.Offset % alignment != 0 || dataOffset + t.Offset + t.ByteCount > length)
                    throw Bad($"tensor {t} at offset {t.Offset} is misaligned or runs past the end of the file");
            return new GgufFile(path, version, metadata, tensors, dataOffset);
        }
        catch (EndOfStreamException) { throw Bad("the file ends inside its header"); }
        catch (ArgumentException e) { throw Bad(e.Message); }
        catch (OverflowException) { throw Bad("a size in the header overflows"); }
    }

    static Type? ElementClr(GgufValueType t) => t switch
    {
        GgufValueType.UInt8 => typeof(byte), GgufValueType.Int8 => typeof(sbyte), GgufValueType.UInt16 => typeof(ushort),
        GgufValueType.Int16 => typeof(short), GgufValueType.UInt32 => typeof(uint), GgufValueType.Int32 => typeof(int),
        GgufValueType.Float32 => typeof(float), GgufValueType.Bool => typeof(bool), GgufValueType.String => typeof(string),
        GgufValueType.UInt64 => typeof(ulong), GgufValueType.Int64 => typeof(long), GgufValueType.Float64 => typeof(double),
        _ => null,
    };
}
