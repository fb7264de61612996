using Trd.Runtime.Checkpoints;
using Trd.Runtime.Models;
using Trd.Runtime.Tokenization;
using TorchSharp;
using static TorchSharp.torch;

namespace Trd.Runtime.Pipeline;

/// <summary>A model with its tokenizer, loaded from a Hugging Face directory.</summary>
/// <param name="Directory">Where it was loaded from.</param>
/// <param name="Model">The weights.</param>
/// <param name="Tokenizer">Its tokenizer.</param>
public sealed record LoadedModel(string Directory, Qwen3ForCausalLM Model, ITokenizer Tokenizer);

/// <summary>Turns <see cref="ModelSpec"/>s into model directories and loads them.</summary>
public static class ModelStore
{
    /// <summary>
    /// The directory of a spec: its <see cref="ModelSpec.Path"/>, or for a random spec <c>runDirectory/models/name</c>,
    /// written on first use (config.json, model.safetensors, tokenizer.json and the tokenizer's chat_template.jinja and
    /// tokenizer_config.json where it has them) and reused after — the same spec and seed
    /// always give the same weights, so a resumed run finds what it started with.
    /// </summary>
    public static string Materialise(ModelSpec spec, string runDirectory, string name)
    {
        if (spec.Path is { } path)
        {
            if (!File.Exists(Path.Combine(path, "config.json")))
                throw new ConfigException($"{name}.path: '{path}' holds no config.json (expected a Hugging Face model directory)");
            return path;
        }
        if (spec.Gym is { } gym)
            return Gym.GymModels.Ensure(gym == "teacher" ? Gym.GymModels.Teacher : Gym.GymModels.Student, Gym.GymModels.DefaultCacheRoot());
        var random = spec.Random ?? throw new ConfigException($"{name}: give 'path', 'random' or 'gym'");
        var directory = Path.Combine(runDirectory, "models", name);
        if (File.Exists(Path.Combine(directory, "config.json"))) return directory;

        Directory.CreateDirectory(Path.GetDirectoryName(directory)!);
        AtomicFile.WriteDirectory(directory, temporary =>
        {
            if (spec.Tokenizer == "small") SmallTokenizer.Write(temporary);
            else
            {
                var source = Path.Combine(spec.Tokenizer!, "tokenizer.json");
                if (!File.Exists(source)) throw new ConfigException($"{name}.tokenizer: '{spec.Tokenizer}' holds no tokenizer.json");
                File.Copy(source, Path.Combine(temporary, "tokenizer.json"));
                // The chat template travels with the tokenizer (Tokenization.ChatTemplateFile reads it from these).
                foreach (var file in new[] { ChatTemplateFile.JinjaFileName, ChatTemplateFile.ConfigFileName })
                    if (File.Exists(Path.Combine(spec.Tokenizer!, file))) File.Copy(Path.Combine(spec.Tokenizer!, file), Path.Combine(temporary, file));
            }
            var tokenizer = Qwen3Tokenizer.FromDirectory(temporary);
            var config = random.Shape(tokenizer.VocabularySize, [tokenizer.EndOfTurnId, tokenizer.EndOfTextId]);
            using var model = new Qwen3ForCausalLM(config, CPU, ScalarType.Float32);
            model.InitialiseRandom(random.Seed, random.Std);
            Qwen3Checkpoint.Save(model, temporary);
        });
        return directory;
    }

    static readonly Dictionary<(string Directory, string Device, ScalarType Dtype), LoadedModel> Frozen = [];
    static readonly Lock FrozenGate = new();

    /// <summary>
    /// A frozen model (eval mode, no gradients), loaded once per process and shared by every pipeline that asks for the
    /// same directory, device and dtype: a teacher that teaches five methods over three seeds is read from disk once.
    /// Callers must not modify or dispose it; it lives as long as the process.
    /// </summary>
    public static LoadedModel LoadFrozen(string directory, Device device, ScalarType? dtype = null)
    {
        var key = (Path.GetFullPath(directory), device.ToString(), Resolve(device, dtype));
        lock (FrozenGate)
        {
            if (Frozen.TryGetValue(key, out var loaded)) return loaded;
            loaded = Load(directory, device, dtype);
            loaded.Model.eval();
            foreach (var p in loaded.Model.parameters()) p.requires_grad = false;
            Frozen[key] = loaded;
            return loaded;
        }
    }

    static ScalarType Resolve(Device device, ScalarType? dtype) =>
        dtype ?? (Devices.PrefersBFloat16(device) ? ScalarType.BFloat16 : ScalarType.Float32);

    /// <summary>Loads a model directory on a device, float32 unless the spec or the device asks for bfloat16.</summary>
    public static LoadedModel Load(string directory, Device device, ScalarType? dtype = null)
    {
        var scalar = Resolve(device, dtype);
        if (scalar is not (ScalarType.BFloat16 or ScalarType.Float32))
            throw new ConfigException($"{directory}: dtype {scalar}: expected Float32 or BFloat16");
        var model = Qwen3Checkpoint.Load(directory, device, scalar);
        var tokenizer = Qwen3Tokenizer.FromDirectory(directory);
        if (tokenizer.VocabularySize > model.Config.VocabSize)
            throw new ConfigException($"{directory}: the tokenizer has {tokenizer.VocabularySize} ids but the model's vocabulary is {model.Config.VocabSize}");
        return new LoadedModel(directory, model, tokenizer);
    }
}
