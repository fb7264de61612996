using Microsoft.Win32.SafeHandles;
using TorchSharp;
using static TorchSharp.torch;

namespace Trd.Runtime.Checkpoints;

/// <summary>
/// One safetensors file, its header read and validated (<see cref="SafeTensorsHeader"/>): names, dtypes, shapes,
/// offsets and the <c>__metadata__</c> strings. Tensors are read from the file on demand, each straight into its
/// own memory, so a load never holds more than the tensors it returns.
/// </summary>
public sealed class SafeTensorsFile : ITensorCheckpoint
{
    readonly Dictionary<string, SafeTensorsEntry> _byName;
    readonly long _dataStart;
    readonly long _fileLength;

    SafeTensorsFile(string path, SafeTensorsHeader.Parsed header)
    {
        Path = path;
        Entries = header.Entries;
        Metadata = header.Metadata;
        _dataStart = header.DataStart;
        _fileLength = header.FileLength;
        _byName = header.Entries.ToDictionary(e => e.Name, StringComparer.Ordinal);
        Names = _byName.Keys.Order(StringComparer.Ordinal).ToArray();
    }

    /// <summary>Opens a file and validates its header; every defect is a <see cref="CheckpointException"/>.</summary>
    public static SafeTensorsFile Open(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        using var file = OpenHandle(path);
        return new SafeTensorsFile(path, SafeTensorsHeader.Read(path, file));
    }

    /// <inheritdoc/>
    public string Path { get; }

    /// <summary>The tensors in the order of their bytes in the file.</summary>
    public IReadOnlyList<SafeTensorsEntry> Entries { get; }

    /// <summary>The header's <c>__metadata__</c> (empty when absent); HF writes <c>{"format": "pt"}</c>.</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }

    /// <inheritdoc/>
    public IReadOnlyList<string> Names { get; }

    /// <inheritdoc/>
    public bool Contains(string name) => _byName.ContainsKey(name);

    /// <inheritdoc/>
    public SafeTensorsEntry Entry(string name) =>
        _byName.TryGetValue(name, out var entry) ? entry : throw new CheckpointException(Path, name, "no tensor of that name in the file");

    /// <inheritdoc/>
    public Tensor Load(string name, Device? device = null, ScalarType? dtype = null)
    {
        var entry = Entry(name);
        using var file = OpenChecked();
        return Read(file, entry, device, dtype);
    }

    /// <inheritdoc/>
    public Dictionary<string, Tensor> LoadAll(Device? device = null, ScalarType? dtype = null) => Load(Names, device, dtype);

    /// <inheritdoc/>
    public Dictionary<string, Tensor> Load(IEnumerable<string> names, Device? device = null, ScalarType? dtype = null)
    {
        ArgumentNullException.ThrowIfNull(names);
        var entries = names.Select(Entry).ToArray();
        using var file = OpenChecked();
        return Collect(entries.Select(entry => (entry.Name, Read(file, entry, device, dtype))));
    }

    /// <summary>The tensors <paramref name="tensors"/> makes, by name; on a failure the ones already made are disposed.</summary>
    internal static Dictionary<string, Tensor> Collect(IEnumerable<(string Name, Tensor Tensor)> tensors)
    {
        var result = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        try
        {
            foreach (var (name, tensor) in tensors) result.Add(name, tensor);
            return result;
        }
        catch
        {
            foreach (var t in result.Values) t.Dispose();
            throw;
        }
    }

    /// <inheritdoc/>
    public void LoadInto(IReadOnlyDictionary<string, Tensor> destinations)
    {
        ArgumentNullException.ThrowIfNull(destinations);
        var pairs = CheckDestinations(Path, destinations, Entry);
        using var file = OpenChecked();
        foreach (var (entry, destination) in pairs)
            ReadInto(file, entry, destination);
    }

    /// <summary>Pairs each destination with its entry; all missing names and shape mismatches in one error.</summary>
    internal static List<(SafeTensorsEntry Entry, Tensor Destination)> CheckDestinations(
        string path, IReadOnlyDictionary<string, Tensor> destinations, Func<string, SafeTensorsEntry> entry)
    {
        var pairs = new List<(SafeTensorsEntry, Tensor)>();
        var problems = new List<string>();
        string? first = null;
        foreach (var (name, destination) in destinations.OrderBy(p => p.Key, StringComparer.Ordinal))
        {
            ArgumentNullException.ThrowIfNull(destination, $"destinations[{name}]");
            SafeTensorsEntry e;
            try { e = entry(name); }
            catch (CheckpointException) { problems.Add($"'{name}' is not stored"); first ??= name; continue; }
            if (!e.Shape.SequenceEqual(destination.shape))
            {
                problems.Add($"'{name}' is stored as {e.ShapeText} in {e.File}, the destination is {SafeTensorsEntry.FormatShape(destination.shape)}");
                first ??= name;
                continue;
            }
            pairs.Add((e, destination));
        }
        if (problems.Count > 0)
            throw new CheckpointException(path, first, $"cannot load into the {destinations.Count} destination tensors: {string.Join("; ", problems)}");
        return pairs;
    }

    internal void ReadInto(SafeFileHandle file, SafeTensorsEntry entry, Tensor destination)
    {
        bool direct = destination.device_type == DeviceType.CPU && destination.is_contiguous()
                      && destination.dtype == entry.ScalarType && entry.ScalarType != ScalarType.Bool;
        if (direct)
        {
            TensorBytes.Read(Path, file, _dataStart + entry.Begin, destination);
            return;
        }
        using var loaded = Read(file, entry, null, null);
        using (no_grad())
            destination.copy_(loaded);
    }

    internal Tensor Read(SafeFileHandle file, SafeTensorsEntry entry, Device? device, ScalarType? dtype)
    {
        Tensor tensor;
        try
        {
            tensor = empty(entry.ShapeArray(), entry.ScalarType, CPU);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            throw new CheckpointException(Path, entry.Name, $"cannot allocate a {entry.DType} tensor of shape {entry.ShapeText} ({entry.ByteCount} bytes): {e.Message}", e);
        }
        try
        {
            TensorBytes.Read(Path, file, _dataStart + entry.Begin, tensor);
            if (entry.ScalarType == ScalarType.Bool && TensorBytes.FirstInvalidBool(tensor) is var bad and >= 0)
                throw new CheckpointException(Path, entry.Name, $"BOOL element {bad} is stored as a byte other than 0 or 1");
            bool convert = dtype is { } d && d != entry.ScalarType;
            bool move = device is { } dev && (dev.type != DeviceType.CPU);
            if (!convert && !move)
                return tensor;
            var converted = tensor.to(dtype ?? entry.ScalarType, device ?? CPU);
            tensor.Dispose();
            return converted;
        }
        catch
        {
            tensor.Dispose();
            throw;
        }
    }

    /// <summary>Opens the file for reading and checks it is still the length its header was validated against.</summary>
    internal SafeFileHandle OpenChecked()
    {
        var file = OpenHandle(Path);
        long length = RandomAccess.GetLength(file);
        if (length != _fileLength)
        {
            file.Dispose();
            throw new CheckpointException(Path, null, $"the file is now {length} bytes, but was {_fileLength} when its header was read: it changed after it was opened");
        }
        return file;
    }

    static SafeFileHandle OpenHandle(string path)
    {
        try
        {
            return File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read, FileOptions.RandomAccess);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new CheckpointException(path, null, $"cannot open the file: {e.Message}", e);
        }
    }
}
