using System.Text.Json;
using System.Text.Json.Serialization;
using Trd.Core;
using Trd.Runtime.Data;
using Trd.Runtime.Lora;
using Trd.Runtime.Training;

namespace Trd.Runtime.Pipeline;

/// <summary>One evaluation sample: the response, whether it hit the budget, and the verifier's outcome.</summary>
public sealed record EvalSample(
    [property: JsonPropertyName("text")] string Text,
    [property: JsonPropertyName("tokens")] int Tokens,
    [property: JsonPropertyName("truncated")] bool Truncated,
    [property: JsonPropertyName("correct")] bool Correct);

/// <summary>The K samples of one problem, kept raw so any metric can be recomputed.</summary>
public sealed record EvalRecord(
    [property: JsonPropertyName("id")] string Id,
    [property: JsonPropertyName("dataset")] string Dataset,
    [property: JsonPropertyName("answer")] string Answer,
    [property: JsonPropertyName("seed")] long Seed,
    [property: JsonPropertyName("samples")] EvalSample[] Samples);

/// <summary>One dataset's scores for one model.</summary>
public sealed record DatasetScores(
    [property: JsonPropertyName("dataset")] string Dataset,
    [property: JsonPropertyName("problems")] int Problems,
    [property: JsonPropertyName("k")] int K,
    [property: JsonPropertyName("avg_at_k")] double AvgAtK,
    [property: JsonPropertyName("pass_at_k")] double PassAtK,
    [property: JsonPropertyName("pass_at_k_curve")] double[] PassAtKCurve,
    [property: JsonPropertyName("buckets")] BucketScores[] Buckets)
{
    /// <summary>
    /// The verdicts behind the scores, per problem id (K each), as this evaluation computed them: kept in memory for a
    /// caller that aggregates further (the study), not written (the samples file, <see cref="SamplesPath"/>, holds them).
    /// </summary>
    [JsonIgnore] public IReadOnlyDictionary<string, bool[]>? Outcomes { get; init; }

    /// <summary>The samples file the scores were computed from (eval/&lt;model&gt;/&lt;dataset&gt;.jsonl).</summary>
    [JsonIgnore] public string? SamplesPath { get; init; }
}

/// <summary>Avg@K and Pass@K over the problems of one base-difficulty bucket.</summary>
public sealed record BucketScores(
    [property: JsonPropertyName("bucket")] string Bucket,
    [property: JsonPropertyName("problems")] int Problems,
    [property: JsonPropertyName("avg_at_k")] double AvgAtK,
    [property: JsonPropertyName("pass_at_k")] double PassAtK);

/// <summary>A model's evaluation: per dataset and macro-averaged over datasets.</summary>
public sealed record EvalSummary(
    [property: JsonPropertyName("model")] string Model,
    [property: JsonPropertyName("datasets")] DatasetScores[] Datasets,
    [property: JsonPropertyName("macro_avg_at_k")] double MacroAvgAtK,
    [property: JsonPropertyName("macro_pass_at_k")] double MacroPassAtK);

public sealed partial class TrdPipeline
{
    /// <summary>The names of the evaluated models: "base" (the untrained student) and "trained".</summary>
    public const string BaseModelName = "base", TrainedModelName = "trained";

    /// <summary>Summaries and reports: indented, NaN (an empty bucket) written as null (<see cref="RunJson"/>).</summary>
    static JsonSerializerOptions ReportJson => RunJson.Indented;

    /// <summary>
    /// Evaluates the base student (when eval.base) and the trained one (adapters merged, as the paper does before
    /// evaluation) on every eval problem file: K samples per problem, raw samples in <c>eval/&lt;model&gt;/&lt;dataset&gt;.jsonl</c>
    /// (resumable like the stages), scores in <c>eval/&lt;model&gt;/summary.json</c>. Difficulty buckets come from the
    /// base model's pass counts. Returns the summaries, base first.
    /// </summary>
    public IReadOnlyList<EvalSummary> Evaluate()
    {
        var summaries = new List<EvalSummary>();
        if (Config.Eval.Problems.Length == 0) { _log("eval: no eval.problems given; skipped"); return summaries; }
        var datasets = EvalDatasets();

        // A served student (issue 14) evaluates on its server: the base as served, the trained one with its PEFT adapter loaded.
        using var served = Served(Config.Student, StudentDirectory);
        Dictionary<string, int[]>? basePasses = null;
        if (Config.Eval.Base)
        {
            if (served is not null) summaries.Add(EvaluateModel(BaseModelName, StudentTokenizer, served, datasets, null, out basePasses));
            else
            {
                var baseModel = ModelStore.Load(StudentDirectory, Device, Config.Student.Dtype);
                using (baseModel.Model)
                    summaries.Add(EvaluateModel(BaseModelName, baseModel.Tokenizer, new TorchGenerator(baseModel.Model, BaseModelName), datasets, null, out basePasses));
            }
        }
        var checkpoint = TrainerCheckpoint.Latest(Path.Combine(TrainDirectory, Trainer.CheckpointsFolder));
        var adapter = checkpoint is null ? null : Path.Combine(checkpoint, TrainerCheckpoint.AdapterFolder);
        if (checkpoint is null) _log("eval: the base model only (this run has no training checkpoint yet)");
        else if (served is not null && System.IO.Directory.Exists(adapter))
        {
            var name = AdapterName(adapter!);
            _log($"eval: the trained student's adapter {adapter} is loaded on {served.Name} as '{name}'");
            summaries.Add(EvaluateModel(TrainedModelName, StudentTokenizer, served.WithAdapter(name, adapter!), datasets, basePasses, out _));
        }
        else
        {
            if (served is not null) _log("eval: the trained student has no adapter (full fine-tuning), so it is evaluated in-process");
            var trained = ModelStore.Load(StudentDirectory, Device, Config.Student.Dtype);
            using (trained.Model)
            {
                TrainerCheckpoint.LoadWeights(checkpoint, trained.Model);
                PeftAdapter.Merge(trained.Model);
                summaries.Add(EvaluateModel(TrainedModelName, trained.Tokenizer, new TorchGenerator(trained.Model, TrainedModelName), datasets, basePasses, out _));
            }
        }
        return summaries;
    }

    /// <summary>
    /// The name a trained adapter is loaded under on a server: "trd-" and the first 12 hex digits of its weights' SHA-256,
    /// so a name never stands for two different adapters (a server keeps the first adapter loaded under a name).
    /// </summary>
    static string AdapterName(string directory)
    {
        using var stream = File.OpenRead(Path.Combine(directory, PeftAdapter.WeightsFileName));
        return "trd-" + Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(stream))[..12];
    }

    (string Name, IReadOnlyList<Problem> Problems)[] EvalDatasets()
    {
        var datasets = Config.Eval.Problems.Select(path => (Name: Path.GetFileNameWithoutExtension(path), Problems: ProblemSet.Load(path))).ToArray();
        var duplicate = datasets.GroupBy(d => d.Name).FirstOrDefault(g => g.Count() > 1);
        if (duplicate is not null) throw new ConfigException($"eval.problems: two files are named '{duplicate.Key}'; datasets are named by file name");
        return datasets;
    }

    /// <summary>
    /// Evaluates any model directory (the OPD teacher, a checkpoint merged elsewhere) on the eval problems exactly as the
    /// base student is evaluated, into <c>eval/&lt;name&gt;/</c>; difficulty buckets from its own pass counts.
    /// </summary>
    public EvalSummary EvaluateDirectory(string name, string modelDirectory)
    {
        if (string.IsNullOrWhiteSpace(name) || name.IndexOfAny(Path.GetInvalidFileNameChars()) >= 0)
            throw new ArgumentException($"'{name}' cannot name an eval directory", nameof(name));
        if (Config.Eval.Problems.Length == 0) throw new ConfigException("eval.problems: no eval problem file given");
        var datasets = EvalDatasets();
        var model = ModelStore.Load(modelDirectory, Device, Config.Student.Dtype);
        using (model.Model) return EvaluateModel(name, model.Tokenizer, new TorchGenerator(model.Model, name), datasets, null, out _);
    }

    EvalSummary EvaluateModel(string name, Tokenization.ITokenizer tokenizer, ITrajectoryGenerator generator, (string Name, IReadOnlyList<Problem> Problems)[] datasets,
        Dictionary<string, int[]>? basePasses, out Dictionary<string, int[]> passes)
    {
        var directory = Path.Combine(EvalDirectory, name);
        System.IO.Directory.CreateDirectory(directory);
        passes = new Dictionary<string, int[]>();
        var scores = new List<DatasetScores>();
        var builder = new PromptBuilder(tokenizer, Config.EnableThinking);
        var k = Config.Eval.K;
        foreach (var (dataset, problems) in datasets)
        {
            var path = Path.Combine(directory, dataset + ".jsonl");
            var records = RecordFile.ReadUnique<EvalRecord>(path, r => r.Id, _log).ToDictionary(r => r.Id);
            var batches = problems.Chunk(Config.Eval.Sampling.BatchSize).ToArray();
            var started = DateTime.UtcNow;
            long tokens = 0;
            for (var b = 0; b < batches.Length; b++)
            {
                var batch = batches[b];
                var count = Math.Min((b + 1) * Config.Eval.Sampling.BatchSize, problems.Count);
                if (batch.All(p => records.ContainsKey(p.Id))) { Report($"eval {name}/{dataset}", count, problems.Count, tokens, started); continue; }
                var seeds = batch.Select((_, row) => PromptSeed(EvalStream, b, row)).ToArray();
                var prompts = batch.Select(p => builder.Initial(p.Question, Config.Eval.Sampling.PromptBudget)
                    ?? throw new ConfigException($"eval.sampling.prompt_budget = {Config.Eval.Sampling.PromptBudget}: the prompt of {dataset}/{p.Id} is longer")).ToArray();
                var samples = generator.Generate(prompts.Select(p => p.Ids).ToArray(), Sampling(Config.Eval.Sampling, seeds, k));
                var fresh = new List<EvalRecord>();
                for (var i = 0; i < batch.Length; i++)
                {
                    var problem = batch[i];
                    var mine = samples.Skip(i * k).Take(k).Select(s =>
                    {
                        tokens += s.Tokens.Length;
                        var text = ResponseText(tokenizer, s.Tokens);
                        return new EvalSample(text, s.Tokens.Length, s.Truncated, Verifier.Verify(text, problem.Answer));
                    }).ToArray();
                    if (records.ContainsKey(problem.Id)) continue;
                    var record = new EvalRecord(problem.Id, dataset, problem.Answer, seeds[i], mine);
                    fresh.Add(record);
                    records[problem.Id] = record;
                }
                RecordFile.Append(path, fresh);
                Report($"eval {name}/{dataset}", count, problems.Count, tokens, started);
            }
            var ordered = problems.Select(p => records[p.Id]).ToArray();
            var outcomes = ordered.Select(r => r.Samples.Select(s => s.Correct).ToArray()).ToArray();
            var passCounts = outcomes.Select(o => o.Count(x => x)).ToArray();
            passes[dataset] = passCounts;
            var bucketsFrom = basePasses is not null && basePasses.TryGetValue(dataset, out var bp) ? bp : passCounts;
            var buckets = k < 2 ? Array.Empty<BucketScores>() : Metrics.Buckets(k).Select(bucket =>
            {
                var members = outcomes.Where((o, i) => bucketsFrom[i] >= bucket.Low && bucketsFrom[i] <= bucket.High).ToArray();
                return new BucketScores(bucket.Label, members.Length,
                    members.Length == 0 ? double.NaN : Metrics.AvgAtK(members), members.Length == 0 ? double.NaN : Metrics.PassAtK(members));
            }).ToArray();
            scores.Add(new DatasetScores(dataset, problems.Count, k, Metrics.AvgAtK(outcomes), Metrics.PassAtK(outcomes), Metrics.PassAtKCurve(outcomes), buckets)
            {
                Outcomes = problems.Select((p, i) => (p.Id, outcomes[i])).ToDictionary(x => x.Id, x => x.Item2), SamplesPath = path,
            });
            _log($"eval {name}/{dataset}: Avg@{k} {scores[^1].AvgAtK:P1}  Pass@{k} {scores[^1].PassAtK:P1} over {problems.Count} problems");
        }
        var summary = new EvalSummary(name, scores.ToArray(), scores.Average(s => s.AvgAtK), scores.Average(s => s.PassAtK));
        Checkpoints.AtomicFile.Write(Path.Combine(directory, "summary.json"), s => JsonSerializer.Serialize(s, summary, ReportJson));
        return summary;
    }
}
