using Trd.Runtime.Checkpoints;
using TorchSharp;
using static TorchSharp.torch;

namespace Trd.Runtime.Models;

/// <summary>Loading and saving a <see cref="Qwen3ForCausalLM"/> as a Hugging Face model directory.</summary>
public static class Qwen3Checkpoint
{
    /// <summary>
    /// Builds the model a directory's config.json describes and loads its safetensors (single file or sharded)
    /// into it. Every name and shape is checked before any data is read; a tied checkpoint's stray lm_head.weight
    /// is ignored as transformers ignores it. dtype defaults to the config's torch_dtype; device to the CPU.
    /// </summary>
    public static Qwen3ForCausalLM Load(string directory, Device? device = null, ScalarType? dtype = null)
    {
        var config = CheckpointDirectory.ReadConfig(directory);
        var model = new Qwen3ForCausalLM(config, device ?? CPU, dtype ?? config.TorchDtype);
        try
        {
            CheckpointDirectory.LoadInto(directory, BaseParameters(model), Qwen3Parameters.Ignored(config));
        }
        catch
        {
            model.Dispose();
            throw;
        }
        model.eval();
        return model;
    }

    /// <summary>
    /// Writes config.json and the base weights (adapters excluded: save them with <c>PeftAdapter.Save</c>, or merge
    /// them first) as model.safetensors, or as HF-named shards with an index above <paramref name="maxShardBytes"/>.
    /// </summary>
    public static IReadOnlyList<string> Save(Qwen3ForCausalLM model, string directory, long maxShardBytes = CheckpointDirectory.DefaultMaxShardBytes) =>
        CheckpointDirectory.Save(directory, model.Config with { TorchDtype = model.OutputWeight.dtype }, BaseParameters(model), maxShardBytes);

    /// <summary>The model's own weights by Hugging Face name, without LoRA factors.</summary>
    public static Dictionary<string, Tensor> BaseParameters(Qwen3ForCausalLM model) =>
        model.named_parameters()
            .Where(p => !p.name.Contains(".lora_A.", StringComparison.Ordinal) && !p.name.Contains(".lora_B.", StringComparison.Ordinal))
            .ToDictionary(p => p.name, p => (Tensor)p.parameter, StringComparer.Ordinal);
}
