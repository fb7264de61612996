using System.Text.Json;

namespace Trd.Runtime.Pipeline;

/// <summary>
/// One writer per run directory: an exclusive lock on <c>&lt;dir&gt;/.trd.lock</c> held for the whole command. The
/// operating system releases it when the holder exits, however it exits (kill -9 included), so a dead process never
/// leaves a lock behind; its note (<c>.trd.lock.json</c>: pid, command, start) is only read to say who holds a live
/// lock, and a note left by a dead holder is reported and replaced. Re-entrant within a process: a study that opens a
/// pipeline on a directory it already holds counts the holds and releases on the last.
/// </summary>
public sealed class RunLock : IDisposable
{
    /// <summary>The lock file's name inside the run directory.</summary>
    public const string FileName = ".trd.lock";
    /// <summary>The holder's note beside it.</summary>
    public const string NoteName = ".trd.lock.json";

    static readonly Dictionary<string, (FileStream Stream, int Holds)> Held = new(StringComparer.Ordinal);
    static readonly Lock Gate = new();

    readonly string _directory;
    bool _released;

    RunLock(string directory) => _directory = directory;

    /// <summary>The directory this lock holds.</summary>
    public string Directory => _directory;

    /// <summary>
    /// Takes the lock of <paramref name="directory"/> (created if missing), or throws <see cref="RunLockedException"/>
    /// naming the process that holds it. <paramref name="log"/> hears about a dead holder's note replaced.
    /// </summary>
    public static RunLock Acquire(string directory, string command, Action<string>? log = null)
    {
        var full = Path.GetFullPath(directory);
        lock (Gate)
        {
            if (Held.TryGetValue(full, out var held))
            {
                Held[full] = (held.Stream, held.Holds + 1);
                return new RunLock(full);
            }
            System.IO.Directory.CreateDirectory(full);
            var path = Path.Combine(full, FileName);
            var note = Path.Combine(full, NoteName);
            FileStream stream;
            try { stream = new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None); }
            catch (IOException) { throw new RunLockedException(full, Describe(note)); }
            try
            {
                if (File.Exists(note)) log?.Invoke($"{full}: the previous holder ({Describe(note)}) is gone; its lock is taken over");
                Checkpoints.AtomicFile.WriteText(note, JsonSerializer.Serialize(new
                {
                    pid = Environment.ProcessId, command, started = DateTime.UtcNow.ToString("O"), host = Environment.MachineName,
                }));
            }
            catch
            {
                stream.Dispose();
                throw;
            }
            Held[full] = (stream, 1);
            return new RunLock(full);
        }
    }

    static string Describe(string note)
    {
        try
        {
            using var document = JsonDocument.Parse(File.ReadAllText(note));
            var root = document.RootElement;
            return $"pid {root.GetProperty("pid").GetInt32()}, `{root.GetProperty("command").GetString()}`, since {root.GetProperty("started").GetString()}";
        }
        catch (Exception e) when (e is IOException or JsonException or KeyNotFoundException or InvalidOperationException or UnauthorizedAccessException)
        {
            return "a process that left no note";
        }
    }

    /// <summary>Releases this hold; the lock itself goes with the process's last hold.</summary>
    public void Dispose()
    {
        lock (Gate)
        {
            if (_released) return;
            _released = true;
            var (stream, holds) = Held[_directory];
            if (holds > 1) { Held[_directory] = (stream, holds - 1); return; }
            Held.Remove(_directory);
            try { File.Delete(Path.Combine(_directory, NoteName)); } catch (IOException) { }
            stream.Dispose();                     // the lock file stays: deleting it would let two processes lock two files
        }
    }
}

/// <summary>A run directory another process is writing.</summary>
public sealed class RunLockedException(string directory, string holder)
    : Exception($"{directory} is in use by another process ({holder}); wait for it to finish, or choose another directory")
{
    /// <summary>The run directory.</summary>
    public string Directory { get; } = directory;
}
