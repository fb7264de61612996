using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using Trd.Core;
using static TorchSharp.torch;

namespace Trd.Runtime.Pipeline;

/// <summary>
/// Everything one pipeline run needs, read from a JSON config (snake_case keys; see configs/tiny.json). Unknown keys
/// are errors naming the key, so a typo never silently falls back to a default. Relative paths are resolved against
/// the config file's directory.
/// </summary>
public sealed record PipelineConfig : IJsonOnDeserialized
{
    /// <summary>The run's seed: data order, sampling and LoRA initialisation derive from it.</summary>
    public long Seed { get; init; } = 1;
    /// <summary>OPD (a separate teacher) or OPSD (the student's own backbone, given y*). JSON: "opd", "opsd".</summary>
    public Setting Setting { get; init; } = Setting.Opd;

    /// <summary>
    /// The stage-3 objective. JSON: <c>"recipe"</c> names one of the five methods (<see cref="Methods"/>; the clip
    /// constant follows the setting) and <c>"objective"</c> overrides its fields (<see cref="ObjectiveSpec"/>). Written
    /// back as the method's name when the recipe is one of them, else as <c>"objective"</c> with every field.
    /// </summary>
    [JsonIgnore]
    public Recipe Recipe { get => _recipe; init => _recipe = value ?? throw new ArgumentNullException(nameof(Recipe)); }
    Recipe _recipe = Recipes.Trd;

    // The JSON edge of Recipe: read as written, resolved once the whole object (and so the setting) is read.
    string? _recipeName;
    ObjectiveSpec? _objective;

    [JsonInclude, JsonPropertyName("recipe")]
    string? RecipeName
    {
        get => Methods.TryOfRecipe(Recipe, Setting) is { } method ? method.ConfigName : null;
        init => _recipeName = value;
    }

    [JsonInclude, JsonPropertyName("objective")]
    ObjectiveSpec? Objective
    {
        get => Methods.TryOfRecipe(Recipe, Setting) is null ? ObjectiveSpec.From(Recipe) : null;
        init => _objective = value;
    }

    // What parsing found wrong (an unknown word, an objective field that does not apply); Validated lists them.
    string[] _parseProblems = [];

    void IJsonOnDeserialized.OnDeserialized()
    {
        var named = Recipes.Trd;
        if (_recipeName is not null)
        {
            var method = Methods.TryOfConfigName(_recipeName);
            if (method is null) _parseProblems = [.. _parseProblems, $"recipe: unknown value '{_recipeName}' (expected one of {string.Join(", ", RecipeNames.All)})"];
            else named = Methods.RecipeOf(method, Setting);
        }
        if (_recipeName is not null && _objective?.Method is not null)
            _parseProblems = [.. _parseProblems, $"objective.method: '{_objective.Method}' replaces the recipe; leave out \"recipe\": \"{_recipeName}\" (on the command line: --set recipe=null)"];
        try { _recipe = _objective is null ? named : _objective.Apply(named); }
        catch (ConfigException e) { (_recipe, _parseProblems) = (named, [.. _parseProblems, e.Message]); }
        (_recipeName, _objective) = (null, null);
    }

    /// <summary>Torch device ("cpu", "cuda", "cuda:1"); null: <see cref="Devices.Default"/>.</summary>
    public string? Device { get; init; }
    /// <summary>Qwen3's thinking mode in every chat-templated context (false appends an empty think block); the
    /// Qwen3-2507 templates ignore it (<see cref="Tokenization.ChatTemplateKind"/>).</summary>
    public bool EnableThinking { get; init; }
    /// <summary>The student model.</summary>
    public ModelSpec Student { get; init; } = new();
    /// <summary>The OPD teacher (required under OPD, ignored under OPSD).</summary>
    public ModelSpec? Teacher { get; init; }
    /// <summary>The training problem set (JSONL or parquet; DeepScaleR or verl layout).</summary>
    public string Problems { get; init; } = "";
    /// <summary>
    /// Another run's corpus directory (its <c>corpus/</c>) to train on, read in place; null: this run's own
    /// <c>corpus/</c>. Stages 1 and 2 never write into a shared corpus: they only check it is complete. The study's
    /// methods share their seed and setting's corpus this way.
    /// </summary>
    public string? Corpus { get; init; }
    /// <summary>Stage 1.</summary>
    public SamplingConfig Rollout { get; init; } = new();
    /// <summary>Stage 2.</summary>
    public RefineConfig Refine { get; init; } = new();
    /// <summary>Stage 3.</summary>
    public TrainConfig Train { get; init; } = new();
    /// <summary>Evaluation.</summary>
    public EvalConfig Eval { get; init; } = new();

    static readonly JsonSerializerOptions Json = ConfigWords.With(new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
        RespectNullableAnnotations = true,          // "eval": {"problems": null} is an error naming the key, not a null list
        ReadCommentHandling = JsonCommentHandling.Skip,
        AllowTrailingCommas = true,
        WriteIndented = true,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    });

    /// <summary>
    /// Reads a config file, applies <paramref name="overrides"/> (<c>key.path=value</c>, the CLI's <c>--set</c>), resolves
    /// relative paths against the file's directory, and validates it.
    /// </summary>
    public static PipelineConfig Load(string path, IReadOnlyList<string>? overrides = null)
    {
        string text;
        try { text = File.ReadAllText(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { throw new ConfigException($"{path}: cannot read the config: {e.Message}"); }
        var source = path;
        if (overrides is { Count: > 0 }) (text, source) = (Override(text, path, overrides), $"{path} with --set");
        return Parse(text, source).ResolvePaths(Path.GetDirectoryName(Path.GetFullPath(path))!).Validated(path);
    }

    /// <summary>
    /// The config text with each <c>key.path=value</c> set (Hydra's and Hugging Face's override syntax): the value is read
    /// as JSON when it is JSON (<c>1e-4</c>, <c>true</c>, <c>[1, 2]</c>, <c>{"rank": 4}</c>), else as a string
    /// (<c>recipe=forward-kl</c>); objects on the path are created. The parse that follows checks keys and types, naming
    /// the key.
    /// </summary>
    public static string Override(string text, string source, IReadOnlyList<string> overrides)
    {
        JsonObject root;
        try
        {
            root = JsonNode.Parse(text, documentOptions: new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true, AllowDuplicateProperties = false }) as JsonObject
                ?? throw new ConfigException($"{source}: the config is not a JSON object");
        }
        catch (JsonException e) { throw new ConfigException($"{source}: {Data.JsonErrors.Describe(e)}"); }
        foreach (var item in overrides)
        {
            var equals = item.IndexOf('=');
            if (equals <= 0) throw new ConfigException($"--set {Short(item)}: expected KEY=VALUE, e.g. train.learning_rate=1e-4");
            var keys = item[..equals].Split('.');
            if (keys.Any(string.IsNullOrWhiteSpace)) throw new ConfigException($"--set {Short(item)}: the key '{item[..equals]}' has an empty part");
            var raw = item[(equals + 1)..];
            JsonNode? value;
            try { value = JsonNode.Parse(raw); }
            catch (JsonException) { value = JsonValue.Create(raw); }
            var node = root;
            foreach (var key in keys[..^1])
            {
                if (node[key] is null) node[key] = new JsonObject();
                node = node[key] as JsonObject ?? throw new ConfigException($"--set {Short(item)}: '{key}' is not an object in {source}");
            }
            node[keys[^1]] = value;
        }
        return root.ToJsonString();
    }

    static string Short(string text) => text.Length <= 120 ? text : text[..120] + "…";

    /// <summary>
    /// Parses config JSON (paths left as written); <paramref name="source"/> names it in errors. Malformed JSON and
    /// unknown keys throw here; an unknown word ("setting": "opx") or an objective field that does not apply is kept
    /// for <see cref="Validated"/>, which lists every problem at once.
    /// </summary>
    public static PipelineConfig Parse(string json, string source = "config")
    {
        try
        {
            if (JsonNode.Parse(json, documentOptions: new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true, AllowDuplicateProperties = false })
                is not JsonObject node)
                throw new ConfigException($"{source}: the config is not a JSON object");
            var problems = ConfigWords.TakeUnknownWords(node, typeof(PipelineConfig));
            var config = node.Deserialize<PipelineConfig>(Json) ?? throw new ConfigException($"{source}: the config is null");
            config._parseProblems = [.. problems, .. config._parseProblems];
            return config;
        }
        catch (ConfigWordException e) { throw new ConfigException($"{source}: {e.Key}: {e.Message}"); }
        catch (JsonException e) { throw new ConfigException($"{source}: {Trd.Runtime.Data.JsonErrors.Describe(e, omitPosition: source.EndsWith(" with --set", StringComparison.Ordinal))}"); }
    }

    /// <summary>The same config reading another run's corpus in place (for F# callers, which cannot use <c>with</c>).</summary>
    public PipelineConfig WithCorpus(string? corpus) => this with { Corpus = corpus };

    /// <summary>The config as JSON (what the run manifest records).</summary>
    public string ToJson() => JsonSerializer.Serialize(this, Json);

    /// <summary>The config with every relative path made absolute against <paramref name="baseDirectory"/>.</summary>
    public PipelineConfig ResolvePaths(string baseDirectory)
    {
        string? R(string? p) => string.IsNullOrEmpty(p) ? p : Path.GetFullPath(p, baseDirectory);
        return this with
        {
            Problems = R(Problems)!,
            Corpus = R(Corpus),
            Student = Student with { Path = R(Student.Path), Tokenizer = Student.Tokenizer is "small" ? "small" : R(Student.Tokenizer) },
            Teacher = Teacher is null ? null : Teacher with { Path = R(Teacher.Path), Tokenizer = Teacher.Tokenizer is "small" ? "small" : R(Teacher.Tokenizer) },
            Eval = Eval with { Problems = Eval.Problems.Select(p => R(p)!).ToArray() },
        };
    }

    /// <summary>Throws a <see cref="ConfigException"/> listing every problem, or returns the config.</summary>
    public PipelineConfig Validated(string source = "config")
    {
        var problems = new List<string>();
        void Check(bool ok, string message) { if (!ok) problems.Add(message); }
        problems.AddRange(_parseProblems);
        if (Setting is null) problems.Add("setting: none given");
        if (Recipe.Problems() is { Length: > 0 } recipeProblems) problems.Add($"recipe '{Recipe.Name}' is invalid: {string.Join("; ", recipeProblems)}");
        else if (Train.TeacherTopK is { } topK and >= 1 && SparseTeacher.Problems(Recipe, topK) is { Length: > 0 } sparse)
            problems.Add($"train.teacher_top_k = {topK}: {string.Join("; ", sparse)}");
        Check(!string.IsNullOrEmpty(Problems), "problems: no training problem file given");
        if (Device is { } device && Devices.NameProblem(device) is { } bad) problems.Add($"device: {bad}");
        problems.AddRange(Student.Errors("student"));
        if (Setting == Setting.Opd)
        {
            if (Teacher is null) problems.Add("teacher: OPD needs a separate teacher model");
            else problems.AddRange(Teacher.Errors("teacher"));
        }
        problems.AddRange(Rollout.Errors("rollout"));
        problems.AddRange(Refine.Errors("refine"));
        problems.AddRange(Train.Errors("train"));
        problems.AddRange(Eval.Errors("eval"));
        if (problems.Count > 0) throw new ConfigException($"{source}: {string.Join("; ", problems)}");
        return this;
    }
}

/// <summary>The config names of the paper's five methods and of the shaped methods (docs/methods.md).</summary>
public static class RecipeNames
{
    /// <summary>The names: the paper's five in its order, then the shaped methods.</summary>
    public static readonly IReadOnlyList<string> All = Methods.All.Concat(Methods.Shaped).Select(m => m.ConfigName).ToArray();

    /// <summary>The method a config name denotes; a <see cref="ConfigException"/> listing the names otherwise.</summary>
    public static ComparisonRow Parse(string name) => Methods.TryOfConfigName(name)
        ?? throw new ConfigException($"recipe: unknown value '{name}' (expected one of {string.Join(", ", All)})");
}

/// <summary>A model: a Hugging Face directory (config.json, safetensors, tokenizer.json), or a random tiny Qwen3.</summary>
public sealed record ModelSpec
{
    /// <summary>A model directory. Exclusive with <see cref="Random"/>.</summary>
    public string? Path { get; init; }
    /// <summary>
    /// A gym model (docs/gym.md): "student" or "teacher" of model seed 1, from the model cache ($TRD_CACHE or
    /// ~/.cache/trd; installed from the shipped models, or trained, on first use). Exclusive with Path and Random.
    /// </summary>
    public string? Gym { get; init; }
    /// <summary>A random Qwen3 of this shape, written into the run directory on first use. Exclusive with <see cref="Path"/>.</summary>
    public TinyModelSpec? Random { get; init; }
    /// <summary>For random models: "small" (the built-in small byte-level vocabulary) or a directory holding tokenizer.json.</summary>
    public string? Tokenizer { get; init; }
    /// <summary>Float32 or BFloat16 (JSON: "float32", "bfloat16"); null: float32, or bfloat16 where the device prefers it.</summary>
    public ScalarType? Dtype { get; init; }
    /// <summary>
    /// A server that generates with this model (issue 14): stages 1 and 2 send their prompts there as token ids and
    /// read token ids back; the directory still gives the tokenizer and config. Null: generate in-process.
    /// </summary>
    public ServerSpec? Server { get; init; }

    internal IEnumerable<string> Errors(string name)
    {
        if (Server is not null) foreach (var p in Server.Errors($"{name}.server")) yield return p;
        if (Random is not null) foreach (var p in Random.Errors($"{name}.random")) yield return p;
        if (Server is not null && Path is null) yield return $"{name}.server: a served model still needs its directory ('path') for the tokenizer and config";
        if (new[] { Path is not null, Random is not null, Gym is not null }.Count(x => x) != 1) yield return $"{name}: give exactly one of 'path', 'random' and 'gym'";
        if (Gym is { } gym && gym is not ("student" or "teacher")) yield return $"{name}.gym: expected 'student' or 'teacher', got '{gym}'";
        if (Random is not null && string.IsNullOrEmpty(Tokenizer)) yield return $"{name}.tokenizer: a random model needs a tokenizer ('small' or a directory with tokenizer.json)";
        if (Dtype is { } d && !ConfigWords.Dtypes.Any(w => w.Value == d)) yield return $"{name}.dtype: expected {ConfigWords.Expected(ConfigWords.Dtypes)}, got {d}";
    }
}

/// <summary>The engine a model is served by.</summary>
public enum ServingEngine
{
    /// <summary>vLLM's OpenAI-compatible <c>/v1/completions</c> (and <c>trd serve</c>, which speaks it).</summary>
    Vllm,
    /// <summary>SGLang's native <c>/generate</c> (and <c>trd serve</c>, which speaks it too).</summary>
    Sglang,
}

/// <summary>Where a model is served, and how to talk to it.</summary>
public sealed record ServerSpec
{
    /// <summary>JSON "vllm" or "sglang" (<c>trd serve</c> speaks both).</summary>
    public ServingEngine Engine { get; init; } = ServingEngine.Vllm;
    /// <summary>
    /// The servers' base URLs (JSON "url": one URL, or a list of replicas of the same model): requests are spread over
    /// them in turn, and a retried request goes to the next one.
    /// </summary>
    [JsonPropertyName("url"), JsonConverter(typeof(OneOrManyStrings))]
    public IReadOnlyList<string> Urls { get; init; } = Array.Empty<string>();
    /// <summary>The model name the server knows; null: the model directory's name.</summary>
    public string? Model { get; init; }
    /// <summary>Requests in flight at once, over all URLs.</summary>
    public int MaxConcurrency { get; init; } = 64;
    /// <summary>Seconds a request may take before it is retried.</summary>
    public int TimeoutS { get; init; } = 600;
    /// <summary>Attempts per request on connection errors, timeouts, 429 and 5xx (exponential backoff), before failing.</summary>
    public int Attempts { get; init; } = 5;
    /// <summary>The environment variable holding a bearer token, if the server wants one.</summary>
    public string? ApiKeyEnv { get; init; }

    /// <summary>A server at one URL (C#: <c>ServerSpec.At("http://127.0.0.1:8000")</c>).</summary>
    public static ServerSpec At(params string[] urls) => new() { Urls = urls };

    internal IEnumerable<string> Errors(string name)
    {
        if (Urls.Count == 0) yield return $"{name}.url: required (a URL, or a list of them)";
        foreach (var url in Urls)
            if (!Uri.TryCreate(url, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https"))
                yield return $"{name}.url: expected an http(s) URL, got '{url}'";
        if (Urls.Distinct().Count() != Urls.Count) yield return $"{name}.url: a URL is listed twice";
        if (MaxConcurrency < 1) yield return $"{name}.max_concurrency: must be ≥ 1, got {MaxConcurrency}";
        if (TimeoutS < 1) yield return $"{name}.timeout_s: must be ≥ 1, got {TimeoutS}";
        if (Attempts < 1) yield return $"{name}.attempts: must be ≥ 1, got {Attempts}";
    }
}

/// <summary>JSON: a string or a list of strings, read as a list (a server's "url").</summary>
public sealed class OneOrManyStrings : JsonConverter<IReadOnlyList<string>>
{
    /// <inheritdoc/>
    public override IReadOnlyList<string> Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) => reader.TokenType switch
    {
        JsonTokenType.String => [reader.GetString()!],
        JsonTokenType.StartArray => JsonSerializer.Deserialize<string[]>(ref reader) is { } all && all.All(u => u is not null) ? all
            : throw new JsonException("expected a list of URL strings"),
        _ => throw new JsonException($"expected a URL or a list of URLs, got {reader.TokenType}"),
    };

    /// <inheritdoc/>
    public override void Write(Utf8JsonWriter writer, IReadOnlyList<string> value, JsonSerializerOptions options)
    {
        if (value.Count == 1) writer.WriteStringValue(value[0]);
        else JsonSerializer.Serialize(writer, value.ToArray());
    }
}

/// <summary>The shape of a random tiny Qwen3 (the vocabulary comes from its tokenizer).</summary>
public sealed record TinyModelSpec
{
    /// <summary>hidden_size.</summary>
    public int HiddenSize { get; init; } = 32;
    /// <summary>num_hidden_layers.</summary>
    public int Layers { get; init; } = 2;
    /// <summary>num_attention_heads.</summary>
    public int Heads { get; init; } = 4;
    /// <summary>num_key_value_heads.</summary>
    public int KvHeads { get; init; } = 2;
    /// <summary>head_dim.</summary>
    public int HeadDim { get; init; } = 8;
    /// <summary>intermediate_size.</summary>
    public int IntermediateSize { get; init; } = 64;
    /// <summary>max_position_embeddings.</summary>
    public int MaxPositions { get; init; } = 2048;
    /// <summary>The seed of its weights.</summary>
    public long Seed { get; init; } = 1;
    /// <summary>The standard deviation of its weights.</summary>
    public double Std { get; init; } = 0.02;

    internal IEnumerable<string> Errors(string name)
    {
        foreach (var (key, field, value) in new[]
                 {
                     ("hidden_size", "hidden_size", HiddenSize), ("layers", "num_hidden_layers", Layers), ("heads", "num_attention_heads", Heads),
                     ("kv_heads", "num_key_value_heads", KvHeads), ("head_dim", "head_dim", HeadDim), ("intermediate_size", "intermediate_size", IntermediateSize),
                     ("max_positions", "max_position_embeddings", MaxPositions),
                 })
        {
            if (value < 1) yield return $"{name}.{key}: must be ≥ 1, got {value}";
            else if (value > Checkpoints.Qwen3Config.Limit(field)) yield return $"{name}.{key}: {value:N0} is more than {Checkpoints.Qwen3Config.Limit(field):N0}, the most Trd builds";
        }
        if (Heads >= 1 && KvHeads >= 1 && Heads % KvHeads != 0) yield return $"{name}.kv_heads: {KvHeads} does not divide heads = {Heads}";
        if (HeadDim >= 1 && HeadDim % 2 != 0) yield return $"{name}.head_dim: must be even (RoPE rotates pairs of dimensions), got {HeadDim}";
        if (!(Std > 0 && Std <= 10)) yield return $"{name}.std: must lie in (0, 10], got {Std}";
    }

    /// <summary>The Qwen3 shape of this spec over a vocabulary of <paramref name="vocabulary"/> ids (padded to 64, as written).</summary>
    public Checkpoints.Qwen3Config Shape(int vocabulary, IReadOnlyList<long>? eos = null) => Checkpoints.Qwen3Config.Tiny(
        vocabSize: (vocabulary + 63) / 64 * 64, hiddenSize: HiddenSize, numHiddenLayers: Layers, numAttentionHeads: Heads,
        numKeyValueHeads: KvHeads, headDim: HeadDim, intermediateSize: IntermediateSize, maxPositionEmbeddings: MaxPositions,
        eosTokenIds: eos);
}

/// <summary>Sampling settings of a generation stage (defaults: the paper's T = 0.6, top-p 0.95; top-k 20).</summary>
public record SamplingConfig
{
    /// <summary>Sampling temperature (0: greedy).</summary>
    public double Temperature { get; init; } = 0.6;
    /// <summary>Nucleus mass.</summary>
    public double TopP { get; init; } = 0.95;
    /// <summary>Top-k (0: off).</summary>
    public int TopK { get; init; } = 20;
    /// <summary>The response budget in tokens; a response that reaches it is marked truncated.</summary>
    public int MaxNewTokens { get; init; } = 1024;
    /// <summary>The prompt budget in tokens.</summary>
    public int PromptBudget { get; init; } = 2048;
    /// <summary>Problems sampled together; also the unit of resumption (a batch is redone whole if any record is missing).</summary>
    public int BatchSize { get; init; } = 8;

    internal IEnumerable<string> Errors(string name)
    {
        if (!(Temperature >= 0 && Temperature <= Generation.SamplingOptions.MaxTemperature))
            yield return $"{name}.temperature: must lie in [0, {Generation.SamplingOptions.MaxTemperature}], got {Temperature}";
        if (!(TopP > 0 && TopP <= 1)) yield return $"{name}.top_p: must lie in (0, 1], got {TopP}";
        if (TopK < 0) yield return $"{name}.top_k: must be ≥ 0, got {TopK}";
        if (MaxNewTokens < 1 || MaxNewTokens > Generation.SamplingOptions.MaxTokens)
            yield return $"{name}.max_new_tokens: must lie in [1, {Generation.SamplingOptions.MaxTokens:N0}], got {MaxNewTokens:N0}";
        if (PromptBudget < 1 || PromptBudget > Generation.SamplingOptions.MaxTokens)
            yield return $"{name}.prompt_budget: must lie in [1, {Generation.SamplingOptions.MaxTokens:N0}], got {PromptBudget:N0}";
        if (BatchSize < 1) yield return $"{name}.batch_size: must be ≥ 1, got {BatchSize}";
    }
}

/// <summary>Stage 2's sampling plus the policy for empty and truncated rewrites.</summary>
public sealed record RefineConfig : SamplingConfig
{
    /// <summary>An empty rewrite (JSON "skip" or "rollout"): not trained on, or trained on y_o instead; counted either way.</summary>
    public EmptyRewritePolicy OnEmpty { get; init; } = EmptyRewritePolicy.Skip;
    /// <summary>A rewrite that hit the budget (JSON "skip", "rollout" or "keep"): keep trains on the truncated y_r; counted.</summary>
    public TruncatedRewritePolicy OnTruncated { get; init; } = TruncatedRewritePolicy.Skip;

    internal new IEnumerable<string> Errors(string name)
    {
        foreach (var p in base.Errors(name)) yield return p;
        if (!Enum.IsDefined(OnEmpty)) yield return $"{name}.on_empty: expected {ConfigWords.Expected(ConfigWords.OnEmpty)}, got {OnEmpty}";
        if (!Enum.IsDefined(OnTruncated)) yield return $"{name}.on_truncated: expected {ConfigWords.Expected(ConfigWords.OnTruncated)}, got {OnTruncated}";
    }
}

/// <summary>LoRA settings (paper: rank 64, α 128, dropout 0.05, all attention and MLP projections).</summary>
public sealed record LoraSpec
{
    /// <summary>r.</summary>
    public int Rank { get; init; } = 64;
    /// <summary>α.</summary>
    public double Alpha { get; init; } = 128;
    /// <summary>Dropout on the adapter input.</summary>
    public double Dropout { get; init; } = 0.05;
}

/// <summary>Stage 3 (paper App. C.8 defaults).</summary>
public sealed record TrainConfig
{
    /// <summary>LoRA adapters; null: full fine-tuning.</summary>
    public LoraSpec? Lora { get; init; } = new();
    /// <summary>Peak learning rate.</summary>
    public double LearningRate { get; init; } = 5e-6;
    /// <summary>Share of the optimiser steps spent in linear warmup.</summary>
    public double WarmupRatio { get; init; } = 0.1;
    /// <summary>The cosine decay's floor as a share of the peak.</summary>
    public double FloorRatio { get; init; } = 0.1;
    /// <summary>AdamW β1.</summary>
    public double Beta1 { get; init; } = 0.9;
    /// <summary>AdamW β2.</summary>
    public double Beta2 { get; init; } = 0.999;
    /// <summary>AdamW ε.</summary>
    public double Epsilon { get; init; } = 1e-8;
    /// <summary>AdamW decoupled weight decay.</summary>
    public double WeightDecay { get; init; } = 0.005;
    /// <summary>The global gradient-norm clip (0: off).</summary>
    public double GradClip { get; init; } = 1.0;
    /// <summary>Sequences per forward pass.</summary>
    public int MicroBatch { get; init; } = 1;
    /// <summary>Micro-batches per optimiser step; the loss is normalised by the step's global token count.</summary>
    public int GradAccum { get; init; } = 16;
    /// <summary>Passes over the training corpus.</summary>
    public int Epochs { get; init; } = 1;
    /// <summary>Longest context + trajectory in tokens; longer trajectories are cut at the end (counted).</summary>
    public int MaxLength { get; init; } = 4096;
    /// <summary>Write a checkpoint every this many optimiser steps (and always at the end).</summary>
    public int SaveEvery { get; init; } = 1;
    /// <summary>Training subset (App. B.3; JSON "all", "fail", "succ" or "fail-to-succ").</summary>
    public SubsetFilter Subset { get; init; } = SubsetFilter.All;
    /// <summary>Positions per chunk of the fused full-vocabulary objective (paper: 512).</summary>
    public int ChunkSize { get; init; } = 512;
    /// <summary>Write TensorBoard event files beside the JSONL metrics log.</summary>
    public bool Tensorboard { get; init; } = true;
    /// <summary>
    /// Score the teacher's top-K once per trajectory into <c>train/teacher-scores/</c> (8K + 4 bytes per token) and
    /// train from those scores, without the teacher in memory (what a served teacher gives, issue 14). The recipe's
    /// support must then be top-k or top-k-tail with top_k ≤ K (or a sampled estimator). Null: the teacher model scores
    /// every micro-batch.
    /// </summary>
    public int? TeacherTopK { get; init; }

    internal IEnumerable<string> Errors(string name)
    {
        if (Lora is { } l)
        {
            if (l.Rank < 1 || l.Rank > 4096) yield return $"{name}.lora.rank: must lie in [1, 4,096], got {l.Rank:N0}";
            if (!(l.Alpha > 0 && l.Alpha <= 1e6)) yield return $"{name}.lora.alpha: must lie in (0, 1,000,000], got {l.Alpha}";
            if (!(l.Dropout >= 0 && l.Dropout < 1)) yield return $"{name}.lora.dropout: must lie in [0, 1), got {l.Dropout}";
        }
        // A step past 1 moves weights by more than their scale: a typo (1e3 for 1e-3), not a schedule.
        if (!(LearningRate > 0 && LearningRate <= 1)) yield return $"{name}.learning_rate: must lie in (0, 1], got {LearningRate}";
        if (!(WarmupRatio >= 0 && WarmupRatio < 1)) yield return $"{name}.warmup_ratio: must lie in [0, 1), got {WarmupRatio}";
        if (!(FloorRatio >= 0 && FloorRatio <= 1)) yield return $"{name}.floor_ratio: must lie in [0, 1], got {FloorRatio}";
        if (!(Beta1 >= 0 && Beta1 < 1) || !(Beta2 >= 0 && Beta2 < 1)) yield return $"{name}.beta1/beta2: must lie in [0, 1), got {Beta1}, {Beta2}";
        if (!(Epsilon > 0)) yield return $"{name}.epsilon: must be > 0, got {Epsilon}";
        if (!(WeightDecay >= 0)) yield return $"{name}.weight_decay: must be ≥ 0, got {WeightDecay}";
        if (!(GradClip >= 0)) yield return $"{name}.grad_clip: must be ≥ 0, got {GradClip}";
        if (MicroBatch < 1 || MicroBatch > Limit) yield return $"{name}.micro_batch: must lie in [1, {Limit:N0}], got {MicroBatch:N0}";
        if (GradAccum < 1 || GradAccum > Limit) yield return $"{name}.grad_accum: must lie in [1, {Limit:N0}], got {GradAccum:N0}";
        if (Epochs < 1 || Epochs > Limit) yield return $"{name}.epochs: must lie in [1, {Limit:N0}], got {Epochs:N0}";
        if (MaxLength < 2) yield return $"{name}.max_length: must be ≥ 2, got {MaxLength}";
        if (SaveEvery < 1) yield return $"{name}.save_every: must be ≥ 1, got {SaveEvery}";
        if (ChunkSize < 1 || ChunkSize > 1 << 20) yield return $"{name}.chunk_size: must lie in [1, {1 << 20:N0}], got {ChunkSize:N0}";
        if (Subset is null) yield return $"{name}.subset: none given";
        if (TeacherTopK is < 1 or > 4096) yield return $"{name}.teacher_top_k: must lie in [1, 4,096], got {TeacherTopK:N0}";
    }

    /// <summary>The largest micro-batch, accumulation or epoch count accepted: far past any run, far from overflow.</summary>
    const int Limit = 1 << 16;
}

/// <summary>Evaluation: K samples per problem on each problem file (paper: K = 16, T = 0.6, top-p 0.95).</summary>
public sealed record EvalConfig
{
    /// <summary>Problem files; each is one dataset, named by its file name.</summary>
    public string[] Problems { get; init; } = Array.Empty<string>();
    /// <summary>Samples per problem.</summary>
    public int K { get; init; } = 16;
    /// <summary>Sampling settings of the evaluation.</summary>
    public SamplingConfig Sampling { get; init; } = new();
    /// <summary>Also evaluate the untrained student (its pass counts define the difficulty buckets).</summary>
    public bool Base { get; init; } = true;

    internal IEnumerable<string> Errors(string name)
    {
        if (K < 1 || K > 4096) yield return $"{name}.k: must lie in [1, 4,096], got {K:N0}";
        foreach (var p in Sampling.Errors($"{name}.sampling")) yield return p;
    }
}

/// <summary>A config that cannot be used, with every reason, naming the file and key.</summary>
public sealed class ConfigException(string message) : Exception(message);
