namespace Trd.Core

open System

/// A difficulty bucket by the base model's pass count b out of K samples (App. B.2): B0 (b = 0),
/// B1–⌊K/2⌋, B⌊K/2⌋+1–K. For K = 16: B0, B1–8, B9–16.
type DifficultyBucket =
    { Label: string
      /// Inclusive pass-count bounds.
      Low: int
      High: int }

/// Teacher–student KL split by the stage-1 verifier outcome (App. C.5): token-weighted means over the
/// trajectories whose rollout passed (D^correct) and failed (D^incorrect). NaN where a side has no token.
[<Struct>]
type OutcomeSplit = { Correct: float; Incorrect: float }

/// Evaluation and training metrics (App. C.2, C.5, B.2).
module Metrics =

    let private checkRectangular (outcomes: bool[][]) =
        if outcomes.Length = 0 then invalidArg "outcomes" "no problems"
        let k = outcomes[0].Length
        if k = 0 then invalidArg "outcomes" "no samples per problem (K = 0)"
        outcomes |> Array.iteri (fun i row -> if row.Length <> k then invalidArg "outcomes" $"problem {i} has {row.Length} samples, problem 0 has {k}")
        k

    /// Avg@K = (1/N) Σ_q (1/K) Σ_i Verify(y_q^(i), y*_q); outcomes[q][i] is sample i of problem q.
    [<CompiledName("AvgAtK")>]
    let avgAtK (outcomes: bool[][]) =
        let k = checkRectangular outcomes
        outcomes |> Array.averageBy (fun row -> float (row |> Array.sumBy (fun b -> if b then 1 else 0)) / float k)

    /// Pass@K = (1/N) Σ_q max_i Verify(y_q^(i), y*_q).
    [<CompiledName("PassAtK")>]
    let passAtK (outcomes: bool[][]) =
        checkRectangular outcomes |> ignore
        outcomes |> Array.averageBy (fun row -> if Array.contains true row then 1.0 else 0.0)

    /// The unbiased pass@k estimator from n samples with c correct (Chen et al. 2021):
    /// 1 − C(n − c, k) / C(n, k), computed as 1 − Π_{i=n−c+1}^{n} (1 − k/i) to stay exact for large n.
    [<CompiledName("UnbiasedPassAtK")>]
    let unbiasedPassAtK (n: int) (c: int) (k: int) =
        if n < 1 then invalidArg "n" $"n must be ≥ 1, got {n}"
        if c < 0 || c > n then invalidArg "c" $"c must lie in [0, n = {n}], got {c}"
        if k < 1 || k > n then invalidArg "k" $"k must lie in [1, n = {n}], got {k}"
        if n - c < k then 1.0
        else
            let mutable prod = 1.0
            for i in n - c + 1 .. n do
                prod <- prod * (1.0 - float k / float i)
            1.0 - prod

    /// The mean unbiased pass@k over problems, for k = 1 … K.
    [<CompiledName("PassAtKCurve")>]
    let passAtKCurve (outcomes: bool[][]) =
        let n = checkRectangular outcomes
        let counts = outcomes |> Array.map (Array.sumBy (fun b -> if b then 1 else 0))
        Array.init n (fun i -> counts |> Array.averageBy (fun c -> unbiasedPassAtK n c (i + 1)))

    /// The three buckets for K samples per problem.
    [<CompiledName("Buckets")>]
    let buckets (k: int) =
        if k < 2 then invalidArg "k" $"difficulty buckets need K ≥ 2 samples, got {k}"
        let half = k / 2
        [| { Label = "B0"; Low = 0; High = 0 }
           { Label = $"B1–{half}"; Low = 1; High = half }
           { Label = $"B{half + 1}–{k}"; Low = half + 1; High = k } |]

    /// The bucket of a problem the base model solved `passCount` times out of K.
    [<CompiledName("BucketOf")>]
    let bucketOf (k: int) (passCount: int) =
        if passCount < 0 || passCount > k then invalidArg "passCount" $"pass count must lie in [0, K = {k}], got {passCount}"
        buckets k |> Array.find (fun b -> passCount >= b.Low && passCount <= b.High)

    /// Σ m x / Σ m.
    [<CompiledName("TokenWeightedMean")>]
    let tokenWeightedMean (values: float[]) (mask: float[]) = Numerics.maskedMean values mask

    /// exp(−Σ m log π(y_t) / Σ m): perplexity of the trajectory's own tokens under teacher forcing (App. C.5).
    [<CompiledName("Perplexity")>]
    let perplexity (tokenLogProbs: float[]) (mask: float[]) = exp (-(Numerics.maskedMean tokenLogProbs mask))

    /// The first-token ids of the 16 epistemic phrases of App. C.5, to be tokenised bare and with a leading
    /// space under the student's tokenizer.
    [<CompiledName("EpistemicPhrases")>]
    let epistemicPhrases =
        [| "Wait"; "Actually"; "However"; "Alternatively"; "Oops"; "Wrong"; "Error"; "Incorrect"
           "Correction"; "Sorry"; "Hmm"; "Oh"; "Hold"; "Pause"; "Uh"; "Um" |]

    /// Σ_{v∈ℰ} softmax(ℓ_t)_v for one position: teacher mass on the epistemic tokens, at T = 1
    /// ("before any KL temperature scaling", App. C.5).
    [<CompiledName("EpistemicMass")>]
    let epistemicMass (teacherLogits: float[]) (tokenIds: int[]) =
        Numerics.checkLogits "teacherLogits" teacherLogits
        let lp = Numerics.logSoftmax teacherLogits
        tokenIds
        |> Array.distinct
        |> Array.sumBy (fun v ->
            if v < 0 || v >= lp.Length then invalidArg "tokenIds" $"token id {v} is outside the vocabulary (V = {lp.Length})"
            exp lp[v])

    /// 1 − Σ_{v∈𝒮_t} softmax(ℓ_t)_v for one position, 𝒮_t the teacher's top-k (ties to the lower id, as
    /// `Support.topKIndices`): the teacher mass a TeacherTopK k support drops before renormalising, at T = 1. Summed
    /// over the complement, so a top-k holding nearly all the mass keeps its digits.
    [<CompiledName("MassOutsideTopK")>]
    let massOutsideTopK (teacherLogits: float[]) (k: int) =
        Numerics.checkLogits "teacherLogits" teacherLogits
        if k < 1 then invalidArg "k" $"top-K needs K ≥ 1, got K = {k}"
        let lp = Numerics.logSoftmax teacherLogits
        let kept = System.Collections.Generic.HashSet<int>(Support.topKIndices k lp)
        lp |> Array.indexed |> Array.sumBy (fun (v, x) -> if kept.Contains v then 0.0 else exp x)

    /// Token-weighted mean epistemic mass over positions.
    [<CompiledName("MeanEpistemicMass")>]
    let meanEpistemicMass (teacherLogits: float[][]) (tokenIds: int[]) (mask: float[]) =
        Numerics.maskedMean (teacherLogits |> Array.map (fun l -> epistemicMass l tokenIds)) mask

    /// D^correct and D^incorrect: per-position KL values of each trajectory, its mask, and whether its
    /// stage-1 rollout passed the verifier.
    [<CompiledName("SplitByOutcome")>]
    let splitByOutcome (perPosition: float[][]) (masks: float[][]) (passed: bool[]) =
        if perPosition.Length <> masks.Length || masks.Length <> passed.Length then
            invalidArg "passed" $"{perPosition.Length} trajectories, {masks.Length} masks and {passed.Length} outcomes"
        let side (want: bool) =
            let mutable num, den = 0.0, 0.0
            for i in 0 .. passed.Length - 1 do
                if passed[i] = want then
                    if perPosition[i].Length <> masks[i].Length then invalidArg "masks" $"trajectory {i}: {perPosition[i].Length} values, {masks[i].Length} mask entries"
                    for t in 0 .. masks[i].Length - 1 do
                        num <- num + masks[i][t] * perPosition[i][t]
                        den <- den + masks[i][t]
            if den = 0.0 then Double.NaN else num / den
        { Correct = side true; Incorrect = side false }
