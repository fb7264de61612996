using System.Buffers;
using System.Buffers.Binary;
using System.Text.Encodings.Web;
using System.Text.Json;
using TorchSharp;
using static TorchSharp.torch;

namespace Trd.Runtime.Checkpoints;

/// <summary>
/// The safetensors format (https://github.com/huggingface/safetensors): an 8-byte little-endian header length N,
/// N bytes of UTF-8 JSON <c>{name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {str: str}}</c>,
/// then the data buffer, offsets relative to its start. <see cref="Open"/> reads (see
/// <see cref="SafeTensorsFile"/>); <see cref="Save"/> writes.
/// </summary>
public static class SafeTensors
{
    /// <summary>Opens a file and validates its header; tensors are read on demand.</summary>
    public static SafeTensorsFile Open(string path) => SafeTensorsFile.Open(path);

    /// <summary>
    /// Writes <paramref name="tensors"/> to <paramref name="path"/>, atomically (temporary file, then rename).
    /// The output is a function of the names, dtypes, shapes, bytes and metadata alone: names in ordinal order,
    /// data in the same order, compact JSON with <c>__metadata__</c> first, padded with spaces to a multiple of
    /// 8 bytes as HF's writer does. <c>"format": "pt"</c> is added to the metadata unless given (transformers
    /// checks it). Tensors may live on any device and need not be contiguous; each is copied to the CPU in turn.
    /// </summary>
    public static void Save(string path, IReadOnlyDictionary<string, Tensor> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentNullException.ThrowIfNull(tensors);
        var ordered = tensors.OrderBy(p => p.Key, StringComparer.Ordinal).ToArray();
        var header = Header(ordered, metadata);
        AtomicFile.Write(path, stream =>
        {
            Span<byte> prefix = stackalloc byte[8];
            BinaryPrimitives.WriteUInt64LittleEndian(prefix, (ulong)header.Length);
            stream.Write(prefix);
            stream.Write(header);
            foreach (var (_, tensor) in ordered)
            {
                using var detached = tensor.detach();
                using var cpu = detached.cpu();
                using var contiguous = cpu.contiguous();
                TensorBytes.Write(stream, contiguous);
            }
        });
    }

    /// <summary>The byte count a tensor takes in a safetensors file (what shards are sized by).</summary>
    public static long ByteCount(Tensor tensor) => tensor.NumberOfElements * tensor.ElementSize;

    /// <summary>The padded JSON header for tensors in this order; validates names and dtypes first.</summary>
    static byte[] Header(KeyValuePair<string, Tensor>[] ordered, IReadOnlyDictionary<string, string>? metadata)
    {
        var names = new string[ordered.Length];
        for (int i = 0; i < ordered.Length; i++)
        {
            var (name, tensor) = ordered[i];
            if (name.Length == 0 || name == SafeTensorsHeader.MetadataKey)
                throw new ArgumentException($"'{name}' cannot name a tensor in a safetensors file", nameof(ordered));
            if (tensor is null)
                throw new ArgumentException($"tensor '{name}' is null", "tensors");
            if (!SafeTensorsDType.TryGetName(tensor.dtype, out names[i]))
                throw new ArgumentException($"tensor '{name}' has dtype {tensor.dtype}, which safetensors cannot hold here (loadable: {string.Join(", ", SafeTensorsDType.Names)})", "tensors");
        }

        var buffer = new ArrayBufferWriter<byte>();
        using (var json = new Utf8JsonWriter(buffer, new JsonWriterOptions { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            json.WriteStartObject();
            json.WriteStartObject(SafeTensorsHeader.MetadataKey);
            var meta = new SortedDictionary<string, string>(StringComparer.Ordinal) { ["format"] = "pt" };
            if (metadata is not null)
                foreach (var (key, value) in metadata)
                    meta[key] = value ?? throw new ArgumentException($"metadata '{key}' is null", nameof(metadata));
            foreach (var (key, value) in meta)
                json.WriteString(key, value);
            json.WriteEndObject();
            long offset = 0;
            for (int i = 0; i < ordered.Length; i++)
            {
                var (name, tensor) = ordered[i];
                long bytes = ByteCount(tensor);
                json.WriteStartObject(name);
                json.WriteString("dtype", names[i]);
                json.WriteStartArray("shape");
                foreach (var d in tensor.shape) json.WriteNumberValue(d);
                json.WriteEndArray();
                json.WriteStartArray("data_offsets");
                json.WriteNumberValue(offset);
                json.WriteNumberValue(offset + bytes);
                json.WriteEndArray();
                json.WriteEndObject();
                offset += bytes;
            }
            json.WriteEndObject();
        }
        if (buffer.WrittenCount > SafeTensorsHeader.MaxHeaderBytes - 8)
            throw new ArgumentException($"the header of {ordered.Length} tensors is {buffer.WrittenCount} bytes, over the {SafeTensorsHeader.MaxHeaderBytes}-byte limit readers apply", "tensors");
        int padding = (8 - buffer.WrittenCount % 8) % 8;
        var header = new byte[buffer.WrittenCount + padding];
        buffer.WrittenSpan.CopyTo(header);
        header.AsSpan(buffer.WrittenCount).Fill((byte)' ');
        return header;
    }
}
