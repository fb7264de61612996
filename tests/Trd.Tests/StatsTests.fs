module Trd.Tests.StatsTests

open System
open Expecto
open FsCheck
open FsCheck.FSharp
open Trd.Core
open Trd.Tests.Generators

// ---------------------------------------------------------------------------------------------
// A slow reference of the two-level bootstrap, written from its description
// ---------------------------------------------------------------------------------------------

/// SplitMix64 (Steele, Lea and Flood 2014), as published.
type private RefSplitMix64(seed: uint64) =
    let mutable state = seed

    member _.Next() =
        state <- state + 0x9E3779B97F4A7C15UL
        let z = (state ^^^ (state >>> 30)) * 0xBF58476D1CE4E5B9UL
        let z = (z ^^^ (z >>> 27)) * 0x94D049BB133111EBUL
        z ^^^ (z >>> 31)

    /// ⌊x n / 2^64⌋ by 128-bit arithmetic.
    member r.Below(n: int) = int ((bigint (r.Next()) * bigint n) >>> 64)

/// Each replicate: draw S seeds with replacement, then each drawn seed's items with replacement, and take
/// Σ x / n over all drawn items; the interval is the 2.5 and 97.5 percentiles at rank q (R − 1).
let private referenceBootstrap (replicates: int) (seed: int) (values: float[][]) =
    let rows = values |> Array.filter (fun r -> r.Length > 0)
    let rng = RefSplitMix64(uint64 (int64 seed))
    let stats =
        [ for _ in 1 .. replicates ->
            let drawn =
                [ for _ in 1 .. rows.Length do
                    let row = rows[rng.Below rows.Length]
                    for _ in 1 .. row.Length -> row[rng.Below row.Length] ]
            List.sum drawn / float drawn.Length ]
        |> List.sort
        |> Array.ofList
    let quantile q =
        let rank = q * float (stats.Length - 1)
        let lo = int (floor rank)
        let hi = min (lo + 1) (stats.Length - 1)
        stats[lo] + (rank - float lo) * (stats[hi] - stats[lo])
    let all = Array.concat rows
    Array.sum all / float all.Length, quantile 0.025, quantile 0.975

/// Ragged score matrices: 1 … 5 seeds of 0 … 12 items, values k/4 for k in −40 … 40 times a scale.
let private raggedGen : Gen<float[][]> =
    gen {
        let! s = Gen.choose (1, 5)
        let! scale = Gen.elements [ 1e-3; 1.0; 1e3 ]
        let row =
            gen {
                let! n = Gen.choose (0, 12)
                return! Gen.arrayOfLength n (Gen.choose (-40, 40) |> Gen.map (fun k -> scale * float k / 4.0))
            }
        return! Gen.arrayOfLength s row
    }

let private ragged = Arb.fromGen raggedGen

let private scaleOf (values: float[][]) = values |> Array.fold (fun m r -> r |> Array.fold (fun m x -> max m (abs x)) m) 1e-300

/// Seeds × items scores drawn as 0.5 + u_s + e_sq, u_s ~ N(0, 0.25²), e_sq ~ N(0, 1): true mean 0.5.
let private hierarchical (rng: Random) (seeds: int) (items: int) =
    Array.init seeds (fun _ ->
        let u = 0.25 * gaussian rng
        Array.init items (fun _ -> 0.5 + u + gaussian rng))

let private width (i: Interval) = i.High - i.Low

let bootstrapTests =
    testList "Bootstrap" [
        testCase "the reference SplitMix64 gives the published first outputs for seed 0" <| fun () ->
            let r = RefSplitMix64 0UL
            Expect.equal [ r.Next(); r.Next(); r.Next() ] [ 0xE220A8397B1DCDAFUL; 0x6E789E6AA1B965F4UL; 0x06C45D188009454FUL ] "splitmix64(0)"

        testProperty "meanWith equals the slow reference bootstrap (same stream, same draws)" <|
            Prop.forAll ragged (fun values ->
                if values |> Array.exists (fun r -> r.Length > 0) then
                    let i = Bootstrap.meanWith 50 7 values
                    let mean, low, high = referenceBootstrap 50 7 values
                    let tol = 1e-12 * scaleOf values
                    expectAbs tol i.Mean mean "mean"
                    expectAbs tol i.Low low "2.5 percentile"
                    expectAbs tol i.High high "97.5 percentile")

        testProperty "the point estimate is the pooled mean of all items and the interval contains it" <|
            Prop.forAll ragged (fun values ->
                let i = Bootstrap.meanWith 200 Bootstrap.rngSeed values
                let items = Array.concat values
                if items.Length = 0 then
                    Expect.isTrue (Double.IsNaN i.Mean && Double.IsNaN i.Low && Double.IsNaN i.High) "no data: NaN"
                else
                    let tol = 1e-12 * scaleOf values
                    let mutable sum = 0.0
                    for x in items do
                        sum <- sum + x
                    expectAbs tol i.Mean (sum / float items.Length) "pooled mean"
                    Expect.isLessThanOrEqual i.Low (i.Mean + tol) "Low ≤ mean"
                    Expect.isGreaterThanOrEqual (i.High + tol) i.Mean "mean ≤ High"
                Expect.equal i.Seeds (values |> Array.filter (fun r -> r.Length > 0) |> Array.length) "Seeds: non-empty rows"
                Expect.equal i.Problems items.Length "Problems: all items")

        testCase "constant data gives a zero-width interval at the constant, whatever the row lengths" <| fun () ->
            for c in [ 0.1; -3.7; 1e9; 0.0 ] do
                let values = [| Array.create 3 c; [||]; Array.create 7 c; Array.create 1 c |]
                let i = Bootstrap.mean values
                Expect.equal (i.Mean, i.Low, i.High) (c, c, c) $"c = {c}"
                Expect.equal (i.Seeds, i.Problems) (3, 11) "counts"

        testCase "no rows, or only empty rows, give a NaN interval with zero counts" <| fun () ->
            for values in [ [||]; [| [||]; [||] |] ] do
                let i = Bootstrap.mean values
                Expect.isTrue (Double.IsNaN i.Mean && Double.IsNaN i.Low && Double.IsNaN i.High) "NaN"
                Expect.equal (i.Seeds, i.Problems) (0, 0) "counts"
            let d = Bootstrap.difference [| [||] |] [| [||] |]
            Expect.isTrue (Double.IsNaN d.Mean) "empty difference"

        testCase "a NaN or infinite score is an error naming its seed and item" <| fun () ->
            for bad in [ nan; infinity; -infinity ] do
                let values = [| [| 1.0; 2.0 |]; [| 3.0; 4.0; bad |] |]
                let e = Expect.throwsC (fun () -> Bootstrap.mean values |> ignore) id
                Expect.stringContains e.Message "seed 1, item 2" $"{bad} in mean"
                let e = Expect.throwsC (fun () -> Bootstrap.difference [| [| 0.0; 0.0 |]; [| 0.0; 0.0; 0.0 |] |] values |> ignore) id
                Expect.stringContains e.Message "seed 1, item 2" $"{bad} in difference"
            let e = Expect.throwsC (fun () -> Bootstrap.difference [| [| 1e308 |] |] [| [| -1e308 |] |] |> ignore) id
            Expect.stringContains e.Message "seed 0, item 0" "a − b overflows"

        testProperty "meanNested and differenceNested with every row its own group draw what mean and difference draw" <|
            Prop.forAll ragged (fun values ->
                if values |> Array.exists (fun r -> r.Length > 0) then
                    let groups = Array.init values.Length id
                    Expect.equal (Bootstrap.meanNested groups values) (Bootstrap.mean values) "mean"
                    let shifted = values |> Array.map (Array.map (fun x -> x + 0.25))
                    Expect.equal (Bootstrap.differenceNested groups shifted values) (Bootstrap.difference shifted values) "difference")

        testCase "a third level: runs that share a model seed move together, and the interval widens to show it" <| fun () ->
            // 3 model seeds × 3 run seeds × 40 problems; the model seed shifts all its runs by ±0.3.
            let rng = Random 5
            let offsets = [| -0.3; 0.0; 0.3 |]
            let values = Array.init 9 (fun s -> Array.init 40 (fun _ -> 0.5 + offsets[s / 3] + 0.05 * gaussian rng + 0.3 * gaussian rng))
            let groups = Array.init 9 (fun s -> s / 3)
            let flat = Bootstrap.mean values
            let nested = Bootstrap.meanNested groups values
            Expect.equal nested.Mean flat.Mean "the same pooled mean"
            Expect.equal (nested.Seeds, nested.Problems) (9, 360) "counts: rows and items"
            Expect.isGreaterThan (width nested) (1.5 * width flat) "resampling model seeds shows their spread"
            Expect.isTrue (nested.Low <= nested.Mean && nested.Mean <= nested.High) "contains the mean"

        testCase "meanNested refuses group labels that do not match the rows" <| fun () ->
            let e = Expect.throwsC (fun () -> Bootstrap.meanNested [| 0; 1 |] [| [| 1.0 |] |] |> ignore) id
            Expect.stringContains e.Message "2 group labels for 1 rows" "names the mismatch"

        testCase "replicates < 1 is an error" <| fun () ->
            Expect.throwsT<ArgumentException> (fun () -> Bootstrap.meanWith 0 1 [| [| 1.0 |] |] |> ignore) "0 replicates"

        testCase "the paired difference of identical arrays is exactly 0 with a [0, 0] interval" <| fun () ->
            let a = hierarchical (Random 1) 4 30
            let i = Bootstrap.difference a (Array.map Array.copy a)
            Expect.equal (i.Mean, i.Low, i.High) (0.0, 0.0, 0.0) "a − a"
            Expect.equal (i.Seeds, i.Problems) (4, 120) "counts"

        testCase "shifting b by a constant c shifts the difference's mean and interval by −c" <| fun () ->
            let rng = Random 2
            let a = hierarchical rng 5 20
            let b = hierarchical rng 5 20
            let d = Bootstrap.difference a b
            for c in [ 0.25; -3.0 ] do
                let shifted = Bootstrap.difference a (b |> Array.map (Array.map (fun x -> x + c)))
                expectAbs 1e-12 shifted.Mean (d.Mean - c) $"mean, c = {c}"
                expectAbs 1e-12 shifted.Low (d.Low - c) $"low, c = {c}"
                expectAbs 1e-12 shifted.High (d.High - c) $"high, c = {c}"

        testCase "the paired difference resamples a and b together: a shared seed effect cancels" <| fun () ->
            // b = a − 0.1 + small noise: unpaired, the seed effects would widen the interval; paired, they cancel.
            let rng = Random 3
            let a = Array.init 4 (fun s -> Array.init 25 (fun _ -> float s * 10.0 + gaussian rng))
            let b = a |> Array.map (Array.map (fun x -> x - 0.1 + 0.01 * gaussian rng))
            let d = Bootstrap.difference a b
            Expect.isGreaterThan d.Low 0.09 "low"
            Expect.isLessThan d.High 0.11 "high"
            Expect.isGreaterThan (width (Bootstrap.mean a)) 1.0 "the unpaired interval of a alone is wide"

        testCase "difference rejects different seed counts and a seed whose item counts differ, naming it" <| fun () ->
            Expect.throwsT<ArgumentException> (fun () -> Bootstrap.difference [| [| 1.0 |] |] [| [| 1.0 |]; [| 2.0 |] |] |> ignore) "seeds"
            let e = Expect.throwsC (fun () -> Bootstrap.difference [| [| 1.0 |]; [| 1.0; 2.0 |] |] [| [| 1.0 |]; [| 2.0 |] |] |> ignore) id
            Expect.stringContains e.Message "seed 1" "names the seed"

        testCase "the same data gives the same interval on every call; another rngSeed moves only the interval" <| fun () ->
            let values = hierarchical (Random 4) 3 40
            let first = Bootstrap.mean values
            Expect.equal (Bootstrap.mean (Array.map Array.copy values)) first "same data, same interval"
            Expect.equal (Bootstrap.meanWith Bootstrap.replicates Bootstrap.rngSeed values) first "mean = meanWith defaults"
            let other = Bootstrap.meanWith Bootstrap.replicates (Bootstrap.rngSeed + 1) values
            Expect.equal other.Mean first.Mean "the point estimate does not depend on the stream"
            Expect.notEqual (other.Low, other.High) (first.Low, first.High) "another stream, other percentiles"

        testCase "a larger sample gives a narrower interval" <| fun () ->
            let rng = Random 5
            let small = Bootstrap.mean (hierarchical rng 4 20)
            let large = Bootstrap.mean (hierarchical rng 16 400)
            Expect.isLessThan (width large) (width small) "width"

        testCase "on 200 simulated studies the 95% interval covers the true mean 85–99% of the time" <| fun () ->
            // 6 seeds × 20 problems from 0.5 + u_s + e_sq (seed effect sd 0.25, item noise sd 1); 400 replicates.
            let rng = Random 20250601
            let covered =
                Array.init 200 (fun k ->
                    let i = Bootstrap.meanWith 400 k (hierarchical rng 6 20)
                    i.Low <= 0.5 && 0.5 <= i.High)
                |> Array.sumBy (fun c -> if c then 1 else 0)
            Expect.isGreaterThanOrEqual covered 170 $"coverage {covered}/200"
            Expect.isLessThanOrEqual covered 198 $"coverage {covered}/200"
    ]

// ---------------------------------------------------------------------------------------------
// Claims
// ---------------------------------------------------------------------------------------------

let private iv mean low high = { Mean = mean; Low = low; High = high; Seeds = 3; Problems = 90 }

let private none = { Mean = nan; Low = nan; High = nan; Seeds = 0; Problems = 0 }

let private expectVerdict (expected: Verdict) (o: ClaimOutcome) (what: string) =
    if o.Verdict <> expected then failwithf "%s: expected %s, got %s\n measured: %s" what expected.Text o.Verdict.Text o.Measured
    Expect.isNotEmpty o.Rule "a rule is stated"

let private gap baseline metric i = { Baseline = baseline; Metric = metric; Gap = i }

let private bucket label i = { Bucket = label; Gain = i }

let claimTests =
    testList "Claims" [
        testCase "Verdict.Text is what the report prints" <| fun () ->
            Expect.equal [ Reproduced.Text; NotReproduced.Text; Inconclusive.Text ] [ "reproduced"; "not reproduced"; "inconclusive" ] "texts"
            Expect.equal (string NotReproduced) "not reproduced" "ToString"

        testList "trdBeatsBaselines" [
            let win = iv 0.031 0.004 0.058
            testCase "every gap above 0: reproduced, with each gap in percentage points" <| fun () ->
                let o = Claims.trdBeatsBaselines [| gap "Forward KL" "Avg@K" win; gap "Reverse KL" "Pass@K" (iv 0.1 0.02 0.2) |]
                expectVerdict Reproduced o "wins"
                Expect.stringContains o.Measured "TRD − Forward KL: Avg@K +3.1 pts [0.4, 5.8]" "first gap"
                Expect.stringContains o.Measured "TRD − Reverse KL: Pass@K +10.0 pts [2.0, 20.0]" "second gap"
            testCase "a gap below 0: not reproduced" <| fun () ->
                let o = Claims.trdBeatsBaselines [| gap "Forward KL" "Avg@K" win; gap "Reverse KL w/ Top-K" "Pass@K" (iv -0.05 -0.09 -0.012) |]
                expectVerdict NotReproduced o "a loss"
                Expect.stringContains o.Measured "Pass@K -5.0 pts [-9.0, -1.2]" "the loss"
            testCase "a gap straddling 0: inconclusive" <| fun () ->
                expectVerdict Inconclusive (Claims.trdBeatsBaselines [| gap "Forward KL" "Avg@K" win; gap "Forward KL w/ Clip" "Avg@K" (iv 0.01 -0.01 0.03) |]) "straddle"
            testCase "an exact tie [0, 0] passes as ≥ beside a strict win, but ties alone are inconclusive" <| fun () ->
                let tie = iv 0.0 0.0 0.0
                expectVerdict Reproduced (Claims.trdBeatsBaselines [| gap "Forward KL" "Avg@K" win; gap "Forward KL" "Pass@K" tie |]) "win + tie"
                expectVerdict Inconclusive (Claims.trdBeatsBaselines [| gap "Forward KL" "Pass@K" tie; gap "Reverse KL" "Pass@K" tie |]) "ties"
            testCase "a NaN gap is inconclusive unless another gap is a loss; no gaps is inconclusive" <| fun () ->
                let o = Claims.trdBeatsBaselines [| gap "Forward KL" "Avg@K" win; gap "Reverse KL" "Avg@K" none |]
                expectVerdict Inconclusive o "NaN"
                Expect.stringContains o.Measured "TRD − Reverse KL: Avg@K n/a" "NaN printed"
                expectVerdict NotReproduced (Claims.trdBeatsBaselines [| gap "Reverse KL" "Avg@K" none; gap "Forward KL" "Avg@K" (iv -0.1 -0.2 -0.05) |]) "NaN + loss"
                let o = Claims.trdBeatsBaselines [||]
                expectVerdict Inconclusive o "empty"
                Expect.stringContains o.Measured "no comparisons" "empty"
        ]

        testList "incorrectKlNearZero" [
            let yR = iv 0.05 0.04 0.06
            testCase "y_o far below y_r and under a quarter of it: reproduced, with values and ratio" <| fun () ->
                let o = Claims.incorrectKlNearZero (iv 0.001234 0.0008 0.0012) yR
                expectVerdict Reproduced o "near zero"
                Expect.stringContains o.Measured "y_o 0.001234 [0.0008, 0.0012]" "y_o"
                Expect.stringContains o.Measured "y_r 0.05 [0.04, 0.06]" "y_r"
                Expect.stringContains o.Measured "y_o / y_r = 0.02×" "ratio"
            testCase "y_o's lower bound above a quarter of y_r's upper bound: not reproduced" <| fun () ->
                expectVerdict NotReproduced (Claims.incorrectKlNearZero (iv 0.02 0.018 0.022) yR) "below y_r but not small"
                expectVerdict NotReproduced (Claims.incorrectKlNearZero (iv 0.08 0.07 0.09) yR) "above y_r"
            testCase "y_o below y_r, but not clearly small or large: inconclusive" <| fun () ->
                expectVerdict Inconclusive (Claims.incorrectKlNearZero (iv 0.013 0.005 0.02) yR) "mean just over a quarter"
                expectVerdict Inconclusive (Claims.incorrectKlNearZero (iv 0.01 0.001 0.045) yR) "intervals overlap"
            testCase "a NaN side (no incorrect rollout) is inconclusive" <| fun () ->
                let o = Claims.incorrectKlNearZero none yR
                expectVerdict Inconclusive o "no y_o"
                Expect.stringContains o.Measured "y_o n/a" "NaN printed"
                expectVerdict Inconclusive (Claims.incorrectKlNearZero (iv 0.001 0.0 0.002) none) "no y_r"
        ]

        testList "pplGapOpens" [
            let yO = iv 0.0123 0.01 0.015
            testCase "y_r's gap entirely above y_o's: reproduced" <| fun () ->
                let o = Claims.pplGapOpens yO (iv 0.4567 0.3 0.6)
                expectVerdict Reproduced o "opens"
                Expect.stringContains o.Measured "y_o 0.0123 [0.01, 0.015]; on y_r 0.4567 [0.3, 0.6]" "values"
            testCase "y_r's gap entirely below y_o's: not reproduced" <| fun () ->
                expectVerdict NotReproduced (Claims.pplGapOpens yO (iv 0.001 0.0 0.005)) "closes"
            testCase "overlapping gaps or a NaN side: inconclusive" <| fun () ->
                expectVerdict Inconclusive (Claims.pplGapOpens yO (iv 0.02 0.014 0.03)) "overlap"
                expectVerdict Inconclusive (Claims.pplGapOpens yO none) "NaN"
        ]

        testList "epistemicMassLower" [
            let yO = iv 0.007 0.006 0.008
            testCase "y_r's mass entirely below y_o's: reproduced, with the ratio" <| fun () ->
                let o = Claims.epistemicMassLower yO (iv 0.002 0.0015 0.0025)
                expectVerdict Reproduced o "lower"
                Expect.stringContains o.Measured "y_o 0.007 [0.006, 0.008]; on y_r 0.002 [0.0015, 0.0025]" "values"
                Expect.stringContains o.Measured "y_o / y_r = 3.5×" "ratio"
            testCase "y_r's mass entirely above y_o's: not reproduced" <| fun () ->
                expectVerdict NotReproduced (Claims.epistemicMassLower yO (iv 0.01 0.009 0.011)) "higher"
            testCase "overlapping masses or a NaN side: inconclusive" <| fun () ->
                expectVerdict Inconclusive (Claims.epistemicMassLower yO (iv 0.006 0.005 0.0065)) "overlap"
                let o = Claims.epistemicMassLower none (iv 0.002 0.001 0.003)
                expectVerdict Inconclusive o "NaN"
                Expect.stringContains o.Measured "y_o / y_r = n/a" "no ratio"
        ]

        testList "refinedShorterAndMoreCorrect" [
            let shorter = iv -412.3 -500.0 -300.0
            let moreCorrect = iv 0.091 0.05 0.13
            testCase "shorter and more often correct: reproduced, with tokens and points" <| fun () ->
                let o = Claims.refinedShorterAndMoreCorrect shorter moreCorrect
                expectVerdict Reproduced o "both"
                Expect.stringContains o.Measured "length -412.3 tokens [-500.0, -300.0]" "length"
                Expect.stringContains o.Measured "accuracy +9.1 pts [5.0, 13.0]" "accuracy"
            testCase "only one part established: inconclusive" <| fun () ->
                expectVerdict Inconclusive (Claims.refinedShorterAndMoreCorrect shorter (iv 0.01 -0.02 0.04)) "accuracy straddles"
                expectVerdict Inconclusive (Claims.refinedShorterAndMoreCorrect (iv -10.0 -50.0 30.0) moreCorrect) "length straddles"
            testCase "longer or less often correct: not reproduced" <| fun () ->
                expectVerdict NotReproduced (Claims.refinedShorterAndMoreCorrect (iv 100.0 20.0 180.0) moreCorrect) "longer"
                expectVerdict NotReproduced (Claims.refinedShorterAndMoreCorrect shorter (iv -0.05 -0.08 -0.02)) "less correct"
            testCase "a NaN part is inconclusive" <| fun () ->
                let o = Claims.refinedShorterAndMoreCorrect none moreCorrect
                expectVerdict Inconclusive o "no lengths"
                Expect.stringContains o.Measured "length n/a" "NaN printed"
        ]

        testList "failToPassDominates" [
            testCase "interval above 0 and fail → pass ≥ 3× pass → fail: reproduced, with counts, shares and ratio" <| fun () ->
                let o = Claims.failToPassDominates 437 5 4000 (iv 0.10775 0.098 0.118)
                expectVerdict Reproduced o "dominates"
                for part in [ "of 4000 problems"; "fail → pass 437 (10.9%)"; "pass → fail 5 (0.1%)"; "ratio 87.4×"; "+10.8 pts [9.8, 11.8]" ] do
                    Expect.stringContains o.Measured part part
            testCase "no pass → fail at all: reproduced with an infinite ratio" <| fun () ->
                let o = Claims.failToPassDominates 5 0 100 (iv 0.05 0.01 0.09)
                expectVerdict Reproduced o "no price"
                Expect.stringContains o.Measured "∞" "ratio"
            testCase "above 0 but under 3×: inconclusive" <| fun () ->
                expectVerdict Inconclusive (Claims.failToPassDominates 200 100 10000 (iv 0.01 0.005 0.015)) "2×"
            testCase "interval not above 0, including no outcome changed: not reproduced" <| fun () ->
                expectVerdict NotReproduced (Claims.failToPassDominates 3 30 1000 (iv -0.027 -0.04 -0.015)) "reversed"
                expectVerdict NotReproduced (Claims.failToPassDominates 0 0 100 (iv 0.0 0.0 0.0)) "nothing changed"
            testCase "no problems or a NaN interval: inconclusive; bad counts raise" <| fun () ->
                let o = Claims.failToPassDominates 0 0 0 none
                expectVerdict Inconclusive o "empty"
                Expect.stringContains o.Measured "ratio n/a" "no ratio"
                Expect.throwsT<ArgumentException> (fun () -> Claims.failToPassDominates -1 0 10 none |> ignore) "negative"
                Expect.throwsT<ArgumentException> (fun () -> Claims.failToPassDominates 6 5 10 none |> ignore) "over total"
        ]

        testList "gainsOnHardestBucket" [
            let b0 = bucket "B0" (iv 0.39 0.1 0.6)
            let mid = bucket "B1–8" (iv -0.083 -0.2 0.05)
            let easy = bucket "B9–16" (iv 0.0 0.0 0.0)
            testCase "B0's gain above 0 and the largest: reproduced, with every bucket's gain" <| fun () ->
                let o = Claims.gainsOnHardestBucket [| b0; mid; easy |] [||]
                expectVerdict Reproduced o "B0"
                Expect.stringContains o.Measured "Pass@K: B0 +39.0 pts [10.0, 60.0]; B1–8 -8.3 pts [-20.0, 5.0]; B9–16 0.0 pts [0.0, 0.0]" "buckets"
                Expect.isFalse (o.Measured.Contains "Avg@K") "no Avg@K given"
            testCase "Avg@K gains are reported but do not decide" <| fun () ->
                let o = Claims.gainsOnHardestBucket [| b0; mid; easy |] [| bucket "B0" (iv 0.02 0.0 0.04); bucket "B1–8" (iv 0.01 -0.01 0.03); bucket "B9–16" none |]
                expectVerdict Reproduced o "Pass@K decides"
                Expect.stringContains o.Measured "Avg@K: B0 +2.0 pts [0.0, 4.0]; B1–8 +1.0 pts [-1.0, 3.0]; B9–16 no problems" "Avg@K"
            testCase "B0's gain above 0 but not the largest, without being dominated: inconclusive" <| fun () ->
                expectVerdict Inconclusive (Claims.gainsOnHardestBucket [| b0; bucket "B1–8" (iv 0.45 0.3 0.6) |] [||]) "B1–8 larger"
                expectVerdict Inconclusive (Claims.gainsOnHardestBucket [| bucket "B0" (iv 0.05 -0.02 0.12); mid |] [||]) "B0 straddles"
            testCase "B0's gain at most 0, or another bucket's gain entirely above it: not reproduced" <| fun () ->
                expectVerdict NotReproduced (Claims.gainsOnHardestBucket [| bucket "B0" (iv 0.0 0.0 0.0); mid |] [||]) "B0 nothing"
                expectVerdict NotReproduced (Claims.gainsOnHardestBucket [| bucket "B0" (iv 0.05 0.01 0.1); bucket "B1–8" (iv 0.3 0.2 0.4) |] [||]) "B1–8 above"
            testCase "an empty B0 is inconclusive; empty other buckets are skipped; no buckets raise" <| fun () ->
                let o = Claims.gainsOnHardestBucket [| bucket "B0" none; mid |] [||]
                expectVerdict Inconclusive o "no B0"
                Expect.stringContains o.Measured "B0 no problems" "empty B0"
                expectVerdict Reproduced (Claims.gainsOnHardestBucket [| b0; bucket "B1–8" none; easy |] [||]) "empty B1–8"
                Expect.throwsT<ArgumentException> (fun () -> Claims.gainsOnHardestBucket [||] [||] |> ignore) "no buckets"
        ]
    ]

[<Tests>]
let tests = testList "Stats" [ bootstrapTests; claimTests ]
