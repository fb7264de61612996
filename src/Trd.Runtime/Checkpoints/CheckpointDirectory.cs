using System.Text.RegularExpressions;
using TorchSharp;
using static TorchSharp.torch;

namespace Trd.Runtime.Checkpoints;

/// <summary>
/// A model directory in HF's layout: <c>config.json</c> and either <c>model.safetensors</c> or the sharded
/// <c>model-0000i-of-0000n.safetensors</c> files with <c>model.safetensors.index.json</c>. Loading checks the stored
/// names and shapes against the caller's expected set (a model's parameters) and reports every missing name,
/// every unexpected name and every shape mismatch in one error, before reading any tensor data. Nothing here knows
/// a model class: parameters come and go as name → tensor dictionaries.
/// </summary>
public static class CheckpointDirectory
{
    /// <summary>The configuration's file name.</summary>
    public const string ConfigFileName = "config.json";

    /// <summary>The single-file checkpoint's file name.</summary>
    public const string SingleFileName = "model.safetensors";

    /// <summary>The sharded checkpoint's index file name.</summary>
    public static string IndexFileName => ShardedSafeTensors.IndexFileName();

    /// <summary>transformers' default max_shard_size, "5GB" (decimal).</summary>
    public const long DefaultMaxShardBytes = 5_000_000_000;

    const int NamesShown = 20;

    static readonly Regex ShardPattern = new(@"^model-\d{5}-of-\d{5}\.safetensors$", RegexOptions.CultureInvariant);

    /// <summary>Reads and validates <c>config.json</c>.</summary>
    public static Qwen3Config ReadConfig(string directory) =>
        Qwen3Config.Load(System.IO.Path.Combine(directory, ConfigFileName));

    /// <summary>
    /// Opens the directory's tensors, single-file or sharded, validating every header. A directory with both
    /// forms is an error (which one is stale cannot be told), as is one with neither.
    /// </summary>
    public static ITensorCheckpoint OpenTensors(string directory)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        if (!Directory.Exists(directory))
            throw new CheckpointException(directory, null, "the checkpoint directory does not exist");
        var single = System.IO.Path.Combine(directory, SingleFileName);
        var index = System.IO.Path.Combine(directory, IndexFileName);
        bool hasSingle = File.Exists(single), hasIndex = File.Exists(index);
        if (hasSingle && hasIndex)
            throw new CheckpointException(directory, null, $"holds both {SingleFileName} and {IndexFileName}; one of them is stale — remove it");
        if (hasSingle) return SafeTensorsFile.Open(single);
        if (hasIndex) return ShardedSafeTensors.Open(index);
        throw new CheckpointException(directory, null, $"holds neither {SingleFileName} nor {IndexFileName}");
    }

    /// <summary>
    /// Checks a checkpoint's names and shapes against <paramref name="expected"/>: every expected name stored with
    /// its shape, and nothing else stored but the <paramref name="ignore"/>d names. All problems in one error.
    /// </summary>
    public static void Check(ITensorCheckpoint checkpoint, IReadOnlyDictionary<string, long[]> expected, IEnumerable<string>? ignore = null)
    {
        ArgumentNullException.ThrowIfNull(checkpoint);
        ArgumentNullException.ThrowIfNull(expected);
        var ignored = (ignore ?? []).ToHashSet(StringComparer.Ordinal);
        var missing = expected.Keys.Where(n => !checkpoint.Contains(n)).Order(StringComparer.Ordinal).ToList();
        var unexpected = checkpoint.Names.Where(n => !expected.ContainsKey(n) && !ignored.Contains(n)).ToList();
        var mismatched = new List<string>();
        string? firstMismatch = null;
        foreach (var (name, shape) in expected.OrderBy(p => p.Key, StringComparer.Ordinal))
        {
            if (!checkpoint.Contains(name)) continue;
            var entry = checkpoint.Entry(name);
            if (!entry.Shape.SequenceEqual(shape ?? throw new ArgumentException($"expected shape of '{name}' is null", nameof(expected))))
            {
                firstMismatch ??= name;
                mismatched.Add($"{name} is {entry.ShapeText} in {System.IO.Path.GetFileName(entry.File)}, expected {SafeTensorsEntry.FormatShape(shape)}");
            }
        }
        // Weights are floating point: an integer or boolean tensor under a weight's name is not a weight, whatever its shape.
        foreach (var name in expected.Keys.Order(StringComparer.Ordinal))
            if (checkpoint.Contains(name) && checkpoint.Entry(name) is { } e
                && e.ScalarType is not (ScalarType.Float32 or ScalarType.BFloat16 or ScalarType.Float16 or ScalarType.Float64))
                throw new CheckpointException(e.File, name, $"is stored as {e.DType}; a weight must be F32, BF16, F16 or F64");
        if (missing.Count + unexpected.Count + mismatched.Count == 0)
            return;
        var parts = new List<string>();
        if (missing.Count > 0) parts.Add($"{missing.Count} missing: {List(missing)}");
        if (unexpected.Count > 0) parts.Add($"{unexpected.Count} unexpected: {List(unexpected)}");
        if (mismatched.Count > 0) parts.Add($"{mismatched.Count} with another shape: {List(mismatched)}");
        var first = missing.FirstOrDefault() ?? unexpected.FirstOrDefault() ?? firstMismatch;
        throw new CheckpointException(checkpoint.Path, first,
            $"the checkpoint's {checkpoint.Names.Count} tensors do not match the {expected.Count} expected parameters — {string.Join("; ", parts)}");
    }

    static string List(List<string> items) =>
        string.Join(", ", items.Take(NamesShown)) + (items.Count > NamesShown ? $", … ({items.Count - NamesShown} more)" : "");

    /// <summary>
    /// Loads the expected parameters (names and shapes checked first, <see cref="Check"/>), in their stored dtype
    /// on the CPU or as <paramref name="dtype"/> on <paramref name="device"/>. All or nothing; the caller disposes.
    /// </summary>
    public static Dictionary<string, Tensor> Load(string directory, IReadOnlyDictionary<string, long[]> expected,
        IEnumerable<string>? ignore = null, Device? device = null, ScalarType? dtype = null)
    {
        var checkpoint = OpenTensors(directory);
        Check(checkpoint, expected, ignore);
        return checkpoint.Load(expected.Keys.Order(StringComparer.Ordinal), device, dtype);
    }

    /// <summary>
    /// Copies the checkpoint into existing tensors (a model's named parameters), converting dtype and device as
    /// needed: every name and shape is checked before the first byte is copied (<see cref="Check"/>).
    /// </summary>
    public static void LoadInto(string directory, IReadOnlyDictionary<string, Tensor> parameters, IEnumerable<string>? ignore = null)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        foreach (var (name, tensor) in parameters)
            ArgumentNullException.ThrowIfNull(tensor, $"parameters[{name}]");
        var checkpoint = OpenTensors(directory);
        Check(checkpoint, parameters.ToDictionary(p => p.Key, p => p.Value.shape, StringComparer.Ordinal), ignore);
        checkpoint.LoadInto(parameters);
        CheckFinite(checkpoint, parameters);
    }

    /// <summary>
    /// Refuses weights holding NaN or ±∞ (a corrupted or diverged checkpoint), naming the tensor: sampling from them
    /// would fail later inside libtorch with a message that names nothing.
    /// </summary>
    static void CheckFinite(ITensorCheckpoint checkpoint, IReadOnlyDictionary<string, Tensor> parameters)
    {
        using var _ = no_grad();
        foreach (var (name, tensor) in parameters.OrderBy(p => p.Key, StringComparer.Ordinal))
        {
            using var finite = tensor.isfinite().all();
            if (!finite.item<bool>())
                throw new CheckpointException(checkpoint.Contains(name) ? checkpoint.Entry(name).File : checkpoint.Path, name, "holds NaN or infinite values");
        }
    }

    /// <summary>
    /// Loads a Qwen3 directory as transformers would: its config, then exactly the parameters that config implies
    /// (<see cref="Qwen3Parameters"/>; a stored lm_head.weight is ignored when the embeddings are tied).
    /// </summary>
    public static (Qwen3Config Config, Dictionary<string, Tensor> Parameters) LoadQwen3(string directory, Device? device = null, ScalarType? dtype = null)
    {
        var config = ReadConfig(directory);
        return (config, Load(directory, Qwen3Parameters.Shapes(config), Qwen3Parameters.Ignored(config), device, dtype));
    }

    /// <summary>
    /// Writes config.json and the tensors: one model.safetensors when their data fits in
    /// <paramref name="maxShardBytes"/>, else HF-named shards and an index. Each file is written atomically, and
    /// the other form's files left by an earlier save (model.safetensors, the index, surplus shards) are removed,
    /// so the directory holds one checkpoint. Returns the file names written.
    /// </summary>
    public static IReadOnlyList<string> Save(string directory, Qwen3Config config, IReadOnlyDictionary<string, Tensor> tensors,
        long maxShardBytes = DefaultMaxShardBytes)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(tensors);
        if (maxShardBytes < 1)
            throw new ArgumentException($"maxShardBytes must be ≥ 1, got {maxShardBytes}", nameof(maxShardBytes));
        config.Validate();
        Directory.CreateDirectory(directory);
        var written = new List<string>();
        long total = tensors.Values.Sum(t => t is null ? 0 : SafeTensors.ByteCount(t));
        if (total <= maxShardBytes)
        {
            DeleteIfExists(directory, IndexFileName);
            SafeTensors.Save(System.IO.Path.Combine(directory, SingleFileName), tensors);
            written.Add(SingleFileName);
        }
        else
        {
            written.AddRange(ShardedSafeTensors.Save(directory, tensors, maxShardBytes));
            DeleteIfExists(directory, SingleFileName);
        }
        foreach (var stale in Directory.EnumerateFiles(directory).Select(System.IO.Path.GetFileName))
            if (stale is not null && ShardPattern.IsMatch(stale) && !written.Contains(stale))
                File.Delete(System.IO.Path.Combine(directory, stale));
        config.Save(System.IO.Path.Combine(directory, ConfigFileName));
        written.Add(ConfigFileName);
        return written;
    }

    static void DeleteIfExists(string directory, string file)
    {
        var path = System.IO.Path.Combine(directory, file);
        if (File.Exists(path)) File.Delete(path);
    }
}
