namespace Trd.Runtime.Checkpoints;

/// <summary>
/// Writes a file all at once or not at all: into a hidden temporary file beside it, flushed to disk, then
/// renamed over the target. A crash or an exception mid-write leaves the old file (or none), never half a file.
/// </summary>
public static class AtomicFile
{
    /// <summary>Writes a text file (UTF-8) atomically.</summary>
    public static void WriteText(string path, string text) => Write(path, s => s.Write(System.Text.Encoding.UTF8.GetBytes(text)));

    /// <summary>Writes a file atomically: <paramref name="write"/> fills the temporary file, which then replaces <paramref name="path"/>.</summary>
    public static void Write(string path, Action<Stream> write)
    {
        var full = System.IO.Path.GetFullPath(path);
        var directory = System.IO.Path.GetDirectoryName(full)!;
        Directory.CreateDirectory(directory);
        var temporary = System.IO.Path.Combine(directory, $".{System.IO.Path.GetFileName(full)}.{Guid.NewGuid():N}.tmp");
        try
        {
            using (var stream = new FileStream(temporary, FileMode.CreateNew, FileAccess.Write, FileShare.None, bufferSize: 1 << 20))
            {
                write(stream);
                stream.Flush(flushToDisk: true);
            }
            File.Move(temporary, full, overwrite: true);
        }
        catch
        {
            try { File.Delete(temporary); }
            catch (IOException) { }
            throw;
        }
    }
}
