namespace Trd.Core

/// How a position's divergence is estimated.
///
/// - Exact: the sum over the support (the paper's full-vocabulary setting, §3: "having full access to
///   both distributions makes the KL direction independent of the sampling distribution").
/// - K1, K2, K3: single-sample estimators of the reverse KL D(π_θ ‖ π_T) from the token y_t the
///   student actually sampled (Schulman, "Approximating KL divergence", 2020). With the paper's per-token
///   log-ratio δ_t = log π_θ(y_t | ·) − log π_T(y_t | ·) (§4.2) and r = π_T/π_θ = e^(−δ_t):
///     k1 = δ_t                   unbiased, can be negative;
///     k2 = δ_t² / 2              biased, ≥ 0; its gradient δ_t ∇log π_θ(y_t) is exactly the per-token
///                                surrogate of Eq. 3;
///     k3 = (r − 1) − log r       unbiased, ≥ 0; gradient (1 − r) ∇log π_θ(y_t).
///   They estimate the reverse direction only, since y_t is drawn from π_θ; a recipe that pairs them
///   with another direction is rejected (Recipe.validate).
type Estimator =
    | Exact
    | K1
    | K2
    | K3

    override this.ToString() =
        match this with
        | Exact -> "exact"
        | K1 -> "k1"
        | K2 -> "k2"
        | K3 -> "k3"

module Estimator =

    /// Whether the estimator reads only the sampled token (not the whole distribution).
    [<CompiledName("IsSampled")>]
    let isSampled (estimator: Estimator) = estimator <> Exact

    /// The estimate from δ = log π_θ(y_t) − log π_T(y_t). Exact has no single-token form.
    [<CompiledName("FromLogRatio")>]
    let fromLogRatio (estimator: Estimator) (delta: float) =
        match estimator with
        | K1 -> delta
        | K2 -> 0.5 * delta * delta
        | K3 -> Numerics.expm1 (-delta) + delta
        | Exact -> invalidArg "estimator" "the exact estimator needs both distributions, not a log-ratio"
