using Trd.Core;
using TorchSharp;
using static TorchSharp.torch;

namespace Trd.Runtime.Objectives;

/// <summary>
/// The recipe's composition on tensors — temperature (once) → support → divergence or sampled estimator →
/// per-entry clip → sum over the support → per-position clip — exactly as <c>Trd.Core.Objective.position</c>
/// composes it on float64 arrays, for a block of positions at a time. Differentiable with respect to the
/// student logits; the teacher side is treated as constant.
/// </summary>
/// <remarks>
/// Entries with zero weight (−∞ log-probabilities, e.g. masked vocabulary) use the 0·(anything) = 0
/// convention with a double <c>where</c>: the unselected branch is computed on sanitised inputs so that
/// neither the value nor the gradient can pick up a NaN from −∞ − (−∞).
/// </remarks>
internal static class TensorDivergence
{
    /// <summary>One block's divergences.</summary>
    internal readonly record struct Block(Tensor Divergence, Tensor Contribution, Tensor Clipped);

    /// <summary>
    /// studentLogits, teacherLogits: [C, V] in the compute dtype; targets: [C] int64 (sampled estimators only).
    /// Returns D_t [C] (before per-position clipping), the loss contribution [C] and the clipped flags [C].
    /// </summary>
    internal static Block Evaluate(Recipe recipe, Tensor studentLogits, Tensor teacherLogits, Tensor? targets)
    {
        var t = recipe.Temperature;
        var ls = LogSoftmax(t == 1.0 ? studentLogits : studentLogits / t); // [C, V]
        Tensor lt;
        using (no_grad())
            lt = LogSoftmax(t == 1.0 ? teacherLogits : teacherLogits / t); // [C, V]

        Tensor d;
        if (EstimatorModule.IsSampled(recipe.Estimator))
        {
            var index = targets!.unsqueeze(-1);                                  // [C, 1]
            var delta = ls.gather(-1, index).squeeze(-1) - lt.gather(-1, index).squeeze(-1); // [C]
            d = recipe.Estimator.IsK1 ? delta
                : recipe.Estimator.IsK2 ? 0.5 * delta * delta
                : (-delta).expm1() + delta; // K3: (r − 1) − log r, r = e^(−δ)
        }
        else
        {
            var (a, b) = Restrict(recipe.Support, lt, ls);  // [C, S] each
            var terms = EntryTerms(recipe.Direction, a, b); // [C, S]
            if (recipe.Clip is Clip.PerVocabEntry entryClip)
                terms = terms.clamp_max(entryClip.c);
            d = terms.to(ScalarType.Float64).sum(-1).to(terms.dtype); // [C], summed in float64
        }

        if (recipe.Clip is Clip.PerPosition cap)
            return new Block(d, d.clamp_max(cap.c), d.detach() > cap.c);
        return new Block(d, d, zeros_like(d, dtype: ScalarType.Bool));
    }

    /// <summary>
    /// z − log Σ exp z over the last dimension, the log-sum-exp accumulated in float64 whatever z's dtype: over
    /// V ≈ 152K entries a float32 reduction is off by ~1e-5 relative, which every log-probability inherits.
    /// </summary>
    internal static Tensor LogSoftmax(Tensor z) =>
        z - z.to(ScalarType.Float64).logsumexp(-1, keepdim: true).to(z.dtype); // [C, V] − [C, 1]

    /// <summary>Restricts [C, V] log-probabilities to the support chosen from the teacher: [C, S] each.</summary>
    static (Tensor teacher, Tensor student) Restrict(Support support, Tensor lt, Tensor ls)
    {
        switch (support)
        {
            case Support.TeacherTopK topK:
            {
                var index = lt.topk(topK.k, dim: -1).indexes;                       // [C, K]
                return (Renormalise(lt.gather(-1, index)), Renormalise(ls.gather(-1, index)));
            }
            case Support.TeacherTopKWithTail topK:
            {
                var index = lt.topk(topK.k, dim: -1).indexes;                       // [C, K]
                return (WithTail(lt, index), WithTail(ls, index));                    // [C, K + 1]
            }
            default:
                return (lt, ls);
        }
    }

    /// <summary>x − logsumexp(x) over the last dimension; a row with no mass stays −∞ (as Trd.Core does).</summary>
    static Tensor Renormalise(Tensor x)
    {
        var z = x.logsumexp(-1, keepdim: true);              // [C, 1]
        return x - where(z.isneginf(), zeros_like(z), z);
    }

    /// <summary>
    /// The top-K entries [C, K] followed by the tail bucket log Σ_{v∉𝒮} p(v) = log(1 − Σ_{v∈𝒮} p(v)): [C, K + 1].
    /// The tail is a log-sum-exp over the complement (the selected entries set to −∞), not 1 minus the top-K
    /// mass, so a tail below float32 rounding of 1 keeps its value instead of cancelling to 0 on one side only.
    /// </summary>
    static Tensor WithTail(Tensor logProbs, Tensor index)
    {
        var complement = logProbs.scatter(-1, index, full(index.shape, double.NegativeInfinity, dtype: logProbs.dtype, device: logProbs.device)); // [C, V]
        var tail = complement.to(ScalarType.Float64).logsumexp(-1, keepdim: true).to(logProbs.dtype); // [C, 1]
        return cat(new[] { logProbs.gather(-1, index), tail }, -1);
    }

    /// <summary>The per-entry terms whose sum is the divergence (see Trd.Core.Divergence.entryTerms).</summary>
    static Tensor EntryTerms(Direction direction, Tensor lt, Tensor ls)
    {
        switch (direction)
        {
            case Direction.Jsd jsd when jsd.beta > 0.0 && jsd.beta < 1.0:
            {
                var beta = jsd.beta;
                // M = β π_T + (1 − β) π_θ, in log space: [C, S]
                var lm = stack(new[] { lt + Math.Log(beta), ls + Math.Log(1.0 - beta) }, 0).logsumexp(0);
                var scale = 1.0 / (beta * (1.0 - beta));
                return scale * (beta * WeightedLogRatio(lt, lt, lm) + (1.0 - beta) * WeightedLogRatio(ls, ls, lm));
            }
            case Direction.Jsd jsd when jsd.beta == 1.0:
                return WeightedLogRatio(ls, ls, lt);
            case Direction.Jsd:
                return WeightedLogRatio(lt, lt, ls);
            default:
                return direction.IsForward ? WeightedLogRatio(lt, lt, ls) : WeightedLogRatio(ls, ls, lt);
        }
    }

    /// <summary>exp(logW) · (logP − logQ), zero wherever exp(logW) = 0.</summary>
    static Tensor WeightedLogRatio(Tensor logW, Tensor logP, Tensor logQ)
    {
        // The common case has no −∞ anywhere: one product, no masks ([C, S] temporaries are the cost here).
        bool anyMasked;
        using (no_grad())
            anyMasked = logW.isneginf().any().item<bool>() || logQ.isneginf().any().item<bool>();
        if (!anyMasked)
            return logW.exp() * (logP - logQ);
        var live = logW.isneginf().logical_not();
        var zero = zeros_like(logP);
        var ratio = where(live, logP, zero) - where(live, logQ, zero);
        return where(live, where(live, logW, zero).exp() * ratio, zero);
    }
}
