using System.Text.Json;
using System.Text.Json.Serialization;
using Trd.Runtime.Checkpoints;
using Trd.Runtime.Lora;
using Trd.Runtime.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Trd.Runtime.Training;

/// <summary>Where a run stands after an optimiser step: what a resumed run needs beside the weights and the moments.</summary>
public sealed record TrainerState
{
    /// <summary>Optimiser steps completed.</summary>
    [JsonPropertyName("step")] public long Step { get; init; }
    /// <summary>Optimiser steps the run takes in all.</summary>
    [JsonPropertyName("total_steps")] public long TotalSteps { get; init; }
    /// <summary>The run's seed.</summary>
    [JsonPropertyName("seed")] public long Seed { get; init; }
    /// <summary>Data position: examples consumed so far (across epochs).</summary>
    [JsonPropertyName("examples_seen")] public long ExamplesSeen { get; init; }
    /// <summary>A fingerprint of the training examples (ids and lengths): resuming on other data is an error.</summary>
    [JsonPropertyName("data_fingerprint")] public string DataFingerprint { get; init; } = "";
    /// <summary>The learning-rate schedule's parameters (peak, warmup steps, floor ratio).</summary>
    [JsonPropertyName("schedule")] public ScheduleState Schedule { get; init; } = new();
    /// <summary>"lora" or "full".</summary>
    [JsonPropertyName("weights")] public string Weights { get; init; } = "lora";
}

/// <summary>The schedule's parameters as recorded in a checkpoint.</summary>
public sealed record ScheduleState
{
    /// <summary>Peak learning rate.</summary>
    [JsonPropertyName("peak")] public double Peak { get; init; }
    /// <summary>Linear-warmup steps.</summary>
    [JsonPropertyName("warmup_steps")] public int WarmupSteps { get; init; }
    /// <summary>Floor as a share of the peak.</summary>
    [JsonPropertyName("floor_ratio")] public double FloorRatio { get; init; }
}

/// <summary>
/// Trainer checkpoints: <c>checkpoints/step-NNNNNN/</c> holding the adapters (PEFT format, <c>adapter/</c>) or the
/// full weights (<c>model/</c>, Hugging Face format), <c>optimizer.safetensors</c> and <c>trainer_state.json</c>.
/// A checkpoint is written into a temporary directory, every file flushed to disk, then renamed into place, and
/// <c>checkpoints/latest</c> is rewritten atomically after: a kill at any moment leaves the previous checkpoint
/// readable, and a half-written directory is never read back (its name does not match).
/// </summary>
public static class TrainerCheckpoint
{
    /// <summary>The file naming the newest complete checkpoint.</summary>
    public const string LatestFileName = "latest";
    /// <summary>The state file inside a checkpoint.</summary>
    public const string StateFileName = "trainer_state.json";
    /// <summary>The optimiser file inside a checkpoint.</summary>
    public const string OptimizerFileName = "optimizer.safetensors";

    /// <summary>A checkpoint's copy of the metrics log up to its step.</summary>
    public const string MetricsFileName = "metrics.jsonl";

    /// <summary>The folder of a checkpoint holding its LoRA adapters in PEFT's format (absent for full fine-tuning).</summary>
    public const string AdapterFolder = "adapter";

    static readonly JsonSerializerOptions Json = new() { WriteIndented = true };

    /// <summary>The directory name of the checkpoint after <paramref name="step"/> steps.</summary>
    public static string Name(long step) => $"step-{step:D6}";

    /// <summary>
    /// Writes a checkpoint into <paramref name="root"/> and points <c>latest</c> at it; keeps the newest <paramref name="keep"/>.
    /// A LoRA adapter's <c>base_model_name_or_path</c> is <paramref name="baseModel"/> (empty when unknown).
    /// </summary>
    public static string Save(string root, Qwen3ForCausalLM student, LoraConfig? lora, AdamW optimiser, string? baseModel, TrainerState state, int keep = 2, string? metricsLog = null)
    {
        Directory.CreateDirectory(root);
        var final = Path.Combine(root, Name(state.Step));
        AtomicFile.WriteDirectory(final, temporary =>
        {
            if (lora is not null) PeftAdapter.Save(student, lora, Path.Combine(temporary, AdapterFolder), baseModel ?? "");
            else Qwen3Checkpoint.Save(student, Path.Combine(temporary, "model"));
            optimiser.Save(Path.Combine(temporary, OptimizerFileName));
            File.WriteAllBytes(Path.Combine(temporary, StateFileName), JsonSerializer.SerializeToUtf8Bytes(state, Json));
            // The log up to this step (its records are flushed line by line): what a resume restores.
            if (metricsLog is not null && File.Exists(metricsLog))
            {
                using var source = new FileStream(metricsLog, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
                using var copy = File.Create(Path.Combine(temporary, MetricsFileName));
                source.CopyTo(copy);
            }
        }, install: temporary =>
        {
            if (Directory.Exists(final)) Directory.Delete(final, recursive: true);   // a step redone after a resume
            Directory.Move(temporary, final);
        });
        AtomicFile.Write(Path.Combine(root, LatestFileName), s => s.Write(System.Text.Encoding.UTF8.GetBytes(Name(state.Step) + "\n")));
        foreach (var old in Directory.EnumerateDirectories(root, "step-*").Order(StringComparer.Ordinal).SkipLast(keep))
            if (!string.Equals(old, final, StringComparison.Ordinal)) Directory.Delete(old, recursive: true);
        foreach (var stale in Directory.EnumerateDirectories(root, ".step-*.tmp")) Directory.Delete(stale, recursive: true);
        return final;
    }

    /// <summary>The newest complete checkpoint under <paramref name="root"/>, or null when there is none.</summary>
    public static string? Latest(string root)
    {
        var pointer = Path.Combine(root, LatestFileName);
        if (!File.Exists(pointer)) return null;
        var name = File.ReadAllText(pointer).Trim();
        var directory = Path.Combine(root, name);
        if (!File.Exists(Path.Combine(directory, StateFileName)))
            throw new CheckpointException(pointer, null, $"points at '{name}', which has no {StateFileName}");
        return directory;
    }

    /// <summary>Reads a checkpoint's state.</summary>
    public static TrainerState ReadState(string directory)
    {
        var path = Path.Combine(directory, StateFileName);
        TrainerState state;
        try { state = JsonSerializer.Deserialize<TrainerState>(File.ReadAllBytes(path), Json) ?? throw new CheckpointException(path, null, "empty state"); }
        catch (JsonException e) { throw new CheckpointException(path, null, Trd.Runtime.Data.JsonErrors.Describe(e)); }
        if (state.TotalSteps < 1) throw new CheckpointException(path, null, $"total_steps: must be ≥ 1, got {state.TotalSteps}");
        if (state.Step < 1 || state.Step > state.TotalSteps) throw new CheckpointException(path, null, $"step: must lie in [1, total_steps = {state.TotalSteps}], got {state.Step}");
        if (state.ExamplesSeen < 0) throw new CheckpointException(path, null, $"examples_seen: must be ≥ 0, got {state.ExamplesSeen}");
        return state;
    }

    /// <summary>Loads a checkpoint's weights into the student (attaching its adapters when it holds LoRA) and its moments into the optimiser.</summary>
    public static void LoadWeights(string directory, Qwen3ForCausalLM student)
    {
        var adapter = Path.Combine(directory, AdapterFolder);
        if (Directory.Exists(adapter)) PeftAdapter.Load(student, adapter);
        else
            using (no_grad())
                CheckpointDirectory.LoadInto(Path.Combine(directory, "model"), Qwen3Checkpoint.BaseParameters(student));
    }
}
