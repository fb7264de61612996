using System.Text;
using System.Text.Json;

namespace Trd.Runtime.Data;

/// <summary>
/// An append-only JSONL file of records, one per line, written a batch at a time and flushed to disk after each
/// batch. A process killed mid-batch leaves at most one torn final line: reading truncates it away (and says so), so
/// half a record is never read back; a bad line anywhere else is an error naming the file and line.
/// </summary>
public static class RecordFile
{
    /// <summary>The records in <paramref name="path"/> (none when it does not exist), repairing a torn tail.</summary>
    public static IReadOnlyList<T> Read<T>(string path, Action<string>? log = null)
    {
        if (!File.Exists(path)) return Array.Empty<T>();
        var bytes = File.ReadAllBytes(path);
        var end = Array.LastIndexOf(bytes, (byte)'\n') + 1;      // bytes after the last newline are a torn write
        if (end < bytes.Length)
        {
            using (var stream = new FileStream(path, FileMode.Open, FileAccess.Write)) { stream.SetLength(end); stream.Flush(flushToDisk: true); }
            log?.Invoke($"{path}: removed a torn final line of {bytes.Length - end} bytes (a record in flight when the run stopped)");
        }
        var records = new List<T>();
        var lines = Encoding.UTF8.GetString(bytes, 0, end).Split('\n');
        for (var i = 0; i < lines.Length; i++)
        {
            if (lines[i].Length == 0) continue;
            try { records.Add(JsonSerializer.Deserialize<T>(lines[i]) ?? throw new JsonException("null record")); }
            catch (JsonException e) { throw new CorpusException($"{path}, line {i + 1}: not a valid record ({e.Message})"); }
        }
        return records;
    }

    /// <summary>Appends records, one line each, and flushes them to disk.</summary>
    public static void Append<T>(string path, IEnumerable<T> records)
    {
        var text = new StringBuilder();
        foreach (var r in records) text.Append(JsonSerializer.Serialize(r)).Append('\n');
        if (text.Length == 0) return;
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        using var stream = new FileStream(path, FileMode.Append, FileAccess.Write, FileShare.Read);
        stream.Write(Encoding.UTF8.GetBytes(text.ToString()));
        stream.Flush(flushToDisk: true);
    }
}
