namespace Trd.Core

open System

/// Which divergence between the teacher π_T and the student π_θ a position contributes.
///
/// - Forward: D(π_T ‖ π_θ) = Σᵥ π_T(v) (log π_T(v) − log π_θ(v)), mode-covering (§3; TRD's loss, Eq. 6).
/// - Reverse: D(π_θ ‖ π_T) = Σᵥ π_θ(v) (log π_θ(v) − log π_T(v)), mode-seeking (Eq. 1–2).
/// - Jsd β: the generalised Jensen–Shannon divergence of GKD (Agarwal et al. 2024, ref. [2]) with the
///   mixture M = β π_T + (1 − β) π_θ, scaled by 1 / (β(1 − β)):
///       JSD(β) = [β D(π_T ‖ M) + (1 − β) D(π_θ ‖ M)] / (β (1 − β)).
///   The scale makes β ↦ JSD(β) continuous on [0, 1] with JSD(0) = forward KL and JSD(1) = reverse KL
///   (the endpoints are defined as those limits). TRL's unscaled value is β(1 − β) times ours.
type Direction =
    | Forward
    | Reverse
    | Jsd of Beta: float

    override this.ToString() =
        match this with
        | Forward -> "forward KL"
        | Reverse -> "reverse KL"
        | Jsd b -> $"JSD(β={b})"

    /// The generalised JSD with mixture weight β ∈ [0, 1] (C#: <c>Direction.GeneralisedJsd(0.1)</c>).
    static member GeneralisedJsd(beta: float) = Jsd beta

/// Per-position divergences on log-probability vectors (float64 reference).
/// Inputs are log-probabilities already at the recipe's temperature and already restricted to the
/// support (see Support.restrict): the temperature is applied once, upstream, never here.
module Divergence =

    /// Throws unless β ∈ [0, 1].
    [<CompiledName("CheckBeta")>]
    let checkBeta (beta: float) =
        if Double.IsNaN beta || beta < 0.0 || beta > 1.0 then
            invalidArg "beta" $"JSD β must lie in [0, 1], got {beta}"

    let private checkSameLength (logPT: float[]) (logPS: float[]) =
        if logPT.Length <> logPS.Length then
            invalidArg "studentLogProbs" $"teacher has {logPT.Length} entries but student has {logPS.Length}"

    /// The per-vocabulary-entry terms whose sum is the divergence. Per-entry clipping (Clip.PerVocabEntry)
    /// caps these before the sum.
    [<CompiledName("EntryTerms")>]
    let entryTerms (direction: Direction) (teacherLogProbs: float[]) (studentLogProbs: float[]) : float[] =
        checkSameLength teacherLogProbs studentLogProbs
        let forward (lt: float) (ls: float) = Numerics.weightedLogRatio (exp lt) lt ls
        let reverse (lt: float) (ls: float) = Numerics.weightedLogRatio (exp ls) ls lt
        match direction with
        | Forward -> Array.map2 forward teacherLogProbs studentLogProbs
        | Reverse -> Array.map2 reverse teacherLogProbs studentLogProbs
        | Jsd beta ->
            checkBeta beta
            if beta = 0.0 then Array.map2 forward teacherLogProbs studentLogProbs
            elif beta = 1.0 then Array.map2 reverse teacherLogProbs studentLogProbs
            else
                let scale = 1.0 / (beta * (1.0 - beta))
                let logB, log1mB = log beta, log (1.0 - beta)
                Array.map2
                    (fun lt ls ->
                        let lm = Numerics.logSumExp [| lt + logB; ls + log1mB |]
                        scale * (beta * Numerics.weightedLogRatio (exp lt) lt lm
                                 + (1.0 - beta) * Numerics.weightedLogRatio (exp ls) ls lm))
                    teacherLogProbs studentLogProbs

    /// D for one position: the sum of the entry terms.
    [<CompiledName("Value")>]
    let value (direction: Direction) (teacherLogProbs: float[]) (studentLogProbs: float[]) =
        entryTerms direction teacherLogProbs studentLogProbs |> Array.sum

    /// D(π_T ‖ π_θ).
    [<CompiledName("ForwardKl")>]
    let forwardKl teacherLogProbs studentLogProbs = value Forward teacherLogProbs studentLogProbs

    /// D(π_θ ‖ π_T).
    [<CompiledName("ReverseKl")>]
    let reverseKl teacherLogProbs studentLogProbs = value Reverse teacherLogProbs studentLogProbs

    /// The scaled generalised JSD(β) (see Direction).
    [<CompiledName("GeneralisedJsd")>]
    let jsd beta teacherLogProbs studentLogProbs = value (Jsd beta) teacherLogProbs studentLogProbs

    /// ∂D/∂z_θ of the full-vocabulary forward KL at temperature T with respect to the student's raw
    /// logits z_θ: (softmax(z_θ/T) − softmax(z_T/T)) / T. This closed form is what lets the executor
    /// produce per-chunk gradients without keeping an [N, V] autograd graph.
    [<CompiledName("ForwardKlGradient")>]
    let forwardKlGradient (temperature: float) (teacherLogits: float[]) (studentLogits: float[]) =
        let pT = Numerics.temperedLogProbs temperature teacherLogits |> Array.map exp
        let pS = Numerics.temperedLogProbs temperature studentLogits |> Array.map exp
        Array.map2 (fun s t -> (s - t) / temperature) pS pT

    /// ∂D/∂z_θ of the full-vocabulary reverse KL at temperature T:
    /// q_j ((log q_j − log p_j) − D(q ‖ p)) / T with q = softmax(z_θ/T), p = softmax(z_T/T).
    [<CompiledName("ReverseKlGradient")>]
    let reverseKlGradient (temperature: float) (teacherLogits: float[]) (studentLogits: float[]) =
        let lp = Numerics.temperedLogProbs temperature teacherLogits
        let lq = Numerics.temperedLogProbs temperature studentLogits
        let d = reverseKl lp lq
        Array.map2 (fun lqj lpj -> let q = exp lqj in if q = 0.0 then 0.0 else q * ((lqj - lpj) - d) / temperature) lq lp
