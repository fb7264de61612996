using System.Runtime.InteropServices;
using Trd.Runtime.Checkpoints;
using Trd.Runtime.Lora;
using Trd.Runtime.Tokenization;
using TorchSharp;
using static TorchSharp.torch;

namespace Trd.Runtime.Export;

/// <summary>What an export wrote: the file, its size, its tensors and where the chat template came from.</summary>
public sealed record GgufExportSummary(string Path, long Bytes, GgufDType DType, int Tensors, int Float16Fallbacks,
    int Vocabulary, int TokenizerTokens, string? ChatTemplateSource, int MergedAdapters);

/// <summary>
/// Writes a Qwen3 checkpoint directory (config.json, safetensors, tokenizer.json, optional tokenizer_config.json or
/// chat_template.jinja — a template Trd knows, see <see cref="ChatTemplateFile"/>; a directory without one gets
/// Qwen3's original, the template Trd prompts it with) as one GGUF file llama.cpp loads with its <c>qwen3</c> architecture, optionally with a PEFT
/// LoRA adapter merged into the weights (W + (α/r)·B·A, in float32).
/// <para>
/// Keys and names follow llama.cpp's converter (convert_hf_to_gguf.py, class Qwen3Model, and gguf-py's
/// constants): <c>qwen3.*</c> hyper-parameters; tensors <c>token_embd</c>, <c>blk.N.attn_norm</c>,
/// <c>attn_q/k/v/output</c>, <c>attn_q_norm/attn_k_norm</c>, <c>ffn_norm</c>, <c>ffn_gate/up/down</c>,
/// <c>output_norm</c> and <c>output</c> (absent when the embeddings are tied: llama.cpp reuses token_embd).
/// Vectors stay float32; matrices take the chosen dtype (a Q8_0 matrix whose rows are not whole blocks of 32 is
/// written float16, as the converter falls back).
/// </para>
/// <para>
/// Everything is validated before a byte is written (the config, the tensors' names and shapes, the tokenizer, the
/// adapter's keys and shapes); the file is then written tensor by tensor, each read in its stored dtype and
/// converted in slices of rows, into a temporary file renamed over the target at the end — an 8B model needs one
/// tensor in memory, not the model, and a failed export leaves no file.
/// </para>
/// </summary>
public static class Qwen3Gguf
{
    const long SliceElements = 1 << 22;   // rows converted at a time: ≤ 4M elements (16 MB of float32)

    /// <summary>
    /// Exports <paramref name="modelDirectory"/> (with <paramref name="adapterDirectory"/> merged, when given) to
    /// <paramref name="outputPath"/>. The tokenizer files (tokenizer.json, tokenizer_config.json, chat_template.jinja)
    /// are read from <paramref name="tokenizerDirectory"/> when given — a training checkpoint's model directory holds
    /// weights and config only — else from the model directory.
    /// </summary>
    public static GgufExportSummary Export(string modelDirectory, string outputPath, GgufDType dtype = GgufDType.F32,
        string? adapterDirectory = null, string? name = null, string? tokenizerDirectory = null)
    {
        var plan = Plan(modelDirectory, dtype, adapterDirectory, name, tokenizerDirectory ?? modelDirectory);
        AtomicFile.Write(outputPath, stream => GgufWriter.Write(stream, plan.Metadata, plan.Tensors, (i, s) => WriteTensor(plan, i, s)));
        return plan.Summary(outputPath, new FileInfo(outputPath).Length);
    }

    /// <summary>A validated export: metadata and tensor infos, and where each tensor's data comes from.</summary>
    sealed record ExportPlan(
        IReadOnlyList<KeyValuePair<string, GgufValue>> Metadata, IReadOnlyList<GgufTensorInfo> Tensors, string[] Sources,
        ITensorCheckpoint Checkpoint, Adapter? Lora, GgufDType DType, int Fallbacks, int Vocabulary, int TokenizerTokens, string? TemplateSource)
    {
        public GgufExportSummary Summary(string path, long bytes) =>
            new(path, bytes, DType, Tensors.Count, Fallbacks, Vocabulary, TokenizerTokens, TemplateSource, Lora?.Targets.Count ?? 0);
    }

    /// <summary>A LoRA adapter's weights for merging: target weight name → (A key, B key), and the scaling α/r.</summary>
    sealed record Adapter(ITensorCheckpoint File, IReadOnlyDictionary<string, (string A, string B)> Targets, double Scaling);

    static ExportPlan Plan(string modelDirectory, GgufDType dtype, string? adapterDirectory, string? name, string tokenizerDirectory)
    {
        var config = CheckpointDirectory.ReadConfig(modelDirectory);   // a non-Qwen3 config is an error naming the field
        var configPath = Path.Combine(modelDirectory, CheckpointDirectory.ConfigFileName);
        if (config.AttentionBias)
            throw new CheckpointException(configPath, null, "attention_bias is true; llama.cpp's qwen3 architecture has no attention biases, so the export would drop them");
        var checkpoint = CheckpointDirectory.OpenTensors(modelDirectory);
        var shapes = Qwen3Parameters.Shapes(config);
        CheckpointDirectory.Check(checkpoint, shapes, Qwen3Parameters.Ignored(config));
        var tokenizer = Qwen3GgufTokenizer.Read(tokenizerDirectory, config);
        string template, templateSource;
        if (ChatTemplateFile.ReadText(tokenizerDirectory) is { } found)
        {
            ChatTemplateFile.Recognise(found.Text, found.Path, found.Field);   // a template Trd does not know is refused, as everywhere else
            (template, templateSource) = (found.Text, found.Path);
        }
        else
            (template, templateSource) = (KnownChatTemplates.All.First(t => t.Kind == ChatTemplateKind.Qwen3).Text,
                "Qwen3's original template (the directory has none; Trd prompts such a model with it)");
        var lora = adapterDirectory is null ? null : ReadAdapter(adapterDirectory, config, shapes);

        var tensors = new List<GgufTensorInfo>();
        var sources = new List<string>();
        var fallbacks = 0;
        foreach (var (source, shape) in Qwen3Parameters.Ordered(config))
        {
            var dims = shape.Reverse().ToArray();   // ggml order: ne[0] fastest
            var type = GgmlType.F32;
            if (shape.Length == 2)
            {
                type = GgufDTypes.MatrixType(dtype);
                if (type == GgmlType.Q8_0 && dims[0] % 32 != 0) { type = GgmlType.F16; fallbacks++; }
            }
            tensors.Add(new GgufTensorInfo(TensorName(source), dims, type));
            sources.Add(source);
        }

        var metadata = new List<KeyValuePair<string, GgufValue>>
        {
            new("general.architecture", GgufValue.String("qwen3")),
            new("general.type", GgufValue.String("model")),
            new("general.name", GgufValue.String(name ?? Path.GetFileName(Path.GetFullPath(modelDirectory).TrimEnd(Path.DirectorySeparatorChar)))),
            new("general.file_type", GgufValue.UInt32(GgufDTypes.FileType(dtype))),
            new("general.quantization_version", GgufValue.UInt32(2)),
            new("qwen3.context_length", GgufValue.UInt32((uint)config.MaxPositionEmbeddings)),
            new("qwen3.embedding_length", GgufValue.UInt32((uint)config.HiddenSize)),
            new("qwen3.feed_forward_length", GgufValue.UInt32((uint)config.IntermediateSize)),
            new("qwen3.block_count", GgufValue.UInt32((uint)config.NumHiddenLayers)),
            new("qwen3.attention.head_count", GgufValue.UInt32((uint)config.NumAttentionHeads)),
            new("qwen3.attention.head_count_kv", GgufValue.UInt32((uint)config.NumKeyValueHeads)),
            new("qwen3.attention.key_length", GgufValue.UInt32((uint)config.HeadDim)),
            new("qwen3.attention.value_length", GgufValue.UInt32((uint)config.HeadDim)),
            new("qwen3.rope.dimension_count", GgufValue.UInt32((uint)config.HeadDim)),
            new("qwen3.rope.freq_base", GgufValue.Float32((float)config.RopeTheta)),
            new("qwen3.attention.layer_norm_rms_epsilon", GgufValue.Float32((float)config.RmsNormEps)),
        };
        metadata.AddRange(tokenizer.Metadata());
        metadata.Add(new("tokenizer.chat_template", GgufValue.String(template)));
        var used = tokenizer.TokenTypes.Count(t => t != (int)GgufTokenType.Unused);
        return new ExportPlan(metadata, tensors, sources.ToArray(), checkpoint, lora, dtype, fallbacks, config.VocabSize, used, templateSource);
    }

    /// <summary>llama.cpp's name for a Hugging Face Qwen3 parameter.</summary>
    public static string TensorName(string source)
    {
        switch (source)
        {
            case Qwen3Parameters.EmbedTokens: return "token_embd.weight";
            case Qwen3Parameters.FinalNorm: return "output_norm.weight";
            case Qwen3Parameters.LmHead: return "output.weight";
        }
        const string layers = "model.layers.";
        if (!source.StartsWith(layers, StringComparison.Ordinal)) throw new ArgumentException($"no GGUF name for '{source}'", nameof(source));
        var dot = source.IndexOf('.', layers.Length);
        var layer = source[layers.Length..dot];
        var rest = source[(dot + 1)..] switch
        {
            "input_layernorm.weight" => "attn_norm.weight",
            "self_attn.q_proj.weight" => "attn_q.weight",
            "self_attn.k_proj.weight" => "attn_k.weight",
            "self_attn.v_proj.weight" => "attn_v.weight",
            "self_attn.o_proj.weight" => "attn_output.weight",
            "self_attn.q_norm.weight" => "attn_q_norm.weight",
            "self_attn.k_norm.weight" => "attn_k_norm.weight",
            "post_attention_layernorm.weight" => "ffn_norm.weight",
            "mlp.gate_proj.weight" => "ffn_gate.weight",
            "mlp.up_proj.weight" => "ffn_up.weight",
            "mlp.down_proj.weight" => "ffn_down.weight",
            var other => throw new ArgumentException($"no GGUF name for '{source}' ({other})", nameof(source)),
        };
        return $"blk.{layer}.{rest}";
    }

    /// <summary>Reads and checks a PEFT LoRA adapter against the base's parameter shapes: every key present, none extra, every shape right.</summary>
    static Adapter ReadAdapter(string directory, Qwen3Config config, IReadOnlyDictionary<string, long[]> shapes)
    {
        var settings = PeftAdapter.ReadConfig(Path.Combine(directory, PeftAdapter.ConfigFileName));
        var weightsPath = Path.Combine(directory, PeftAdapter.WeightsFileName);
        if (!File.Exists(weightsPath)) throw new CheckpointException(weightsPath, null, "the adapter weights file is missing");
        var file = SafeTensors.Open(weightsPath);
        var targets = new Dictionary<string, (string A, string B)>(StringComparer.Ordinal);
        foreach (var (weight, shape) in shapes)
        {
            if (shape.Length != 2 || !weight.StartsWith("model.layers.", StringComparison.Ordinal)) continue;
            var module = weight[..^".weight".Length];
            if (!settings.TargetModules.Contains(module[(module.LastIndexOf('.') + 1)..])) continue;
            targets[weight] = PeftAdapter.Keys(module);
        }
        var expected = targets.Values.SelectMany(t => new[] { t.A, t.B }).ToHashSet(StringComparer.Ordinal);
        var missing = expected.Where(k => !file.Contains(k)).Order(StringComparer.Ordinal).ToList();
        var unexpected = file.Names.Where(k => !expected.Contains(k)).Order(StringComparer.Ordinal).ToList();
        if (missing.Count > 0 || unexpected.Count > 0)
            throw new CheckpointException(weightsPath, missing.Concat(unexpected).First(),
                $"the adapter does not fit this base ({config.NumHiddenLayers} layers, target_modules {string.Join(", ", settings.TargetModules)}): " +
                $"missing [{Short(missing)}], unexpected [{Short(unexpected)}]");
        foreach (var (weight, (a, b)) in targets)
        {
            var shape = shapes[weight];   // [out, in]
            long[] wantA = [settings.Rank, shape[1]], wantB = [shape[0], settings.Rank];
            if (!file.Entry(a).Shape.SequenceEqual(wantA) || !file.Entry(b).Shape.SequenceEqual(wantB))
                throw new CheckpointException(weightsPath, a,
                    $"lora_A {file.Entry(a).ShapeText} and lora_B {file.Entry(b).ShapeText} do not fit {weight} [{shape[0]}, {shape[1]}] at rank {settings.Rank} (expected [{wantA[0]}, {wantA[1]}] and [{wantB[0]}, {wantB[1]}]): an adapter for another base?");
        }
        return new Adapter(file, targets, settings.Alpha / settings.Rank);
    }

    static string Short(List<string> keys) => keys.Count <= 3 ? string.Join(", ", keys) : $"{string.Join(", ", keys.Take(3))}, … {keys.Count} in all";

    /// <summary>Writes tensor <paramref name="index"/>'s data: its rows in slices, each converted to float32, merged, encoded.</summary>
    static void WriteTensor(ExportPlan plan, int index, Stream output)
    {
        var info = plan.Tensors[index];
        var source = plan.Sources[index];
        using var stored = plan.Checkpoint.Load(source);                                       // [out, in] or [n], stored dtype
        var rows = info.Dimensions.Length == 2 ? info.Dimensions[1] : 1;
        var width = info.Dimensions[0];
        var flat = stored.reshape(rows, width);                                                 // [rows, width]
        Tensor? a = null, b = null;
        if (plan.Lora is { } lora && lora.Targets.TryGetValue(source, out var keys))
        {
            a = lora.File.Load(keys.A, dtype: ScalarType.Float32);                              // [r, in]
            b = lora.File.Load(keys.B, dtype: ScalarType.Float32);                              // [out, r]
        }
        try
        {
            var step = Math.Max(1, SliceElements / width);
            var buffer = Array.Empty<byte>();
            for (long r0 = 0; r0 < rows; r0 += step)
            {
                using var scope = NewDisposeScope();
                var n = Math.Min(step, rows - r0);
                var slice = flat.narrow(0, r0, n).to(ScalarType.Float32);                      // [n, width]
                if (a is not null && b is not null)
                {
                    using var scaling = plan.Lora!.Scaling.ToScalar();
                    slice = slice.add(b.narrow(0, r0, n).matmul(a), scaling);                  // + (α/r)·B[rows]·A
                }
                var values = slice.contiguous().data<float>().ToArray();
                var bytes = (int)GgmlTypes.RowBytes(info.Type, width) * (int)n;
                if (buffer.Length < bytes) buffer = new byte[bytes];
                GgmlQuant.Encode(values, info.Type, buffer.AsSpan(0, bytes));   // rows are whole blocks, so blocks never straddle rows
                output.Write(buffer, 0, bytes);
            }
        }
        finally
        {
            a?.Dispose();
            b?.Dispose();
            flat.Dispose();
        }
    }
}
