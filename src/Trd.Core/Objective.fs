namespace Trd.Core

open System

/// One position's divergence before and after clipping.
[<Struct>]
type PositionValue =
    { /// D_t before clipping (after per-entry clipping, if the recipe clips per entry).
      Divergence: float
      /// The position's contribution to the loss: min(D_t, c) under per-position clipping, else D_t.
      Contribution: float
      /// D_t > c under per-position clipping (the position then has no gradient).
      Clipped: bool }

/// A recipe evaluated on a batch of positions (the float64 reference of the TorchSharp executor).
type Evaluation =
    { /// Σ_t m_t · contribution_t / normaliser.
      Loss: float
      /// Token-weighted mean of D_t over the mask, before per-position clipping.
      KlPreClip: float
      /// Token-weighted mean of the contributions (after per-position clipping).
      KlPostClip: float
      /// Fraction of masked positions whose D_t exceeded c.
      ClipFraction: float
      /// Σ_t m_t.
      Tokens: float
      /// D_t for every position (masked or not).
      PerPosition: float[] }

/// The reference evaluator: the recipe's primitives composed in the paper's order —
/// temperature (once) → support → divergence or sampled estimator → per-entry clip → sum → per-position clip.
module Objective =

    /// D_t from the two sides restricted to the support: entry terms, per-entry clip, sum.
    [<CompiledName("SupportDivergence")>]
    let supportDivergence (recipe: Recipe) (pair: SupportedPair) : float =
        Divergence.entryTerms recipe.Direction pair.TeacherLogProbs pair.StudentLogProbs
        |> Clip.applyToEntries recipe.Clip
        |> Array.sum

    /// A position's value from its D_t: the contribution after the per-position clip, and whether it was clipped.
    [<CompiledName("OfDivergence")>]
    let ofDivergence (recipe: Recipe) (d: float) : PositionValue =
        { Divergence = d
          Contribution = Clip.applyToPosition recipe.Clip d
          Clipped = Clip.isClipped recipe.Clip d }

    /// Throws unless a sampled estimator's target is a token of the vocabulary.
    let internal checkTarget (target: int) (vocabulary: int) =
        if target < 0 || target >= vocabulary then
            invalidArg "target" $"the sampled estimator needs the trajectory token at each position; got {target} for V = {vocabulary}"

    /// One position. teacherLogits and studentLogits are raw logits over the same vocabulary;
    /// target is the trajectory's token at this position (read only by the sampled estimators; pass -1 otherwise).
    [<CompiledName("Position")>]
    let position (recipe: Recipe) (teacherLogits: float[]) (studentLogits: float[]) (target: int) : PositionValue =
        Recipe.validate recipe |> ignore
        if teacherLogits.Length <> studentLogits.Length then
            invalidArg "studentLogits" $"vocabulary sizes differ: teacher V = {teacherLogits.Length}, student V = {studentLogits.Length}"
        Numerics.checkLogits "teacherLogits" teacherLogits
        Numerics.checkLogits "studentLogits" studentLogits
        let lt = Numerics.temperedLogProbs recipe.Temperature teacherLogits
        let ls = Numerics.temperedLogProbs recipe.Temperature studentLogits
        if Estimator.isSampled recipe.Estimator then
            checkTarget target ls.Length
            ofDivergence recipe (Estimator.fromLogRatio recipe.Estimator (ls[target] - lt[target]))
        else ofDivergence recipe (supportDivergence recipe (Support.restrict recipe.Support lt ls))

    /// N positions' values reduced to the batch's loss and diagnostics: mask[n] ∈ {0, 1} (or a weight), normaliser
    /// the denominator of the loss (Reduction: the optimiser step's global token count; 0: this batch's Σ m).
    [<CompiledName("Reduce")>]
    let reduce (values: PositionValue[]) (mask: float[]) (normaliser: float) : Evaluation =
        if mask.Length <> values.Length then invalidArg "mask" $"mask has {mask.Length} entries for {values.Length} positions"
        let tokens = Array.sum mask
        if tokens <= 0.0 then invalidArg "mask" "the mask selects no position (empty mask)"
        let sumBy (f: PositionValue -> float) = Seq.fold2 (fun acc (v: PositionValue) m -> acc + m * f v) 0.0 values mask
        let contributions = sumBy (fun v -> v.Contribution)
        let denominator = if normaliser > 0.0 then normaliser else tokens
        { Loss = contributions / denominator
          KlPreClip = sumBy (fun v -> v.Divergence) / tokens
          KlPostClip = contributions / tokens
          ClipFraction = sumBy (fun v -> if v.Clipped then 1.0 else 0.0) / tokens
          Tokens = tokens
          PerPosition = values |> Array.map (fun v -> v.Divergence) }

    /// A batch of N positions: teacher[n] and student[n] are logit vectors, mask[n] ∈ {0, 1} (or a weight),
    /// targets[n] the trajectory tokens (may be empty for exact recipes), normaliser the denominator of the
    /// loss (Reduction: the optimiser step's global token count; pass 0 to use this batch's Σ m).
    [<CompiledName("Evaluate")>]
    let evaluate (recipe: Recipe) (teacher: float[][]) (student: float[][]) (mask: float[]) (targets: int[]) (normaliser: float) =
        let n = teacher.Length
        if student.Length <> n then invalidArg "student" $"teacher has {n} positions but student has {student.Length}"
        if mask.Length <> n then invalidArg "mask" $"mask has {mask.Length} entries for {n} positions"
        if Estimator.isSampled recipe.Estimator && targets.Length <> n then
            invalidArg "targets" $"the sampled estimator needs {n} targets, got {targets.Length}"
        if Array.sum mask <= 0.0 then invalidArg "mask" "the mask selects no position (empty mask)"
        Array.init n (fun i -> position recipe teacher[i] student[i] (if targets.Length = n then targets[i] else -1))
        |> fun values -> reduce values mask normaliser

    /// ∂loss/∂(student logits) for one position by central finite differences in float64: the slow,
    /// recipe-agnostic reference for the executor's autograd (use on small V; h is the step).
    [<CompiledName("NumericalGradient")>]
    let numericalGradient (recipe: Recipe) (teacherLogits: float[]) (studentLogits: float[]) (target: int) (h: float) =
        Array.init studentLogits.Length (fun j ->
            let shifted (delta: float) =
                let z = Array.copy studentLogits
                z[j] <- z[j] + delta
                (position recipe teacherLogits z target).Contribution
            if Double.IsNegativeInfinity studentLogits[j] then 0.0
            else (shifted h - shifted -h) / (2.0 * h))
