using System.Diagnostics;
using Trd.Core;
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
    readonly Qwen3ForCausalLM _teacher;
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
        _recipe = RecipeModule.Validate(recipe);
        if (student.Config.VocabSize != teacher.Config.VocabSize)
            throw new ArgumentException($"student V = {student.Config.VocabSize} but teacher V = {teacher.Config.VocabSize}: distillation needs one vocabulary");
        _options = new ObjectiveOptions { ChunkSize = chunkSize, TokenLogProbs = true, EpistemicTokenIds = epistemicTokenIds is { Length: > 0 } ? epistemicTokenIds : null };
    }

    /// <summary>
    /// Accumulates the gradient of one step's examples in micro-batches of <paramref name="microBatch"/>, then clips
    /// and updates. <paramref name="seedOf"/> gives each micro-batch's dropout seed (a resumed run replays it).
    /// </summary>
    public StepMetrics Step(long step, IReadOnlyList<TrainExample> examples, int microBatch, AdamW optimiser, double lr, double gradClip,
        Func<int, long> seedOf, int cut = 0)
    {
        if (examples.Count == 0) throw new ArgumentException("a step needs at least one example", nameof(examples));
        var clock = Stopwatch.StartNew();
        var globalTokens = examples.Sum(e => (double)e.Trajectory.Length);
        double loss = 0, pre = 0, post = 0, clipped = 0, tokens = 0, epistemic = 0, lpS = 0, lpT = 0;
        double correctSum = 0, correctTokens = 0, incorrectSum = 0, incorrectTokens = 0;
        var options = _options with { Normaliser = globalTokens };
        optimiser.ZeroGrad();
        var micro = 0;
        foreach (var batch in examples.Chunk(microBatch))
        {
            using var scope = NewDisposeScope();
            using var generator = new Generator((ulong)seedOf(micro++), _student.OutputWeight.device);
            foreach (var (_, layer) in _student.LinearLayers()) layer.DropoutGenerator = generator;
            ScoredPositions teacherScores;
            using (no_grad())
            {
                _teacher.eval();
                if (_selfTeacher) _student.SetAdaptersEnabled(false);
                try { teacherScores = TeacherForcing.Score(_teacher, batch.Select(e => new ScoringPair(e.TeacherContext, e.Trajectory)).ToArray()); }
                finally { if (_selfTeacher) _student.SetAdaptersEnabled(true); }
            }
            _student.train();
            using var studentScores = TeacherForcing.Score(_student, batch.Select(e => new ScoringPair(e.StudentContext, e.Trajectory)).ToArray());
            using var t = teacherScores;
            var n = studentScores.Hidden.shape[0];
            var mask = ones(n, device: studentScores.Hidden.device);                                   // [N]
            using var result = ObjectiveExecutor.Fused(_recipe, studentScores.Hidden, studentScores.OutputWeight,
                t.Hidden.detach(), t.OutputWeight.detach(), mask, studentScores.Targets, options);
            result.Loss.backward();
            using (var wide = result.Loss.detach().to(ScalarType.Float64)) loss += wide.item<double>();
            tokens += result.Tokens;
            pre += result.KlPreClip * result.Tokens;
            post += result.KlPostClip * result.Tokens;
            clipped += result.ClipFraction * result.Tokens;
            lpS += result.StudentTokenLogProbs!.to(ScalarType.Float64).sum().item<double>();
            lpT += result.TeacherTokenLogProbs!.to(ScalarType.Float64).sum().item<double>();
            if (result.EpistemicMass is { } mass) epistemic += mass.to(ScalarType.Float64).sum().item<double>();
            var perPosition = result.PerPosition.to(ScalarType.Float64).cpu().data<double>().ToArray();        // [N]
            for (var i = 0; i < batch.Length; i++)
            {
                var d = perPosition.Skip(studentScores.Offsets[i]).Take(studentScores.Lengths[i]).Sum();
                if (batch[i].RolloutCorrect) { correctSum += d; correctTokens += studentScores.Lengths[i]; }
                else { incorrectSum += d; incorrectTokens += studentScores.Lengths[i]; }
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
            GradNorm = norm, LearningRate = lr, Tokens = tokens, Sequences = examples.Count, Cut = cut,
            TokensPerSecond = tokens / Math.Max(seconds, 1e-9),
        };
    }
}
