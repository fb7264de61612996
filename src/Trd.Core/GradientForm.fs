namespace Trd.Core

/// A (context, target) pair at which a gradient evaluates the score function ∇θ log π_θ(target | x, context).
type SupervisionPair =
    { Context: int[]
      Target: int }

/// The gradient forms of §4.2 and Appendix A.
///
/// With δ_t = log π_θ(y_t | x, y_<t) − log π_T(y_t | x, y_<t), differentiating the sequence-level reverse
/// KL gives ∇J = E[Σ_t (Σ_{t'≥t} δ_t') ∇log π_θ(y_t | x, y_<t)] (App. A, Step 5): −Σ_{t'≥t} δ_t' is a
/// return-to-go. Standard OPD keeps only the immediate term (discount 0), the per-token surrogate of Eq. 3.
///
/// Under prefix failure at position t, recovery needs the correction path ȳ*_t … ȳ*_{t+k−1} to be supervised
/// along itself (g_ideal), but dense KL along the frozen rollout y_o delivers the correction-onset token
/// ȳ*_t at ever longer wrong contexts y_o,<t+i (g_frag). The two pair sets share only their first pair.
module GradientForm =

    /// δ_t from the log-probabilities the student and the teacher give the trajectory's own tokens.
    [<CompiledName("LogRatios")>]
    let logRatios (studentTokenLogProbs: float[]) (teacherTokenLogProbs: float[]) =
        if studentTokenLogProbs.Length <> teacherTokenLogProbs.Length then
            invalidArg "teacherTokenLogProbs" $"student has {studentTokenLogProbs.Length} positions but teacher has {teacherTokenLogProbs.Length}"
        Array.map2 (-) studentTokenLogProbs teacherTokenLogProbs

    /// G_t = Σ_{t'≥t} γ^(t'−t) δ_t': the coefficient of ∇log π_θ(y_t) in the sequence-level gradient with
    /// discount γ ∈ [0, 1]. γ = 1 is App. A's full return-to-go; γ = 0 leaves δ_t, the surrogate of Eq. 3.
    [<CompiledName("ReturnToGo")>]
    let returnToGo (gamma: float) (deltas: float[]) =
        if System.Double.IsNaN gamma || gamma < 0.0 || gamma > 1.0 then
            invalidArg "gamma" $"the discount γ must lie in [0, 1], got {gamma}"
        let g = Array.zeroCreate deltas.Length
        let mutable acc = 0.0
        for t in deltas.Length - 1 .. -1 .. 0 do
            acc <- deltas[t] + (if gamma = 0.0 then 0.0 else gamma * acc)
            g[t] <- acc
        g

    /// The per-token coefficients of Eq. 3 (δ_t itself).
    [<CompiledName("SurrogateCoefficients")>]
    let surrogateCoefficients (deltas: float[]) = returnToGo 0.0 deltas

    /// Σ_t sg(c_t) · log π_θ(y_t): a scalar whose gradient, with the coefficients held constant, is the
    /// estimator Σ_t c_t ∇log π_θ(y_t). Its value is only meaningful through that gradient.
    [<CompiledName("SurrogateValue")>]
    let surrogateValue (coefficients: float[]) (studentTokenLogProbs: float[]) =
        if coefficients.Length <> studentTokenLogProbs.Length then
            invalidArg "studentTokenLogProbs" $"{coefficients.Length} coefficients but {studentTokenLogProbs.Length} log-probabilities"
        Array.fold2 (fun acc c l -> acc + c * l) 0.0 coefficients studentTokenLogProbs

    /// The pairs a perfect teacher would supervise by unfolding the correction path after the failed prefix
    /// y_o,<t (§4.2): ((y_o,<t, ȳ*_t:t+i−1), ȳ*_{t+i−1}) for i = 1 … k. The context grows along the correction.
    [<CompiledName("IdealPairs")>]
    let idealPairs (failedPrefix: int[]) (correction: int[]) : SupervisionPair[] =
        if correction.Length = 0 then invalidArg "correction" "the correction path ȳ* is empty (k ≥ 1)"
        Array.init correction.Length (fun i ->
            { Context = Array.append failedPrefix correction[.. i - 1]; Target = correction[i] })

    /// The pairs dense KL along the frozen rollout delivers (§4.2): (y_o,<t+i, ȳ*_t) for i = 0 … k−1.
    /// The context grows along the wrong continuation while the target stays the correction onset.
    /// rollout is the whole y_o; t the failure index (0-based: y_o,<t is rollout[0 .. t−1]).
    [<CompiledName("FragmentedPairs")>]
    let fragmentedPairs (rollout: int[]) (t: int) (correctionOnset: int) (k: int) : SupervisionPair[] =
        if k < 1 then invalidArg "k" $"the correction length k must be ≥ 1, got {k}"
        if t < 0 || t + k - 1 > rollout.Length then
            invalidArg "t" $"the rollout has {rollout.Length} tokens; prefixes up to length t + k − 1 = {t + k - 1} are needed"
        Array.init k (fun i -> { Context = rollout[.. t + i - 1]; Target = correctionOnset })

    /// The pairs two gradients have in common. For a rollout that leaves the correction path at t
    /// (y_o,t ≠ ȳ*_t) this is exactly the first pair (y_o,<t, ȳ*_t).
    [<CompiledName("SharedPairs")>]
    let sharedPairs (a: SupervisionPair[]) (b: SupervisionPair[]) =
        let inB = System.Collections.Generic.HashSet<struct (string * int)>()
        let key (p: SupervisionPair) = struct (System.String.Join(",", p.Context), p.Target)
        for p in b do inB.Add(key p) |> ignore
        a |> Array.filter (fun p -> inB.Contains(key p)) |> Array.distinct
