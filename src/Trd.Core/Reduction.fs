namespace Trd.Core

/// How per-position values become one number.
///
/// Training uses the token-weighted mean over every response token of one optimiser step, across all of
/// its gradient-accumulation micro-batches: Σ_b Σ_t m_bt D_bt / Σ_b Σ_t m_bt (App. C.5: "accumulated as
/// numerator/denominator within each step, then divided"). Each micro-batch's loss is therefore its
/// masked sum divided by the step's global token count, not by its own count: averaging micro-batch
/// means instead over-weights the tokens of short micro-batches (a known bug in other trainers).
module Reduction =

    let private maskedSum (values: float[]) (mask: float[]) =
        if values.Length <> mask.Length then
            invalidArg "mask" $"mask has {mask.Length} entries but there are {values.Length} values"
        Array.fold2 (fun acc v m -> if m = 0.0 then acc else acc + m * v) 0.0 values mask

    let private meanOfMaskedMeans (values: float[][]) (masks: float[][]) =
        if values.Length <> masks.Length then invalidArg "masks" $"{values.Length} value arrays but {masks.Length} masks"
        if values.Length = 0 then invalidArg "values" "no groups to average"
        Array.map2 Numerics.maskedMean values masks |> Array.average

    /// Σ m over all micro-batches of the step: the denominator every micro-batch's loss is divided by.
    [<CompiledName("StepTokenCount")>]
    let stepTokenCount (masks: float[][]) = masks |> Array.sumBy Array.sum

    /// The token-weighted mean over all micro-batches of one optimiser step.
    [<CompiledName("TokenMean")>]
    let tokenMean (values: float[][]) (masks: float[][]) =
        if values.Length <> masks.Length then invalidArg "masks" $"{values.Length} value arrays but {masks.Length} masks"
        let tokens = stepTokenCount masks
        if tokens <= 0.0 then invalidArg "masks" "the step has no response token (empty mask)"
        (Array.map2 maskedSum values masks |> Array.sum) / tokens

    /// Each micro-batch's loss as the trainer back-propagates it: its masked sum over the step's token
    /// count. These add up to tokenMean.
    [<CompiledName("MicroBatchLosses")>]
    let microBatchLosses (values: float[][]) (masks: float[][]) =
        let tokens = stepTokenCount masks
        if tokens <= 0.0 then invalidArg "masks" "the step has no response token (empty mask)"
        Array.map2 (fun v m -> maskedSum v m / tokens) values masks

    /// The mean of per-micro-batch token means: what the bug computes. Kept, named, so tests and
    /// notebooks can show how it differs from tokenMean when micro-batches hold different token counts.
    [<CompiledName("MeanOfMicroBatchMeans")>]
    let meanOfMicroBatchMeans (values: float[][]) (masks: float[][]) = meanOfMaskedMeans values masks

    /// The per-trajectory mean of Eq. 1: (1/|y|) Σ_t D_t for each trajectory, then the mean over
    /// trajectories. For logging and for comparison; training uses tokenMean.
    [<CompiledName("PerTrajectoryMean")>]
    let perTrajectoryMean (values: float[][]) (masks: float[][]) = meanOfMaskedMeans values masks
