using System.Text.Json;
using System.Text.Json.Nodes;
using Trd.Runtime.Checkpoints;
using Trd.Runtime.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Trd.Runtime.Lora;

/// <summary>
/// LoRA adapters on a <see cref="Qwen3ForCausalLM"/>, attached in code or read from and written to PEFT's
/// format: <c>adapter_config.json</c> and <c>adapter_model.safetensors</c> with keys such as
/// <c>base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight</c>, so adapters trained here load in PEFT
/// and vLLM, and theirs load here.
/// </summary>
public static class PeftAdapter
{
    /// <summary>PEFT's adapter configuration file.</summary>
    public const string ConfigFileName = "adapter_config.json";

    /// <summary>PEFT's adapter weights file.</summary>
    public const string WeightsFileName = "adapter_model.safetensors";

    const string KeyPrefix = "base_model.model.";

    /// <summary>The adapter weights' keys for a module path (e.g. <c>model.layers.0.self_attn.q_proj</c>): PEFT's lora_A and lora_B.</summary>
    public static (string A, string B) Keys(string modulePath) =>
        ($"{KeyPrefix}{modulePath}.lora_A.weight", $"{KeyPrefix}{modulePath}.lora_B.weight");

    /// <summary>Attaches fresh adapters (B = 0: outputs unchanged) to every target projection; the base is frozen.</summary>
    public static void Attach(Qwen3ForCausalLM model, LoraConfig config, long seed = 0)
    {
        config.Validate();
        using var generator = new Generator((ulong)seed);
        foreach (var p in model.parameters()) p.requires_grad = false;
        foreach (var (path, layer) in Targets(model, config))
            layer.AttachAdapter(config.Rank, config.Alpha, config.Dropout, generator);
    }

    /// <summary>Folds every adapter into the base weights and removes them (evaluate or save a plain model after).</summary>
    public static void Merge(Qwen3ForCausalLM model)
    {
        foreach (var (_, layer) in model.LinearLayers())
            if (layer.HasAdapter) layer.MergeAdapter();
    }

    /// <summary>Writes the attached adapters in PEFT's format into <paramref name="directory"/>.</summary>
    public static void Save(Qwen3ForCausalLM model, LoraConfig config, string directory, string baseModel = "")
    {
        var tensors = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        foreach (var (path, layer) in model.LinearLayers())
        {
            if (layer.Adapter is not { } adapter) continue;
            var keys = Keys(path);
            tensors[keys.A] = adapter.A;
            tensors[keys.B] = adapter.B;
        }
        if (tensors.Count == 0) throw new InvalidOperationException("the model has no LoRA adapter to save");
        Directory.CreateDirectory(directory);
        var json = new JsonObject
        {
            ["peft_type"] = "LORA",
            ["task_type"] = "CAUSAL_LM",
            ["base_model_name_or_path"] = baseModel,
            ["r"] = config.Rank,
            ["lora_alpha"] = config.Alpha,
            ["lora_dropout"] = config.Dropout,
            ["target_modules"] = new JsonArray(config.TargetModules.Select(m => (JsonNode)m).ToArray()),
            ["bias"] = "none",
            ["fan_in_fan_out"] = false,
            ["inference_mode"] = true,
            ["init_lora_weights"] = true,
            ["modules_to_save"] = null,
            ["use_rslora"] = false,
            ["use_dora"] = false,
            ["rank_pattern"] = new JsonObject(),
            ["alpha_pattern"] = new JsonObject(),
        };
        var text = System.Text.Encoding.UTF8.GetBytes(json.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        AtomicFile.Write(Path.Combine(directory, ConfigFileName), stream => stream.Write(text));
        SafeTensors.Save(Path.Combine(directory, WeightsFileName), tensors, new Dictionary<string, string> { ["format"] = "pt" });
    }

    /// <summary>
    /// Reads a PEFT LoRA adapter directory and attaches it to the model. Settings the runtime does not implement
    /// (DoRA, rsLoRA, bias training, modules_to_save, per-module rank or alpha patterns, a regex target) are errors
    /// naming the field; a missing or unexpected weight, or one of the wrong shape, is an error naming the key.
    /// </summary>
    public static LoraConfig Load(Qwen3ForCausalLM model, string directory)
    {
        var configPath = Path.Combine(directory, ConfigFileName);
        var config = ReadConfig(configPath);
        var weightsPath = Path.Combine(directory, WeightsFileName);
        if (!File.Exists(weightsPath)) throw new CheckpointException(weightsPath, null, "the adapter weights file is missing");
        var file = SafeTensors.Open(weightsPath);
        foreach (var p in model.parameters()) p.requires_grad = false;   // the base is frozen, as Attach leaves it
        var targets = Targets(model, config).ToList();
        var expected = targets.SelectMany(t => { var keys = Keys(t.path); return new[] { keys.A, keys.B }; }).ToHashSet(StringComparer.Ordinal);
        var missing = expected.Where(k => !file.Contains(k)).Order(StringComparer.Ordinal).ToList();
        var unexpected = file.Names.Where(k => !expected.Contains(k)).Order(StringComparer.Ordinal).ToList();
        if (missing.Count > 0 || unexpected.Count > 0)
            throw new CheckpointException(weightsPath, missing.Concat(unexpected).FirstOrDefault(),
                $"adapter keys do not match the model and adapter_config.json: missing [{string.Join(", ", missing)}], unexpected [{string.Join(", ", unexpected)}]");
        using var generator = new Generator(0UL);
        foreach (var (path, layer) in targets)
        {
            layer.AttachAdapter(config.Rank, config.Alpha, config.Dropout, generator);
            var (a, b) = layer.Adapter!.Value;
            var keys = Keys(path);
            using (no_grad())
                file.LoadInto(new Dictionary<string, Tensor> { [keys.A] = a, [keys.B] = b });
        }
        return config;
    }

    static IEnumerable<(string path, LoraLinear layer)> Targets(Qwen3ForCausalLM model, LoraConfig config) =>
        model.LinearLayers().Where(t => config.TargetModules.Contains(t.path[(t.path.LastIndexOf('.') + 1)..]));

    /// <summary>Parses PEFT's adapter_config.json into the settings the runtime supports.</summary>
    public static LoraConfig ReadConfig(string path)
    {
        if (!File.Exists(path)) throw new CheckpointException(path, null, "the adapter configuration file is missing");
        JsonNode? root;
        try { root = JsonNode.Parse(File.ReadAllText(path)); }
        catch (JsonException e) { throw new CheckpointException(path, null, $"not valid JSON: {Trd.Runtime.Data.JsonErrors.Describe(e)}"); }
        if (root is not JsonObject o) throw new CheckpointException(path, null, "the adapter configuration is not a JSON object");
        string? Str(string key) => o[key]?.GetValueKind() == JsonValueKind.String ? o[key]!.GetValue<string>() : null;
        void Require(bool ok, string field, string why) { if (!ok) throw new CheckpointException(path, null, $"field '{field}': {why}"); }
        Require(Str("peft_type") == "LORA", "peft_type", $"only LORA adapters are supported, got '{o["peft_type"]}'");
        Require(o["r"]?.GetValueKind() == JsonValueKind.Number, "r", "missing or not a number");
        Require(o["lora_alpha"]?.GetValueKind() == JsonValueKind.Number, "lora_alpha", "missing or not a number");
        Require(o["target_modules"] is JsonArray, "target_modules", "must be a list of module names (a regex string is not supported)");
        Require(Str("bias") is null or "none", "bias", $"only 'none' is supported, got '{o["bias"]}'");
        Require(o["use_dora"]?.GetValue<bool>() != true, "use_dora", "DoRA is not supported");
        Require(o["use_rslora"]?.GetValue<bool>() != true, "use_rslora", "rsLoRA scaling is not supported");
        Require(o["fan_in_fan_out"]?.GetValue<bool>() != true, "fan_in_fan_out", "transposed (Conv1D-style) weights are not supported");
        Require(o["modules_to_save"] is null or JsonArray { Count: 0 }, "modules_to_save", "fully trained extra modules are not supported");
        Require(o["rank_pattern"] is null or JsonObject { Count: 0 }, "rank_pattern", "per-module ranks are not supported");
        Require(o["alpha_pattern"] is null or JsonObject { Count: 0 }, "alpha_pattern", "per-module alphas are not supported");
        var config = new LoraConfig
        {
            Rank = o["r"]!.GetValue<int>(),
            Alpha = o["lora_alpha"]!.GetValue<double>(),
            Dropout = o["lora_dropout"]?.GetValue<double>() ?? 0.0,
            TargetModules = ((JsonArray)o["target_modules"]!).Select(n => n!.GetValue<string>()).ToArray(),
        };
        try { config.Validate(); }
        catch (ArgumentException e) { throw new CheckpointException(path, null, e.Message); }
        return config;
    }
}
