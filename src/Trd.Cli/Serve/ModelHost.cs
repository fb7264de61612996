using System.Threading.Channels;
using Trd.Runtime;
using Trd.Runtime.Data;
using Trd.Runtime.Generation;
using Trd.Runtime.Lora;
using Trd.Runtime.Pipeline;
using Trd.Runtime.Scoring;
using Trd.Runtime.Tokenization;
using TorchSharp;

namespace Trd.Cli.Serve;

/// <summary>A request that cannot be served, answered with 400 and the engine's error shape.</summary>
sealed class BadRequestException(string message) : Exception(message);

/// <summary>
/// The models <c>trd serve</c> holds (the base and each loaded PEFT adapter, merged into its own copy) and the one thread
/// that runs them (issue 14, §4). Requests wait in a queue; the thread takes the oldest and, with it, every waiting
/// request for the same model with the same sampling settings (up to <c>--max-batch</c> prompts), and samples them in
/// one call of the KV-cache sampler. Every prompt carries its own seed (<see cref="SamplingOptions.PromptSeeds"/>), so a
/// request draws the same tokens alone or grouped with any others.
/// </summary>
sealed class ModelHost : IDisposable
{
    readonly Dictionary<string, (LoadedModel Model, string? Adapter)> _models = new();
    readonly Channel<Work> _queue = Channel.CreateUnbounded<Work>(new UnboundedChannelOptions { SingleReader = true });
    readonly Thread _worker;
    readonly string _directory;
    readonly torch.Device _device;
    readonly int _maxBatch;

    public ModelHost(string directory, string name, torch.Device device, int maxBatch)
    {
        _directory = directory;
        _device = device;
        _maxBatch = maxBatch;
        var loaded = ModelStore.Load(directory, device);
        loaded.Model.eval();
        _models[name] = (loaded, null);
        Name = name;
        _worker = new Thread(Run) { IsBackground = true, Name = "trd serve sampler" };
        _worker.Start();
    }

    long _requests, _batches, _prompts;

    /// <summary>Sampling requests served, sampler calls made for them, and prompts sampled (Prometheus text for /metrics).</summary>
    public string Metrics() =>
        $"# TYPE trd:requests_total counter\ntrd:requests_total {Interlocked.Read(ref _requests)}\n" +
        $"# TYPE trd:sampler_batches_total counter\ntrd:sampler_batches_total {Interlocked.Read(ref _batches)}\n" +
        $"# TYPE trd:prompts_total counter\ntrd:prompts_total {Interlocked.Read(ref _prompts)}\n";

    /// <summary>The base model's name.</summary>
    public string Name { get; }

    /// <summary>The tokenizer every served model shares.</summary>
    public ITokenizer Tokenizer => _models[Name].Model.Tokenizer;

    /// <summary>The model's vocabulary (rows of its output layer).</summary>
    public int VocabSize => (int)_models[Name].Model.Model.Config.VocabSize;

    /// <summary>The longest sequence the model takes.</summary>
    public long MaxModelLength => _models[Name].Model.Model.Config.MaxPositionEmbeddings;

    /// <summary>The names served: the base first, then the adapters in load order.</summary>
    public IReadOnlyList<string> Names { get { lock (_models) return _models.Keys.ToArray(); } }

    /// <summary>The adapter directory a name was loaded from (null: the base model).</summary>
    public string? AdapterOf(string name) { lock (_models) return _models[name].Adapter; }

    /// <summary>
    /// Loads the PEFT adapter in <paramref name="directory"/> under <paramref name="name"/>: a copy of the base with the
    /// adapter merged (the trained student as the pipeline evaluates it). Loading the same directory under the same name
    /// again is a no-op; another directory under a taken name is refused, as vLLM refuses it.
    /// </summary>
    public Task LoadAdapter(string name, string directory) => Enqueue<bool>(new Work(null, null, () =>
    {
        var full = Path.GetFullPath(directory);
        lock (_models)
            if (_models.TryGetValue(name, out var held))
            {
                if (held.Adapter == full) return true;
                throw new BadRequestException($"lora_name: the lora adapter '{name}' has already been loaded (from {held.Adapter ?? "the base model"})");
            }
        if (!File.Exists(Path.Combine(full, PeftAdapter.ConfigFileName)))
            throw new BadRequestException($"lora_path: {full} holds no {PeftAdapter.ConfigFileName}");
        var copy = ModelStore.Load(_directory, _device);
        try
        {
            PeftAdapter.Load(copy.Model, full);
            PeftAdapter.Merge(copy.Model);
            copy.Model.eval();
        }
        catch (Exception e) when (e is not BadRequestException)
        {
            copy.Model.Dispose();
            throw new BadRequestException($"lora_path: {full}: {e.Message}");
        }
        lock (_models) _models[name] = (copy, full);
        return true;
    }));

    /// <summary>Samples the prompts with the named model (grouped with other waiting requests of the same settings).</summary>
    public Task<IReadOnlyList<Sample>> Sample(string model, int[][] prompts, SamplingOptions options)
    {
        Check(model);
        if (options.PromptSeeds is null || options.PromptSeeds.Count != prompts.Length) throw new ArgumentException("every prompt needs its seed", nameof(options));
        return Enqueue<IReadOnlyList<Sample>>(new Work(model, options, null) { Prompts = prompts });
    }

    /// <summary>The named model's top-K at every position of <paramref name="sequence"/> after the first, and the sequence's own token's.</summary>
    public Task<TeacherScores> TopK(string model, int[] sequence, int k)
    {
        Check(model);
        return Enqueue<TeacherScores>(new Work(null, null, () =>
        {
            using var scope = torch.NewDisposeScope();
            var m = Model(model);
            return TeacherScoring.TopK(m, [("prompt", new ScoringPair(sequence[..1], sequence[1..]))], Math.Min(k, (int)m.Config.VocabSize))[0];
        }));
    }

    void Check(string model)
    {
        lock (_models)
            if (!_models.ContainsKey(model))
                throw new BadRequestException($"model: '{model}' is not served here (served: {string.Join(", ", _models.Keys)})");
    }

    Trd.Runtime.Models.Qwen3ForCausalLM Model(string name) { lock (_models) return _models[name].Model.Model; }

    async Task<T> Enqueue<T>(Work work)
    {
        if (!_queue.Writer.TryWrite(work)) throw new InvalidOperationException("the server is stopping");
        return (T)(await work.Done.Task)!;    // a failed job rethrows its own exception (a 400 stays a 400)
    }

    /// <summary>
    /// One piece of work: a sampling request (Model, Options, Prompts), grouped with others of the same key, or a job
    /// (scoring, loading an adapter) run alone.
    /// </summary>
    sealed record Work(string? Model, SamplingOptions? Options, Func<object>? Job)
    {
        public int[][] Prompts { get; init; } = [];
        public TaskCompletionSource<object?> Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        /// <summary>Requests that can share one sampler call: same model and settings but seeds.</summary>
        public bool Joins(Work other) => Job is null && other.Job is null && Model == other.Model && SameSettings(Options!, other.Options!);

        static bool SameSettings(SamplingOptions a, SamplingOptions b) =>
            a.Temperature == b.Temperature && a.TopP == b.TopP && a.TopK == b.TopK && a.MaxNewTokens == b.MaxNewTokens
            && a.SamplesPerPrompt == b.SamplesPerPrompt && a.VocabularyLimit == b.VocabularyLimit && a.StopTokenIds.SequenceEqual(b.StopTokenIds);
    }

    void Run()
    {
        var pending = new List<Work>();
        while (true)
        {
            if (pending.Count == 0)
            {
                if (!_queue.Reader.WaitToReadAsync().AsTask().GetAwaiter().GetResult()) return;
            }
            while (_queue.Reader.TryRead(out var more)) pending.Add(more);
            if (pending.Count == 0) continue;
            var first = pending[0];
            var group = new List<Work> { first };
            var prompts = first.Prompts.Length;
            foreach (var w in pending.Skip(1))
                if (first.Joins(w) && prompts + w.Prompts.Length <= _maxBatch) { group.Add(w); prompts += w.Prompts.Length; }
            pending.RemoveAll(group.Contains);
            try
            {
                if (first.Job is { } job) first.Done.SetResult(job());
                else RunGroup(group);
            }
            catch (Exception e)
            {
                foreach (var w in group) w.Done.TrySetException(e);
            }
        }
    }

    void RunGroup(List<Work> group)
    {
        var all = group.SelectMany(w => w.Prompts).ToArray();
        var seeds = group.SelectMany(w => w.Options!.PromptSeeds!).ToArray();
        var options = group[0].Options! with { PromptSeeds = seeds };
        var samples = Sampler.Generate(Model(group[0].Model!), all, options);
        Interlocked.Add(ref _requests, group.Count);
        Interlocked.Increment(ref _batches);
        Interlocked.Add(ref _prompts, all.Length);
        var n = options.SamplesPerPrompt;
        var offset = 0;
        foreach (var w in group)
        {
            var mine = samples.Skip(offset * n).Take(w.Prompts.Length * n).Select(s => s with { Prompt = s.Prompt - offset }).ToArray();
            offset += w.Prompts.Length;
            w.Done.SetResult(mine);
        }
    }

    public void Dispose()
    {
        _queue.Writer.TryComplete();
        _worker.Join(TimeSpan.FromSeconds(10));
        foreach (var (model, _) in _models.Values) model.Model.Dispose();
    }
}
