namespace Trd.Core

open System

/// The learning-rate schedule of App. C.8 (Table 14): linear warmup over the first warmup-ratio of the steps,
/// then cosine decay to a floor of floorRatio × peak (paper: peak 5e-6, warmup ratio 0.1, floor 0.1).
///
/// Steps are 0-based indices of the optimiser step about to be taken, 0 … totalSteps − 1. Two choices differ
/// from the usual `LambdaLR` recipes, which evaluate the schedule at the count of steps already taken: the
/// first update does not run at learning rate 0 (warmup step s gets (s + 1) / warmupSteps of the peak), and
/// the last update runs exactly at the floor rather than one step short of it.
module Schedule =

    /// The number of warmup steps for a warmup ratio: ⌈ratio × totalSteps⌉, as Hugging Face's
    /// `get_warmup_steps` (a ratio of 0.1 over 1 step still warms up for 1 step). The product is formed in
    /// decimal so that 0.1 × 30 gives 3, not the 4 that binary rounding (3.0000000000000004) would give.
    [<CompiledName("WarmupSteps")>]
    let warmupSteps (ratio: float) (totalSteps: int) : int =
        if not (ratio >= 0.0 && ratio <= 1.0) then invalidArg "ratio" $"warmup ratio must lie in [0, 1], got {ratio}"
        if totalSteps < 1 then invalidArg "totalSteps" $"total steps must be ≥ 1, got {totalSteps}"
        int (Math.Ceiling(decimal ratio * decimal totalSteps))

    /// The learning rate of 0-based optimiser step `step` out of `totalSteps`:
    ///
    /// - warmup, step < warmupSteps: peak × (step + 1) / warmupSteps, so the first update is never at 0 and
    ///   the last warmup step is at the peak;
    /// - decay, warmupSteps ≤ step ≤ totalSteps − 1: floor + (peak − floor) × ½ (1 + cos(π p)) with
    ///   p = (step − warmupSteps) / (totalSteps − 1 − warmupSteps) and floor = floorRatio × peak, from the peak at
    ///   the first decay step to exactly the floor at the last step. A decay phase of a single step
    ///   (warmupSteps = totalSteps − 1) stays at the peak.
    ///
    /// Raises ArgumentException (naming the value) unless peak is finite and > 0, 0 ≤ warmupSteps ≤ totalSteps,
    /// totalSteps ≥ 1, floorRatio ∈ [0, 1] and 0 ≤ step < totalSteps.
    [<CompiledName("LearningRate")>]
    let learningRate (peak: float) (warmupSteps: int) (totalSteps: int) (floorRatio: float) (step: int) : float =
        if not (Double.IsFinite peak && peak > 0.0) then invalidArg "peak" $"peak learning rate must be finite and > 0, got {peak}"
        if totalSteps < 1 then invalidArg "totalSteps" $"total steps must be ≥ 1, got {totalSteps}"
        if warmupSteps < 0 || warmupSteps > totalSteps then
            invalidArg "warmupSteps" $"warmup steps must lie in [0, totalSteps = {totalSteps}], got {warmupSteps}"
        if not (floorRatio >= 0.0 && floorRatio <= 1.0) then invalidArg "floorRatio" $"floor ratio must lie in [0, 1], got {floorRatio}"
        if step < 0 || step >= totalSteps then invalidArg "step" $"step must lie in [0, totalSteps − 1 = {totalSteps - 1}], got {step}"
        // (step + 1) / warmupSteps is exactly 1 at the last warmup step, so the peak is met exactly
        if step < warmupSteps then peak * (float (step + 1) / float warmupSteps)
        else
            let span = totalSteps - 1 - warmupSteps
            if span = 0 then peak
            else
                let floor = floorRatio * peak
                let p = float (step - warmupSteps) / float span
                // the weight is exactly 1 at p = 0 and exactly 0 at p = 1 (cos π rounds to −1), so the ends are
                // the peak and the floor exactly; the clamp keeps rounding inside [floor, peak]
                let w = 0.5 * (1.0 + cos (Math.PI * p))
                min peak (max floor (w * peak + (1.0 - w) * floor))

    /// The whole schedule, one learning rate per step 0 … totalSteps − 1, with warmup steps from the ratio.
    [<CompiledName("Curve")>]
    let curve (peak: float) (warmupRatio: float) (totalSteps: int) (floorRatio: float) : float[] =
        let w = warmupSteps warmupRatio totalSteps
        Array.init totalSteps (learningRate peak w totalSteps floorRatio)
