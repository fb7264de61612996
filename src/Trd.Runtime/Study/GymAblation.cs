using System.Security.Cryptography;
using System.Text;
using Trd.Core;
using Trd.Runtime.Logging;
using Trd.Runtime.Pipeline;

namespace Trd.Runtime.Study;

/// <summary>One trained arm of an ablation: its recipe, run directory and held-out scores.</summary>
public sealed record AblationArm(string Name, Setting Setting, Recipe Recipe, string Directory, EvalSummary Summary)
{
    /// <summary>Avg@K on the held-out problems (mean correct fraction over the K samples of each problem).</summary>
    public double AvgAtK => Summary.MacroAvgAtK;
    /// <summary>Pass@K on the held-out problems.</summary>
    public double PassAtK => Summary.MacroPassAtK;
    /// <summary>The raw samples behind the scores (eval/trained/heldout.jsonl).</summary>
    public string SamplesPath => Path.Combine(Directory, "eval", TrdPipeline.TrainedModelName, "heldout.jsonl");
    /// <summary>The per-step training diagnostics.</summary>
    public string MetricsPath => Path.Combine(Directory, "train", "metrics.jsonl");
}

/// <summary>The base student's and the OPD teacher's held-out scores, with the raw samples behind them.</summary>
public sealed record ReferenceScores(EvalSummary Base, EvalSummary Teacher, string BaseSamplesPath, string TeacherSamplesPath);

/// <summary>
/// Ablations on the gym for scripts and notebooks: the study's models, problem files, corpora and training budget
/// (<see cref="GymStudy"/>), with any recipe, e.g. a swept clip constant or one composed in a script. One corpus per
/// setting is drawn once and shared by every arm; each arm trains from the base student in its own run directory
/// <c>seed-S/&lt;setting&gt;/arm-&lt;name&gt;-&lt;hash&gt;</c> (the hash is of the objective's fields), so running a script
/// again reuses what is done and a changed recipe gets a new directory.
/// </summary>
public sealed class GymAblation
{
    readonly GymStudy _study;
    readonly long _seed;
    readonly Lazy<(string Student, string Teacher)> _models;
    readonly HashSet<Setting> _drawn = [];

    /// <summary>
    /// An ablation directory (default sizes: --quick's, 64 corpus and 32 held-out problems, K = 16). The plan is kept
    /// in study.json like a study's; a directory holding another plan is refused.
    /// </summary>
    public GymAblation(string directory, string? cacheRoot = null, long seed = 1, int trainProblems = 64, int heldoutProblems = 32, int k = 16,
        Action<string>? log = null, IProgressSink? progress = null)
    {
        _seed = seed;
        var options = new StudyOptions
        {
            Directory = Path.GetFullPath(directory), CacheRoot = cacheRoot ?? Gym.GymModels.DefaultCacheRoot(),
            Seeds = [seed], TrainProblems = trainProblems, HeldoutProblems = heldoutProblems, K = k, Methods = [Methods.Trd],
            Command = "GymAblation",
        };
        _study = new GymStudy(options, log, progress);
        _models = new Lazy<(string, string)>(_study.Prepare);
    }

    /// <summary>The ablation directory.</summary>
    public string Directory => _study.Directory;

    /// <summary>The gym student's model directory (trained into the cache on first use).</summary>
    public string StudentDirectory => _models.Value.Student;

    /// <summary>The OPD teacher's model directory.</summary>
    public string TeacherDirectory => _models.Value.Teacher;

    /// <summary>The base student's and the teacher's held-out scores (evaluated once, then read back).</summary>
    public ReferenceScores Reference()
    {
        var (baseSummary, teacherSummary) = _study.EvaluateReference(_seed, StudentDirectory, TeacherDirectory);
        string Samples(string model) => Path.Combine(GymStudy.ReferenceDirectory(Directory, _seed), "eval", model, "heldout.jsonl");
        return new ReferenceScores(baseSummary, teacherSummary, Samples(TrdPipeline.BaseModelName), Samples(GymStudy.TeacherModelName));
    }

    /// <summary>Trains <paramref name="recipe"/> in <paramref name="setting"/> on that setting's shared corpus and evaluates it.</summary>
    public AblationArm Run(Setting setting, Recipe recipe)
    {
        ArgumentNullException.ThrowIfNull(setting);
        ArgumentNullException.ThrowIfNull(recipe);
        recipe.Validate();
        var directory = ArmDirectory(setting, recipe);
        // Once per setting and process: drawing is resumable, but its analysis would be redone for every arm.
        if (_drawn.Add(setting)) _study.DrawCorpus(_seed, setting, StudentDirectory, TeacherDirectory);
        var summary = _study.TrainAndEvaluate(_seed, setting, Methods.Trd, StudentDirectory, TeacherDirectory, recipe: recipe, directory: directory);
        return new AblationArm(recipe.Name, setting, recipe, directory, summary);
    }

    /// <summary>Trains and evaluates each recipe in turn (in one setting).</summary>
    public IReadOnlyList<AblationArm> Sweep(Setting setting, IEnumerable<Recipe> recipes) => recipes.Select(r => Run(setting, r)).ToList();

    /// <summary>
    /// The run directory of one arm: a slug of the recipe's name and a hash of its fields (not of its name, which does
    /// not change what is trained; two names for one objective are still two directories).
    /// </summary>
    public string ArmDirectory(Setting setting, Recipe recipe)
    {
        var spec = ObjectiveSpec.From(recipe);
        var hash = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(spec.Canonical())))[..8];
        var slug = new string(recipe.Name.ToLowerInvariant().Select(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '-' ? c : '-').ToArray()).Trim('-');
        while (slug.Contains("--")) slug = slug.Replace("--", "-");
        if (slug.Length > 40) slug = slug[..40].TrimEnd('-');
        return Path.Combine(GymStudy.CorpusDirectory(Directory, _seed, setting), $"arm-{slug}-{hash}");
    }
}
