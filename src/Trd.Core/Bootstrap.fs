namespace Trd.Core

open System

/// A mean with a 95% percentile interval, over Seeds non-empty seeds and Problems items in all. An estimate
/// from no data has Mean = Low = High = NaN and zero counts.
type Interval =
    { Mean: float
      Low: float
      High: float
      Seeds: int
      Problems: int }

/// The two-level (hierarchical) nonparametric bootstrap behind every interval of `trd study`: a score varies
/// with the training seed and with the held-out problem, so each replicate resamples both. It draws S seeds
/// with replacement, then within each drawn seed draws its items with replacement, and takes the pooled mean
/// of everything drawn. The interval is the 2.5 and 97.5 percentiles of the replicates (linear interpolation
/// between order statistics, NumPy's default); the point estimate is the plain pooled mean of the data.
///
/// values[s][q] is the score of item q under seed s. Rows may differ in length; empty rows (a seed with no
/// item, e.g. an empty difficulty bucket) take no part in the resampling and do not count as seeds.
///
/// The nested forms (`meanNested`, `differenceNested`) add a level above the seeds: groups[s] names the group
/// of row s (in `trd study --model-seeds N`, the model seed whose trained student and teacher the run seed s
/// used), and a replicate draws groups with replacement, then the rows of each drawn group, then their items —
/// model seed → run seed → problem. With every row its own group they draw exactly what the two-level forms do.
///
/// The random stream is SplitMix64 (Steele, Lea and Flood 2014) written out here, so an interval depends on
/// the data, the replicate count and the seed only: the same on every machine and .NET version.
module Bootstrap =

    /// Replicates drawn by `mean` and `difference`: 2000 puts the percentile's Monte Carlo error well under
    /// the interval's own width.
    [<CompiledName("Replicates")>]
    let replicates = 2000

    /// The seed of the random stream of `mean` and `difference`: fixed, so the same data gives the same
    /// interval in every run and every report.
    [<CompiledName("RngSeed")>]
    let rngSeed = 20250601

    /// SplitMix64: a 64-bit state advanced by the golden-ratio increment, output through a mixing function.
    type private SplitMix64(seed: int) =
        let mutable state = uint64 (int64 seed)

        member _.Next() : uint64 =
            state <- state + 0x9E3779B97F4A7C15UL
            let mutable z = state
            z <- (z ^^^ (z >>> 30)) * 0xBF58476D1CE4E5B9UL
            z <- (z ^^^ (z >>> 27)) * 0x94D049BB133111EBUL
            z ^^^ (z >>> 31)

        /// Uniform in 0 … n − 1 by the high word of a 64 × 64-bit product (Lemire 2019, without the
        /// rejection step: the bias is below n / 2^64).
        member r.Below(n: int) : int =
            let mutable low = 0UL
            int (Math.BigMul(r.Next(), uint64 n, &low))

    /// The q-quantile (q ∈ [0, 1]) of sorted values by linear interpolation at rank q (n − 1).
    let private quantileSorted (sorted: float[]) (q: float) =
        let rank = q * float (sorted.Length - 1)
        let lo = int (floor rank)
        let hi = min (lo + 1) (sorted.Length - 1)
        sorted[lo] + (rank - float lo) * (sorted[hi] - sorted[lo])

    let private checkFinite (name: string) (values: float[][]) =
        if obj.ReferenceEquals(values, null) then nullArg name
        values
        |> Array.iteri (fun s row ->
            if obj.ReferenceEquals(row, null) then invalidArg name $"seed {s}: the row is null"
            row |> Array.iteri (fun q x -> if not (Double.IsFinite x) then invalidArg name $"seed {s}, item {q}: the score is {x}, not a finite number"))

    /// The estimate of checked, finite rows grouped by groups[s]. Every sum is taken relative to a reference
    /// item c0 (Σ (x − c0)), so constant data gives exactly c0 for the mean and every replicate: a zero-width
    /// interval. A group of one row is taken whole (no draw), so singleton groups consume the random stream as
    /// the two-level bootstrap always has.
    /// The kept rows of checked values with their pooled mean and the replicate means (unsorted), drawn
    /// model group → row → item from the stream seeded with `seed`; None when there is no item.
    let private replicateMeans (replicateCount: int) (seed: int) (groups: int[]) (values: float[][]) =
        if replicateCount < 1 then invalidArg "replicates" $"replicates must be ≥ 1, got {replicateCount}"
        if groups.Length <> values.Length then invalidArg "groups" $"{groups.Length} group labels for {values.Length} rows"
        let kept = Array.zip groups values |> Array.filter (fun (_, row) -> row.Length > 0)
        let rows = kept |> Array.map snd
        let nested = kept |> Array.groupBy fst |> Array.map (fun (_, members) -> members |> Array.map snd)
        let n = rows |> Array.sumBy Array.length
        if rows.Length = 0 then
            None
        else
            let c0 = rows[0][0]
            let mutable total = 0.0
            for row in rows do
                for x in row do
                    total <- total + (x - c0)
            let rng = SplitMix64 seed
            let draws =
                Array.init replicateCount (fun _ ->
                    let mutable sum, count = 0.0, 0
                    for _ in 1 .. nested.Length do
                        let group = nested[rng.Below nested.Length]
                        for _ in 1 .. group.Length do
                            let row = if group.Length = 1 then group[0] else group[rng.Below group.Length]
                            for _ in 1 .. row.Length do
                                sum <- sum + (row[rng.Below row.Length] - c0)
                            count <- count + row.Length
                    c0 + sum / float count)
            Some(c0 + total / float n, draws, rows.Length, n)

    /// The estimate of checked, finite rows grouped by groups[s]. Every sum is taken relative to a reference
    /// item c0 (Σ (x − c0)), so constant data gives exactly c0 for the mean and every replicate: a zero-width
    /// interval. A group of one row is taken whole (no draw), so singleton groups consume the random stream as
    /// the two-level bootstrap always has.
    let private estimate (replicateCount: int) (seed: int) (groups: int[]) (values: float[][]) : Interval =
        match replicateMeans replicateCount seed groups values with
        | None -> { Mean = nan; Low = nan; High = nan; Seeds = 0; Problems = 0 }
        | Some(mean, draws, seeds, n) ->
            Array.sortInPlace draws
            { Mean = mean
              Low = quantileSorted draws 0.025
              High = quantileSorted draws 0.975
              Seeds = seeds
              Problems = n }

    let private singletons (values: float[][]) = Array.init (if obj.ReferenceEquals(values, null) then 0 else values.Length) id

    /// The pooled mean of values[s][q] (seed s, item q) with its 95% two-level bootstrap interval, from
    /// `replicates` replicates of the stream seeded with `rngSeed`. Raises on a non-finite score (naming its
    /// seed and item) or replicates < 1; no item at all gives a NaN interval with zero counts.
    [<CompiledName("MeanWith")>]
    let meanWith (replicates: int) (rngSeed: int) (values: float[][]) : Interval =
        checkFinite "values" values
        estimate replicates rngSeed (singletons values) values

    /// The pooled mean of values[s][q] (seed s, item q) with its 95% two-level bootstrap interval
    /// (`replicates` replicates, seed `rngSeed`). Raises on a non-finite score, naming its seed and item.
    [<CompiledName("Mean")>]
    let mean (values: float[][]) : Interval = meanWith replicates rngSeed values

    let private paired (a: float[][]) (b: float[][]) =
        checkFinite "a" a
        checkFinite "b" b
        if a.Length <> b.Length then invalidArg "b" $"a has {a.Length} seeds, b has {b.Length}"
        Array.init a.Length (fun s ->
            if a[s].Length <> b[s].Length then invalidArg "b" $"seed {s}: a has {a[s].Length} items, b has {b[s].Length}"
            Array.init a[s].Length (fun q ->
                let x = a[s][q] - b[s][q]
                // two finite scores can still overflow
                if not (Double.IsFinite x) then invalidArg "b" $"seed {s}, item {q}: a − b = {x} is not finite"
                x))

    /// The paired difference a − b: the same seeds and items on both sides (a[s][q] and b[s][q] score the
    /// same problem under the same seed), resampled together, so what is shared by the pair cancels. Raises
    /// when the two differ in seed count or in some seed's item count (naming the seed), or on a non-finite
    /// score; `replicates` replicates of the stream seeded with `rngSeed`.
    [<CompiledName("DifferenceWith")>]
    let differenceWith (replicates: int) (rngSeed: int) (a: float[][]) (b: float[][]) : Interval =
        let d = paired a b
        estimate replicates rngSeed (singletons d) d

    /// The paired difference a − b with its 95% two-level bootstrap interval (`replicates` replicates, seed
    /// `rngSeed`). Raises when a[s] and b[s] differ in length (naming s) or on a non-finite score.
    [<CompiledName("Difference")>]
    let difference (a: float[][]) (b: float[][]) : Interval = differenceWith replicates rngSeed a b

    /// The pooled mean with its 95% three-level interval: groups[s] is row s's group (its model seed), and each
    /// replicate resamples groups, then rows within each group, then items. Raises when groups and rows differ in
    /// number, or on a non-finite score.
    [<CompiledName("MeanNested")>]
    let meanNested (groups: int[]) (values: float[][]) : Interval =
        checkFinite "values" values
        if obj.ReferenceEquals(groups, null) then nullArg "groups"
        estimate replicates rngSeed groups values

    /// The paired difference a − b with its 95% three-level interval (groups as in `meanNested`).
    [<CompiledName("DifferenceNested")>]
    let differenceNested (groups: int[]) (a: float[][]) (b: float[][]) : Interval =
        if obj.ReferenceEquals(groups, null) then nullArg "groups"
        estimate replicates rngSeed groups (paired a b)

    /// The difference mean(a) − mean(b) of two *independent* samples — two cells of a `trd study --grid`, whose
    /// models, corpora and runs share nothing — with its 95% interval: each side is resampled on its own stream
    /// (groups as in `meanNested`; a side's stream is seeded `rngSeed` and `rngSeed + 1`), and the interval is the
    /// percentiles of the replicate differences. Seeds and Problems count both sides. Raises on a non-finite
    /// score; either side empty gives a NaN interval.
    [<CompiledName("Contrast")>]
    let contrast (groupsA: int[]) (a: float[][]) (groupsB: int[]) (b: float[][]) : Interval =
        checkFinite "a" a
        checkFinite "b" b
        if obj.ReferenceEquals(groupsA, null) then nullArg "groupsA"
        if obj.ReferenceEquals(groupsB, null) then nullArg "groupsB"
        match replicateMeans replicates rngSeed groupsA a, replicateMeans replicates (rngSeed + 1) groupsB b with
        | Some(meanA, drawsA, seedsA, nA), Some(meanB, drawsB, seedsB, nB) ->
            let draws = Array.map2 (-) drawsA drawsB
            Array.sortInPlace draws
            { Mean = meanA - meanB
              Low = quantileSorted draws 0.025
              High = quantileSorted draws 0.975
              Seeds = seedsA + seedsB
              Problems = nA + nB }
        | _ -> { Mean = nan; Low = nan; High = nan; Seeds = 0; Problems = 0 }
