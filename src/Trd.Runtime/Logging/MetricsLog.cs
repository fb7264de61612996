using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Trd.Runtime.Logging;

/// <summary>
/// A run's metrics as JSON Lines (<c>metrics.jsonl</c>): one JSON object per line, appended and flushed to the
/// operating system line by line, so another process (a notebook, <c>tail -f</c>) sees each record as soon as it is
/// written and a crash loses at most the line being written. A step record reads
/// <code>{"step": 12, "wall_time": 1795000000.25, "loss": 0.53, "kl": null}</code>
/// <c>wall_time</c> is Unix seconds (as TensorBoard's). Numbers are JSON numbers, written in the shortest form that
/// reads back to the same double; NaN and ±Infinity, which JSON cannot write, are written as <c>null</c> with the key
/// kept, so a diverged loss shows as a gap, not a missing column. Safe to call from several threads; one
/// <see cref="MetricsLog"/> per file at a time.
/// </summary>
public sealed class MetricsLog : IDisposable
{
    readonly FileStream _stream;
    readonly TimeProvider _time;
    readonly Lock _lock = new();
    readonly JsonSerializerOptions _options;
    bool _disposed;

    /// <summary>The file written.</summary>
    public string Path { get; }

    /// <summary>
    /// Opens <paramref name="path"/> for appending (created with its directory if missing). If the file ends in a
    /// torn line (a crashed run's last write), a line break is added first so the next record starts a line of its
    /// own; <see cref="Read"/> then reports the torn line and skips it.
    /// </summary>
    /// <param name="path">The JSON Lines file, conventionally <c>metrics.jsonl</c> in the run directory.</param>
    /// <param name="time">The clock for <c>wall_time</c>; the system clock if null.</param>
    public MetricsLog(string path, TimeProvider? time = null)
    {
        ArgumentNullException.ThrowIfNull(path);
        Path = System.IO.Path.GetFullPath(path);
        _time = time ?? TimeProvider.System;
        _options = SerializerOptions();
        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(Path)!);
        _stream = new FileStream(Path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.Read);
        try
        {
            if (_stream.Length > 0)
            {
                _stream.Seek(-1, SeekOrigin.End);
                var last = _stream.ReadByte();
                _stream.Seek(0, SeekOrigin.End);
                if (last != '\n')
                {
                    _stream.WriteByte((byte)'\n');
                    _stream.Flush();
                }
            }
        }
        catch
        {
            _stream.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Appends <c>{"step": step, "wall_time": now, name: value, …}</c>, the values in the dictionary's order.
    /// A value named <c>step</c> or <c>wall_time</c> is an <see cref="ArgumentException"/>.
    /// </summary>
    public void Write(long step, IReadOnlyDictionary<string, double> values)
    {
        ArgumentNullException.ThrowIfNull(values);
        var wallTime = _time.GetUtcNow().ToUnixTimeMilliseconds() / 1000.0;
        var line = Line(w =>
        {
            w.WriteStartObject();
            w.WriteNumber("step", step);
            w.WriteNumber("wall_time", wallTime);
            foreach (var (name, value) in values)
            {
                if (name is "step" or "wall_time")
                    throw new ArgumentException($"a value may not be named '{name}': the record's own field", nameof(values));
                WriteDouble(w, name, value);
            }
            w.WriteEndObject();
        });
        Append(line);
    }

    /// <summary>
    /// Appends any record as one line, serialised by System.Text.Json (public properties, names as declared,
    /// NaN and ±Infinity of <see cref="double"/> and <see cref="float"/> as <c>null</c>). For records that are not
    /// step metrics: the start of a run, an evaluation, the end. It must serialise to a JSON object.
    /// </summary>
    public void Write(object record)
    {
        ArgumentNullException.ThrowIfNull(record);
        var line = JsonSerializer.SerializeToUtf8Bytes(record, record.GetType(), _options);
        if (line.Length == 0 || line[0] != (byte)'{')
            throw new ArgumentException($"a metrics record must serialise to a JSON object; {record.GetType().Name} does not", nameof(record));
        Append(line);
    }

    void Append(byte[] line)
    {
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            // One write of the line and its break, then a flush: a reader never sees half a record unless the
            // process dies inside this call.
            var bytes = new byte[line.Length + 1];
            line.CopyTo(bytes, 0);
            bytes[^1] = (byte)'\n';
            _stream.Write(bytes);
            _stream.Flush();
        }
    }

    static byte[] Line(Action<Utf8JsonWriter> write)
    {
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer, new JsonWriterOptions { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
            write(w);
        return buffer.ToArray();
    }

    static void WriteDouble(Utf8JsonWriter w, string name, double value)
    {
        if (double.IsFinite(value)) w.WriteNumber(name, value);
        else w.WriteNull(name);
    }

    static JsonSerializerOptions SerializerOptions()
    {
        var options = new JsonSerializerOptions { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };
        options.Converters.Add(new NonFiniteAsNullDouble());
        options.Converters.Add(new NonFiniteAsNullSingle());
        options.Converters.Add(new JsonStringEnumConverter());
        return options;
    }

    /// <summary>Closes the file; later writes are an <see cref="ObjectDisposedException"/>.</summary>
    public void Dispose()
    {
        lock (_lock)
        {
            if (_disposed) return;
            _disposed = true;
            _stream.Dispose();
        }
    }

    /// <summary>
    /// Reads a metrics file. Each line should be a JSON object; a line that is not (a torn write from a crashed
    /// run: the file's last line, or a line a later <see cref="MetricsLog"/> closed off before appending) is skipped
    /// and its 1-based number reported in <see cref="MetricsLogContents.SkippedLines"/>. Empty lines are ignored.
    /// An unterminated last line that is a whole object (a file written by another tool) is read.
    /// </summary>
    public static MetricsLogContents Read(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        byte[] bytes;
        // FileShare.ReadWrite: the run may still be appending.
        using (var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite))
        using (var copy = new MemoryStream())
        {
            stream.CopyTo(copy);
            bytes = copy.ToArray();
        }
        var records = new List<MetricsRecord>();
        var skipped = new List<int>();
        var start = 0;
        var lineNumber = 0;
        while (start < bytes.Length)
        {
            lineNumber++;
            var end = Array.IndexOf(bytes, (byte)'\n', start);
            if (end < 0) end = bytes.Length;
            var line = bytes.AsMemory(start, end - start);
            start = end + 1;
            if (line.Span.Trim("\r \t"u8).IsEmpty) continue;
            // An unterminated last line counts if it is a whole object: no prefix of a serialised object is one.
            var record = Parse(line);
            if (record is null) skipped.Add(lineNumber);
            else records.Add(record);
        }
        return new MetricsLogContents(records, skipped);
    }

    static MetricsRecord? Parse(ReadOnlyMemory<byte> line)
    {
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(line);
        }
        catch (JsonException)
        {
            return null;
        }
        using (document)
        {
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object) return null;
            long? step = root.TryGetProperty("step", out var s) && s.ValueKind == JsonValueKind.Number && s.TryGetInt64(out var st) ? st : null;
            double? wallTime = root.TryGetProperty("wall_time", out var t) && t.ValueKind == JsonValueKind.Number ? t.GetDouble() : null;
            var values = new Dictionary<string, double?>(StringComparer.Ordinal);
            foreach (var property in root.EnumerateObject())
            {
                if (property.Name is "step" or "wall_time") continue;
                if (property.Value.ValueKind == JsonValueKind.Number) values[property.Name] = property.Value.GetDouble();
                else if (property.Value.ValueKind == JsonValueKind.Null) values[property.Name] = null;
            }
            return new MetricsRecord(step, wallTime, values, root.Clone());
        }
    }

    sealed class NonFiniteAsNullDouble : JsonConverter<double>
    {
        public override double Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) =>
            reader.TokenType == JsonTokenType.Null ? double.NaN : reader.GetDouble();

        public override void Write(Utf8JsonWriter writer, double value, JsonSerializerOptions options)
        {
            if (double.IsFinite(value)) writer.WriteNumberValue(value);
            else writer.WriteNullValue();
        }

        public override bool HandleNull => true;
    }

    sealed class NonFiniteAsNullSingle : JsonConverter<float>
    {
        public override float Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) =>
            reader.TokenType == JsonTokenType.Null ? float.NaN : reader.GetSingle();

        public override void Write(Utf8JsonWriter writer, float value, JsonSerializerOptions options)
        {
            if (float.IsFinite(value)) writer.WriteNumberValue(value);
            else writer.WriteNullValue();
        }

        public override bool HandleNull => true;
    }
}

/// <summary>One line of a metrics file.</summary>
/// <param name="Step">The <c>step</c> field, if the record has an integer one.</param>
/// <param name="WallTime">The <c>wall_time</c> field (Unix seconds), if any.</param>
/// <param name="Values">The other top-level fields that are numbers, or null (a NaN or infinity when written).
/// Strings, booleans, arrays and objects are only in <paramref name="Json"/>.</param>
/// <param name="Json">The whole record.</param>
public sealed record MetricsRecord(long? Step, double? WallTime, IReadOnlyDictionary<string, double?> Values, JsonElement Json);

/// <summary>What <see cref="MetricsLog.Read"/> found.</summary>
/// <param name="Records">The well-formed records, in file order.</param>
/// <param name="SkippedLines">1-based numbers of lines that were not a complete JSON object (torn writes), skipped.</param>
public sealed record MetricsLogContents(IReadOnlyList<MetricsRecord> Records, IReadOnlyList<int> SkippedLines);
