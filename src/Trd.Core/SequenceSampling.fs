namespace Trd.Core

open System

/// Per-sequence sampling (issue 14, §1): every sampled sequence draws from its own random stream, named by a seed,
/// so a sequence's tokens depend on its seed and its model only, never on which other sequences share its batch, its
/// request or its server. This is what lets a served engine (vLLM: sample j of a request seeded s is seeded s + j),
/// `trd serve` grouping requests, and the in-process sampler draw the same samples.
///
/// The stream is counter-based SplitMix64 (Steele, Lea and Flood 2014): the uniform of step t is the mixed value of
/// seed + (t + 1) γ, so it is the same on every machine and needs no state to resume. A token is drawn by inverting
/// the cumulative distribution at that uniform.
module SequenceSampling =

    /// The uniform of step t (t ≥ 0) of the stream seeded `seed`, in the open interval (0, 1): the top 53 bits of the
    /// mixed counter, plus half a unit of the last place so that 0 is never drawn.
    [<CompiledName("Uniform")>]
    let uniform (seed: int64) (step: int) : float =
        if step < 0 then invalidArg "step" $"step must be ≥ 0, got {step}"
        let mutable z = uint64 seed + uint64 (int64 step + 1L) * 0x9E3779B97F4A7C15UL
        z <- (z ^^^ (z >>> 30)) * 0xBF58476D1CE4E5B9UL
        z <- (z ^^^ (z >>> 27)) * 0x94D049BB133111EBUL
        z <- z ^^^ (z >>> 31)
        (float (z >>> 11) + 0.5) / 9007199254740992.0

    /// The seed of sample j of a prompt seeded `promptSeed`: promptSeed + j, vLLM's rule for the n samples of one
    /// seeded request (each child request is seeded seed + index), so one request with n samples and n requests
    /// seeded s, s + 1, … draw the same.
    [<CompiledName("SampleSeed")>]
    let sampleSeed (promptSeed: int64) (j: int) : int64 =
        if j < 0 then invalidArg "j" $"sample index must be ≥ 0, got {j}"
        promptSeed + int64 j

    /// The float64 reference draw: the first index whose cumulative weight reaches u × the total (weights ≥ 0, not
    /// all 0; u in (0, 1)). A weight of 0 is never drawn. The executor's tensor path (cumsum, count below) must agree.
    [<CompiledName("Draw")>]
    let draw (weights: float[]) (u: float) : int =
        if obj.ReferenceEquals(weights, null) || weights.Length = 0 then invalidArg "weights" "no weights to draw from"
        if not (u > 0.0 && u < 1.0) then invalidArg "u" $"u must lie in (0, 1), got {u}"
        weights |> Array.iteri (fun i w -> if not (w >= 0.0) || Double.IsInfinity w then invalidArg "weights" $"weight {i} is {w}, not a finite number ≥ 0")
        let total = Array.sum weights
        if total <= 0.0 then invalidArg "weights" "every weight is 0"
        let target = u * total
        let mutable cumulative = 0.0
        let mutable chosen = -1
        let mutable i = 0
        while chosen < 0 && i < weights.Length do
            cumulative <- cumulative + weights[i]
            if cumulative >= target && weights[i] > 0.0 then chosen <- i
            i <- i + 1
        // Rounding can leave the last cumulative just under the target: the last index with weight takes it.
        if chosen >= 0 then chosen else Array.findIndexBack (fun w -> w > 0.0) weights
