namespace Trd.Runtime.Checkpoints;

/// <summary>
/// The one way the runtime writes a file or a directory that others read: all at once or not at all. A file is written
/// all at once or not at all: into a hidden temporary file beside it, flushed to disk, then
/// renamed over the target. A crash or an exception mid-write leaves the old file (or none), never half a file.
/// </summary>
public static class AtomicFile
{
    /// <summary>
    /// Makes a directory all at once or not at all: <paramref name="fill"/> writes into a hidden temporary directory
    /// beside <paramref name="path"/> (<c>.name.GUID.tmp</c>), every file of which is flushed to disk before it is
    /// renamed into place by <paramref name="install"/> (default: the rename; a caller that replaces an older directory
    /// or may lose a race to another process passes its own). A failure deletes the temporary directory.
    /// </summary>
    public static void WriteDirectory(string path, Action<string> fill, Action<string>? install = null)
    {
        var full = System.IO.Path.GetFullPath(path);
        var temporary = System.IO.Path.Combine(System.IO.Path.GetDirectoryName(full)!, $".{System.IO.Path.GetFileName(full)}.{Guid.NewGuid():N}.tmp");
        Directory.CreateDirectory(temporary);
        try
        {
            fill(temporary);
            foreach (var file in Directory.EnumerateFiles(temporary, "*", SearchOption.AllDirectories))
            {
                using var stream = new FileStream(file, FileMode.Open, FileAccess.ReadWrite);
                stream.Flush(flushToDisk: true);
            }
            if (install is not null) install(temporary);
            else Directory.Move(temporary, full);
        }
        catch
        {
            try { if (Directory.Exists(temporary)) Directory.Delete(temporary, recursive: true); } catch (IOException) { }
            throw;
        }
    }

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
