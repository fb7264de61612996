using System.Text;
using System.Text.Json;
using static TorchSharp.torch;

namespace Trd.Runtime.Checkpoints;

/// <summary>
/// A Qwen3 model's shape, read from HF's <c>config.json</c> (transformers' <c>Qwen3Config</c>, model_type
/// <c>qwen3</c>, architecture <c>Qwen3ForCausalLM</c>) and written back in the same form.
/// <para>
/// Reading is strict where a silent default could build the wrong model: every size field, rope_theta,
/// rms_norm_eps, tie_word_embeddings and torch_dtype must be present (transformers would fill in Qwen3-8B's
/// defaults, e.g. head_dim = 128 — not hidden_size / num_attention_heads — for a config without one). Another
/// model type or architecture, an activation other than SiLU, RoPE scaling, sliding-window attention, a value of
/// the wrong kind and an inconsistent shape are errors naming the file and the field. Fields transformers
/// defaults harmlessly are optional: attention_bias (false), hidden_act (silu), bos/eos_token_id (none). A null
/// num_key_value_heads means num_attention_heads, as in transformers. transformers ≥ 5 writes <c>dtype</c> and
/// <c>rope_parameters.rope_theta</c>; both spellings are read.
/// </para>
/// </summary>
public sealed record Qwen3Config
{
    /// <summary>config.json's model_type.</summary>
    public const string ModelType = "qwen3";

    /// <summary>config.json's architectures[0]: a decoder with its LM head.</summary>
    public const string Architecture = "Qwen3ForCausalLM";

    /// <summary>vocab_size: rows of the embedding and of the LM head (151,936 for Qwen3).</summary>
    public required int VocabSize { get; init; }

    /// <summary>hidden_size: the residual stream's width.</summary>
    public required int HiddenSize { get; init; }

    /// <summary>intermediate_size: the SwiGLU MLP's inner width.</summary>
    public required int IntermediateSize { get; init; }

    /// <summary>num_hidden_layers: decoder layers.</summary>
    public required int NumHiddenLayers { get; init; }

    /// <summary>num_attention_heads: query heads.</summary>
    public required int NumAttentionHeads { get; init; }

    /// <summary>num_key_value_heads: key/value heads (grouped-query attention); divides num_attention_heads.</summary>
    public required int NumKeyValueHeads { get; init; }

    /// <summary>head_dim: per-head width (Qwen3: 128, independent of hidden_size / heads); even, for RoPE.</summary>
    public required int HeadDim { get; init; }

    /// <summary>rope_theta: RoPE base (Qwen3: 1,000,000).</summary>
    public required double RopeTheta { get; init; }

    /// <summary>rms_norm_eps: RMSNorm's ε (Qwen3: 1e-6).</summary>
    public required double RmsNormEps { get; init; }

    /// <summary>tie_word_embeddings: the LM head shares the embedding matrix (no lm_head.weight of its own).</summary>
    public required bool TieWordEmbeddings { get; init; }

    /// <summary>max_position_embeddings: the longest context the model was trained for.</summary>
    public required int MaxPositionEmbeddings { get; init; }

    /// <summary>torch_dtype: the dtype the weights were saved in (Float32, BFloat16 or Float16).</summary>
    public required ScalarType TorchDtype { get; init; }

    /// <summary>attention_bias: q/k/v/o projections carry biases (false for every released Qwen3).</summary>
    public bool AttentionBias { get; init; }

    /// <summary>bos_token_id, when the config names one.</summary>
    public long? BosTokenId { get; init; }

    /// <summary>eos_token_id: none, one, or several (HF allows a list).</summary>
    public IReadOnlyList<long> EosTokenIds { get; init; } = Array.Empty<long>();

    /// <summary>hidden_act: always SiLU for Qwen3 (the MLP is SwiGLU).</summary>
    public string HiddenAct => "silu";

    /// <summary>
    /// A tiny configuration for tests and examples: by default vocabulary 128, hidden 32, 2 layers, 4 query heads
    /// and 2 key/value heads of width 8, MLP width 64, float32, untied, no special tokens.
    /// </summary>
    public static Qwen3Config Tiny(int vocabSize = 128, int hiddenSize = 32, int numHiddenLayers = 2, int numAttentionHeads = 4,
        int numKeyValueHeads = 2, int headDim = 8, int intermediateSize = 64, bool tieWordEmbeddings = false,
        ScalarType torchDtype = ScalarType.Float32, double ropeTheta = 1_000_000, double rmsNormEps = 1e-6,
        int maxPositionEmbeddings = 256, bool attentionBias = false, long? bosTokenId = null, IReadOnlyList<long>? eosTokenIds = null)
    {
        var config = new Qwen3Config
        {
            VocabSize = vocabSize, HiddenSize = hiddenSize, IntermediateSize = intermediateSize, NumHiddenLayers = numHiddenLayers,
            NumAttentionHeads = numAttentionHeads, NumKeyValueHeads = numKeyValueHeads, HeadDim = headDim, RopeTheta = ropeTheta,
            RmsNormEps = rmsNormEps, TieWordEmbeddings = tieWordEmbeddings, MaxPositionEmbeddings = maxPositionEmbeddings,
            TorchDtype = torchDtype, AttentionBias = attentionBias, BosTokenId = bosTokenId, EosTokenIds = eosTokenIds?.ToArray() ?? [],
        };
        config.Validate();
        return config;
    }

    /// <summary>Checks the sizes are positive and consistent; an <see cref="ArgumentException"/> names the field.</summary>
    public void Validate()
    {
        if (Problem() is { } problem)
            throw new ArgumentException($"{problem.Field}: {problem.Text}", problem.Field);
    }

    /// <summary>
    /// The largest value Trd accepts for a size field: each well above every released Qwen3 (vocabulary 151,936, hidden
    /// 5,120, 64 layers, 40,960 positions) and far below what would overflow the tensor arithmetic.
    /// </summary>
    public static long Limit(string field) => field switch
    {
        "vocab_size" => 1 << 24, "max_position_embeddings" => 1 << 24, "intermediate_size" => 1 << 20,
        "hidden_size" => 1 << 17, "num_hidden_layers" => 1 << 10, "head_dim" => 1 << 12,
        _ => 1 << 10,
    };

    /// <summary>
    /// The number of weights of a model of this shape: embeddings (twice when untied), per layer the attention
    /// projections, q/k norms, the SwiGLU MLP and two RMSNorms, then the final norm. Exact for Trd's Qwen3.
    /// </summary>
    public long ParameterCount()
    {
        long v = VocabSize, h = HiddenSize, i = IntermediateSize, q = (long)NumAttentionHeads * HeadDim, kv = (long)NumKeyValueHeads * HeadDim;
        var layer = h * q + 2 * h * kv + q * h + (AttentionBias ? q + 2 * kv : 0) + 2 * HeadDim + 3 * h * i + 2 * h;
        return v * h * (TieWordEmbeddings ? 1 : 2) + NumHiddenLayers * layer + h;
    }

    (string Field, string Text)? Problem()
    {
        foreach (var (field, value) in new[]
                 {
                     ("vocab_size", VocabSize), ("hidden_size", HiddenSize), ("intermediate_size", IntermediateSize),
                     ("num_hidden_layers", NumHiddenLayers), ("num_attention_heads", NumAttentionHeads),
                     ("num_key_value_heads", NumKeyValueHeads), ("head_dim", HeadDim), ("max_position_embeddings", MaxPositionEmbeddings),
                 })
            if (value < 1)
                return (field, $"must be ≥ 1, got {value}");
            else if (value > Limit(field))
                return (field, $"= {value:N0} is more than {Limit(field):N0}, the most Trd loads (a value that large is a typo or a corrupted file)");
        if (NumAttentionHeads % NumKeyValueHeads != 0)
            return ("num_key_value_heads", $"= {NumKeyValueHeads} does not divide num_attention_heads = {NumAttentionHeads}");
        if (HeadDim % 2 != 0)
            return ("head_dim", $"must be even (RoPE rotates pairs of dimensions), got {HeadDim}");
        if (!(RopeTheta > 0) || double.IsInfinity(RopeTheta))
            return ("rope_theta", $"must be a finite number > 0, got {RopeTheta}");
        if (!(RmsNormEps > 0) || double.IsInfinity(RmsNormEps))
            return ("rms_norm_eps", $"must be a finite number > 0, got {RmsNormEps}");
        if (DTypeName(TorchDtype) is null)
            return ("torch_dtype", $"must be float32, bfloat16 or float16, got {TorchDtype}");
        if (BosTokenId is { } bos && (bos < 0 || bos >= VocabSize))
            return ("bos_token_id", $"= {bos} is outside the vocabulary [0, {VocabSize})");
        foreach (var eos in EosTokenIds ?? throw new ArgumentNullException(nameof(EosTokenIds)))
            if (eos < 0 || eos >= VocabSize)
                return ("eos_token_id", $"contains {eos}, outside the vocabulary [0, {VocabSize})");
        return null;
    }

    /// <summary>Value equality, the EOS list compared element by element.</summary>
    public bool Equals(Qwen3Config? other) =>
        other is not null && VocabSize == other.VocabSize && HiddenSize == other.HiddenSize && IntermediateSize == other.IntermediateSize
        && NumHiddenLayers == other.NumHiddenLayers && NumAttentionHeads == other.NumAttentionHeads
        && NumKeyValueHeads == other.NumKeyValueHeads && HeadDim == other.HeadDim && RopeTheta.Equals(other.RopeTheta)
        && RmsNormEps.Equals(other.RmsNormEps) && TieWordEmbeddings == other.TieWordEmbeddings
        && MaxPositionEmbeddings == other.MaxPositionEmbeddings && TorchDtype == other.TorchDtype
        && AttentionBias == other.AttentionBias && BosTokenId == other.BosTokenId && EosTokenIds.SequenceEqual(other.EosTokenIds);

    /// <inheritdoc/>
    public override int GetHashCode() =>
        HashCode.Combine(HashCode.Combine(VocabSize, HiddenSize, IntermediateSize, NumHiddenLayers, NumAttentionHeads, NumKeyValueHeads, HeadDim),
            HashCode.Combine(RopeTheta, RmsNormEps, TieWordEmbeddings, MaxPositionEmbeddings, TorchDtype, AttentionBias, BosTokenId, EosTokenIds.Count));

    /// <summary>The fields as config.json writes them, on one line, for run logs.</summary>
    public override string ToString() => ToJson(indented: false);

    // ---------------------------------------------------------------------------------------------
    // config.json
    // ---------------------------------------------------------------------------------------------

    /// <summary>Reads and validates a config.json; every problem is a <see cref="CheckpointException"/> naming the file and field.</summary>
    public static Qwen3Config Load(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        string json;
        try
        {
            json = File.ReadAllText(path, Encoding.UTF8);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new CheckpointException(path, null, $"cannot read the configuration: {e.Message}", e);
        }
        return Parse(json, path);
    }

    /// <summary>Parses config.json text; <paramref name="source"/> names it in errors.</summary>
    public static Qwen3Config Parse(string json, string source = "config.json")
    {
        ArgumentNullException.ThrowIfNull(json);
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(json, new JsonDocumentOptions { MaxDepth = 32 });
        }
        catch (JsonException e)
        {
            throw new CheckpointException(source, null, $"not valid JSON: {Trd.Runtime.Data.JsonErrors.Describe(e)}", e);
        }
        using (document)
        {
            var fields = new ConfigFields(source, document.RootElement);
            var modelType = fields.String("model_type");
            if (modelType != ModelType)
                throw fields.Error("model_type", $"is '{modelType}'; only Qwen3 (model_type '{ModelType}', {Architecture}) is supported");
            if (fields.OptionalStrings("architectures") is { } architectures && !(architectures.Count == 1 && architectures[0] == Architecture))
                throw fields.Error("architectures", $"is [{string.Join(", ", architectures)}]; only [{Architecture}] is supported");
            var act = fields.OptionalString("hidden_act") ?? "silu";
            if (act != "silu")
                throw fields.Error("hidden_act", $"is '{act}'; Qwen3's MLP is SwiGLU (silu)");
            if (fields.OptionalBool("use_sliding_window") == true)
                throw fields.Error("use_sliding_window", "is true; sliding-window attention is not supported");
            if (fields.OptionalStrings("layer_types") is { } layers && layers.FirstOrDefault(l => l != "full_attention") is { } other)
                throw fields.Error("layer_types", $"contains '{other}'; only full_attention is supported");
            fields.CheckRopeScaling("rope_scaling");

            int heads = fields.Int("num_attention_heads");
            var config = new Qwen3Config
            {
                VocabSize = fields.Int("vocab_size"),
                HiddenSize = fields.Int("hidden_size"),
                IntermediateSize = fields.Int("intermediate_size"),
                NumHiddenLayers = fields.Int("num_hidden_layers"),
                NumAttentionHeads = heads,
                NumKeyValueHeads = fields.IntOrNull("num_key_value_heads") ?? heads,
                HeadDim = fields.Int("head_dim"),
                RopeTheta = fields.RopeTheta(),
                RmsNormEps = fields.Double("rms_norm_eps"),
                TieWordEmbeddings = fields.Bool("tie_word_embeddings"),
                MaxPositionEmbeddings = fields.Int("max_position_embeddings"),
                TorchDtype = fields.TorchDtype(),
                AttentionBias = fields.OptionalBool("attention_bias") ?? false,
                BosTokenId = fields.OptionalTokenIds("bos_token_id") is { } bos
                    ? bos.Count == 1 ? bos[0] : throw fields.Error("bos_token_id", "must be one token id")
                    : null,
                EosTokenIds = fields.OptionalTokenIds("eos_token_id") ?? [],
            };
            if (config.Problem() is { } problem)
                throw fields.Error(problem.Field, problem.Text);
            return config;
        }
    }

    /// <summary>
    /// config.json as transformers writes it (keys sorted, 2-space indent): the fields above plus the constants
    /// that make it a plain Qwen3 (architectures, model_type, hidden_act, rope_scaling null, no sliding window).
    /// </summary>
    public string ToJson() => ToJson(indented: true);

    string ToJson(bool indented)
    {
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = indented, NewLine = "\n" }))
        {
            json.WriteStartObject();
            json.WriteStartArray("architectures");
            json.WriteStringValue(Architecture);
            json.WriteEndArray();
            json.WriteBoolean("attention_bias", AttentionBias);
            if (BosTokenId is { } bos) json.WriteNumber("bos_token_id", bos);
            if (EosTokenIds.Count == 1) json.WriteNumber("eos_token_id", EosTokenIds[0]);
            else if (EosTokenIds.Count > 1)
            {
                json.WriteStartArray("eos_token_id");
                foreach (var id in EosTokenIds) json.WriteNumberValue(id);
                json.WriteEndArray();
            }
            json.WriteNumber("head_dim", HeadDim);
            json.WriteString("hidden_act", HiddenAct);
            json.WriteNumber("hidden_size", HiddenSize);
            json.WriteNumber("intermediate_size", IntermediateSize);
            json.WriteNumber("max_position_embeddings", MaxPositionEmbeddings);
            json.WriteString("model_type", ModelType);
            json.WriteNumber("num_attention_heads", NumAttentionHeads);
            json.WriteNumber("num_hidden_layers", NumHiddenLayers);
            json.WriteNumber("num_key_value_heads", NumKeyValueHeads);
            json.WriteNumber("rms_norm_eps", RmsNormEps);
            json.WriteNull("rope_scaling");
            json.WriteNumber("rope_theta", RopeTheta);
            json.WriteBoolean("tie_word_embeddings", TieWordEmbeddings);
            json.WriteString("torch_dtype", DTypeName(TorchDtype) ?? throw new InvalidOperationException($"torch_dtype {TorchDtype} cannot be written"));
            json.WriteBoolean("use_sliding_window", false);
            json.WriteNumber("vocab_size", VocabSize);
            json.WriteEndObject();
        }
        return Encoding.UTF8.GetString(buffer.ToArray()) + (indented ? "\n" : "");
    }

    /// <summary>Validates, then writes config.json atomically.</summary>
    public void Save(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        Validate();
        var bytes = Encoding.UTF8.GetBytes(ToJson());
        AtomicFile.Write(path, stream => stream.Write(bytes));
    }

    /// <summary>HF's torch_dtype string for a scalar type; null for types a Qwen3 config does not use.</summary>
    internal static string? DTypeName(ScalarType type) => type switch
    {
        ScalarType.Float32 => "float32",
        ScalarType.BFloat16 => "bfloat16",
        ScalarType.Float16 => "float16",
        _ => null,
    };

    internal static ScalarType? ParseDType(string name) => (name.StartsWith("torch.", StringComparison.Ordinal) ? name[6..] : name) switch
    {
        "float32" or "float" => ScalarType.Float32,
        "bfloat16" => ScalarType.BFloat16,
        "float16" or "half" => ScalarType.Float16,
        _ => null,
    };
}
