using Trd.Core;

namespace Trd.Runtime.Study;

/// <summary>What <c>trd study</c> runs: the plan (seeds, problem counts, settings, methods) and where.</summary>
public sealed record StudyOptions
{
    /// <summary>The study directory.</summary>
    public required string Directory { get; init; }
    /// <summary>The gym model cache root (see <see cref="Gym.GymModels.DefaultCacheRoot"/>).</summary>
    public required string CacheRoot { get; init; }
    /// <summary>Study seeds: each runs rollouts, refinements, training and evaluation anew from the same models.</summary>
    public long[] Seeds { get; init; } = [1, 2, 3];
    /// <summary>
    /// Independent trainings of the student and teacher (model seeds 1 … N, <see cref="Gym.GymModelRecipe.WithModelSeed"/>);
    /// every study seed runs under each, and the bootstrap resamples model seeds, then study seeds, then problems.
    /// </summary>
    public int ModelSeeds { get; init; } = 1;

    /// <summary>Every (model seed, study seed) the plan runs, model seed first.</summary>
    public StudyUnit[] Units => Enumerable.Range(1, ModelSeeds).SelectMany(m => Seeds.Select(s => new StudyUnit(m, s))).ToArray();
    /// <summary>Problems in the distillation corpus (the gym's corpus split).</summary>
    public int TrainProblems { get; init; } = 192;
    /// <summary>Held-out evaluation problems (the gym's held-out split).</summary>
    public int HeldoutProblems { get; init; } = 64;
    /// <summary>Samples per held-out problem (Avg@K, Pass@K).</summary>
    public int K { get; init; } = 16;
    /// <summary>OPD, OPSD or both.</summary>
    public Setting[] Settings { get; init; } = Setting.All;
    /// <summary>The methods compared: the paper's five (<see cref="Trd.Core.Methods.All"/>, the default) and any shaped methods (<see cref="Trd.Core.Methods.Shaped"/>); TRD must be one.</summary>
    public ComparisonRow[] Methods { get; init; } = Trd.Core.Methods.All;
    /// <summary>Also run App. B.3's subset-filter ablation (OPSD; Forward KL, Reverse KL and TRD on fail, succ, fail→succ).</summary>
    public bool Subsets { get; init; }
    /// <summary>The <c>--quick</c> plan: one seed, fewer problems (CI).</summary>
    public bool Quick { get; init; }
    /// <summary>The student's recipe (default <see cref="Gym.GymModels.Student"/>).</summary>
    public Gym.GymModelRecipe Student { get; init; } = Gym.GymModels.Student;
    /// <summary>The OPD teacher's recipe (default <see cref="Gym.GymModels.Teacher"/>).</summary>
    public Gym.GymModelRecipe Teacher { get; init; } = Gym.GymModels.Teacher;
    /// <summary>
    /// The gym variant (docs/gym.md, "Knobs"): applied to <see cref="Student"/> and <see cref="Teacher"/>, and setting
    /// the problems' level and the response budgets. Default: the gym as shipped.
    /// </summary>
    public Gym.GymVariant Variant { get; init; } = Gym.GymVariant.Default;
    /// <summary>The command line, recorded in results.json.</summary>
    public string Command { get; init; } = "trd study";

    /// <summary>The quick plan of <c>--quick</c>: one seed, 64 corpus problems, 32 held-out problems.</summary>
    public StudyOptions AsQuick() => this with { Quick = true, Seeds = [Seeds[0]], TrainProblems = 64, HeldoutProblems = 32 };

    /// <summary>The same options with other model recipes (for F# callers, which cannot use <c>with</c> on C# records).</summary>
    public StudyOptions WithModels(Gym.GymModelRecipe student, Gym.GymModelRecipe teacher) => this with { Student = student, Teacher = teacher };

    /// <summary>The student's and the teacher's recipes of one model seed.</summary>
    public (Gym.GymModelRecipe Student, Gym.GymModelRecipe Teacher) ModelsOf(int modelSeed) =>
        (Variant.Apply(Student).WithModelSeed(modelSeed), Variant.Apply(Teacher).WithModelSeed(modelSeed));

    /// <summary>The same options with other methods and samples per problem (for F# callers).</summary>
    public StudyOptions WithComparison(ComparisonRow[] methods, int k) => this with { Methods = methods, K = k };

    /// <summary>The same options with other seeds and problem counts (for F# callers).</summary>
    public StudyOptions WithPlan(long[] seeds, int trainProblems, int heldoutProblems) =>
        this with { Seeds = seeds, TrainProblems = trainProblems, HeldoutProblems = heldoutProblems };

    /// <summary>
    /// The plan as study.json records it (and the manifest): seeds, sizes, settings and methods by their config words,
    /// the models' keys. A directory holding another plan is refused.
    /// </summary>
    public System.Text.Json.Nodes.JsonObject Plan()
    {
        var node = System.Text.Json.JsonSerializer.SerializeToNode(new
        {
            seeds = Seeds, train_problems = TrainProblems, heldout_problems = HeldoutProblems, k = K,
            settings = Settings.Select(s => s.ConfigName), methods = Methods.Select(m => m.ConfigName), subsets = Subsets,
            student = Variant.Apply(Student).Key, teacher = Variant.Apply(Teacher).Key, gym_version = Gym.GymModels.Version,
        })!.AsObject();
        if (!Variant.IsDefault) node["gym"] = Variant.ToJson();   // the default plan reads as it always did
        if (ModelSeeds > 1) node["model_seeds"] = ModelSeeds;   // a one-model-seed plan reads as it always did
        return node;
    }

    /// <summary>Raises <see cref="ArgumentException"/> naming the bad value.</summary>
    public StudyOptions Validated()
    {
        if (Seeds.Length == 0) throw new ArgumentException("study: at least one seed");
        if (Seeds.Distinct().Count() != Seeds.Length) throw new ArgumentException($"study: seeds repeat ({string.Join(", ", Seeds)})");
        if (ModelSeeds < 1) throw new ArgumentException($"study: --model-seeds {ModelSeeds}: at least 1");
        if (TrainProblems < 8) throw new ArgumentException($"study: --train-problems {TrainProblems}: at least 8");
        if (HeldoutProblems < 4) throw new ArgumentException($"study: --heldout-problems {HeldoutProblems}: at least 4");
        if (K < 2) throw new ArgumentException($"study: K = {K}: at least 2 (Pass@K and the buckets need several samples)");
        if (Settings.Length == 0 || Settings.Any(s => s is null)) throw new ArgumentException("study: at least one setting, none null");
        if (Settings.Distinct().Count() != Settings.Length) throw new ArgumentException($"study: settings repeat ({string.Join(", ", Settings.Select(s => s.ConfigName))})");
        if (Methods.Any(m => m is null || !m.IsMethod)) throw new ArgumentException("study: every method must be one of the paper's five (Trd.Core.Methods.All) or a shaped method (Trd.Core.Methods.Shaped)");
        if (Methods.Distinct().Count() != Methods.Length) throw new ArgumentException($"study: methods repeat ({string.Join(", ", Methods.Select(m => m.ConfigName))})");
        if (!Methods.Contains(Trd.Core.Methods.Trd)) throw new ArgumentException("study: the methods must include trd (the claims compare against it)");
        return this;
    }
}

/// <summary>
/// One (model seed, study seed) of a study: the run seed <paramref name="Seed"/> under the student and teacher of model
/// seed <paramref name="ModelSeed"/>. Its runs live in <c>seed-S/</c> for model seed 1 and <c>model-M/seed-S/</c> otherwise,
/// so a one-model-seed study keeps the layout it always had.
/// </summary>
public sealed record StudyUnit(int ModelSeed, long Seed)
{
    /// <summary>The unit's folder, relative to the study directory.</summary>
    public string Folder => ModelSeed == 1 ? $"seed-{Seed}" : Path.Combine($"model-{ModelSeed}", $"seed-{Seed}");

    /// <summary>"seed S" or "model seed M, seed S".</summary>
    public override string ToString() => ModelSeed == 1 ? $"seed {Seed}" : $"model seed {ModelSeed}, seed {Seed}";
}
