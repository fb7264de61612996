using Trd.Core;
using TorchSharp;
using static TorchSharp.torch;

namespace Trd.Runtime.Objectives;

/// <summary>
/// A recipe against a teacher known by its top-K at every position (a served engine's prompt log-probabilities, issue
/// 14 §2): the tensor form of <c>Trd.Core.SparseTeacher.evaluate</c>, the float64 reference it is tested against. The
/// teacher is K + 1 buckets (its top-K and the tail log(1 − Σ_K p)), tempered over those buckets; the student is dense
/// and differentiable. Supports top-K' and top-K' + tail with K' ≤ K, and the sampled estimators; a recipe that needs
/// the teacher's full vocabulary is refused with Core's reason.
/// </summary>
/// <remarks>Plain autograd over [N, V] student logits, like <see cref="ObjectiveExecutor.Naive"/>.</remarks>
public static class SparseTeacherObjective
{
    /// <summary>
    /// studentLogits [N, V] (differentiable); teacherIds [N, K] int64, the teacher's top-K ids, most likely first;
    /// teacherLogProbs [N, K] their log-probabilities at T = 1; teacherTargetLogProbs [N] log π_T(y_t) at T = 1 (sampled
    /// estimators only); mask [N]; targets [N] int64 (sampled estimators only).
    /// </summary>
    public static ObjectiveResult Evaluate(Recipe recipe, Tensor studentLogits, Tensor teacherIds, Tensor teacherLogProbs, Tensor mask,
        Tensor? teacherTargetLogProbs = null, Tensor? targets = null, ObjectiveOptions? options = null)
    {
        options ??= ObjectiveOptions.Default;
        ObjectiveInputs.CheckMatrix(studentLogits, nameof(studentLogits), "[N, V]");
        var (n, v) = (studentLogits.shape[0], studentLogits.shape[1]);
        if (teacherIds.dim() != 2 || teacherIds.shape[0] != n || teacherIds.dtype != ScalarType.Int64)
            throw new ArgumentException($"teacherIds must be [N = {n}, K] int64, got [{string.Join(", ", teacherIds.shape)}] {teacherIds.dtype}", nameof(teacherIds));
        var k = teacherIds.shape[1];
        if (teacherLogProbs.dim() != 2 || teacherLogProbs.shape[0] != n || teacherLogProbs.shape[1] != k)
            throw new ArgumentException($"teacherLogProbs must be [N = {n}, K = {k}], got [{string.Join(", ", teacherLogProbs.shape)}]", nameof(teacherLogProbs));
        ObjectiveInputs.CheckRecipe(recipe, v, options);
        if (SparseTeacher.Problems(recipe, checked((int)k)) is { Length: > 0 } problems)
            throw new ArgumentException(string.Join("; ", problems), nameof(recipe));
        using (no_grad())
        using (var vocabulary = v.ToScalar())
            if (teacherIds.lt(Scalars.Zero).any().item<bool>() || teacherIds.ge(vocabulary).any().item<bool>())
                throw new ArgumentException($"a teacher id lies outside the student's vocabulary (V = {v})", nameof(teacherIds));
        var tokens = ObjectiveInputs.CheckMask(mask, n, studentLogits);
        var sampled = EstimatorModule.IsSampled(recipe.Estimator);
        ObjectiveInputs.CheckTargets(targets, n, v, sampled, $"the sampled estimator {recipe.Estimator}", studentLogits);
        if (sampled && (teacherTargetLogProbs is null || teacherTargetLogProbs.shape.Length != 1 || teacherTargetLogProbs.shape[0] != n))
            throw new ArgumentException($"the sampled estimator {recipe.Estimator} needs the teacher's log-probability of each target, [N = {n}]", nameof(teacherTargetLogProbs));

        var compute = options.ComputeType;
        using var temperature = recipe.Temperature.ToScalar();
        var ls = TensorDivergence.LogSoftmax(recipe.Temperature == 1.0 ? studentLogits.to(compute) : studentLogits.to(compute).div(temperature)); // [N, V]
        Tensor lt, z;                                                                    // [N, K + 1], [N, 1]
        using (no_grad())
        {
            var lp = teacherLogProbs.to(compute);                                      // [N, K]
            var top = lp.logsumexp(-1, keepdim: true);                                 // [N, 1]
            // log(1 − e^top) (Numerics.log1mExp): −∞ when the K ids are the whole vocabulary or already hold all the mass.
            using var minusLog2 = (-Math.Log(2.0)).ToScalar();
            var tail = where(top.gt(minusLog2), top.expm1().neg().log(), top.exp().neg().log1p());
            if (k >= v) tail = full_like(top, Scalars.NegativeInfinity);
            tail = where(top.ge(Scalars.Zero), full_like(top, Scalars.NegativeInfinity), tail);
            var scaled = cat(new[] { lp, tail }, -1);                                  // [N, K + 1]
            if (recipe.Temperature != 1.0) scaled = scaled.div(temperature);
            z = scaled.logsumexp(-1, keepdim: true);                                   // [N, 1]
            lt = scaled - z;
        }

        Tensor d;                                                                          // [N]
        if (sampled)
        {
            var ltTarget = teacherTargetLogProbs!.to(compute).div(temperature) - z.squeeze(-1);   // [N]
            d = TensorDivergence.Sampled(recipe.Estimator, ls.gather(-1, targets!.unsqueeze(-1)).squeeze(-1) - ltTarget);
        }
        else
        {
            var (kPrime, withTail) = recipe.Support switch
            {
                Support.TeacherTopK t => (t.K, false),
                Support.TeacherTopKWithTail t => (t.K, true),
                _ => throw new ArgumentException($"support {recipe.Support} cannot be evaluated against a top-{k} teacher", nameof(recipe)),
            };
            var ids = teacherIds.narrow(1, 0, kPrime);                                 // [N, K']
            var teacher = lt.narrow(1, 0, kPrime);                                    // [N, K']
            Tensor a, b;
            if (withTail)
            {
                a = cat(new[] { teacher, TensorDivergence.LogSumExp(lt.narrow(1, kPrime, k + 1 - kPrime)) }, -1); // [N, K' + 1]
                b = TensorDivergence.WithTail(ls, ids);                                // [N, K' + 1]
            }
            else
            {
                a = TensorDivergence.Renormalise(teacher);
                b = TensorDivergence.Renormalise(ls.gather(-1, ids));
            }
            d = TensorDivergence.SupportDivergence(recipe, a, b);
        }

        return ObjectiveExecutor.Reduce(TensorDivergence.Finish(recipe, d), mask, tokens, options);
    }
}
