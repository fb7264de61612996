using System.Text;
using System.Text.Json;

namespace Trd.Runtime.Data;

/// <summary>
/// An append-only JSONL file of records, one per line, written a batch at a time and flushed to disk after each
/// batch. A process killed mid-batch leaves at most one torn final line. Readers never modify the file (another process
/// may be appending to it): they leave a torn final line unread and say so, so half a record is never read back. The
/// writer owns the file and repairs it: the next append cuts the torn line away before writing. A bad line anywhere
/// else is an error naming the file and line.
/// </summary>
public static class RecordFile
{
    /// <summary>The records in <paramref name="path"/> (none when it does not exist), without a torn final line.</summary>
    public static IReadOnlyList<T> Read<T>(string path, Action<string>? log = null)
    {
        if (!File.Exists(path)) return Array.Empty<T>();
        byte[] bytes;
        using (var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite))
        {
            bytes = new byte[stream.Length];
            stream.ReadExactly(bytes);
        }
        var end = Array.LastIndexOf(bytes, (byte)'\n') + 1;      // bytes after the last newline are a torn write
        if (end < bytes.Length)
            log?.Invoke($"{path}: a torn final line of {bytes.Length - end} bytes (a record in flight when the run stopped) is not read; the next append removes it");
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

    /// <summary>Appends records, one line each, and flushes them to disk; a torn final line is cut away first.</summary>
    public static void Append<T>(string path, IEnumerable<T> records)
    {
        var text = new StringBuilder();
        foreach (var r in records) text.Append(JsonSerializer.Serialize(r)).Append('\n');
        if (text.Length == 0) return;
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        using var stream = new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.Read);
        var whole = WholeLinesLength(stream);
        if (whole < stream.Length) stream.SetLength(whole);
        stream.Seek(0, SeekOrigin.End);
        stream.Write(Encoding.UTF8.GetBytes(text.ToString()));
        stream.Flush(flushToDisk: true);
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
