using System.Diagnostics;
using Trd.Core;
using Trd.Runtime.Data;
using Trd.Runtime.Models;
using Trd.Runtime.Objectives;
using Trd.Runtime.Scoring;
using TorchSharp;
using static TorchSharp.torch;

namespace Trd.Runtime.Training;

/// <summary>
/// One optimiser step of stage 3 (Eq. 2 / Eq. 6): for each micro-batch the teacher scores the trajectories under its
/// context without gradients, the student scores them under its own with gradients, and the fused executor adds the
/// recipe's loss — normalised by the step's global token count, so accumulation gives the token mean over the whole
/// step (Trd.Core.Reduction) — and its diagnostics. Then the gradients are clipped and AdamW updates.
/// </summary>
public sealed class Distiller
{
    readonly Qwen3ForCausalLM _student;
    readonly Qwen3ForCausalLM? _teacher;
    readonly TeacherScoreStore? _scores;
    readonly bool _selfTeacher;
    readonly Recipe _recipe;
    readonly ObjectiveOptions _options;

    /// <summary>
    /// A distiller. With <paramref name="teacher"/> the same object as <paramref name="student"/> (OPSD with LoRA),
    /// the teacher is the student's backbone with its adapters switched off.
    /// </summary>
    public Distiller(Qwen3ForCausalLM student, Qwen3ForCausalLM teacher, Recipe recipe, int chunkSize, long[]? epistemicTokenIds)
    {
        _student = student ?? throw new ArgumentNullException(nameof(student));
        _teacher = teacher ?? throw new ArgumentNullException(nameof(teacher));
        _selfTeacher = ReferenceEquals(student, teacher);
        _recipe = recipe.Validate();
        if (student.Config.VocabSize != teacher.Config.VocabSize)
            throw new ArgumentException($"student V = {student.Config.VocabSize} but teacher V = {teacher.Config.VocabSize}: distillation needs one vocabulary");
        _options = Options(recipe, chunkSize, epistemicTokenIds);
    }

    /// <summary>
    /// A distiller that reads the teacher from stored scores (its top-K per position, <see cref="TeacherScoreStore"/>)
    /// instead of a model in memory: the recipe must be one a top-K teacher can evaluate (Trd.Core.SparseTeacher.problems),
    /// and every example's trajectory must be stored under its id.
    /// </summary>
    public Distiller(Qwen3ForCausalLM student, TeacherScoreStore scores, Recipe recipe, int chunkSize, long[]? epistemicTokenIds)
    {
        _student = student ?? throw new ArgumentNullException(nameof(student));
        _scores = scores ?? throw new ArgumentNullException(nameof(scores));
        _recipe = recipe.Validate();
        if (SparseTeacher.Problems(recipe, scores.K) is { Length: > 0 } problems) throw new ArgumentException(string.Join("; ", problems), nameof(recipe));
        _options = Options(recipe, chunkSize, epistemicTokenIds);
    }

    /// <summary>
    /// The K whose dropped teacher mass every step reports: the recipe's own when its support is the teacher's top-K,
    /// else the paper's K (32), so every run says how much a top-K support would have dropped on its trajectories.
    /// </summary>
    public static int TopKMassK(Recipe recipe) => recipe.Support switch
    {
        Support.TeacherTopK k => k.K,
        Support.TeacherTopKWithTail k => k.K,
        _ => Recipes.PaperTopK,
    };

    static ObjectiveOptions Options(Recipe recipe, int chunkSize, long[]? epistemicTokenIds) =>
        new()
        {
            ChunkSize = chunkSize, TokenLogProbs = true, EpistemicTokenIds = epistemicTokenIds is { Length: > 0 } ? epistemicTokenIds : null,
            TeacherTopKMassK = TopKMassK(recipe),
        };

    /// <summary>
    /// Accumulates the gradient of one step's examples in micro-batches of <paramref name="microBatch"/>, then clips
    /// and updates. <paramref name="seedOf"/> gives each micro-batch's dropout seed (a resumed run replays it).
    /// </summary>
    public StepMetrics Step(long step, IReadOnlyList<TrainExample> examples, int microBatch, AdamW optimiser, double lr, double gradClip,
        Func<int, long> seedOf, int cut = 0)
    {
        if (examples.Count == 0) throw new ArgumentException("a step needs at least one example", nameof(examples));
        var clock = Stopwatch.StartNew();
        // A shaped recipe first measures every position of the step (no gradient), then Trd.Core plans the step: which
        // trajectories count, each position's weight, advantage and switch, and the token count (after the filter).
        var plan = _recipe.IsShaped ? Plan(examples, microBatch) : null;
        var globalTokens = plan?.Tokens ?? examples.Sum(e => (double)e.Trajectory.Length);
        double loss = 0, pre = 0, post = 0, clipped = 0, tokens = 0, epistemic = 0, lpS = 0, lpT = 0, outsideTopK = 0;
        double correctSum = 0, correctTokens = 0, incorrectSum = 0, incorrectTokens = 0;
        var options = _options with { Normaliser = globalTokens };
        optimiser.ZeroGrad();
        var micro = 0;
        var first = 0;
        foreach (var batch in examples.Chunk(microBatch))
        {
            var indices = Enumerable.Range(first, batch.Length).ToArray();
            first += batch.Length;
            var seed = seedOf(micro++);
            if (plan is not null && indices.All(i => !plan.Kept[i])) continue;                                      // all filtered
            using var scope = NewDisposeScope();
            using var generator = new Generator((ulong)seed, _student.OutputWeight.device);
            foreach (var (_, layer) in _student.LinearLayers()) layer.DropoutGenerator = generator;
            using var teacherScores = _scores is null ? ScoreTeacher(batch) : null;
            _student.train();
            using var studentScores = TeacherForcing.Score(_student, batch.Select(e => new ScoringPair(e.StudentContext, e.Trajectory)).ToArray());
            var device = studentScores.Hidden.device;
            var mask = plan is null ? ones(studentScores.Hidden.shape[0], device: device) : PositionShaping.KeptMask(plan, indices, device); // [N]
            using var shaping = plan is null ? null : PositionShaping.FromPlan(_recipe, plan, indices, device);
            using var result = teacherScores is not null
                ? ObjectiveExecutor.Fused(_recipe, studentScores.Hidden, studentScores.OutputWeight,
                    teacherScores.Hidden.detach(), teacherScores.OutputWeight.detach(), mask, studentScores.Targets, options with { Shaping = shaping })
                : AgainstStoredScores(batch, studentScores, mask, options);
            result.Loss.backward();
            using (var wide = result.Loss.detach().to(ScalarType.Float64)) loss += wide.item<double>();
            tokens += result.Tokens;
            pre += result.KlPreClip * result.Tokens;
            post += result.KlPostClip * result.Tokens;
            clipped += result.ClipFraction * result.Tokens;
            // Sums over the positions that count: every position, or those of the kept trajectories under a filter.
            double Counted(Tensor perPosition) => plan is null
                ? perPosition.to(ScalarType.Float64).sum().item<double>()
                : (perPosition.to(ScalarType.Float64) * mask.to(ScalarType.Float64)).sum().item<double>();
            lpS += Counted(result.StudentTokenLogProbs!);
            lpT += Counted(result.TeacherTokenLogProbs!);
            if (result.EpistemicMass is { } mass) epistemic += Counted(mass);
            if (result.TeacherMassOutsideTopK is { } outside) outsideTopK += Counted(outside);
            var perPosition = result.PerPosition.to(ScalarType.Float64).cpu().data<double>().ToArray();        // [N]
            var offset = 0;
            for (var b = 0; b < batch.Length; b++)
            {
                var example = batch[b];
                var length = example.Trajectory.Length;
                var d = perPosition.Skip(offset).Take(length).Sum();
                offset += length;
                if (plan is not null && !plan.Kept[indices[b]]) continue;
                if (example.RolloutCorrect) { correctSum += d; correctTokens += length; }
                else { incorrectSum += d; incorrectTokens += length; }
            }
        }
        foreach (var (_, layer) in _student.LinearLayers()) layer.DropoutGenerator = null;
        var norm = optimiser.ClipGradients(gradClip);
        optimiser.Step(lr);
        optimiser.ZeroGrad();
        var seconds = clock.Elapsed.TotalSeconds;
        return new StepMetrics
        {
            Step = step, Loss = loss, KlPreClip = pre / tokens, KlPostClip = post / tokens, ClipFraction = clipped / tokens,
            KlCorrect = correctTokens > 0 ? correctSum / correctTokens : double.NaN,
            KlIncorrect = incorrectTokens > 0 ? incorrectSum / incorrectTokens : double.NaN,
            PplStudent = Math.Exp(-lpS / tokens), PplTeacher = Math.Exp(-lpT / tokens),
            EpistemicMass = _options.EpistemicTokenIds is null ? double.NaN : epistemic / tokens,
            TeacherMassOutsideTopK = outsideTopK / tokens, TopKMassK = _options.TeacherTopKMassK ?? 0,
            GradNorm = norm, LearningRate = lr, Tokens = tokens, Sequences = examples.Count, Cut = cut,
            TokensPerSecond = tokens / Math.Max(seconds, 1e-9),
            Shaping = plan is null ? null : new ShapingMetrics
            {
                WeightMean = plan.WeightMean, WeightStd = plan.WeightStd, MaskedFraction = plan.MaskedFraction,
                SwitchedFraction = _recipe.Switch.IsOutliers ? plan.SwitchedFraction : double.NaN, TrajectoriesFiltered = plan.Filtered,
            },
        };
    }

    /// <summary>
    /// The first pass of a shaped recipe: the teacher and the student (eval mode, no dropout, no gradient) score every
    /// micro-batch, ShapedStatistics measures each position, and Trd.Core.StepPlan plans the whole step from them.
    /// </summary>
    StepPlan Plan(IReadOnlyList<TrainExample> examples, int microBatch)
    {
        var trajectories = new List<TrajectoryStatistics>();
        foreach (var batch in examples.Chunk(microBatch))
        {
            using var scope = NewDisposeScope();
            using var teacherScores = ScoreTeacher(batch);
            PositionStatistics[] positions;
            using (no_grad())
            {
                _student.eval();
                using var studentScores = TeacherForcing.Score(_student, batch.Select(e => new ScoringPair(e.StudentContext, e.Trajectory)).ToArray());
                positions = ShapedStatistics.Fused(_recipe, studentScores.Hidden, studentScores.OutputWeight, teacherScores.Hidden,
                    teacherScores.OutputWeight, studentScores.Targets, _options.ChunkSize);
            }
            trajectories.AddRange(ShapedStatistics.Split(positions, batch.Select(e => e.Trajectory.Length).ToArray(), batch.Select(e => e.RolloutCorrect).ToArray()));
        }
        return StepPlanModule.Plan(_recipe, trajectories.ToArray());
    }

    /// <summary>The teacher model's scores of the micro-batch under its context, without gradients.</summary>
    ScoredPositions ScoreTeacher(TrainExample[] batch)
    {
        using (no_grad())
        {
            _teacher!.eval();
            if (_selfTeacher) _student.SetAdaptersEnabled(false);
            try { return TeacherForcing.Score(_teacher, batch.Select(e => new ScoringPair(e.TeacherContext, e.Trajectory)).ToArray()); }
            finally { if (_selfTeacher) _student.SetAdaptersEnabled(true); }
        }
    }

    /// <summary>
    /// The objective against the stored top-K (SparseTeacherObjective over the student's [N, V] logits). The teacher's
    /// token log-probabilities are the stored ones; its epistemic mass is the mass of the epistemic ids within its top-K.
    /// </summary>
    ObjectiveResult AgainstStoredScores(TrainExample[] batch, ScoredPositions student, Tensor mask, ObjectiveOptions options)
    {
        var stored = batch.Select(e =>
        {
            var s = _scores!.Read(e.Id);
            if (s.Positions != e.Trajectory.Length)
                throw new InvalidOperationException($"{_scores.Directory}: {e.Id} is stored with {s.Positions} positions, its trajectory has {e.Trajectory.Length}");
            return s;
        }).ToArray();
        var n = student.Hidden.shape[0];
        var k = _scores!.K;
        var device = student.Hidden.device;
        var ids = tensor(stored.SelectMany(s => s.Ids).Select(x => (long)x).ToArray(), device: device).view(n, k);      // [N, K]
        var logProbs = tensor(stored.SelectMany(s => s.LogProbs).ToArray(), device: device).view(n, k);                // [N, K]
        var targetLogProbs = tensor(stored.SelectMany(s => s.TargetLogProbs).ToArray(), device: device);             // [N]
        var result = SparseTeacherObjective.Evaluate(_recipe, student.Logits(), ids, logProbs, mask, targetLogProbs, student.Targets,
            options with { TokenLogProbs = false, EpistemicTokenIds = null });
        using (no_grad())
        {
            Tensor? epistemic = null;
            if (options.EpistemicTokenIds is { } e)
            {
                var isEpistemic = isin(ids, tensor(e, device: device));                                                   // [N, K]
                epistemic = logProbs.exp().mul(isEpistemic.to(ScalarType.Float32)).sum(-1);                              // [N]
            }
            Tensor? outside = null;
            if (options.TeacherTopKMassK is { } topK)   // the stored top-K bounds what is known: mass past it counts as dropped
                outside = logProbs.exp().topk((int)Math.Min(topK, k), dim: -1).values.sum(-1).neg().add_(Scalars.One, Scalars.One);         // [N]
            return new ObjectiveResult
            {
                Loss = result.Loss, KlPreClip = result.KlPreClip, KlPostClip = result.KlPostClip, ClipFraction = result.ClipFraction,
                Tokens = result.Tokens, PerPosition = result.PerPosition,
                StudentTokenLogProbs = student.TokenLogProbs(options.ChunkSize), TeacherTokenLogProbs = targetLogProbs, EpistemicMass = epistemic,
                TeacherMassOutsideTopK = outside,
            };
        }
    }
}
