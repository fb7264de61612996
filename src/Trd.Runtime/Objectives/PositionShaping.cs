using Trd.Core;
using TorchSharp;
using static TorchSharp.torch;

namespace Trd.Runtime.Objectives;

/// <summary>
/// What a shaped recipe's step plan (<see cref="StepPlan"/>, computed in float64 by Trd.Core from the step's
/// <see cref="ShapedStatistics"/>) hands the executor for one call's N positions: the weights w_t, the policy-gradient
/// advantages A_t, the switched positions and, for stale rollouts, the behaviour policy's log-probabilities. All [N],
/// constants (stop-gradient); the executor applies them inside its chunks, so no [N, V] tensor is added.
/// </summary>
public sealed class PositionShaping : IDisposable
{
    /// <summary>w_t [N] float64.</summary>
    public required Tensor Weights { get; init; }
    /// <summary>A_t [N] float64 under the policy-gradient form, else null.</summary>
    public Tensor? Advantages { get; init; }
    /// <summary>[N] bool: the switch's gate failed, the position takes the other divergence; null without a switch.</summary>
    public Tensor? Switched { get; init; }
    /// <summary>
    /// log π_behaviour(y_t) [N] float64 at the recipe's temperature: the importance ratio's denominator when the
    /// rollout came from another policy than the current one. Null: the current policy (ρ = 1 in value).
    /// </summary>
    public Tensor? BehaviourLogProbs { get; init; }

    /// <summary>
    /// The plan's values for the trajectories <paramref name="trajectories"/> (indices into the plan, in the order their
    /// positions are laid out in the call's N), on <paramref name="device"/>.
    /// </summary>
    public static PositionShaping FromPlan(Recipe recipe, StepPlan plan, IReadOnlyList<int> trajectories, Device device)
    {
        ArgumentNullException.ThrowIfNull(recipe);
        ArgumentNullException.ThrowIfNull(plan);
        double[] Concat(double[][] perTrajectory) => trajectories.SelectMany(i => perTrajectory[i]).ToArray();
        return new PositionShaping
        {
            Weights = tensor(Concat(plan.Weights), dtype: ScalarType.Float64, device: device),
            Advantages = recipe.Gradient.IsPolicyGradient ? tensor(Concat(plan.Advantages), dtype: ScalarType.Float64, device: device) : null,
            Switched = recipe.Switch.IsOutliers ? tensor(trajectories.SelectMany(i => plan.Switched[i]).ToArray(), device: device) : null,
        };
    }

    /// <summary>The mask [N] of the positions of kept trajectories (1) and dropped ones (0), float32.</summary>
    public static Tensor KeptMask(StepPlan plan, IReadOnlyList<int> trajectories, Device device) =>
        tensor(trajectories.SelectMany(i => Enumerable.Repeat(plan.Kept[i] ? 1f : 0f, plan.Weights[i].Length)).ToArray(), device: device);

    internal void Check(Recipe recipe, long n, Tensor like)
    {
        void Vector(Tensor? x, string name, bool required)
        {
            if (x is null)
            {
                if (required) throw new ArgumentException($"recipe '{recipe.Name}' needs PositionShaping.{name} [N]", nameof(ObjectiveOptions.Shaping));
                return;
            }
            if (x.dim() != 1 || x.shape[0] != n)
                throw new ArgumentException($"PositionShaping.{name} must be [N] = [{n}], got shape [{string.Join(", ", x.shape)}]", nameof(ObjectiveOptions.Shaping));
            ObjectiveInputs.CheckSameDevice(like, "the inputs", x, $"PositionShaping.{name}");
        }
        Vector(Weights, nameof(Weights), true);
        Vector(Advantages, nameof(Advantages), recipe.Gradient.IsPolicyGradient);
        Vector(Switched, nameof(Switched), recipe.Switch.IsOutliers);
        Vector(BehaviourLogProbs, nameof(BehaviourLogProbs), false);
        if (Switched is not null && Switched.dtype != ScalarType.Bool)
            throw new ArgumentException($"PositionShaping.Switched must be bool, got {Switched.dtype}", nameof(ObjectiveOptions.Shaping));
        using (no_grad())
        {
            if (!Weights.isfinite().all().item<bool>() || Weights.lt(Scalars.Zero).any().item<bool>())
                throw new ArgumentException("PositionShaping.Weights must be finite and ≥ 0", nameof(ObjectiveOptions.Shaping));
            if (Advantages is not null && !Advantages.isfinite().all().item<bool>())
                throw new ArgumentException("PositionShaping.Advantages must be finite (clamp the reward: reward_clip)", nameof(ObjectiveOptions.Shaping));
        }
    }

    /// <summary>
    /// The shaped term of positions [start, start + C): w_t · ℓ_t with ℓ_t the other divergence where switched, under
    /// the policy-gradient form −min(ρA, clip(ρ, 1 ± ε)A) with ρ = exp(log π_θ(y_t) − log π_behaviour(y_t)), else the
    /// recipe's own contribution. studentLogits [C, V] (differentiable), teacherLogits [C, V], targets [C].
    /// </summary>
    internal Tensor Term(Recipe recipe, Tensor contribution, Tensor studentLogits, Tensor teacherLogits, Tensor? targets, long start, long length)
    {
        var compute = contribution.dtype;
        var main = contribution;                                                                   // [C]
        if (recipe.Gradient is GradientEstimate.PolicyGradient { Item: var pg })
        {
            using var temperature = recipe.Temperature.ToScalar();
            var ls = TensorDivergence.LogSoftmax(recipe.Temperature == 1.0 ? studentLogits : studentLogits.div(temperature)); // [C, V]
            var lsY = ls.gather(-1, targets!.unsqueeze(-1)).squeeze(-1);                           // [C]
            var behaviour = BehaviourLogProbs?.narrow(0, start, length).to(compute) ?? lsY.detach();
            var rho = (lsY - behaviour).exp();                                                     // [C], 1 in value on-policy
            var a = Advantages!.narrow(0, start, length).to(compute);                              // [C]
            var surrogate = rho * a;
            if (pg.RatioClip > 0)
            {
                using var low = (1.0 - pg.RatioClip).ToScalar();
                using var high = (1.0 + pg.RatioClip).ToScalar();
                surrogate = minimum(surrogate, rho.clamp(low, high) * a);
            }
            main = surrogate.neg();
        }
        if (recipe.Switch.IsOutliers)
        {
            var other = TensorDivergence.Evaluate(ShapedObjective.SwitchRecipe(recipe), studentLogits, teacherLogits, null).Contribution; // [C]
            main = where(Switched!.narrow(0, start, length), other, main);
        }
        return main * Weights.narrow(0, start, length).to(compute);                                // [C]
    }

    /// <inheritdoc />
    public void Dispose()
    {
        Weights.Dispose();
        Advantages?.Dispose();
        Switched?.Dispose();
        BehaviourLogProbs?.Dispose();
    }
}
