namespace Trd.Core

open System

/// The verifier outcomes of one training problem's two trajectories (App. B.1, B.3): the raw rollout
/// y_o ~ π_θ(·|x) and the refined trajectory y_r ~ π_θ(·|x, y_o, y*).
type TrajectoryOutcome =
    { Id: string
      /// Verify(y_o, y*) = 1.
      RolloutCorrect: bool
      /// Verify(y_r, y*) = 1.
      RefinedCorrect: bool }

/// The 2 × 2 joint outcome of y_o and y_r (App. B.1, Figures 6–7, right panels), named y_o outcome then y_r
/// outcome: FailPass is "fail → pass", prefix-failure recovery; PassFail is "pass → fail", the price.
type JointOutcome =
    { PassPass: int
      PassFail: int
      FailPass: int
      FailFail: int }

    /// The number of problems counted.
    member j.Total = j.PassPass + j.PassFail + j.FailPass + j.FailFail

/// Summary statistics of trajectory lengths in tokens (App. B.1, Figures 5–7, left panels). Std is the
/// population standard deviation (divide by n); percentiles interpolate linearly between order statistics
/// (NumPy's default): the q-quantile sits at rank q (n − 1).
type LengthSummary =
    { Count: int
      Mean: float
      Std: float
      Min: int
      P10: float
      Median: float
      P90: float
      Max: int }

/// Equal-width histogram: Counts[i] counts values in [Edges[i], Edges[i+1]), the last bin closed on the right.
type Histogram = { Edges: float[]; Counts: int[] }

/// Lengths split by the trajectory's verifier outcome (the correct and incorrect halves of Figures 6–7).
type LengthsByOutcome = { Correct: int[]; Incorrect: int[] }

/// A training-corpus filter on the outcomes of y_o and y_r (App. B.3, Tables 6–8).
type SubsetFilter =
    /// The full corpus, fail ∪ succ (n = 40,245 on DeepScaleR).
    | All
    /// Tuples whose y_o is incorrect (n = 12,318).
    | Fail
    /// Tuples whose y_o is correct (n = 27,927).
    | Succ
    /// fail → succ: y_o incorrect and y_r correct (n = 4,372).
    | FailToSucc

/// The corpus analyses of §6.5 and App. B.1, B.3: joint outcomes of y_o and y_r, length summaries and
/// histograms, verifier accuracy, and the subset filters.
module CorpusAnalysis =

    /// The joint outcome counts of y_o and y_r.
    [<CompiledName("Joint")>]
    let joint (outcomes: TrajectoryOutcome[]) : JointOutcome =
        let count f = outcomes |> Array.sumBy (fun o -> if f o then 1 else 0)
        { PassPass = count (fun o -> o.RolloutCorrect && o.RefinedCorrect)
          PassFail = count (fun o -> o.RolloutCorrect && not o.RefinedCorrect)
          FailPass = count (fun o -> not o.RolloutCorrect && o.RefinedCorrect)
          FailFail = count (fun o -> not o.RolloutCorrect && not o.RefinedCorrect) }

    /// y*'s length on the scale of y_o and y_r: its tokens plus the end-of-turn token (<|im_end|>) that closes every
    /// generated trajectory and is counted in theirs.
    [<CompiledName("ReferenceLength")>]
    let referenceLength (solutionTokens: int) : int = solutionTokens + 1

    /// The fraction of verifier passes (Figures 6–7, middle panels). Raises on an empty array.
    [<CompiledName("Accuracy")>]
    let accuracy (passed: bool[]) : float =
        if passed.Length = 0 then invalidArg "passed" "no outcomes"
        float (passed |> Array.sumBy (fun b -> if b then 1 else 0)) / float passed.Length

    /// The q-quantile (q ∈ [0, 1]) of sorted values by linear interpolation at rank q (n − 1).
    let private quantileSorted (sorted: int[]) (q: float) =
        let rank = q * float (sorted.Length - 1)
        let lo = int (floor rank)
        let hi = min (lo + 1) (sorted.Length - 1)
        float sorted[lo] + (rank - float lo) * float (sorted[hi] - sorted[lo])

    /// The q-quantile of lengths (linear interpolation, NumPy's default). Raises on an empty array or q ∉ [0, 1].
    [<CompiledName("Quantile")>]
    let quantile (lengths: int[]) (q: float) : float =
        if lengths.Length = 0 then invalidArg "lengths" "no lengths"
        if not (q >= 0.0 && q <= 1.0) then invalidArg "q" $"quantile must lie in [0, 1], got {q}"
        quantileSorted (Array.sort lengths) q

    /// Count, mean, population standard deviation, min, 10th percentile, median, 90th percentile and max.
    /// Raises on an empty array or a negative length.
    [<CompiledName("Summarise")>]
    let summarise (lengths: int[]) : LengthSummary =
        if lengths.Length = 0 then invalidArg "lengths" "no lengths"
        lengths |> Array.iteri (fun i l -> if l < 0 then invalidArg "lengths" $"length {i} is negative ({l})")
        let sorted = Array.sort lengths
        let mean = lengths |> Array.averageBy float
        let variance = lengths |> Array.averageBy (fun l -> (float l - mean) ** 2.0)
        { Count = lengths.Length
          Mean = mean
          Std = sqrt variance
          Min = sorted[0]
          P10 = quantileSorted sorted 0.1
          Median = quantileSorted sorted 0.5
          P90 = quantileSorted sorted 0.9
          Max = sorted[sorted.Length - 1] }

    /// binCount equal-width bins from the smallest to the largest length, as `numpy.histogram`: every bin is
    /// half-open but the last, which includes the maximum; when all lengths are equal (v) the range is
    /// [v − 0.5, v + 0.5]; an empty array gives the range [0, 1] and zero counts. Raises when binCount < 1.
    [<CompiledName("Histogram")>]
    let histogram (lengths: int[]) (binCount: int) : Histogram =
        if binCount < 1 then invalidArg "binCount" $"bin count must be ≥ 1, got {binCount}"
        let lo, hi =
            if lengths.Length = 0 then 0.0, 1.0
            else
                let mn, mx = float (Array.min lengths), float (Array.max lengths)
                if mn = mx then mn - 0.5, mx + 0.5 else mn, mx
        let edges = Array.init (binCount + 1) (fun i -> if i = binCount then hi else lo + (hi - lo) * float i / float binCount)
        let counts = Array.zeroCreate binCount
        for l in lengths do
            let x = float l
            let mutable b = min (binCount - 1) (int ((x - lo) / (hi - lo) * float binCount))
            // the computed index can be off by one where x sits on an edge; the edges decide
            if b > 0 && x < edges[b] then b <- b - 1
            elif b < binCount - 1 && x >= edges[b + 1] then b <- b + 1
            counts[b] <- counts[b] + 1
        { Edges = edges; Counts = counts }

    /// Lengths split by whether their trajectory passed the verifier. Raises when the arrays differ in length.
    [<CompiledName("SplitLengths")>]
    let splitLengths (lengths: int[]) (passed: bool[]) : LengthsByOutcome =
        if lengths.Length <> passed.Length then invalidArg "passed" $"{lengths.Length} lengths but {passed.Length} outcomes"
        { Correct = Array.zip lengths passed |> Array.filter snd |> Array.map fst
          Incorrect = Array.zip lengths passed |> Array.filter (snd >> not) |> Array.map fst }

    /// Whether a filter keeps a problem: All always; Fail when y_o failed; Succ when y_o passed; FailToSucc
    /// when y_o failed and y_r passed (App. B.3).
    [<CompiledName("Keeps")>]
    let keeps (filter: SubsetFilter) (outcome: TrajectoryOutcome) : bool =
        match filter with
        | All -> true
        | Fail -> not outcome.RolloutCorrect
        | Succ -> outcome.RolloutCorrect
        | FailToSucc -> not outcome.RolloutCorrect && outcome.RefinedCorrect

    /// The ids a filter keeps, in corpus order.
    [<CompiledName("Select")>]
    let select (filter: SubsetFilter) (outcomes: TrajectoryOutcome[]) : string[] =
        outcomes |> Array.filter (keeps filter) |> Array.map (fun o -> o.Id)

    /// The configuration name of a filter: "all", "fail", "succ", "fail-to-succ".
    [<CompiledName("FilterName")>]
    let filterName (filter: SubsetFilter) : string =
        match filter with
        | All -> "all"
        | Fail -> "fail"
        | Succ -> "succ"
        | FailToSucc -> "fail-to-succ"

    /// The filters in the order of Tables 6–8.
    [<CompiledName("Filters")>]
    let filters = [| All; Fail; Succ; FailToSucc |]

    /// The filter a configuration name denotes (case and surrounding white space ignored). Raises
    /// ArgumentException listing the valid names otherwise.
    [<CompiledName("ParseFilter")>]
    let parseFilter (name: string) : SubsetFilter =
        let key = if obj.ReferenceEquals(name, null) then "" else name.Trim().ToLowerInvariant()
        match filters |> Array.tryFind (fun f -> filterName f = key) with
        | Some f -> f
        | None ->
            let valid = filters |> Array.map (fun f -> $"\"{filterName f}\"") |> String.concat ", "
            invalidArg "name" $"unknown subset filter \"{name}\"; valid names are {valid}"
