using System.Text.Json;
using TorchSharp;
using static TorchSharp.torch;

namespace Trd.Runtime.Checkpoints;

/// <summary>
/// A sharded safetensors checkpoint as HF writes it: <c>model-00001-of-00003.safetensors</c>, … and an index
/// <c>model.safetensors.index.json</c> = <c>{"metadata": {"total_size": bytes}, "weight_map": {name: shard file}}</c>.
/// Opening reads the index and every shard's header (kilobytes) and checks they agree — a tensor the index
/// maps to a shard that does not hold it, or a tensor in a shard the index does not map there, is an error —
/// so a load fails before reading any data, not halfway. Tensor data is read shard by shard, on demand.
/// </summary>
public sealed class ShardedSafeTensors : ITensorCheckpoint
{
    const long MaxIndexBytes = 100_000_000;
    const int ProblemsShown = 20;

    readonly Dictionary<string, SafeTensorsFile> _shardOf;

    ShardedSafeTensors(string path, IReadOnlyDictionary<string, string> weightMap, long? totalSize,
        IReadOnlyList<SafeTensorsFile> shards, Dictionary<string, SafeTensorsFile> shardOf)
    {
        Path = path;
        WeightMap = weightMap;
        TotalSize = totalSize;
        Shards = shards;
        _shardOf = shardOf;
        Names = shardOf.Keys.Order(StringComparer.Ordinal).ToArray();
    }

    /// <summary>The index file name HF uses for a prefix: <c>model.safetensors.index.json</c>.</summary>
    public static string IndexFileName(string prefix = "model") => $"{prefix}.safetensors.index.json";

    /// <summary>HF's shard file name: <c>model-00002-of-00005.safetensors</c> for shard 2 (1-based) of 5.</summary>
    public static string ShardFileName(int shard, int count, string prefix = "model") =>
        $"{prefix}-{shard:D5}-of-{count:D5}.safetensors";

    /// <inheritdoc/>
    public string Path { get; }

    /// <summary>The index's weight_map: tensor name → shard file name (relative to the index's directory).</summary>
    public IReadOnlyDictionary<string, string> WeightMap { get; }

    /// <summary>The index's metadata.total_size when it is an integer. Informational: HF does not check it, nor do we.</summary>
    public long? TotalSize { get; }

    /// <summary>The shards, in file-name order.</summary>
    public IReadOnlyList<SafeTensorsFile> Shards { get; }

    /// <inheritdoc/>
    public IReadOnlyList<string> Names { get; }

    /// <inheritdoc/>
    public bool Contains(string name) => _shardOf.ContainsKey(name);

    /// <inheritdoc/>
    public SafeTensorsEntry Entry(string name) =>
        _shardOf.TryGetValue(name, out var shard) ? shard.Entry(name) : throw new CheckpointException(Path, name, "the index has no tensor of that name");

    /// <inheritdoc/>
    public Tensor Load(string name, Device? device = null, ScalarType? dtype = null)
    {
        Entry(name);
        return _shardOf[name].Load(name, device, dtype);
    }

    /// <inheritdoc/>
    public Dictionary<string, Tensor> LoadAll(Device? device = null, ScalarType? dtype = null) => Load(Names, device, dtype);

    /// <inheritdoc/>
    public Dictionary<string, Tensor> Load(IEnumerable<string> names, Device? device = null, ScalarType? dtype = null)
    {
        ArgumentNullException.ThrowIfNull(names);
        var wanted = names.ToArray();
        foreach (var name in wanted) Entry(name);
        return SafeTensorsFile.Collect(wanted.GroupBy(n => _shardOf[n])
            .SelectMany(group => group.Key.Load(group, device, dtype))
            .Select(kv => (kv.Key, kv.Value)));
    }

    /// <inheritdoc/>
    public void LoadInto(IReadOnlyDictionary<string, Tensor> destinations)
    {
        ArgumentNullException.ThrowIfNull(destinations);
        var pairs = SafeTensorsFile.CheckDestinations(Path, destinations, Entry);
        foreach (var group in pairs.GroupBy(p => _shardOf[p.Entry.Name]))
        {
            using var file = group.Key.OpenChecked();
            foreach (var (entry, destination) in group)
                group.Key.ReadInto(file, entry, destination);
        }
    }

    /// <summary>Opens an index and the headers of all its shards, and checks that they agree.</summary>
    public static ShardedSafeTensors Open(string indexPath)
    {
        ArgumentException.ThrowIfNullOrEmpty(indexPath);
        var (weightMap, totalSize) = ReadIndex(indexPath);
        var directory = System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(indexPath))!;

        var shards = new List<SafeTensorsFile>();
        var shardOf = new Dictionary<string, SafeTensorsFile>(StringComparer.Ordinal);
        var problems = new List<(string File, string Tensor, string Text)>();
        foreach (var group in weightMap.GroupBy(p => p.Value).OrderBy(g => g.Key, StringComparer.Ordinal))
        {
            var shardPath = System.IO.Path.Combine(directory, group.Key);
            if (!File.Exists(shardPath))
                throw new CheckpointException(indexPath, group.First().Key, $"the index maps it to '{group.Key}', which does not exist");
            var shard = SafeTensorsFile.Open(shardPath);
            shards.Add(shard);
            var mapped = group.Select(p => p.Key).ToHashSet(StringComparer.Ordinal);
            foreach (var name in mapped.Order(StringComparer.Ordinal))
            {
                if (shard.Contains(name)) shardOf.Add(name, shard);
                else problems.Add((shardPath, name, $"the index {indexPath} maps it to this file, which does not hold it"));
            }
            foreach (var name in shard.Names)
                if (!mapped.Contains(name))
                    problems.Add((shardPath, name, weightMap.TryGetValue(name, out var other)
                        ? $"the file holds it, but the index {indexPath} maps it to '{other}'"
                        : $"the file holds it, but the index {indexPath} does not list it"));
        }
        if (problems.Count > 0)
        {
            var (file, tensor, text) = problems[0];
            var more = problems.Count == 1 ? "" :
                $" ({problems.Count} problems in all: {string.Join("; ", problems.Take(ProblemsShown).Select(p => $"'{p.Tensor}' in {System.IO.Path.GetFileName(p.File)}"))}{(problems.Count > ProblemsShown ? "; …" : "")})";
            throw new CheckpointException(file, tensor, text + more);
        }
        return new ShardedSafeTensors(indexPath, weightMap, totalSize, shards, shardOf);
    }

    static (Dictionary<string, string> WeightMap, long? TotalSize) ReadIndex(string path)
    {
        byte[] bytes;
        try
        {
            var info = new FileInfo(path);
            if (!info.Exists)
                throw new CheckpointException(path, null, "the index file does not exist");
            if (info.Length > MaxIndexBytes)
                throw new CheckpointException(path, null, $"the index is {info.Length} bytes, over the {MaxIndexBytes}-byte limit");
            bytes = File.ReadAllBytes(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new CheckpointException(path, null, $"cannot read the index: {e.Message}", e);
        }
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(bytes, new JsonDocumentOptions { MaxDepth = 16 });
        }
        catch (JsonException e)
        {
            throw new CheckpointException(path, null, $"the index is not valid JSON: {Trd.Runtime.Data.JsonErrors.Describe(e)}", e);
        }
        using (document)
        {
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
                throw new CheckpointException(path, null, $"the index is a JSON {root.ValueKind}, not an object");
            JsonElement? map = null;
            long? totalSize = null;
            foreach (var property in root.EnumerateObject())
            {
                if (property.Name == "weight_map")
                {
                    if (map is not null) throw new CheckpointException(path, null, "'weight_map' appears twice");
                    map = property.Value;
                }
                else if (property.Name == "metadata" && property.Value.ValueKind == JsonValueKind.Object)
                {
                    foreach (var m in property.Value.EnumerateObject())
                        if (m.Name == "total_size" && m.Value.ValueKind == JsonValueKind.Number && m.Value.TryGetInt64(out long size))
                            totalSize = size;
                }
            }
            if (map is not { ValueKind: JsonValueKind.Object } weightMap)
                throw new CheckpointException(path, null, map is null ? "the index has no 'weight_map'" : "'weight_map' is not a JSON object");
            var result = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var entry in weightMap.EnumerateObject())
            {
                if (entry.Value.ValueKind != JsonValueKind.String)
                    throw new CheckpointException(path, entry.Name, $"the weight_map value is a JSON {entry.Value.ValueKind}, not a file name");
                var file = entry.Value.GetString()!;
                if (!IsPlainFileName(file))
                    throw new CheckpointException(path, entry.Name, $"the weight_map names '{file}', which is not a plain file name in the index's directory");
                if (!result.TryAdd(entry.Name, file))
                    throw new CheckpointException(path, entry.Name, "the name appears twice in weight_map");
            }
            if (result.Count == 0)
                throw new CheckpointException(path, null, "'weight_map' is empty");
            return (result, totalSize);
        }
    }

    /// <summary>No directories, no '..': a hostile index must not reach outside its directory.</summary>
    static bool IsPlainFileName(string file) =>
        file.Length > 0 && file != "." && file != ".." && file.IndexOfAny(['/', '\\', '\0']) < 0
        && file.IndexOfAny(System.IO.Path.GetInvalidFileNameChars()) < 0;

    /// <summary>
    /// Writes <paramref name="tensors"/> as shards of at most <paramref name="maxShardBytes"/> bytes of tensor data
    /// each (a larger tensor gets a shard of its own), filled in ordinal name order, plus the index (HF's layout,
    /// <c>json.dumps(indent=2, sort_keys=True)</c>). Every file is written atomically, the index last. Returns the
    /// file names written. Deterministic: the same tensors give the same bytes.
    /// </summary>
    public static IReadOnlyList<string> Save(string directory, IReadOnlyDictionary<string, Tensor> tensors, long maxShardBytes, string prefix = "model")
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        ArgumentNullException.ThrowIfNull(tensors);
        ArgumentException.ThrowIfNullOrEmpty(prefix);
        if (maxShardBytes < 1)
            throw new ArgumentException($"maxShardBytes must be ≥ 1, got {maxShardBytes}", nameof(maxShardBytes));
        if (tensors.Count == 0)
            throw new ArgumentException("there are no tensors to save", nameof(tensors));

        var groups = Split(tensors, maxShardBytes);
        var written = new List<string>();
        var weightMap = new SortedDictionary<string, string>(StringComparer.Ordinal);
        for (int i = 0; i < groups.Count; i++)
        {
            var file = ShardFileName(i + 1, groups.Count, prefix);
            SafeTensors.Save(System.IO.Path.Combine(directory, file), groups[i]);
            foreach (var name in groups[i].Keys) weightMap.Add(name, file);
            written.Add(file);
        }

        long total = tensors.Values.Sum(SafeTensors.ByteCount);
        var index = IndexFileName(prefix);
        AtomicFile.Write(System.IO.Path.Combine(directory, index), stream =>
        {
            using (var json = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true, NewLine = "\n" }))
            {
                json.WriteStartObject();
                json.WriteStartObject("metadata");
                json.WriteNumber("total_size", total);
                json.WriteEndObject();
                json.WriteStartObject("weight_map");
                foreach (var (name, file) in weightMap) json.WriteString(name, file);
                json.WriteEndObject();
                json.WriteEndObject();
            }
            stream.WriteByte((byte)'\n');
        });
        written.Add(index);
        return written;
    }

    /// <summary>Greedy split in ordinal name order: a new shard starts when the next tensor would overflow this one.</summary>
    static List<Dictionary<string, Tensor>> Split(IReadOnlyDictionary<string, Tensor> tensors, long maxShardBytes)
    {
        var groups = new List<Dictionary<string, Tensor>>();
        Dictionary<string, Tensor>? current = null;
        long size = 0;
        foreach (var (name, tensor) in tensors.OrderBy(p => p.Key, StringComparer.Ordinal))
        {
            ArgumentNullException.ThrowIfNull(tensor, $"tensors[{name}]");
            long bytes = SafeTensors.ByteCount(tensor);
            if (current is null || (current.Count > 0 && size + bytes > maxShardBytes))
            {
                current = new Dictionary<string, Tensor>(StringComparer.Ordinal);
                groups.Add(current);
                size = 0;
            }
            current.Add(name, tensor);
            size += bytes;
        }
        return groups;
    }
}
