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
        using var temperature = t.ToScalar();
        var ls = LogSoftmax(t == 1.0 ? studentLogits : studentLogits.div(temperature)); // [C, V]
        Tensor lt;
        using (no_grad())
            lt = LogSoftmax(t == 1.0 ? teacherLogits : teacherLogits.div(temperature)); // [C, V]

        Tensor d;
        if (EstimatorModule.IsSampled(recipe.Estimator))
        {
            var index = targets!.unsqueeze(-1);                                  // [C, 1]
            var delta = ls.gather(-1, index).squeeze(-1) - lt.gather(-1, index).squeeze(-1); // [C]
            d = Sampled(recipe.Estimator, delta);
        }
        else
        {
            var (a, b) = Restrict(recipe.Support, lt, ls);  // [C, S] each
            d = SupportDivergence(recipe, a, b);            // [C]
        }
        return Finish(recipe, d);
    }

    /// <summary>D_t [C] from the teacher's and the student's log-probabilities on the support [C, S]: entry terms, per-entry clip, sum.</summary>
    internal static Tensor SupportDivergence(Recipe recipe, Tensor teacher, Tensor student)
    {
        var terms = EntryTerms(recipe.Direction, teacher, student); // [C, S]
        if (recipe.Clip is Clip.PerVocabEntry entryClip)
        {
            using var c = entryClip.C.ToScalar();
            terms = terms.clamp_max(c);
        }
        return terms.sum(-1);                                     // [C]
    }

    /// <summary>The sampled estimator of δ_t = log π_θ(y_t) − log π_T(y_t) [C].</summary>
    internal static Tensor Sampled(Estimator estimator, Tensor delta) =>
        estimator.IsK1 ? delta
        : estimator.IsK2 ? delta.mul(Scalars.Half).mul(delta)       // δ²/2
        : (-delta).expm1().add(delta, Scalars.One);                // K3: (r − 1) − log r, r = e^(−δ)

    /// <summary>The block of D_t [C]: its contribution after the per-position clip, and which positions were clipped.</summary>
    internal static Block Finish(Recipe recipe, Tensor d)
    {
        if (recipe.Clip is Clip.PerPosition cap)
        {
            using var c = cap.C.ToScalar();
            return new Block(d, d.clamp_max(c), d.detach().gt(c));
        }
        return new Block(d, d, zeros_like(d, dtype: ScalarType.Bool));
    }

    /// <summary>
    /// log softmax over the last dimension as (z − m) − log Σ exp(z − m), m the row maximum (held constant: the
    /// value does not depend on it). libtorch's own float32 log_softmax over V ≈ 152K entries is off by ~1e-5
    /// relative in the KL that follows (measured, docs/design.md); this form is within ~2e-7.
    /// </summary>
    internal static Tensor LogSoftmax(Tensor z)
    {
        if (z.requires_grad)
        {
            var shifted = z - z.detach().amax(new long[] { -1 }, keepdim: true); // [C, V]
            return shifted - shifted.exp().sum(-1, keepdim: true).log();        // [C, V] − [C, 1]
        }
        // Without a graph: one new [C, V] tensor, updated in place; the exp temporary is freed on return
        // (a dispose scope would otherwise keep every temporary of the chunk alive until the chunk ends).
        using var scope = NewDisposeScope();
        var result = z - z.amax(new long[] { -1 }, keepdim: true);             // [C, V]
        result.sub_(result.exp().sum(-1, keepdim: true).log_());
        return result.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Whether the recipe is forward KL over the full vocabulary with the exact estimator and at most a
    /// per-position clip: then ∂D_t/∂z_θ = (softmax(z_θ/T) − p_T)/T in closed form and no graph is needed.
    /// </summary>
    internal static bool HasClosedFormGradient(Recipe recipe) =>
        (recipe.Direction.IsForward || recipe.Direction is Direction.Jsd { Beta: 0.0 })
        && recipe.Support.IsFullVocabulary
        && recipe.Estimator.IsExact
        && recipe.Clip is not Clip.PerVocabEntry;

    /// <summary>
    /// Forward KL and its gradient for one block without autograd (Trd.Core.Divergence.forwardKlGradient):
    /// weights [C] = m_t / normaliser; returns the block and ∂loss/∂z_θ [C, V] = (q − p_T)/T · weight · 1[not clipped].
    /// Holds ~5 [C, V] tensors against autograd's ~15.
    /// </summary>
    internal static (Block block, Tensor gradient) ForwardWithGradient(Recipe recipe, Tensor studentLogits, Tensor teacherLogits, Tensor weights)
    {
        using var scope = NewDisposeScope();   // every [C, V] temporary below is freed on return
        var t = recipe.Temperature;
        using var temperature = t.ToScalar();
        var lt = LogSoftmax(t == 1.0 ? teacherLogits : teacherLogits.div(temperature)); // [C, V]
        var ls = LogSoftmax(t == 1.0 ? studentLogits : studentLogits.div(temperature)); // [C, V]
        var pt = lt.exp();                                                 // [C, V]
        var diff = lt.sub_(ls);                                            // [C, V], in lt's storage
        if (pt.eq(Scalars.Zero).any().item<bool>())
            diff.masked_fill_(pt.eq(Scalars.Zero), Scalars.Zero);          // 0 · (−∞ − (−∞)) = 0
        var d = diff.mul_(pt).sum(-1);                                     // [C]
        Block block;
        var scale = weights.div(temperature);                              // [C]
        if (recipe.Clip is Clip.PerPosition cap)
        {
            using var c = cap.C.ToScalar();
            var clipped = d.gt(c);                                         // [C]
            block = new Block(d, d.clamp_max(c), clipped);
            scale = scale.masked_fill(clipped, Scalars.Zero);              // no gradient above c
        }
        else
            block = new Block(d, d, zeros_like(d, dtype: ScalarType.Bool));
        var gradient = ls.exp_().sub_(pt).mul_(scale.unsqueeze(-1));      // [C, V], in ls's storage
        // Contribution is Divergence itself without a clip: move each tensor out once.
        block.Divergence.MoveToOuterDisposeScope();
        if (!ReferenceEquals(block.Contribution, block.Divergence))
            block.Contribution.MoveToOuterDisposeScope();
        block.Clipped.MoveToOuterDisposeScope();
        gradient.MoveToOuterDisposeScope();
        return (block, gradient);
    }

    /// <summary>Restricts [C, V] log-probabilities to the support chosen from the teacher: [C, S] each.</summary>
    static (Tensor teacher, Tensor student) Restrict(Support support, Tensor lt, Tensor ls)
    {
        switch (support)
        {
            case Support.TeacherTopK topK:
            {
                var index = lt.topk(topK.K, dim: -1).indexes;                       // [C, K]
                return (Renormalise(lt.gather(-1, index)), Renormalise(ls.gather(-1, index)));
            }
            case Support.TeacherTopKWithTail topK:
            {
                var index = lt.topk(topK.K, dim: -1).indexes;                       // [C, K]
                return (WithTail(lt, index), WithTail(ls, index));                    // [C, K + 1]
            }
            default:
                return (lt, ls);
        }
    }

    /// <summary>x − logsumexp(x) over the last dimension; a row with no mass stays −∞ (as Trd.Core does).</summary>
    internal static Tensor Renormalise(Tensor x)
    {
        var z = x.logsumexp(-1, keepdim: true);              // [C, 1]
        return x - where(z.isneginf(), zeros_like(z), z);
    }

    /// <summary>
    /// The top-K entries [C, K] followed by the tail bucket log Σ_{v∉𝒮} p(v) = log(1 − Σ_{v∈𝒮} p(v)): [C, K + 1].
    /// The tail is a log-sum-exp over the complement (the selected entries set to −∞), not 1 minus the top-K
    /// mass, so a tail below float32 rounding of 1 keeps its value instead of cancelling to 0 on one side only.
    /// </summary>
    internal static Tensor WithTail(Tensor logProbs, Tensor index)
    {
        var complement = logProbs.scatter(-1, index, full(index.shape, Scalars.NegativeInfinity, dtype: logProbs.dtype, device: logProbs.device)); // [C, V]
        return cat(new[] { logProbs.gather(-1, index), LogSumExp(complement) }, -1);
    }

    /// <summary>
    /// log Σ exp x over the last dimension, [C, S] → [C, 1]: −∞ for a row that is −∞ everywhere (an empty tail,
    /// K = V), with a gradient that stays finite there (the row is replaced by zeros before exp and log).
    /// </summary>
    internal static Tensor LogSumExp(Tensor x)
    {
        var m = x.detach().amax(new long[] { -1 }, keepdim: true);        // [C, 1]
        var empty = m.isneginf();                                          // [C, 1]
        var shift = where(empty, zeros_like(m), m);                        // [C, 1]
        var safe = where(empty, zeros_like(x), x - shift);                 // [C, S]
        var lse = safe.exp().sum(-1, keepdim: true).log().add(shift, Scalars.One); // [C, 1]
        return where(empty, full_like(m, Scalars.NegativeInfinity), lse);
    }

    /// <summary>The per-entry terms whose sum is the divergence (see Trd.Core.Divergence.entryTerms).</summary>
    static Tensor EntryTerms(Direction direction, Tensor lt, Tensor ls)
    {
        switch (direction)
        {
            case Direction.Jsd jsd when jsd.Beta > 0.0 && jsd.Beta < 1.0:
            {
                var beta = jsd.Beta;
                // M = β π_T + (1 − β) π_θ, in log space: [C, S]
                using Scalar weightT = beta.ToScalar(), weightS = (1.0 - beta).ToScalar(),
                    logWeightT = Math.Log(beta).ToScalar(), logWeightS = Math.Log(1.0 - beta).ToScalar(),
                    scale = (1.0 / (beta * (1.0 - beta))).ToScalar();
                var lm = stack(new[] { lt.add(logWeightT, Scalars.One), ls.add(logWeightS, Scalars.One) }, 0).logsumexp(0);
                return WeightedLogRatio(lt, lt, lm).mul(weightT)
                    .add(WeightedLogRatio(ls, ls, lm).mul(weightS), Scalars.One).mul(scale);
            }
            case Direction.Jsd jsd when jsd.Beta == 1.0:
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
