using Trd.Core;
using Trd.Runtime.Data;
using Trd.Runtime.Logging;
using Trd.Runtime.Models;
using Trd.Runtime.Training;

namespace Trd.Runtime.Pipeline;

/// <summary>How the corpus became training sequences: what was used, what was skipped and why.</summary>
public sealed record ExampleCounts
{
    /// <summary>Records in the corpus.</summary>
    public int Records { get; init; }
    /// <summary>Removed by the subset filter.</summary>
    public int FilteredOut { get; init; }
    /// <summary>Trained along y_r.</summary>
    public int Refined { get; init; }
    /// <summary>Trained along y_o.</summary>
    public int Rollout { get; init; }
    /// <summary>y_r empty, by policy skipped or replaced by y_o.</summary>
    public int Empty { get; init; }
    /// <summary>y_r truncated, by policy skipped, replaced by y_o or kept.</summary>
    public int Truncated { get; init; }
    /// <summary>Refinement prompt over budget (skipped or replaced by y_o, as empty rewrites are).</summary>
    public int PromptOverBudget { get; init; }
    /// <summary>Skipped in all.</summary>
    public int Skipped { get; init; }
}

public sealed partial class TrdPipeline
{
    /// <summary>
    /// The training sequences of the corpus under the recipe (stage 3's input): baselines along y_o with the
    /// vanilla teacher context; TRD along y_r with the refinement context (Trd.Core's <c>Recipe.TeacherContext</c>).
    /// Empty, truncated and over-budget rewrites follow refine.on_empty / refine.on_truncated; every choice is counted.
    /// </summary>
    public (IReadOnlyList<TrainExample> Examples, ExampleCounts Counts) BuildExamples()
    {
        var store = CorpusStore.Open(CorpusDirectory);
        var rollouts = store.ReadRollouts();
        if (rollouts.Count == 0) throw new InvalidOperationException($"{CorpusDirectory}: no rollouts; run the rollout stage first");
        var refinements = store.ReadRefinements().ToDictionary(r => r.Id);
        var needsRefinement = Recipe.Trajectory == Trajectory.Refined || Config.Train.Subset.IsFailToSucc;
        if (needsRefinement && rollouts.FirstOrDefault(r => !refinements.ContainsKey(r.Id)) is { } unrefined)
            throw new InvalidOperationException($"{CorpusDirectory}: problem {unrefined.Id} has no refinement; run the refine stage first");

        var outcomes = rollouts.Select(r => new TrajectoryOutcome(r.Id, r.YOCorrect, refinements.TryGetValue(r.Id, out var f) && f.YRCorrect)).ToArray();
        var keep = CorpusAnalysis.Select(Config.Train.Subset, outcomes).ToHashSet();
        var tokenizer = StudentTokenizer;
        var builder = Builder;
        var vanilla = RecipeModule.TeacherContext(Setting, Recipe.WithTeacherPrompt(TeacherPrompt.Vanilla).WithTrajectory(Trajectory.Rollout));
        var teacherParts = RecipeModule.TeacherContext(Setting, Recipe);
        var examples = new List<TrainExample>();
        int empty = 0, truncated = 0, overBudget = 0, skipped = 0, refined = 0, rollout = 0;
        foreach (var r in rollouts)
        {
            if (!keep.Contains(r.Id)) continue;
            var student = builder.Encode(Prompts.Initial(r.Question));
            TrainExample AlongRollout() =>
                new(r.Id, student, builder.Encode(PromptBuilder.UserMessage(vanilla, r.Question, r.Solution, null)), r.YOTokens, r.YOCorrect, "y_o");
            if (Recipe.Trajectory == Trajectory.Rollout) { examples.Add(AlongRollout()); rollout++; continue; }

            var f = refinements[r.Id];
            var policy = f.Status switch
            {
                "ok" => Use.Refined,
                "empty" => Count(ref empty, Of(Config.Refine.OnEmpty)),
                RefinementRecord.PromptOverBudget => Count(ref overBudget, Of(Config.Refine.OnEmpty)),
                "truncated" => Count(ref truncated, OfTruncated(Config.Refine.OnTruncated)),
                _ => throw new InvalidOperationException($"{CorpusDirectory}: refinement of {r.Id} has an unknown status '{f.Status}'"),
            };
            switch (policy)
            {
                case Use.Refined:
                    examples.Add(new TrainExample(r.Id, student, builder.Encode(PromptBuilder.UserMessage(teacherParts, r.Question, r.Solution, f.Prompt)),
                        f.YRTokens, r.YOCorrect, "y_r"));
                    refined++;
                    break;
                case Use.Rollout: examples.Add(AlongRollout()); rollout++; break;
                default: skipped++; break;
            }
        }
        var counts = new ExampleCounts
        {
            Records = rollouts.Count, FilteredOut = rollouts.Count - keep.Count, Refined = refined, Rollout = rollout,
            Empty = empty, Truncated = truncated, PromptOverBudget = overBudget, Skipped = skipped,
        };
        return (examples, counts);

        static Use Count(ref int counter, Use use) { counter++; return use; }
        static Use Of(EmptyRewritePolicy p) => p == EmptyRewritePolicy.Rollout ? Use.Rollout : Use.Nothing;
        static Use OfTruncated(TruncatedRewritePolicy p) => p switch { TruncatedRewritePolicy.Keep => Use.Refined, TruncatedRewritePolicy.Rollout => Use.Rollout, _ => Use.Nothing };
    }

    /// <summary>
    /// Stage 3: distils the student along the corpus with the recipe; writes checkpoints, <c>train/metrics.jsonl</c>
    /// (one line per optimiser step) and TensorBoard events. With <paramref name="resume"/> it continues from the newest
    /// checkpoint; without, existing checkpoints are an error (nothing is overwritten).
    /// </summary>
    public TrainOutcome Train(bool resume)
    {
        var (examples, counts) = BuildExamples();
        _log($"train: {examples.Count} sequences ({counts.Refined} along y_r, {counts.Rollout} along y_o); {counts.FilteredOut} filtered out, {counts.Skipped} skipped; " +
             $"of the y_r, {counts.Empty} empty, {counts.Truncated} truncated and {counts.PromptOverBudget} over budget, handled as refine.on_empty and on_truncated say");
        System.IO.Directory.CreateDirectory(TrainDirectory);
        Checkpoints.AtomicFile.Write(Path.Combine(TrainDirectory, "examples.json"), s => System.Text.Json.JsonSerializer.Serialize(s, counts));

        var student = Student.Model;
        var stored = Config.Train.TeacherTopK is { } k ? ScoreTeacher(examples, k) : null;
        Models.Qwen3ForCausalLM? teacher;
        if (stored is not null) teacher = null;                       // trained from the stored top-K: no teacher in memory
        else if (Teacher is { } t) teacher = t.Model;
        else if (Config.Train.Lora is not null) teacher = student;    // OPSD: the backbone with adapters off
        else
        {
            // OPSD with full fine-tuning: the teacher is a frozen copy of the initial weights.
            teacher = ModelStore.Load(StudentDirectory, Device, Config.Student.Dtype).Model;
            foreach (var p in teacher.parameters()) p.requires_grad = false;
        }

        var metricsPath = Path.Combine(TrainDirectory, "metrics.jsonl");
        var root = Path.Combine(TrainDirectory, Trainer.CheckpointsFolder);
        var latest = resume && System.IO.Directory.Exists(root) ? TrainerCheckpoint.Latest(root) : null;
        var resumeStep = latest is null ? 0 : TrainerCheckpoint.ReadState(latest).Step;
        if (!resume && File.Exists(metricsPath) && new FileInfo(metricsPath).Length > 0)
            throw new ConfigException($"{metricsPath} already holds a training log; resume the run (--resume) or choose another output directory");
        RestoreMetrics(metricsPath, latest, resumeStep);   // steps after the last checkpoint are recomputed
        using var metrics = new MetricsLog(metricsPath);
        using var board = Config.Train.Tensorboard ? new TensorBoardLog(Path.Combine(TrainDirectory, "tensorboard")) : null;
        var started = DateTime.UtcNow;
        double trained = 0;
        var outcome = Trainer.Run(new TrainRequest(student, teacher, Recipe, examples, Config.Train, Config.Seed, TrainDirectory, EpistemicTokens.Ids(StudentTokenizer))
            { TeacherScores = stored, MetricsPath = metricsPath, BaseModel = AdapterBaseModel() },
            resume,
            m =>
            {
                var values = m.ToDictionary();
                metrics.Write(m.Step, values);
                board?.Scalars(m.Step, values);
                trained += m.Tokens;
                _log($"step {m.Step + 1}: loss {m.Loss:G4}  KL {m.KlPreClip:G4}  lr {m.LearningRate:G3}  |g| {m.GradNorm:G3}  {m.TokensPerSecond:F0} tok/s");
            },
            (done, total) => Report("train", done, total, (long)trained, started));
        _log($"train: {outcome.Steps} steps (resumed after {outcome.ResumedFrom}) → {outcome.Checkpoint}");
        if (teacher is not null && !ReferenceEquals(teacher, student) && Teacher is null) teacher.Dispose();
        return outcome;
    }

    /// <summary>The teacher's stored scores: train/teacher-scores/.</summary>
    public string TeacherScoresDirectory => Path.Combine(TrainDirectory, "teacher-scores");

    /// <summary>
    /// Scores every example's trajectory not yet stored with the teacher's top-K under the recipe's teacher context, in
    /// micro-batches, into <see cref="TeacherScoresDirectory"/>; the teacher is loaded for this alone (OPD: from its
    /// directory, then freed; OPSD: the student's base weights). Resumable: stored trajectories are not scored again.
    /// </summary>
    Data.TeacherScoreStore ScoreTeacher(IReadOnlyList<TrainExample> examples, int k)
    {
        var store = Data.TeacherScoreStore.Open(TeacherScoresDirectory, k);
        var missing = examples.Where(e => !store.Contains(e.Id)).ToArray();
        if (missing.Length == 0)
        {
            _log($"score: the teacher's top-{k} of all {examples.Count} trajectories is stored ({TeacherScoresDirectory})");
            return store;
        }
        // A served teacher (OPD: the teacher's server; OPSD: the student's, whose base weights are the backbone) scores
        // there, one trajectory per request; otherwise the teacher scores in-process a micro-batch at a time.
        var scorer = Setting == Setting.Opsd ? Config.Student : Config.Teacher!;
        using var served = Served(scorer, Setting == Setting.Opsd ? StudentDirectory : scorer.Path);
        using var loaded = served is not null || Setting == Setting.Opsd ? null
            : ModelStore.Load(ModelStore.Materialise(Config.Teacher!, Directory, "teacher"), Device, Config.Teacher!.Dtype).Model;
        var teacher = served is null ? loaded ?? Student.Model : null;   // OPSD: the backbone (no adapters are attached yet)
        teacher?.eval();
        Func<TrainExample[], IEnumerable<Data.TeacherScores>> score = served is not null
            ? batch => served.ScoreTopK(batch.Select(e => new Serving.ScoringRequest(e.Id, e.TeacherContext, e.Trajectory)).ToArray(), k)
            : batch => Scoring.TeacherScoring.TopK(teacher!, batch.Select(e => (e.Id, new Scoring.ScoringPair(e.TeacherContext, e.Trajectory))).ToArray(), k, Config.Train.ChunkSize);
        var started = DateTime.UtcNow;
        long tokens = 0;
        foreach (var batch in missing.Chunk(served is null ? Config.Train.MicroBatch : scorer.Server!.MaxConcurrency))
        {
            using var scope = TorchSharp.torch.NewDisposeScope();
            foreach (var s in score(batch))
            {
                store.Append(s);
                tokens += s.Positions;
            }
            Report("score", store.Ids.Count, examples.Count, tokens, started);
        }
        _log($"score: the teacher's top-{k} of {missing.Length} trajectories{(served is null ? "" : $" from {served.Name}")} ({tokens} tokens, {store.BytesPerToken} bytes per token) → {TeacherScoresDirectory}");
        return store;
    }

    /// <summary>
    /// Rewrites the metrics log as the records of steps before <paramref name="step"/> (atomically): from the
    /// checkpoint's copy when it has one, so a line torn or lost since is restored, else from the log itself.
    /// </summary>
    static void RestoreMetrics(string path, string? checkpoint, long step)
    {
        var copy = checkpoint is null ? null : Path.Combine(checkpoint, TrainerCheckpoint.MetricsFileName);
        var source = copy is not null && File.Exists(copy) ? copy : path;
        if (!File.Exists(source)) return;
        var kept = MetricsLog.Read(source).Records.Where(r => r.Step < step).Select(r => r.Json.GetRawText() + "\n");
        Checkpoints.AtomicFile.Write(path, stream => stream.Write(System.Text.Encoding.UTF8.GetBytes(string.Concat(kept))));
    }

    /// <summary>
    /// The student as the adapters' <c>base_model_name_or_path</c> names it: the path the config gives (a directory or
    /// a Hub-style name, as written), or, for a model the run wrote itself, its path inside the run directory — so the
    /// same config run in two directories writes the same bytes.
    /// </summary>
    string AdapterBaseModel()
    {
        var student = Path.GetFullPath(StudentDirectory);
        var run = Path.GetFullPath(Directory).TrimEnd(Path.DirectorySeparatorChar) + Path.DirectorySeparatorChar;
        if (student.StartsWith(run, StringComparison.Ordinal)) return Path.GetRelativePath(run, student);
        return Config.Student.Path ?? student;
    }
}

/// <summary>What a problem contributes to stage 3: its y_r, its y_o, or nothing.</summary>
enum Use { Refined, Rollout, Nothing }
