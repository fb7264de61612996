using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Serialization;
using Trd.Runtime.Data;

namespace Trd.Runtime.Logging;

/// <summary>
/// A run's metrics as JSON Lines (<c>metrics.jsonl</c>): one JSON object per line, appended and flushed to the
/// operating system line by line, so another process (a notebook, <c>tail -f</c>) sees each record as soon as it is
/// written and a crash loses at most the line being written. A step record reads
/// <code>{"step": 12, "wall_time": 1795000000.25, "loss": 0.53, "kl": null}</code>
/// <c>wall_time</c> is Unix seconds (as TensorBoard's). Numbers are JSON numbers, written in the shortest form that
/// reads back to the same double; NaN and ±Infinity, which JSON cannot write, are written as <c>null</c> with the key
/// kept (every run file's convention, <see cref="RunJson"/>), so a diverged loss shows as a gap, not a missing column. Safe to call from several threads; one
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
    /// Opens <paramref name="path"/> for appending (created with its directory if missing), repairing a crashed run's
    /// torn last line first as every run file's writer does (<see cref="RecordFile.OpenForAppend"/>).
    /// </summary>
    /// <param name="path">The JSON Lines file, conventionally <c>metrics.jsonl</c> in the run directory.</param>
    /// <param name="time">The clock for <c>wall_time</c>; the system clock if null.</param>
    public MetricsLog(string path, TimeProvider? time = null)
    {
        ArgumentNullException.ThrowIfNull(path);
        Path = System.IO.Path.GetFullPath(path);
        _time = time ?? TimeProvider.System;
        _options = new JsonSerializerOptions(RecordFile.Json);
        _options.Converters.Add(new JsonStringEnumConverter());
        _stream = RecordFile.OpenForAppend(Path);
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
    /// Reads a metrics file through <see cref="RecordFile.Lines"/>: a torn last line is left unread (and
    /// <see cref="MetricsLogContents.TornFinalLine"/> says so); any other line that is not a JSON object is an error
    /// naming the file and line. Empty lines are ignored.
    /// </summary>
    public static MetricsLogContents Read(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: no metrics log", path);
        var torn = false;
        var records = RecordFile.Lines(path, _ => torn = true)
            .Select(line => RecordFile.Parse(path, line, Parse))
            .ToArray();
        return new MetricsLogContents(records, torn);
    }

    static MetricsRecord? Parse(string line)
    {
        using var document = JsonDocument.Parse(line);
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

/// <summary>One line of a metrics file.</summary>
/// <param name="Step">The <c>step</c> field, if the record has an integer one.</param>
/// <param name="WallTime">The <c>wall_time</c> field (Unix seconds), if any.</param>
/// <param name="Values">The other top-level fields that are numbers, or null (a NaN or infinity when written).
/// Strings, booleans, arrays and objects are only in <paramref name="Json"/>.</param>
/// <param name="Json">The whole record.</param>
public sealed record MetricsRecord(long? Step, double? WallTime, IReadOnlyDictionary<string, double?> Values, JsonElement Json);

/// <summary>What <see cref="MetricsLog.Read"/> found.</summary>
/// <param name="Records">The records, in file order.</param>
/// <param name="TornFinalLine">Whether a torn last line (a crashed run's record in flight) was left unread.</param>
public sealed record MetricsLogContents(IReadOnlyList<MetricsRecord> Records, bool TornFinalLine);
