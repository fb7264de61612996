using System.Text.Json;
using Trd.Core;
using Trd.Runtime.Checkpoints;
using Trd.Runtime.Data;
using Trd.Runtime.Gym;
using Trd.Runtime.Logging;
using Trd.Runtime.Pipeline;
using GymTask = Trd.Core.Gym;
using static TorchSharp.torch;

namespace Trd.Runtime.Study;

/// <summary>
/// The paper's comparison on the gym (docs/study.md): for each seed, the base student and the OPD teacher are
/// evaluated; then for OPD and for OPSD one corpus of rollouts y_o and refinements y_r is drawn from the base student,
/// and each method (four dense-KL baselines on y_o, TRD on y_r) is trained from the same base student on it and
/// evaluated with K samples per held-out problem. Every run is an ordinary pipeline run directory, so each stage
/// resumes, and results.json is aggregated from their files.
/// </summary>
/// <remarks>
/// Layout (model seed 1; with <c>--model-seeds N</c>, model seed M ≥ 2 has the same under <c>model-M/</c>):
/// <c>problems/{corpus,heldout}.jsonl</c>; <c>seed-S/reference/eval/{base,teacher}/</c>;
/// <c>seed-S/&lt;setting&gt;/</c> (the shared corpus and its analysis); <c>seed-S/&lt;setting&gt;/&lt;method&gt;/</c>
/// (training and evaluation of one method; <c>&lt;method&gt;@&lt;subset&gt;</c> for the subset ablation);
/// <c>results.json</c>, <c>report.html</c>, <c>plotly.min.js</c>.
/// </remarks>
public sealed class GymStudy
{
    readonly StudyOptions _options;
    readonly Action<string> _log;
    readonly IProgressSink? _progress;

    /// <summary>A study over validated options.</summary>
    public GymStudy(StudyOptions options, Action<string>? log = null, IProgressSink? progress = null)
    {
        _options = (options ?? throw new ArgumentNullException(nameof(options))).Validated();
        _log = log ?? (_ => { });
        _progress = progress;
    }

    /// <summary>The study directory.</summary>
    public string Directory => _options.Directory;
    /// <summary>The held-out problem file.</summary>
    public string HeldoutPath => Path.Combine(Directory, "problems", "heldout.jsonl");
    /// <summary>The corpus problem file.</summary>
    public string CorpusPath => Path.Combine(Directory, "problems", "corpus.jsonl");

    /// <summary>The subset ablation's methods and subsets (App. B.3, OPSD).</summary>
    public static readonly ComparisonRow[] SubsetMethods = [Methods.ForwardKl, Methods.ReverseKl, Methods.Trd];
    /// <summary>The subset ablation's filters (App. B.3; "all" is the method's own row).</summary>
    public static readonly SubsetFilter[] SubsetFilters = [SubsetFilter.Fail, SubsetFilter.Succ, SubsetFilter.FailToSucc];

    /// <summary>The run directory of the reference evaluations of one seed (model seed 1).</summary>
    public static string ReferenceDirectory(string study, long seed) => ReferenceDirectory(study, new StudyUnit(1, seed));
    /// <summary>The corpus run directory of one seed (model seed 1) and setting.</summary>
    public static string CorpusDirectory(string study, long seed, Setting setting) => CorpusDirectory(study, new StudyUnit(1, seed), setting);
    /// <summary>The run directory of one method (and subset, when not null or all), model seed 1.</summary>
    public static string MethodDirectory(string study, long seed, Setting setting, ComparisonRow method, SubsetFilter? subset = null) =>
        MethodDirectory(study, new StudyUnit(1, seed), setting, method, subset);

    /// <summary>The run directory of the reference evaluations of one unit.</summary>
    public static string ReferenceDirectory(string study, StudyUnit unit) => Path.Combine(study, unit.Folder, "reference");
    /// <summary>The corpus run directory of one unit and setting.</summary>
    public static string CorpusDirectory(string study, StudyUnit unit, Setting setting) => Path.Combine(study, unit.Folder, setting.ConfigName);
    /// <summary>The run directory of one method (and subset, when not null or all) of one unit: &lt;method&gt; or &lt;method&gt;@&lt;subset&gt;.</summary>
    public static string MethodDirectory(string study, StudyUnit unit, Setting setting, ComparisonRow method, SubsetFilter? subset = null) =>
        Path.Combine(CorpusDirectory(study, unit, setting),
            subset is null || subset.IsAll ? method.ConfigName : $"{method.ConfigName}@{CorpusAnalysis.FilterName(subset)}");

    /// <summary>Runs (or resumes) everything, then aggregates results.json. Returns the results.</summary>
    public StudyResults Run()
    {
        using var held = RunLock.Acquire(Directory, _options.Command, _log);   // one study process per directory
        var started = DateTime.UtcNow;
        var models = Enumerable.Range(1, _options.ModelSeeds).Select(PrepareModels).ToArray();   // [model seed − 1]
        WriteProblems();
        var perUnit = 1 + _options.Settings.Length * (1 + _options.Methods.Length
            + (_options.Subsets && _options.Settings.Contains(Setting.Opsd) ? SubsetMethods.Length * SubsetFilters.Length / _options.Settings.Length : 0));
        var tracker = new ProgressTracker("study", _options.Units.Length * perUnit, _progress);
        var evaluated = new List<EvalSummary>();     // what the steps computed, kept for the aggregation
        foreach (var unit in _options.Units)
        {
            var (student, teacher) = models[unit.ModelSeed - 1];
            var (baseScores, teacherScores) = EvaluateReference(unit, student, teacher);
            evaluated.AddRange([baseScores, teacherScores]);
            tracker.Advance(1);
            foreach (var setting in _options.Settings)
            {
                DrawCorpus(unit, setting, student, teacher);
                tracker.Advance(1);
                var runs = _options.Methods.Select(m => (Method: m, Subset: SubsetFilter.All)).ToList();
                if (_options.Subsets && setting == Setting.Opsd)
                    runs.AddRange(SubsetMethods.SelectMany(m => SubsetFilters.Select(f => (Method: m, Subset: f))));
                foreach (var (method, subset) in runs)
                {
                    evaluated.Add(TrainAndEvaluate(unit, setting, method, student, teacher, subset));
                    tracker.Advance(1);
                }
            }
        }
        var manifest = RunManifest.Capture(_options.Command, _options.Plan(), _options.Seeds[0], TorchSharp.torch.CPU, Directory);
        var versions = manifest.VersionsWithGit();
        var modelNames = new Dictionary<string, string> { ["student"] = Path.GetFileName(models[0].Student), ["teacher"] = Path.GetFileName(models[0].Teacher) };
        for (var m = 2; m <= models.Length; m++)
        {
            modelNames[$"student_{m}"] = Path.GetFileName(models[m - 1].Student);
            modelNames[$"teacher_{m}"] = Path.GetFileName(models[m - 1].Teacher);
        }
        var info = new StudyInfo(_options.Command, _options.Quick, _options.Seeds, _options.Settings.Select(s => s.ConfigName).ToArray(),
            _options.Methods.Select(m => m.Id).ToArray(), _options.K, _options.TrainProblems, _options.HeldoutProblems,
            modelNames, $"{manifest.OperatingSystem}, {manifest.ProcessorCount} cores, {manifest.Runtime}, cpu", started, (DateTime.UtcNow - started).TotalSeconds, versions)
        { ModelSeeds = _options.ModelSeeds };
        var results = new StudyAggregator(Directory, _options, StudyAggregator.LoadTokenizer(models[0].Student), evaluated).Aggregate(info);
        results.Write(Directory);
        return results;
    }

    /// <summary>
    /// Records the plan in study.json (refusing a directory that holds another), takes the models from the cache or
    /// trains them there, and writes the problem files. Returns the student's and the teacher's model directories
    /// (model seed 1).
    /// </summary>
    public (string Student, string Teacher) Prepare()
    {
        var models = PrepareModels(1);
        WriteProblems();
        return models;
    }

    /// <summary>
    /// Records the plan in study.json (refusing a directory that holds another) and takes the student and teacher of
    /// one model seed from the cache, or trains them there. Returns their model directories.
    /// </summary>
    public (string Student, string Teacher) PrepareModels(int modelSeed)
    {
        System.IO.Directory.CreateDirectory(Directory);
        WritePlan();
        var (studentRecipe, teacherRecipe) = _options.ModelsOf(modelSeed);
        var student = GymModels.Ensure(studentRecipe, _options.CacheRoot, _log, _progress);
        var teacher = GymModels.Ensure(teacherRecipe, _options.CacheRoot, _log, _progress);
        return (student, teacher);
    }

    /// <summary>seed-S/reference: the base student and the OPD teacher, K samples per held-out problem. Returns (base, teacher).</summary>
    public (EvalSummary Base, EvalSummary Teacher) EvaluateReference(long seed, string student, string teacher) =>
        EvaluateReference(new StudyUnit(1, seed), student, teacher);

    /// <summary>The reference evaluations of one unit (its folder's reference/). Returns (base, teacher).</summary>
    public (EvalSummary Base, EvalSummary Teacher) EvaluateReference(StudyUnit unit, string student, string teacher)
    {
        using var reference = new TrdPipeline(Config(unit.Seed, Setting.Opd, Recipes.Trd, student, teacher) with { Eval = EvalConfig(baseModel: true) },
            ReferenceDirectory(Directory, unit), _log, _progress);
        var summaries = reference.Evaluate();
        return (summaries[0], reference.EvaluateDirectory(TeacherModelName, teacher));
    }

    /// <summary>seed-S/&lt;setting&gt;: the shared corpus of one seed and setting (rollouts y_o, refinements y_r) and its analysis.</summary>
    public CorpusReport DrawCorpus(long seed, Setting setting, string student, string teacher) =>
        DrawCorpus(new StudyUnit(1, seed), setting, student, teacher);

    /// <summary>The shared corpus of one unit and setting, and its analysis.</summary>
    public CorpusReport DrawCorpus(StudyUnit unit, Setting setting, string student, string teacher)
    {
        using var pipeline = new TrdPipeline(Config(unit.Seed, setting, Recipes.Trd, student, teacher), CorpusDirectory(Directory, unit, setting), _log, _progress);
        pipeline.Rollout();
        pipeline.Refine();
        return pipeline.Analyze();
    }

    /// <summary>
    /// Trains one method from the base student on the seed and setting's corpus (drawn first with
    /// <see cref="DrawCorpus(long, Setting, string, string)"/>) and evaluates it. <paramref name="recipe"/> replaces the method's
    /// recipe; <paramref name="directory"/> (default <see cref="MethodDirectory(string, long, Setting, ComparisonRow, SubsetFilter?)"/>) is
    /// the run directory. Returns the trained model's summary.
    /// </summary>
    public EvalSummary TrainAndEvaluate(long seed, Setting setting, ComparisonRow method, string student, string teacher, SubsetFilter? subset = null,
        Recipe? recipe = null, string? directory = null) =>
        TrainAndEvaluate(new StudyUnit(1, seed), setting, method, student, teacher, subset, recipe, directory);

    /// <summary>One method of one unit, as <see cref="TrainAndEvaluate(long, Setting, ComparisonRow, string, string, SubsetFilter?, Recipe?, string?)"/>.</summary>
    public EvalSummary TrainAndEvaluate(StudyUnit unit, Setting setting, ComparisonRow method, string student, string teacher, SubsetFilter? subset = null,
        Recipe? recipe = null, string? directory = null)
    {
        using var pipeline = Trained(unit, setting, method, student, teacher, subset, recipe, directory);
        return pipeline.Evaluate().Single(s => s.Model == TrdPipeline.TrainedModelName);
    }

    /// <summary>
    /// Trains one method of one unit (resuming what is there) and returns its pipeline, for evaluation or inspection
    /// (the caller disposes it). The benchmark's stress run calls it in a loop.
    /// </summary>
    public TrdPipeline Trained(StudyUnit unit, Setting setting, ComparisonRow method, string student, string teacher, SubsetFilter? subset = null,
        Recipe? recipe = null, string? directory = null)
    {
        var corpus = CorpusDirectory(Directory, unit, setting);
        if (!File.Exists(Path.Combine(corpus, "corpus", CorpusStore.RefinementsStage + ".jsonl")))
            throw new InvalidOperationException($"{corpus}: no corpus yet for {unit}, {setting}: call DrawCorpus first");
        directory ??= MethodDirectory(Directory, unit, setting, method, subset);
        var config = Config(unit.Seed, setting, recipe ?? Methods.RecipeOf(method, setting), student, teacher);
        // Every method of a (unit, setting) trains on the one corpus drawn for it, read in place.
        var pipeline = new TrdPipeline(config with { Corpus = Path.Combine(corpus, "corpus"), Train = config.Train with { Subset = subset ?? SubsetFilter.All } },
            directory, _log, _progress);
        try { pipeline.Train(resume: true); }
        catch { pipeline.Dispose(); throw; }
        return pipeline;
    }

    /// <summary>The eval directory name of the OPD teacher.</summary>
    public const string TeacherModelName = "teacher";

    void WritePlan()
    {
        var path = Path.Combine(Directory, "study.json");
        var plan = _options.Plan().ToJsonString(new JsonSerializerOptions { WriteIndented = true });
        if (File.Exists(path) && File.ReadAllText(path) != plan)
            throw new ArgumentException($"{path}: this directory holds a study with another plan; choose another --out or delete it");
        if (!File.Exists(path)) AtomicFile.WriteText(path, plan);
    }

    void WriteProblems()
    {
        if (!File.Exists(CorpusPath)) AtomicFile.WriteText(CorpusPath, ProblemsJsonl(GymSplit.Corpus, _options.TrainProblems, _options.Variant.Level));
        if (!File.Exists(HeldoutPath)) AtomicFile.WriteText(HeldoutPath, ProblemsJsonl(GymSplit.Heldout, _options.HeldoutProblems, _options.Variant.Level));
    }

    /// <summary>
    /// The study's problems of a split as JSONL (id, problem, answer, solution): the first <paramref name="count"/> of a
    /// fixed stream per split (corpus: seed 101, held-out: seed 202), so a smaller plan takes a prefix of a larger one.
    /// configs/gym-corpus.jsonl and gym-heldout.jsonl are the default plan's (192 and 64; a test holds them to this).
    /// </summary>
    public static string ProblemsJsonl(GymSplit split, int count) => ProblemsJsonl(split, count, GymTask.DefaultLevel);

    /// <summary>The study's problems of a split at a level (<c>--grid terms=…</c>), drawn as <see cref="ProblemsJsonl(GymSplit, int)"/>.</summary>
    public static string ProblemsJsonl(GymSplit split, int count, GymLevel level)
    {
        var (prefix, seed) = split == GymSplit.Heldout ? ("heldout", 202UL) : ("corpus", 101UL);
        var problems = GymTask.Problems(seed, level, split, count, prefix);
        return string.Concat(problems.Select(p => JsonSerializer.Serialize(new
        {
            id = p.Id, problem = GymTask.Question(p.Terms), answer = GymTask.Answer(p.Terms), solution = GymTask.Solution(p.Terms),
        }) + "\n"));
    }

    EvalConfig EvalConfig(bool baseModel) => new()
    {
        Problems = [HeldoutPath], K = _options.K, Base = baseModel,
        Sampling = new SamplingConfig { MaxNewTokens = _options.Variant.ResponseBudget, PromptBudget = 256, BatchSize = 16 },
    };

    /// <summary>The refinement prompt's budget: 512 tokens at the default response budget (96), 3 more per extra response token.</summary>
    int RefinePromptBudget => 512 + 3 * (_options.Variant.ResponseBudget - 96);

    /// <summary>The pipeline config of one run of the study (gym models, gym budgets, LoRA distillation).</summary>
    PipelineConfig Config(long seed, Setting setting, Recipe recipe, string student, string teacher) => new()
    {
        Seed = seed, Setting = setting, Recipe = recipe, Device = "cpu", EnableThinking = false,
        Student = new ModelSpec { Path = student, Dtype = ScalarType.Float32 },
        Teacher = setting == Setting.Opd ? new ModelSpec { Path = teacher, Dtype = ScalarType.Float32 } : null,
        Problems = CorpusPath,
        Rollout = new SamplingConfig { MaxNewTokens = _options.Variant.ResponseBudget, PromptBudget = 256, BatchSize = 64 },
        Refine = new RefineConfig { MaxNewTokens = _options.Variant.ResponseBudget, PromptBudget = RefinePromptBudget, BatchSize = 64, OnEmpty = EmptyRewritePolicy.Rollout, OnTruncated = TruncatedRewritePolicy.Keep },
        Train = new TrainConfig
        {
            Lora = new LoraSpec { Rank = 8, Alpha = 16, Dropout = 0.05 }, LearningRate = 2e-3, WarmupRatio = 0.1, FloorRatio = 0.1,
            MicroBatch = 16, GradAccum = 1, Epochs = 2, MaxLength = Math.Max(512, RefinePromptBudget), SaveEvery = 1000, ChunkSize = 256, Tensorboard = false,
        },
        Eval = EvalConfig(baseModel: false),
    };
}
