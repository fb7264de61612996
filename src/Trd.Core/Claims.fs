namespace Trd.Core

open System
open System.Globalization

/// What a study concludes about one claim of the paper.
type Verdict =
    /// The measured interval(s) lie on the side of the comparison the paper claims.
    | Reproduced
    /// An interval lies on the opposite side (or a "≈ 0" quantity is clearly not small).
    | NotReproduced
    /// Neither: the intervals straddle the comparison, or there was no data.
    | Inconclusive

    /// "reproduced", "not reproduced" or "inconclusive", as the report prints it.
    member v.Text =
        match v with
        | Reproduced -> "reproduced"
        | NotReproduced -> "not reproduced"
        | Inconclusive -> "inconclusive"

    override v.ToString() = v.Text

/// A verdict with the measured values it rests on and the decision rule, each one line of the report.
type ClaimOutcome =
    { Verdict: Verdict
      /// The measured values with their 95% intervals.
      Measured: string
      /// The decision rule, in one sentence.
      Rule: string }

/// TRD − one baseline on one metric (a fraction such as Avg@K), paired over seeds and held-out problems.
type BaselineGap =
    { Baseline: string
      Metric: string
      Gap: Interval }

/// TRD − base on one base-difficulty bucket (App. B.2), a fraction such as Pass@K; a NaN interval for a
/// bucket with no problem.
type BucketGain = { Bucket: string; Gain: Interval }

/// The paper's claims as decision rules on measured intervals (§4.3, §5, §6, App. B). Every rule reads
/// "reproduced" only when the interval(s) lie on the claimed side, "not reproduced" only when one lies on the
/// opposite side (or reaches no further than 0 where the claim is a strict gain, or, for claim 2's "≈ 0", shows
/// the value clearly not small), and "inconclusive" otherwise, so a verdict never rests on a point estimate
/// alone. NaN intervals (no data) give "inconclusive". Fractions print as percentage points with one decimal;
/// KL, perplexity and mass with four significant digits; lengths in tokens with one decimal.
module Claims =

    /// Claim 2's "near zero": y_o's mean D^incorrect at most this fraction of y_r's.
    [<CompiledName("NearZeroFraction")>]
    let nearZeroFraction = 0.25

    /// Claim 6's "far above": fail → pass at least this many times pass → fail. The paper measures 44–80×;
    /// a small synthetic task is held to a modest bar.
    [<CompiledName("FailToPassFactor")>]
    let failToPassFactor = 3.0

    let private inv = CultureInfo.InvariantCulture

    let private defined (i: Interval) = not (Double.IsNaN i.Mean || Double.IsNaN i.Low || Double.IsNaN i.High)

    let private num (format: string) (x: float) = if Double.IsNaN x then "n/a" else x.ToString(format, inv)

    /// One decimal with an explicit sign ("+3.1", "-0.4", "0.0").
    let private signed1 = num "+0.0;-0.0;0.0"

    /// One decimal ("5.8", "-0.4").
    let private plain1 = num "0.0"

    /// Four significant digits ("0.01234").
    let private g4 = num "G4"

    /// A ratio or factor with up to two decimals ("3.25", "3").
    let private factor = num "0.##"

    /// "+3.1 pts [0.4, 5.8]": a fraction as signed percentage points.
    let private pts (i: Interval) =
        if not (defined i) then "n/a"
        else $"{signed1 (100.0 * i.Mean)} pts [{plain1 (100.0 * i.Low)}, {plain1 (100.0 * i.High)}]"

    /// "0.01234 [0.0111, 0.0135]": four significant digits.
    let private sig4 (i: Interval) =
        if not (defined i) then "n/a"
        else $"{g4 i.Mean} [{g4 i.Low}, {g4 i.High}]"

    /// "-412.3 tokens [-500.2, -330.0]".
    let private tokens (i: Interval) =
        if not (defined i) then "n/a"
        else $"{signed1 i.Mean} tokens [{plain1 i.Low}, {plain1 i.High}]"

    /// a / b as "3.2×"; "n/a" where it has no meaning.
    let private ratio (a: float) (b: float) =
        if Double.IsNaN a || Double.IsNaN b || b <= 0.0 || a < 0.0 then "n/a" else $"{factor (a / b)}×"

    let private outcome verdict measured rule = { Verdict = verdict; Measured = measured; Rule = rule }

    /// x lies entirely above y: x.Low > y.High.
    let private above (x: Interval) (y: Interval) = x.Low > y.High

    /// Reproduced when the interval the claim expects higher lies entirely above the other, not reproduced when it
    /// lies entirely below, else (or when either is undefined) inconclusive.
    let private ordered (expectedHigher: Interval) (expectedLower: Interval) =
        if not (defined expectedHigher && defined expectedLower) then Inconclusive
        elif above expectedHigher expectedLower then Reproduced
        elif above expectedLower expectedHigher then NotReproduced
        else Inconclusive

    /// "TRD consistently outperforms prior baselines" (abstract); "TRD is best on every benchmark at both
    /// scales" (§6.3, Tables 3–4): TRD ≥ Forward KL, Forward KL w/ Clip, Reverse KL and Reverse KL w/ Top-K on
    /// Avg@K and Pass@K. `gaps` holds TRD − baseline per baseline and metric.
    [<CompiledName("TrdBeatsBaselines")>]
    let trdBeatsBaselines (gaps: BaselineGap[]) : ClaimOutcome =
        if obj.ReferenceEquals(gaps, null) then nullArg "gaps"
        let rule =
            "Reproduced when every TRD − baseline interval lies above 0 (Low > 0), where an exact tie [0, 0] (the same "
            + "score on every problem and seed, e.g. both saturate Pass@K) passes as \"≥\" provided some other comparison "
            + "is a strict win, but an interval merely straddling 0 does not, since it cannot tell a tie from a small "
            + "loss; not reproduced when any interval lies below 0 (High < 0); else inconclusive."
        let measured =
            if gaps.Length = 0 then "no comparisons"
            else gaps |> Array.map (fun g -> $"TRD − {g.Baseline}: {g.Metric} {pts g.Gap}") |> String.concat "; "
        let tie (i: Interval) = i.Low = 0.0 && i.High = 0.0
        let verdict =
            if gaps |> Array.exists (fun g -> defined g.Gap && g.Gap.High < 0.0) then NotReproduced
            elif gaps.Length = 0 || gaps |> Array.exists (fun g -> not (defined g.Gap)) then Inconclusive
            elif gaps |> Array.forall (fun g -> g.Gap.Low > 0.0 || tie g.Gap) && gaps |> Array.exists (fun g -> g.Gap.Low > 0.0) then Reproduced
            else Inconclusive
        outcome verdict measured rule

    /// "Both stay pinned near zero on y_o … Notably, even D^incorrect stays near zero, indicating that the
    /// teacher with high probability collapses onto the student's failure rather than diverging to correct it"
    /// (§4.3, Figure 3 left), while the per-token KL is recovered on y_r (§5). "Near zero" has no scale of its
    /// own, so it is judged against y_r: `yO` is D^incorrect of the dense-KL baselines on their rollouts y_o,
    /// `yR` that of TRD on its refined trajectories (per-step means pooled over seeds).
    [<CompiledName("IncorrectKlNearZero")>]
    let incorrectKlNearZero (yO: Interval) (yR: Interval) : ClaimOutcome =
        let f = factor nearZeroFraction
        let rule =
            "Reproduced when the y_o interval of D^incorrect lies entirely below the y_r interval (y_o High < y_r Low) "
            + $"and the y_o mean is at most {f} of the y_r mean; not reproduced when the y_o Low exceeds {f} of the "
            + "y_r High (clearly not near zero); else inconclusive."
        let measured = $"D^incorrect on y_o {sig4 yO}; on y_r {sig4 yR}; y_o / y_r = {ratio yO.Mean yR.Mean}"
        let verdict =
            if not (defined yO && defined yR) then Inconclusive
            elif yO.High < yR.Low && yO.Mean <= nearZeroFraction * yR.Mean then Reproduced
            elif yO.Low > nearZeroFraction * yR.High then NotReproduced
            else Inconclusive
        outcome verdict measured rule

    /// "The teacher-student perplexity gap opens on y_r (Middle), restoring the incremental supervision" (§5,
    /// Figure 3 middle), where on y_o "the gap PPL_S − PPL_T stays near zero throughout training" (§4.3). `yO`
    /// is the gap of the dense-KL baselines, `yR` that of TRD; the two come from different runs, so they are
    /// compared as unpaired intervals.
    [<CompiledName("PplGapOpens")>]
    let pplGapOpens (yO: Interval) (yR: Interval) : ClaimOutcome =
        let rule =
            "Reproduced when the y_r interval of PPL_S − PPL_T lies entirely above the y_o interval (y_r Low > y_o High); "
            + "not reproduced when it lies entirely below (y_r High < y_o Low); else inconclusive."
        let measured = $"PPL_S − PPL_T on y_o {sig4 yO}; on y_r {sig4 yR}"
        outcome (ordered yR yO) measured rule

    /// "The teacher places 6–8 ‰ of its per-position mass on 16 epistemic onset tokens … The same metric on
    /// y_r (ours) collapses below 2 ‰" (§4.3, Figure 3 right); "the teacher's epistemic onset mass decreases
    /// 3x less than y_o" (§5). `yO` is the teacher's epistemic-token mass on the baselines' y_o, `yR` on TRD's
    /// y_r; the ratio is reported, the direction judged.
    [<CompiledName("EpistemicMassLower")>]
    let epistemicMassLower (yO: Interval) (yR: Interval) : ClaimOutcome =
        let rule =
            "Reproduced when the y_r interval of the teacher's epistemic-token mass lies entirely below the y_o interval "
            + "(y_r High < y_o Low); not reproduced when it lies entirely above (y_r Low > y_o High); else inconclusive "
            + "(the paper's ~3× is reported as y_o / y_r, not required)."
        let measured = $"teacher epistemic mass on y_o {sig4 yO}; on y_r {sig4 yR}; y_o / y_r = {ratio yO.Mean yR.Mean}"
        outcome (ordered yO yR) measured rule

    /// "Refinement compresses the trajectory … y_r moves substantially below y_o" and "Refinement raises
    /// verifier accuracy … (+8.9% / +15.6%)" (App. B.1, Figures 6–7 left and middle). `lengthDifference` is
    /// y_r − y_o in tokens and `accuracyDifference` y_r − y_o as a fraction, both paired per training problem.
    [<CompiledName("RefinedShorterAndMoreCorrect")>]
    let refinedShorterAndMoreCorrect (lengthDifference: Interval) (accuracyDifference: Interval) : ClaimOutcome =
        let rule =
            "Reproduced when the y_r − y_o length interval lies below 0 (High < 0) and the y_r − y_o accuracy interval "
            + "lies above 0 (Low > 0); not reproduced when the length interval lies above 0 or the accuracy interval "
            + "below 0; else inconclusive."
        let measured = $"y_r − y_o: length {tokens lengthDifference}; accuracy {pts accuracyDifference}"
        let shorter = defined lengthDifference && lengthDifference.High < 0.0
        let longer = defined lengthDifference && lengthDifference.Low > 0.0
        let moreCorrect = defined accuracyDifference && accuracyDifference.Low > 0.0
        let lessCorrect = defined accuracyDifference && accuracyDifference.High < 0.0
        let verdict =
            if longer || lessCorrect then NotReproduced
            elif shorter && moreCorrect then Reproduced
            else Inconclusive
        outcome verdict measured rule

    /// "The fail → pass to pass → fail asymmetry is large in every cell (~80× on 4B-with-CoT, ~44× on
    /// 8B-with-CoT …) … reference-guided refinement primarily corrects dead-end prefixes rather than disturbing
    /// already-correct ones" (App. B.1, Figures 6–7 right). `failPass` and `passFail` count problems among
    /// `total`; `difference` is the per-problem mean of 1[fail → pass] − 1[pass → fail] with its interval.
    /// Raises on a negative count or failPass + passFail > total.
    [<CompiledName("FailToPassDominates")>]
    let failToPassDominates (failPass: int) (passFail: int) (total: int) (difference: Interval) : ClaimOutcome =
        if failPass < 0 then invalidArg "failPass" $"count must be ≥ 0, got {failPass}"
        if passFail < 0 then invalidArg "passFail" $"count must be ≥ 0, got {passFail}"
        if failPass + passFail > total then invalidArg "total" $"fail → pass {failPass} + pass → fail {passFail} exceeds the {total} problems"
        let rule =
            $"Reproduced when the interval of 1[fail → pass] − 1[pass → fail] lies above 0 (Low > 0) and fail → pass is at "
            + $"least {factor failToPassFactor}× pass → fail (any fail → pass count when pass → fail is 0); not reproduced when the "
            + "interval has High ≤ 0 (fail → pass not above pass → fail, including no outcome changed at all); else inconclusive."
        let share (c: int) = if total = 0 then "n/a" else $"{plain1 (100.0 * float c / float total)}%%"
        let ratioText =
            if passFail > 0 then $"{factor (float failPass / float passFail)}×"
            elif failPass > 0 then "∞ (no pass → fail)"
            else "n/a"
        let measured =
            $"of {total} problems: fail → pass {failPass} ({share failPass}), pass → fail {passFail} ({share passFail}), "
            + $"ratio {ratioText}; fail → pass − pass → fail per problem {pts difference}"
        let verdict =
            if total = 0 || not (defined difference) then Inconclusive
            elif difference.High <= 0.0 then NotReproduced
            elif difference.Low > 0.0 && float failPass >= failToPassFactor * float passFail then Reproduced
            else Inconclusive
        outcome verdict measured rule

    /// "On B0, the 23 AMOBench questions where the base model fails on all 16 attempts, TRD achieves Pass@16 =
    /// 0.39 … The mild regression on B1–8 Pass@16 (−1/12 questions) is overwhelmed by the +9/23 gain on B0"
    /// (App. B.2, Figure 8 right). `passAtK` holds TRD − base per bucket, hardest (B0) first; `avgAtK` the same
    /// for Avg@K (may be empty), reported but not judged, since the paper puts Avg@16's gain on B1–8 (Figure 8
    /// middle). Raises when `passAtK` is empty.
    [<CompiledName("GainsOnHardestBucket")>]
    let gainsOnHardestBucket (passAtK: BucketGain[]) (avgAtK: BucketGain[]) : ClaimOutcome =
        if obj.ReferenceEquals(passAtK, null) then nullArg "passAtK"
        if obj.ReferenceEquals(avgAtK, null) then nullArg "avgAtK"
        if passAtK.Length = 0 then invalidArg "passAtK" "no buckets"
        let rule =
            "Reproduced when the hardest bucket's (the first, B0) Pass@K gain interval lies above 0 (Low > 0) and its mean "
            + "gain exceeds every other bucket's; not reproduced when its interval has High ≤ 0 or another bucket's interval "
            + "lies entirely above it; else inconclusive (also when the hardest bucket has no problems); Avg@K gains are "
            + "reported, not judged."
        let list (gains: BucketGain[]) =
            gains |> Array.map (fun g -> if defined g.Gain then $"{g.Bucket} {pts g.Gain}" else $"{g.Bucket} no problems") |> String.concat "; "
        let measured =
            let pass = $"TRD − base, Pass@K: {list passAtK}"
            if avgAtK.Length = 0 then pass else $"{pass}; Avg@K: {list avgAtK}"
        let hardest = passAtK[0].Gain
        let others = passAtK[1..] |> Array.map (fun g -> g.Gain) |> Array.filter defined
        let verdict =
            if not (defined hardest) then Inconclusive
            elif hardest.Low > 0.0 && others |> Array.forall (fun o -> hardest.Mean > o.Mean) then Reproduced
            elif hardest.High <= 0.0 || others |> Array.exists (fun o -> above o hardest) then NotReproduced
            else Inconclusive
        outcome verdict measured rule

    /// The mechanism's prediction across gym variants (§4.1, §4.3; docs/study.md, "The grid"): TRD's advantage over
    /// the best dense-KL baseline grows as the teacher collapses onto the student's failures (a lower catch rate) and
    /// as recovery from a flawed prefix gets longer (line < restart < none). `favoured` is TRD − best baseline in the
    /// cell the prediction favours, `other` in the cell it disfavours (the other knobs equal), `contrast` their
    /// difference (independent cells: `Bootstrap.contrast`); `axis` names the comparison, e.g. "catch 0 vs 0.8".
    [<CompiledName("AdvantageGrows")>]
    let advantageGrows (axis: string) (metric: string) (favoured: Interval) (other: Interval) (contrast: Interval) : ClaimOutcome =
        let rule =
            "Reproduced when the interval of (TRD − best baseline in the favoured cell) − (TRD − best baseline in the other "
            + "cell) lies above 0 (Low > 0); not reproduced when it lies below 0 (High < 0); else inconclusive. The best "
            + "baseline of a cell is the one with the highest mean on the metric there; the cells are independent runs, "
            + "each resampled on its own."
        let measured =
            $"{axis}, {metric}: TRD − best baseline {pts favoured} vs {pts other}; difference {pts contrast}"
        let verdict =
            if not (defined contrast) then Inconclusive
            elif contrast.Low > 0.0 then Reproduced
            elif contrast.High < 0.0 then NotReproduced
            else Inconclusive
        outcome verdict measured rule

    /// The paper's own figure for a claim, where one is comparable, as the paper reports it (its models, its data):
    /// shown beside our verdict and marked as the paper's, never as ours. Empty for an unknown claim id.
    [<CompiledName("PaperFigure")>]
    let paperFigure (claimId: string) : string =
        match claimId with
        | "trd_beats_baselines" ->
            "TRD is best on every benchmark at both scales in OPSD (Avg@16, Table 3) and best or tied-best on seven of eight benchmarks per block in OPD (Table 1)."
        | "d_incorrect_near_zero" ->
            "D^correct and D^incorrect both stay pinned near zero on y_o throughout training (§4.3, Fig. 3 left)."
        | "ppl_gap_opens" -> "PPL_S − PPL_T stays near zero on y_o and opens on y_r (§4.3, §5, Fig. 3 middle)."
        | "epistemic_mass_lower" ->
            "The teacher puts 6–8‰ of its per-position mass on the 16 epistemic onset tokens along y_o; along y_r it falls below 2‰ (§4.3, Fig. 3 right)."
        | "refined_shorter_more_correct" ->
            "Qwen3-8B, OPSD: verifier pass rate 65.8% on y_o → 81.4% on y_r; median length 7.7K → 0.88K tokens, about 9× shorter (§6.5, Fig. 5 left)."
        | "fail_to_pass_dominates" ->
            "fail→pass outnumbers pass→fail about 80× (Qwen3-4B, with CoT) and 44× (Qwen3-8B, with CoT); pass→fail stays below 1% (App. B.1, Figs. 6–7)."
        | "gains_hardest_bucket" ->
            "AMOBench B0 (23 questions the base never solves in 16 samples): TRD Pass@16 0.39 against the strongest baseline's 0.22, +9/23 over base (App. B.2, Fig. 8)."
        | "advantage_grows_catch"
        | "advantage_grows_recovery" ->
            "Not measured in the paper: §4.1–4.2 predict it (the bimodal teacher mixture and the fragmented gradient grow with the correction path's length and the teacher's collapse onto the failure)."
        | _ -> ""
