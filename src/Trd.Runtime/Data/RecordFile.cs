using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;

namespace Trd.Runtime.Data;

/// <summary>One line of a JSONL file: its 1-based number and its text.</summary>
public readonly record struct RecordLine(int Number, string Text);

/// <summary>
/// The one reader and writer of the run's JSONL files (corpus/*.jsonl, eval/*/*.jsonl, train/metrics.jsonl): one
/// record per line, appended and flushed. One policy for a torn last line, the trace of a process killed mid-write:
/// <list type="bullet">
/// <item>Readers never modify a file (another process may be appending to it). A final line without its line break is
/// read if it is a whole JSON object (no prefix of an object is one: a file another tool wrote without the last break)
/// and otherwise left unread and reported, so half a record is never read back.</item>
/// <item>The writer that owns the file repairs it: before appending it cuts a torn final line away (or ends a whole
/// one with its line break).</item>
/// <item>Any other line that is not a record is an error naming the file and the line.</item>
/// </list>
/// One number convention for every run file: NaN and ±Infinity, which JSON cannot write, are <c>null</c> with the key
/// kept, and read back as NaN (<see cref="Json"/>).
/// </summary>
public static class RecordFile
{
    /// <summary>The serializer options of every record: non-finite doubles and floats as null, relaxed escaping.</summary>
    public static JsonSerializerOptions Json { get; } = RunJson.With(new JsonSerializerOptions { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping });

    /// <summary>
    /// The record lines of <paramref name="path"/> (none when it does not exist), empty lines skipped; a torn final
    /// line is left out and reported through <paramref name="log"/>. An input file that no run appends to (a problem
    /// set) is read with <paramref name="input"/>: every line is returned, so a cut last line is the caller's error.
    /// </summary>
    public static IReadOnlyList<RecordLine> Lines(string path, Action<string>? log = null, bool input = false)
    {
        if (!File.Exists(path)) return [];
        byte[] bytes;
        using (var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite))
        using (var copy = new MemoryStream())
        {
            stream.CopyTo(copy);                                   // the length may grow while we read: take what is there
            bytes = copy.ToArray();
        }
        var text = Encoding.UTF8.GetString(bytes);
        var lines = text.Split('\n');
        var result = new List<RecordLine>(lines.Length);
        for (var i = 0; i < lines.Length; i++)
        {
            var line = lines[i].TrimEnd('\r');
            if (line.Trim().Length == 0) continue;
            if (!input && i == lines.Length - 1 && !IsWholeObject(line))   // the last piece has no line break after it
            {
                log?.Invoke($"{path}: a torn final line of {Encoding.UTF8.GetByteCount(lines[i])} bytes (a record in flight when the run stopped) is not read; the next append removes it");
                break;
            }
            result.Add(new RecordLine(i + 1, line));
        }
        return result;
    }

    /// <summary>The records of <paramref name="path"/>, typed; a line that is not one is an error naming the file and line.</summary>
    public static IReadOnlyList<T> Read<T>(string path, Action<string>? log = null) =>
        Lines(path, log).Select(l => Parse(path, l, line => JsonSerializer.Deserialize<T>(line, Json))).ToArray();

    /// <summary>
    /// The records of <paramref name="path"/> in file order, each id once: a second record with an id (two writers, a
    /// hand-edited file) is an error naming the file, both lines and the id.
    /// </summary>
    public static IReadOnlyList<T> ReadUnique<T>(string path, Func<T, string> id, Action<string>? log = null)
    {
        var records = new List<T>();
        var lines = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var line in Lines(path, log))
        {
            var record = Parse(path, line, text => JsonSerializer.Deserialize<T>(text, Json));
            if (!lines.TryAdd(id(record), line.Number))
                throw new CorpusException($"{path}, line {line.Number}: id '{id(record)}' is recorded twice (first on line {lines[id(record)]}); one run directory has one writer — remove the duplicate or rerun into a fresh directory");
            records.Add(record);
        }
        return records;
    }

    /// <summary>The records of <paramref name="path"/> as JSON objects (for scripts and notebooks).</summary>
    public static IReadOnlyList<JsonObject> ReadObjects(string path, Action<string>? log = null) =>
        Lines(path, log).Select(l => Parse(path, l, line => JsonNode.Parse(line) as JsonObject)).ToArray();

    /// <summary>Parses one line with <paramref name="parse"/>, naming the file and the line when it is not a record.</summary>
    public static T Parse<T>(string path, RecordLine line, Func<string, T?> parse)
    {
        try { return parse(line.Text) ?? throw new JsonException("not a JSON object"); }
        catch (JsonException e) { throw new CorpusException($"{path}, line {line.Number}: not a valid record ({Trd.Runtime.Data.JsonErrors.Describe(e)})"); }
        catch (InvalidOperationException e) { throw new CorpusException($"{path}, line {line.Number}: not a valid record ({e.Message})"); }
    }

    /// <summary>Appends records, one line each, and flushes them to disk; the file is repaired first (see the class).</summary>
    public static void Append<T>(string path, IEnumerable<T> records)
    {
        var text = new StringBuilder();
        foreach (var r in records) text.Append(JsonSerializer.Serialize(r, Json)).Append('\n');
        if (text.Length == 0) return;
        using var stream = OpenForAppend(path);
        stream.Write(Encoding.UTF8.GetBytes(text.ToString()));
        stream.Flush(flushToDisk: true);
    }

    /// <summary>
    /// Opens <paramref name="path"/> (created with its directory if missing) positioned at its end for appending, after
    /// repairing it: a torn final line is cut away, a whole one gets its line break. Others may read while it is open.
    /// </summary>
    public static FileStream OpenForAppend(string path)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        var stream = new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.Read);
        try
        {
            var whole = WholeLinesLength(stream);
            if (whole < stream.Length)
            {
                var tail = new byte[stream.Length - whole];
                stream.Seek(whole, SeekOrigin.Begin);
                stream.ReadExactly(tail);
                if (IsWholeObject(Encoding.UTF8.GetString(tail))) { stream.Seek(0, SeekOrigin.End); stream.WriteByte((byte)'\n'); }
                else stream.SetLength(whole);
            }
            stream.Seek(0, SeekOrigin.End);
            return stream;
        }
        catch
        {
            stream.Dispose();
            throw;
        }
    }

    static bool IsWholeObject(string line)
    {
        try { return JsonNode.Parse(line) is JsonObject; }
        catch (JsonException) { return false; }
    }

    /// <summary>The length of the stream up to and including its last newline (0 when it holds none).</summary>
    static long WholeLinesLength(FileStream stream)
    {
        var buffer = new byte[64 * 1024];
        var end = stream.Length;
        while (end > 0)
        {
            var start = Math.Max(0, end - buffer.Length);
            var count = (int)(end - start);
            stream.Seek(start, SeekOrigin.Begin);
            stream.ReadExactly(buffer, 0, count);
            var newline = Array.LastIndexOf(buffer, (byte)'\n', count - 1, count);
            if (newline >= 0) return start + newline + 1;
            end = start;
        }
        return 0;
    }
}

/// <summary>
/// The number convention of every file a run writes (JSONL records, summary.json, analysis.json, results.json): NaN
/// and ±Infinity are written as <c>null</c> and read back as NaN; the string forms "NaN", "Infinity" and "-Infinity"
/// of older files are read too.
/// </summary>
public static class RunJson
{
    /// <summary><paramref name="options"/> with the converters of the convention added (returned for chaining).</summary>
    public static JsonSerializerOptions With(JsonSerializerOptions options)
    {
        options.Converters.Add(new NonFiniteAsNullDouble());
        options.Converters.Add(new NonFiniteAsNullSingle());
        return options;
    }

    /// <summary>Indented, with the convention: the options of the run's JSON documents.</summary>
    public static JsonSerializerOptions Indented { get; } = With(new JsonSerializerOptions { WriteIndented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping });

    static double ReadDouble(ref Utf8JsonReader reader) => reader.TokenType switch
    {
        JsonTokenType.Null => double.NaN,
        JsonTokenType.String => reader.GetString() switch
        {
            "NaN" => double.NaN,
            "Infinity" => double.PositiveInfinity,
            "-Infinity" => double.NegativeInfinity,
            var s => throw new JsonException($"expected a number or null, got the string \"{s}\""),
        },
        _ => reader.GetDouble(),
    };

    sealed class NonFiniteAsNullDouble : JsonConverter<double>
    {
        public override double Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) => ReadDouble(ref reader);

        public override void Write(Utf8JsonWriter writer, double value, JsonSerializerOptions options)
        {
            if (double.IsFinite(value)) writer.WriteNumberValue(value);
            else writer.WriteNullValue();
        }

        public override bool HandleNull => true;
    }

    sealed class NonFiniteAsNullSingle : JsonConverter<float>
    {
        public override float Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) => (float)ReadDouble(ref reader);

        public override void Write(Utf8JsonWriter writer, float value, JsonSerializerOptions options)
        {
            if (float.IsFinite(value)) writer.WriteNumberValue(value);
            else writer.WriteNullValue();
        }

        public override bool HandleNull => true;
    }
}
