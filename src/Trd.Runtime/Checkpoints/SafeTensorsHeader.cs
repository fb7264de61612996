using System.Buffers.Binary;
using System.Text.Json;
using System.Text.Unicode;
using Microsoft.Win32.SafeHandles;

namespace Trd.Runtime.Checkpoints;

/// <summary>
/// Reads and validates a safetensors header: an 8-byte little-endian length N, then N bytes of UTF-8 JSON
/// <c>{name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {str: str}}</c>; the data buffer follows,
/// offsets relative to its start. Every way a header can be wrong is a <see cref="CheckpointException"/> naming
/// the file and the tensor, found here, before a byte of tensor data is read:
/// <list type="bullet">
/// <item>N larger than the file allows, or over 100 MB (the reference implementation's limit);</item>
/// <item>a header that is not UTF-8, not JSON, or not a JSON object; a name that appears twice (JSON allows duplicate keys, safetensors does not);</item>
/// <item>an entry missing dtype, shape or data_offsets, or with values of the wrong kind (non-integer, negative);</item>
/// <item>an unknown or unloadable dtype; a shape whose byte count overflows or differs from end − begin;</item>
/// <item>offsets reversed or beyond the data buffer; two tensors overlapping; bytes that belong to no tensor.</item>
/// </list>
/// Gaps are errors, as in the reference implementation: the tensors must tile the data buffer exactly, from 0 to its
/// last byte, so every byte of the file is accounted for. Unknown keys inside an entry are ignored, as there.
/// </summary>
internal static class SafeTensorsHeader
{
    /// <summary>The reference implementation's bound on N.</summary>
    internal const long MaxHeaderBytes = 100_000_000;

    internal const string MetadataKey = "__metadata__";

    internal sealed record Parsed(
        IReadOnlyList<SafeTensorsEntry> Entries, IReadOnlyDictionary<string, string> Metadata, long DataStart, long FileLength);

    /// <summary>Reads the header of an open file and validates it against the file's length.</summary>
    internal static Parsed Read(string path, SafeFileHandle file)
    {
        long length = RandomAccess.GetLength(file);
        if (length < 8)
            throw new CheckpointException(path, null, $"the file is {length} bytes long, shorter than the 8-byte header length that starts a safetensors file");
        Span<byte> prefix = stackalloc byte[8];
        ReadExactly(path, file, prefix, 0);
        ulong n = BinaryPrimitives.ReadUInt64LittleEndian(prefix);
        if (n > (ulong)(length - 8))
            throw new CheckpointException(path, null, $"the header length is {n} bytes, but only {length - 8} bytes follow it (the file is truncated or not safetensors)");
        if (n > MaxHeaderBytes)
            throw new CheckpointException(path, null, $"the header length is {n} bytes, over the {MaxHeaderBytes}-byte limit");
        var json = new byte[n];
        ReadExactly(path, file, json, 8);
        long dataStart = 8 + (long)n;
        var (entries, metadata) = Parse(path, json, length - dataStart);
        return new Parsed(entries, metadata, dataStart, length);
    }

    /// <summary>Parses the JSON and validates every entry against a data buffer of <paramref name="bufferLength"/> bytes.</summary>
    internal static (IReadOnlyList<SafeTensorsEntry> Entries, IReadOnlyDictionary<string, string> Metadata) Parse(
        string path, byte[] json, long bufferLength)
    {
        if (!Utf8.IsValid(json))
            throw new CheckpointException(path, null, "the header is not valid UTF-8");
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(json, new JsonDocumentOptions { MaxDepth = 16 });
        }
        catch (JsonException e)
        {
            throw new CheckpointException(path, null, $"the header is not valid JSON: {Trd.Runtime.Data.JsonErrors.Describe(e)}", e);
        }
        using (document)
        {
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
                throw new CheckpointException(path, null, $"the header is a JSON {root.ValueKind}, not an object of tensors");
            var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
            var entries = new List<SafeTensorsEntry>();
            var seen = new HashSet<string>(StringComparer.Ordinal);
            foreach (var property in root.EnumerateObject())
            {
                if (!seen.Add(property.Name))
                    throw new CheckpointException(path, property.Name, "the name appears twice in the header");
                if (property.Name == MetadataKey)
                    ReadMetadata(path, property.Value, metadata);
                else
                    entries.Add(ReadEntry(path, property.Name, property.Value, bufferLength));
            }
            CheckTiling(path, entries, bufferLength);
            entries.Sort(ByOffset);
            return (entries, metadata);
        }
    }

    static int ByOffset(SafeTensorsEntry a, SafeTensorsEntry b)
    {
        int c = a.Begin.CompareTo(b.Begin);
        if (c == 0) c = a.End.CompareTo(b.End);
        return c != 0 ? c : string.CompareOrdinal(a.Name, b.Name);
    }

    static void ReadMetadata(string path, JsonElement value, Dictionary<string, string> metadata)
    {
        if (value.ValueKind == JsonValueKind.Null)
            return;
        if (value.ValueKind != JsonValueKind.Object)
            throw new CheckpointException(path, null, $"{MetadataKey} is a JSON {value.ValueKind}, not an object of strings");
        foreach (var item in value.EnumerateObject())
        {
            if (item.Value.ValueKind != JsonValueKind.String)
                throw new CheckpointException(path, null, $"{MetadataKey} entry '{item.Name}' is a JSON {item.Value.ValueKind}, not a string");
            if (!metadata.TryAdd(item.Name, item.Value.GetString()!))
                throw new CheckpointException(path, null, $"{MetadataKey} entry '{item.Name}' appears twice");
        }
    }

    static SafeTensorsEntry ReadEntry(string path, string name, JsonElement value, long bufferLength)
    {
        if (value.ValueKind != JsonValueKind.Object)
            throw new CheckpointException(path, name, $"the entry is a JSON {value.ValueKind}, not an object with dtype, shape and data_offsets");

        var dtype = Field(path, name, value, "dtype", JsonValueKind.String).GetString()!;
        if (!SafeTensorsDType.TryParse(dtype, out var type, out int itemSize))
            throw new CheckpointException(path, name, SafeTensorsDType.Rejection(dtype));

        var shapeJson = Field(path, name, value, "shape", JsonValueKind.Array);
        var shape = new long[shapeJson.GetArrayLength()];
        int i = 0;
        foreach (var dim in shapeJson.EnumerateArray())
        {
            shape[i] = NonNegativeInteger(path, name, dim, $"shape[{i}]");
            i++;
        }

        var offsetsJson = Field(path, name, value, "data_offsets", JsonValueKind.Array);
        if (offsetsJson.GetArrayLength() != 2)
            throw new CheckpointException(path, name, $"data_offsets has {offsetsJson.GetArrayLength()} entries, not [begin, end]");
        long begin = NonNegativeInteger(path, name, offsetsJson[0], "data_offsets[0]");
        long end = NonNegativeInteger(path, name, offsetsJson[1], "data_offsets[1]");

        long bytes;
        try
        {
            // Π max(d, 1) must fit as well: libtorch computes strides from it even when a zero makes the tensor empty.
            long elements = 1, strides = 1;
            foreach (var d in shape)
            {
                elements = checked(elements * d);
                strides = checked(strides * Math.Max(d, 1));
            }
            bytes = checked(elements * itemSize);
            _ = checked(strides * itemSize);
        }
        catch (OverflowException)
        {
            throw new CheckpointException(path, name, $"shape {SafeTensorsEntry.FormatShape(shape)} × {dtype} overflows a 64-bit byte count");
        }
        if (begin > end)
            throw new CheckpointException(path, name, $"data_offsets [{begin}, {end}] are reversed");
        if (end > bufferLength)
            throw new CheckpointException(path, name, $"data_offsets [{begin}, {end}] lie beyond the data buffer, which is {bufferLength} bytes");
        if (end - begin != bytes)
            throw new CheckpointException(path, name,
                $"data_offsets [{begin}, {end}] hold {end - begin} bytes, but shape {SafeTensorsEntry.FormatShape(shape)} × {dtype} needs {bytes}");
        return new SafeTensorsEntry(path, name, dtype, type, shape, begin, end);
    }

    /// <summary>The tensors, sorted by offset, must tile [0, bufferLength): no overlap, no gap, nothing after the last.</summary>
    static void CheckTiling(string path, List<SafeTensorsEntry> entries, long bufferLength)
    {
        var sorted = entries.ToArray();
        Array.Sort(sorted, ByOffset);
        long cursor = 0;
        SafeTensorsEntry? previous = null;
        foreach (var e in sorted)
        {
            if (e.Begin < cursor)
                throw new CheckpointException(path, e.Name,
                    $"data_offsets [{e.Begin}, {e.End}] overlap tensor '{previous!.Name}' at [{previous.Begin}, {previous.End}]");
            if (e.Begin > cursor)
                throw new CheckpointException(path, e.Name,
                    $"data_offsets [{e.Begin}, {e.End}] leave bytes [{cursor}, {e.Begin}) of the data buffer to no tensor (safetensors tensors tile the buffer without gaps)");
            cursor = e.End;
            previous = e;
        }
        if (cursor != bufferLength)
            throw new CheckpointException(path, previous?.Name,
                $"the data buffer is {bufferLength} bytes, but the tensors end at byte {cursor}: {bufferLength - cursor} bytes belong to no tensor");
    }

    static JsonElement Field(string path, string name, JsonElement entry, string field, JsonValueKind kind)
    {
        JsonElement? found = null;
        foreach (var property in entry.EnumerateObject())
            if (property.Name == field)
            {
                if (found is not null)
                    throw new CheckpointException(path, name, $"'{field}' appears twice in the entry");
                found = property.Value;
            }
        if (found is not { } value)
            throw new CheckpointException(path, name, $"the entry has no '{field}'");
        if (value.ValueKind != kind)
            throw new CheckpointException(path, name, $"'{field}' is a JSON {value.ValueKind}, not a JSON {kind}");
        return value;
    }

    static long NonNegativeInteger(string path, string name, JsonElement value, string what)
    {
        if (value.ValueKind != JsonValueKind.Number || !value.TryGetInt64(out long x))
            throw new CheckpointException(path, name, $"{what} is {Describe(value)}, not a 64-bit integer");
        if (x < 0)
            throw new CheckpointException(path, name, $"{what} is {x}, negative");
        return x;
    }

    static string Describe(JsonElement value)
    {
        var text = value.GetRawText();
        return text.Length <= 40 ? text : text[..40] + "…";
    }

    /// <summary>Fills <paramref name="buffer"/> from <paramref name="offset"/>; a short file is a CheckpointException.</summary>
    internal static void ReadExactly(string path, SafeFileHandle file, Span<byte> buffer, long offset)
    {
        while (buffer.Length > 0)
        {
            int n = RandomAccess.Read(file, buffer, offset);
            if (n == 0)
                throw new CheckpointException(path, null, $"the file ends at byte {offset}, before the {buffer.Length} bytes expected there (was it truncated while open?)");
            buffer = buffer[n..];
            offset += n;
        }
    }
}
