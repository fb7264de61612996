namespace Trd.Core

/// A named set of vocabulary entries (e.g. the wrong-continuation region, the correction-onset region).
type Region = { Name: string; Tokens: int[] }

/// How much of each divergence one region carries: Σ_{v∈R} of the divergence's entry terms. Entry terms
/// can be negative, so a region's share of the total is signed; the shares over a partition sum to 1.
type RegionContribution =
    { Region: string
      Forward: float
      Reverse: float
      ForwardShare: float
      ReverseShare: float }

/// One row of a mixture-weight sweep.
type MixturePoint =
    { /// w in π_T = (1 − w) · wrong-continuation mode + w · correction mode.
      Weight: float
      ForwardKl: float
      ReverseKl: float
      Regions: RegionContribution[] }

/// The bimodal teacher of §4.1 (Fig. 2). Under prefix failure the teacher mixes a mode that continues the
/// failed prefix and a mode that pivots to the correction onset ȳ*_t; the student stays anchored on the
/// wrong continuation. Forward KL, weighted by π_T, is carried by the correction-onset region; reverse KL,
/// weighted by π_θ, by the wrong-continuation region, where the student already places its mass.
module Mixture =

    let private checkDistribution (what: string) (p: float[]) =
        if p |> Array.exists (fun x -> System.Double.IsNaN x || x < 0.0) then invalidArg what $"{what} has a negative or NaN probability"
        let s = Array.sum p
        if abs (s - 1.0) > 1e-9 then invalidArg what $"{what} sums to {s}, not 1"

    /// (1 − w) · wrongMode + w · correctionMode, for w ∈ [0, 1].
    [<CompiledName("Mix")>]
    let mix (weight: float) (wrongMode: float[]) (correctionMode: float[]) =
        if System.Double.IsNaN weight || weight < 0.0 || weight > 1.0 then invalidArg "weight" $"the mixture weight must lie in [0, 1], got {weight}"
        if wrongMode.Length <> correctionMode.Length then invalidArg "correctionMode" "the two modes have different vocabulary sizes"
        Array.map2 (fun a b -> (1.0 - weight) * a + weight * b) wrongMode correctionMode

    /// A distribution putting `mass` uniformly on `tokens` and the rest uniformly on the other entries.
    [<CompiledName("Concentrated")>]
    let concentrated (vocabularySize: int) (tokens: int[]) (mass: float) =
        if mass < 0.0 || mass > 1.0 then invalidArg "mass" $"mass must lie in [0, 1], got {mass}"
        if tokens.Length = 0 || tokens.Length >= vocabularySize then invalidArg "tokens" "the region must be non-empty and smaller than the vocabulary"
        let inside = System.Collections.Generic.HashSet<int>(tokens)
        Array.init vocabularySize (fun v ->
            if inside.Contains v then mass / float inside.Count
            else (1.0 - mass) / float (vocabularySize - inside.Count))

    /// Each region's part of D(π_T ‖ π_θ) and D(π_θ ‖ π_T), for teacher and student probabilities.
    [<CompiledName("Contributions")>]
    let contributions (teacher: float[]) (student: float[]) (regions: Region[]) =
        checkDistribution "teacher" teacher
        checkDistribution "student" student
        if teacher.Length <> student.Length then invalidArg "student" "teacher and student have different vocabulary sizes"
        let lt, ls = teacher |> Array.map log, student |> Array.map log
        let fwd = Divergence.entryTerms Forward lt ls
        let rev = Divergence.entryTerms Reverse lt ls
        let totalF, totalR = Array.sum fwd, Array.sum rev
        regions
        |> Array.map (fun r ->
            let f = r.Tokens |> Array.sumBy (fun v -> fwd[v])
            let b = r.Tokens |> Array.sumBy (fun v -> rev[v])
            { Region = r.Name
              Forward = f
              Reverse = b
              ForwardShare = (if totalF = 0.0 then 0.0 else f / totalF)
              ReverseShare = (if totalR = 0.0 then 0.0 else b / totalR) })

    /// Sweeps the teacher's mixture weight with the student fixed.
    [<CompiledName("Sweep")>]
    let sweep (weights: float[]) (wrongMode: float[]) (correctionMode: float[]) (student: float[]) (regions: Region[]) =
        weights
        |> Array.map (fun w ->
            let teacher = mix w wrongMode correctionMode
            let lt, ls = teacher |> Array.map log, student |> Array.map log
            { Weight = w
              ForwardKl = Divergence.forwardKl lt ls
              ReverseKl = Divergence.reverseKl lt ls
              Regions = contributions teacher student regions })
