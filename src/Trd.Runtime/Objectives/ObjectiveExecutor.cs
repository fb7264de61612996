using Trd.Core;
using TorchSharp;
using static TorchSharp.torch;

namespace Trd.Runtime.Objectives;

/// <summary>
/// Evaluates any <see cref="Recipe"/> on TorchSharp tensors and returns the loss with its diagnostics
/// (pre- and post-clip KL, clip fraction, token count, optionally token log-probabilities and epistemic mass)
/// in one pass. The float64 reference it is tested against is <c>Trd.Core.Objective.evaluate</c>.
/// </summary>
/// <remarks>
/// Three paths compute the same value:
/// <list type="bullet">
/// <item><see cref="FromLogits"/>: chunked over positions from [N, V] logits.</item>
/// <item><see cref="Fused"/>: chunked from hidden states [N, H] and the output projection [V, H]; [N, V] is never
/// materialised, so peak memory is flat in N.</item>
/// <item><see cref="Naive"/>: plain autograd over the full logits — the simple version, kept for tests and benchmarks.</item>
/// </list>
/// The teacher is always a constant (stop-gradient, Eq. 2). Temperature is applied once to both sides.
/// </remarks>
public static class ObjectiveExecutor
{
    /// <summary>
    /// The recipe on student logits [N, V] (differentiable) and teacher logits [N, V], over the positions the
    /// mask [N] selects. targets [N] (int64) are the trajectory's tokens: required by the sampled estimators
    /// and by <see cref="ObjectiveOptions.TokenLogProbs"/>.
    /// </summary>
    public static ObjectiveResult FromLogits(Recipe recipe, Tensor studentLogits, Tensor teacherLogits, Tensor mask,
        Tensor? targets = null, ObjectiveOptions? options = null)
    {
        options ??= ObjectiveOptions.Default;
        ObjectiveInputs.CheckLogitPair(studentLogits, teacherLogits);
        var run = Plan(recipe, options,
            new LogitSource { Input = studentLogits, Name = "student" },
            new LogitSource { Input = teacherLogits, Name = "teacher" }, mask, targets);
        return Result(run, ChunkedObjectiveFunction.apply(studentLogits, run)[0]);
    }

    /// <summary>
    /// The recipe on student hidden states [N, H] with the student's output projection [V, H] (both may be
    /// differentiable) and the teacher's hidden states [N, H_T] with its projection [V, H_T]. Each chunk of
    /// positions is projected, scored and differentiated before the next, so no [N, V] tensor exists.
    /// </summary>
    public static ObjectiveResult Fused(Recipe recipe, Tensor studentHidden, Tensor studentWeight, Tensor teacherHidden,
        Tensor teacherWeight, Tensor mask, Tensor? targets = null, ObjectiveOptions? options = null)
    {
        options ??= ObjectiveOptions.Default;
        ObjectiveInputs.CheckFusedPair(studentHidden, studentWeight, teacherHidden, teacherWeight);
        var run = Plan(recipe, options,
            new LogitSource { Input = studentHidden, Weight = studentWeight, Name = "student" },
            new LogitSource { Input = teacherHidden, Weight = teacherWeight, Name = "teacher" }, mask, targets);
        return Result(run, ChunkedObjectiveFunction.apply(studentHidden, studentWeight, run)[0]);
    }

    /// <summary>
    /// The same objective by plain autograd over the whole [N, V] logits: no chunking, no custom backward.
    /// Memory grows with N; use it as the readable version and the baseline.
    /// </summary>
    public static ObjectiveResult Naive(Recipe recipe, Tensor studentLogits, Tensor teacherLogits, Tensor mask,
        Tensor? targets = null, ObjectiveOptions? options = null)
    {
        options ??= ObjectiveOptions.Default;
        ObjectiveInputs.CheckMatrix(studentLogits, nameof(studentLogits), "[N, V]");
        ObjectiveInputs.CheckMatrix(teacherLogits, nameof(teacherLogits), "[N, V]");
        if (studentLogits.shape[0] != teacherLogits.shape[0])
            throw new ArgumentException($"student has {studentLogits.shape[0]} positions but teacher has {teacherLogits.shape[0]}", nameof(teacherLogits));
        ObjectiveInputs.CheckVocabulary(studentLogits.shape[1], teacherLogits.shape[1]);
        var n = studentLogits.shape[0];
        if (recipe.IsShaped)
            throw new ArgumentException($"recipe '{recipe.Name}' is shaped: it runs through FromLogits or Fused with ObjectiveOptions.Shaping", nameof(recipe));
        ObjectiveInputs.CheckRecipe(recipe, studentLogits.shape[1], options);
        var tokens = ObjectiveInputs.CheckMask(mask, n, studentLogits);
        ObjectiveInputs.CheckTargets(targets, n, studentLogits.shape[1], EstimatorModule.IsSampled(recipe.Estimator),
            $"the sampled estimator {recipe.Estimator}", studentLogits);
        var zs = studentLogits.to(options.ComputeType);
        var zt = teacherLogits.detach().to(options.ComputeType);
        using (no_grad())
        {
            ObjectiveInputs.CheckLogitsChunk(zs, "student logits", 0);
            ObjectiveInputs.CheckLogitsChunk(zt, "teacher logits", 0);
        }
        return Reduce(TensorDivergence.Evaluate(recipe, zs, zt, targets), mask, tokens, options);
    }

    /// <summary>
    /// A block of positions reduced to the loss Σ m_t · contribution_t / normaliser (in the compute dtype, differentiable)
    /// and the diagnostics over the mask (float64 sums), as Trd.Core.Objective.reduce does.
    /// </summary>
    internal static ObjectiveResult Reduce(TensorDivergence.Block block, Tensor mask, double tokens, ObjectiveOptions options)
    {
        var m = mask.to(options.ComputeType);
        var normaliser = options.Normaliser > 0 ? options.Normaliser : tokens;
        using var normaliserScalar = normaliser.ToScalar();
        var loss = (block.Contribution * m).sum().div(normaliserScalar).to(options.ComputeType); // float32, or float64 on request
        using (no_grad())
        {
            var m64 = m.to(ScalarType.Float64);
            return new ObjectiveResult
            {
                Loss = loss,
                KlPreClip = (block.Divergence.detach().to(ScalarType.Float64) * m64).sum().item<double>() / tokens,
                KlPostClip = (block.Contribution.detach().to(ScalarType.Float64) * m64).sum().item<double>() / tokens,
                ClipFraction = (block.Clipped.to(ScalarType.Float64) * m64).sum().item<double>() / tokens,
                Tokens = tokens,
                PerPosition = block.Divergence.detach().to(ScalarType.Float32),
            };
        }
    }

    static ChunkedRun Plan(Recipe recipe, ObjectiveOptions options, LogitSource student, LogitSource teacher, Tensor mask, Tensor? targets)
    {
        var n = student.Positions;
        var v = student.Vocabulary;
        ObjectiveInputs.CheckRecipe(recipe, v, options);
        var tokens = ObjectiveInputs.CheckMask(mask, n, student.Input);
        var pg = recipe.Gradient.IsPolicyGradient;
        ObjectiveInputs.CheckTargets(targets, n, v,
            EstimatorModule.IsSampled(recipe.Estimator) || options.TokenLogProbs || pg,
            EstimatorModule.IsSampled(recipe.Estimator) ? $"the sampled estimator {recipe.Estimator}" : pg ? "the policy-gradient form" : "TokenLogProbs",
            student.Input);
        options.Shaping?.Check(recipe, n, student.Input);
        return new ChunkedRun
        {
            Recipe = recipe,
            Options = options,
            Student = student,
            Teacher = teacher,
            Mask = mask,
            Targets = targets,
            Tokens = tokens,
            ComputeGradients = is_grad_enabled() && (student.Input.requires_grad || student.Weight is { requires_grad: true }),
        };
    }

    /// <summary>The result, with the loss as the autograd node's output (the tensor that carries the graph).</summary>
    static ObjectiveResult Result(ChunkedRun run, Tensor loss) => new()
    {
        Loss = loss,
        KlPreClip = run.PreSum / run.Tokens,
        KlPostClip = run.PostSum / run.Tokens,
        ClipFraction = run.ClippedCount / run.Tokens,
        Tokens = run.Tokens,
        PerPosition = run.PerPosition!,
        StudentTokenLogProbs = run.StudentTokenLogProbs,
        TeacherTokenLogProbs = run.TeacherTokenLogProbs,
        EpistemicMass = run.EpistemicMass,
        TeacherMassOutsideTopK = run.TeacherMassOutsideTopK,
    };
}
