using System.Text.Json;
using System.Text.Json.Serialization;

namespace Trd.Runtime.Study;

// The schema of a study's results.json: everything report.html shows, aggregated from the run artefacts under the
// study directory. Every aggregate names the files it was computed from (Sources, paths relative to the study
// directory), so each number in the report traces to a file on disk.

/// <summary>A mean with a 95% interval: over seeds and problems by a two-level bootstrap (see Trd.Core.Bootstrap).</summary>
public sealed record Estimate(
    [property: JsonPropertyName("mean")] double Mean,
    [property: JsonPropertyName("low")] double Low,
    [property: JsonPropertyName("high")] double High,
    [property: JsonPropertyName("seeds")] int Seeds,
    [property: JsonPropertyName("problems")] int Problems);

/// <summary>One seed's score of one model: the value and the eval file it came from.</summary>
public sealed record SeedScore(
    [property: JsonPropertyName("seed")] long Seed,
    [property: JsonPropertyName("avg_at_k")] double AvgAtK,
    [property: JsonPropertyName("pass_at_k")] double PassAtK,
    [property: JsonPropertyName("source")] string Source)
{
    /// <summary>The model seed whose student and teacher the run seed used (1 unless <c>--model-seeds</c>).</summary>
    [JsonPropertyName("model_seed")] public int ModelSeed { get; init; } = 1;
}

/// <summary>Avg@K and Pass@K of one model over one base-difficulty bucket (Fig. 8), base buckets per seed.</summary>
public sealed record BucketEstimate(
    [property: JsonPropertyName("bucket")] string Bucket,
    [property: JsonPropertyName("problems")] double Problems,
    [property: JsonPropertyName("avg_at_k")] Estimate AvgAtK,
    [property: JsonPropertyName("pass_at_k")] Estimate PassAtK);

/// <summary>
/// One row of Tables 1–4: a model (base, teacher, or a method trained from the base) in one setting, with its change
/// from base (paired over seeds and problems; null for the base row itself).
/// </summary>
public sealed record ResultRow(
    [property: JsonPropertyName("setting")] string Setting,
    [property: JsonPropertyName("model")] string Model,
    [property: JsonPropertyName("label")] string Label,
    [property: JsonPropertyName("trajectory")] string? Trajectory,
    [property: JsonPropertyName("avg_at_k")] Estimate AvgAtK,
    [property: JsonPropertyName("pass_at_k")] Estimate PassAtK,
    [property: JsonPropertyName("delta_avg_at_k")] Estimate? DeltaAvgAtK,
    [property: JsonPropertyName("delta_pass_at_k")] Estimate? DeltaPassAtK,
    [property: JsonPropertyName("buckets")] BucketEstimate[] Buckets,
    [property: JsonPropertyName("pass_at_k_curve")] double[] PassAtKCurve,
    [property: JsonPropertyName("per_seed")] SeedScore[] PerSeed);

/// <summary>One diagnostic over optimiser steps: the mean over seeds with the min and max as a band.</summary>
public sealed record Series(
    [property: JsonPropertyName("steps")] long[] Steps,
    [property: JsonPropertyName("mean")] double[] Mean,
    [property: JsonPropertyName("min")] double[] Min,
    [property: JsonPropertyName("max")] double[] Max);

/// <summary>Fig. 3's diagnostics of one method's training run, one series per metric of train/metrics.jsonl.</summary>
public sealed record DiagnosticRun(
    [property: JsonPropertyName("setting")] string Setting,
    [property: JsonPropertyName("method")] string Method,
    [property: JsonPropertyName("label")] string Label,
    [property: JsonPropertyName("trajectory")] string Trajectory,
    [property: JsonPropertyName("series")] Dictionary<string, Series> Metrics,
    [property: JsonPropertyName("sources")] string[] Sources);

/// <summary>Length summary (tokens) of one kind of trajectory, optionally split by verdict.</summary>
public sealed record LengthStats(
    [property: JsonPropertyName("count")] int Count,
    [property: JsonPropertyName("mean")] double Mean,
    [property: JsonPropertyName("median")] double Median,
    [property: JsonPropertyName("p10")] double P10,
    [property: JsonPropertyName("p90")] double P90,
    [property: JsonPropertyName("values")] int[] Values);

/// <summary>
/// Fig. 5 (left) and Figs. 6–7 for one setting's training corpus, pooled over seeds: lengths and verifier accuracy
/// of y*, y_o, y_r, and the 2×2 joint outcome of (y_o, y_r).
/// </summary>
public sealed record TrajectoryAnalysis(
    [property: JsonPropertyName("setting")] string Setting,
    [property: JsonPropertyName("lengths")] Dictionary<string, LengthStats> Lengths,
    [property: JsonPropertyName("accuracy")] Dictionary<string, Estimate> Accuracy,
    [property: JsonPropertyName("joint")] JointCounts Joint,
    [property: JsonPropertyName("sources")] string[] Sources);

/// <summary>The 2×2 joint outcome of y_o and y_r (pass→pass, pass→fail, fail→pass, fail→fail), summed over seeds.</summary>
public sealed record JointCounts(
    [property: JsonPropertyName("pass_pass")] int PassPass,
    [property: JsonPropertyName("pass_fail")] int PassFail,
    [property: JsonPropertyName("fail_pass")] int FailPass,
    [property: JsonPropertyName("fail_fail")] int FailFail);

/// <summary>App. B.3: one method trained on one subset of the corpus, and its change from the no-subset row.</summary>
public sealed record SubsetRow(
    [property: JsonPropertyName("setting")] string Setting,
    [property: JsonPropertyName("method")] string Method,
    [property: JsonPropertyName("subset")] string Subset,
    [property: JsonPropertyName("examples")] int Examples,
    [property: JsonPropertyName("avg_at_k")] Estimate AvgAtK,
    [property: JsonPropertyName("pass_at_k")] Estimate PassAtK,
    [property: JsonPropertyName("delta_avg_at_k")] Estimate? DeltaAvgAtK,
    [property: JsonPropertyName("delta_pass_at_k")] Estimate? DeltaPassAtK,
    [property: JsonPropertyName("sources")] string[] Sources);

/// <summary>One claim of the paper and what this study measured for it.</summary>
public sealed record ClaimResult(
    [property: JsonPropertyName("id")] string Id,
    [property: JsonPropertyName("setting")] string Setting,
    [property: JsonPropertyName("claim")] string Claim,
    [property: JsonPropertyName("verdict")] string Verdict,
    [property: JsonPropertyName("measured")] string Measured,
    [property: JsonPropertyName("rule")] string Rule);

/// <summary>
/// TRD against the best baseline of one setting on one metric (the grid's heatmaps): the baseline with the highest
/// mean, the paired TRD − baseline estimate, and the per-problem differences it came from ([unit][problem], with each
/// unit's model seed as its bootstrap group), so that two cells of a grid can be contrasted from results.json alone.
/// </summary>
public sealed record BestBaselineGap(
    [property: JsonPropertyName("setting")] string Setting,
    [property: JsonPropertyName("metric")] string Metric,
    [property: JsonPropertyName("baseline")] string Baseline,
    [property: JsonPropertyName("gap")] Estimate Gap,
    [property: JsonPropertyName("groups")] int[] Groups,
    [property: JsonPropertyName("values")] double[][] Values);

/// <summary>
/// What a baseline's objective did on the gym (issue: baselines that mean something): the clip fraction of Forward
/// KL w/ Clip and the teacher mass a top-K support drops, mean over steps and units, for every method's run.
/// </summary>
public sealed record ObjectiveCheck(
    [property: JsonPropertyName("setting")] string Setting,
    [property: JsonPropertyName("method")] string Method,
    [property: JsonPropertyName("clip_fraction")] Estimate ClipFraction,
    [property: JsonPropertyName("teacher_mass_outside_topk")] Estimate? TeacherMassOutsideTopK,
    [property: JsonPropertyName("topk")] int TopK);

/// <summary>A gym model's own card (card.json): what it measured on unseen pretraining-split problems.</summary>
public sealed record ModelCardSummary(
    [property: JsonPropertyName("role")] string Role,
    [property: JsonPropertyName("model_seed")] int ModelSeed,
    [property: JsonPropertyName("directory")] string Directory,
    [property: JsonPropertyName("solve_accuracy")] double SolveAccuracy,
    [property: JsonPropertyName("refine_accuracy")] double? RefineAccuracy,
    [property: JsonPropertyName("refine_with_reference_accuracy")] double? RefineWithReferenceAccuracy);

/// <summary>What was run: the models, the problems, the seeds, the machine and the time it took.</summary>
public sealed record StudyInfo(
    [property: JsonPropertyName("command")] string Command,
    [property: JsonPropertyName("quick")] bool Quick,
    [property: JsonPropertyName("seeds")] long[] Seeds,
    [property: JsonPropertyName("settings")] string[] Settings,
    [property: JsonPropertyName("methods")] string[] Methods,
    [property: JsonPropertyName("k")] int K,
    [property: JsonPropertyName("train_problems")] int TrainProblems,
    [property: JsonPropertyName("heldout_problems")] int HeldoutProblems,
    [property: JsonPropertyName("models")] Dictionary<string, string> Models,
    [property: JsonPropertyName("machine")] string Machine,
    [property: JsonPropertyName("started")] DateTime Started,
    [property: JsonPropertyName("seconds")] double Seconds,
    [property: JsonPropertyName("versions")] Dictionary<string, string> Versions)
{
    /// <summary>Independent trainings of the student and teacher; each ran every seed (<c>--model-seeds</c>).</summary>
    [JsonPropertyName("model_seeds")] public int ModelSeeds { get; init; } = 1;
}

/// <summary>results.json: the whole study.</summary>
public sealed record StudyResults(
    [property: JsonPropertyName("study")] StudyInfo Study,
    [property: JsonPropertyName("rows")] ResultRow[] Rows,
    [property: JsonPropertyName("diagnostics")] DiagnosticRun[] Diagnostics,
    [property: JsonPropertyName("trajectories")] TrajectoryAnalysis[] Trajectories,
    [property: JsonPropertyName("subsets")] SubsetRow[]? Subsets,
    [property: JsonPropertyName("claims")] ClaimResult[] Claims)
{
    /// <summary>TRD − best baseline per setting and metric (Avg@K, Pass@K).</summary>
    [JsonPropertyName("best_baseline")] public BestBaselineGap[]? BestBaseline { get; init; }
    /// <summary>Clip fraction and dropped top-K teacher mass of every method's run.</summary>
    [JsonPropertyName("objective_checks")] public ObjectiveCheck[]? ObjectiveChecks { get; init; }
    /// <summary>The models' cards (solve and refinement accuracy), every model seed.</summary>
    [JsonPropertyName("model_cards")] public ModelCardSummary[]? ModelCards { get; init; }
    /// <summary>The gym variant's turned knobs (absent for the default gym).</summary>
    [JsonPropertyName("gym")] public Dictionary<string, string>? Gym { get; init; }

    /// <summary>results.json's name in the study directory.</summary>
    public const string FileName = "results.json";

    /// <summary>Indented; NaN (an empty bucket) written as null (<see cref="Data.RunJson"/>).</summary>
    public static JsonSerializerOptions Json => Data.RunJson.Indented;

    /// <summary>Reads results.json from a study directory.</summary>
    public static StudyResults Read(string studyDirectory)
    {
        var path = Path.Combine(studyDirectory, FileName);
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: no results.json (has `trd study` finished in this directory?)", path);
        return JsonSerializer.Deserialize<StudyResults>(File.ReadAllText(path), Json)
            ?? throw new InvalidDataException($"{path}: empty");
    }

    /// <summary>Writes results.json into a study directory atomically.</summary>
    public void Write(string studyDirectory) =>
        Checkpoints.AtomicFile.Write(Path.Combine(studyDirectory, FileName), s => JsonSerializer.Serialize(s, this, Json));
}
