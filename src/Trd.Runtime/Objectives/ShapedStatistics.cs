using Trd.Core;
using TorchSharp;
using static TorchSharp.torch;

namespace Trd.Runtime.Objectives;

/// <summary>
/// The first pass of a shaped recipe: every position's <see cref="PositionStatistics"/> (log π_θ(y_t), log π_T(y_t), the
/// full-vocabulary reverse KL, the student's entropy, the teachability) at the recipe's temperature, chunk by chunk
/// without gradients, so no [N, V] tensor exists. Its float64 reference is Trd.Core.PositionStatistics.measure; the
/// step's plan is then computed from these by Trd.Core.StepPlan.plan.
/// </summary>
public static class ShapedStatistics
{
    static readonly Recipe ReverseKl = Recipes.ReverseKl;

    /// <summary>From hidden states [N, H] and output projections [V, H] (fused: the logits of one chunk at a time).</summary>
    public static PositionStatistics[] Fused(Recipe recipe, Tensor studentHidden, Tensor studentWeight, Tensor teacherHidden, Tensor teacherWeight,
        Tensor targets, int chunkSize = 512)
    {
        ObjectiveInputs.CheckFusedPair(studentHidden, studentWeight, teacherHidden, teacherWeight);
        return Run(recipe, new LogitSource { Input = studentHidden, Weight = studentWeight, Name = "student" },
            new LogitSource { Input = teacherHidden, Weight = teacherWeight, Name = "teacher" }, targets, chunkSize);
    }

    /// <summary>From logits [N, V].</summary>
    public static PositionStatistics[] FromLogits(Recipe recipe, Tensor studentLogits, Tensor teacherLogits, Tensor targets, int chunkSize = 512)
    {
        ObjectiveInputs.CheckLogitPair(studentLogits, teacherLogits);
        return Run(recipe, new LogitSource { Input = studentLogits, Name = "student" }, new LogitSource { Input = teacherLogits, Name = "teacher" },
            targets, chunkSize);
    }

    static PositionStatistics[] Run(Recipe recipe, LogitSource student, LogitSource teacher, Tensor targets, int chunkSize)
    {
        ArgumentNullException.ThrowIfNull(recipe);
        recipe.Validate();
        if (chunkSize < 1) throw new ArgumentOutOfRangeException(nameof(chunkSize), chunkSize, "the chunk size must be ≥ 1");
        var n = student.Positions;
        var v = student.Vocabulary;
        ObjectiveInputs.CheckTargets(targets, n, v, true, "the shaping statistics", student.Input);
        var k = Shaping.TeachabilityK(recipe.Weighting, recipe.Switch) is > 0 and var some ? (int?)Math.Min(some, v) : null;
        var rows = new double[n * 5];
        var compute = student.Input.dtype == ScalarType.Float64 ? ScalarType.Float64 : ScalarType.Float32;   // float64 in, float64 out
        using var temperature = recipe.Temperature.ToScalar();
        using var nan = double.NaN.ToScalar();
        using (no_grad())
        {
            for (long start = 0; start < n; start += chunkSize)
            {
                using var scope = NewDisposeScope();
                var length = Math.Min(chunkSize, n - start);
                var zs = student.Chunk(student.Input.narrow(0, start, length).detach(), student.Weight?.detach(), compute); // [C, V]
                var zt = teacher.Chunk(teacher.Input.narrow(0, start, length).detach(), teacher.Weight?.detach(), compute); // [C, V]
                ObjectiveInputs.CheckLogitsChunk(zs, "student logits", start);
                ObjectiveInputs.CheckLogitsChunk(zt, "teacher logits", start);
                var ls = TensorDivergence.LogSoftmax(recipe.Temperature == 1.0 ? zs : zs.div(temperature)); // [C, V]
                var lt = TensorDivergence.LogSoftmax(recipe.Temperature == 1.0 ? zt : zt.div(temperature)); // [C, V]
                var index = targets.narrow(0, start, length).unsqueeze(-1);                                  // [C, 1]
                var ps = ls.exp();                                                                           // [C, V]
                var columns = new[]
                {
                    ls.gather(-1, index).squeeze(-1),                                                        // log π_θ(y_t)
                    lt.gather(-1, index).squeeze(-1),                                                        // log π_T(y_t)
                    TensorDivergence.SupportDivergence(ReverseKl, lt, ls),                                   // D(π_θ ‖ π_T)
                    where(ps.gt(Scalars.Zero), ps * ls, zeros_like(ps)).sum(-1).neg(),                                  // H(π_θ)
                    k is { } kk ? lt.exp().gather(-1, ls.topk(kk, dim: -1).indexes).sum(-1)                  // Σ_{top-k π_θ} π_T
                        : full(length, nan, dtype: compute, device: zs.device),
                };
                var block = stack(columns, dim: 1).to(ScalarType.Float64).cpu().data<double>().ToArray();   // [C, 5]
                Array.Copy(block, 0, rows, start * 5, block.Length);
            }
        }
        var result = new PositionStatistics[n];
        for (var i = 0; i < n; i++)
            result[i] = new PositionStatistics(rows[i * 5], rows[i * 5 + 1], rows[i * 5 + 2], rows[i * 5 + 3], rows[i * 5 + 4]);
        return result;
    }

    /// <summary>The step's trajectories from its positions' statistics laid out trajectory after trajectory.</summary>
    public static TrajectoryStatistics[] Split(PositionStatistics[] positions, IReadOnlyList<int> lengths, IReadOnlyList<bool> correct)
    {
        if (lengths.Sum() != positions.Length)
            throw new ArgumentException($"the trajectories' lengths add up to {lengths.Sum()} but there are {positions.Length} positions", nameof(lengths));
        var result = new TrajectoryStatistics[lengths.Count];
        var offset = 0;
        for (var i = 0; i < lengths.Count; i++)
        {
            result[i] = new TrajectoryStatistics(positions[offset..(offset + lengths[i])], correct[i]);
            offset += lengths[i];
        }
        return result;
    }
}
