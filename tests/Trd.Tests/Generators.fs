/// Reusable inputs and independent references for the tests: random and extreme logit vectors,
/// FsCheck generators for (teacher, student) pairs and outcome matrices, error measures, and naive
/// float64 formulas written from the paper without going through Trd.Core.
module Trd.Tests.Generators

open System
open FsCheck
open FsCheck.FSharp

// ---------------------------------------------------------------------------------------------
// Error measures
// ---------------------------------------------------------------------------------------------

/// |a − b| / max(|a|, |b|); 0 when a = b (including equal infinities).
let relErr (a: float) (b: float) =
    if a = b then 0.0
    else abs (a - b) / max (max (abs a) (abs b)) Double.Epsilon

/// Max-norm relative error of two vectors: ‖a − b‖∞ / max(‖a‖∞, ‖b‖∞).
let vecRelErr (a: float[]) (b: float[]) =
    if a.Length <> b.Length then invalidArg "b" $"lengths differ: {a.Length} vs {b.Length}"
    let diff = Array.fold2 (fun acc x y -> if x = y then acc else max acc (abs (x - y))) 0.0 a b
    let scale = max (a |> Array.fold (fun m x -> max m (abs x)) 0.0) (b |> Array.fold (fun m x -> max m (abs x)) 0.0)
    if diff = 0.0 then 0.0 else diff / max scale Double.Epsilon

/// Asserts |actual − expected| ≤ tol · max(|actual|, |expected|) (or exact equality).
let expectRel (tol: float) (actual: float) (expected: float) (what: string) =
    let e = relErr actual expected
    if not (e <= tol) then
        failwithf "%s: expected %.17g, got %.17g (relative error %.3g > %.3g)" what expected actual e tol

/// Asserts |actual − expected| ≤ tol.
let expectAbs (tol: float) (actual: float) (expected: float) (what: string) =
    let e = abs (actual - expected)
    if not (e <= tol) && actual <> expected then
        failwithf "%s: expected %.17g, got %.17g (absolute error %.3g > %.3g)" what expected actual e tol

/// Asserts ‖actual − expected‖∞ ≤ tol · max norm.
let expectVecRel (tol: float) (actual: float[]) (expected: float[]) (what: string) =
    let e = vecRelErr actual expected
    if not (e <= tol) then
        failwithf "%s: relative max-norm error %.3g > %.3g\n expected %A\n got      %A" what e tol expected actual

/// Asserts ‖actual − expected‖∞ ≤ rel · max norm + abs.
let expectVecClose (rel: float) (abs': float) (actual: float[]) (expected: float[]) (what: string) =
    if actual.Length <> expected.Length then failwithf "%s: lengths differ (%d vs %d)" what actual.Length expected.Length
    let diff = Array.fold2 (fun acc x y -> if x = y then acc else max acc (abs (x - y))) 0.0 actual expected
    let scale = Array.append actual expected |> Array.fold (fun m x -> max m (abs x)) 0.0
    if not (diff <= rel * scale + abs') then
        failwithf "%s: max-norm difference %.3g > %.3g · %.3g + %.3g\n expected %A\n got      %A" what diff rel scale abs' expected actual

/// The largest finite |logit| of a set of vectors: logits of size L are resolved only to ~L · 1.1e-16, so
/// anything computed from them carries an absolute rounding floor of about that size.
let logitScale (vectors: float[] list) =
    vectors |> List.fold (fun m xs -> xs |> Array.fold (fun m x -> if Double.IsFinite x then max m (abs x) else m) m) 1.0

// ---------------------------------------------------------------------------------------------
// Random logits
// ---------------------------------------------------------------------------------------------

/// A standard normal draw (Box–Muller).
let gaussian (rng: Random) =
    let u1 = 1.0 - rng.NextDouble()
    let u2 = rng.NextDouble()
    sqrt (-2.0 * log u1) * cos (2.0 * Math.PI * u2)

/// V logits drawn i.i.d. N(0, scale²).
let randomLogits (rng: Random) (v: int) (scale: float) : float[] =
    Array.init v (fun _ -> scale * gaussian rng)

/// Indices to mask with −∞: a random subset of 0 … v−1 of size 0 … v−1 (never all of them).
let randomMaskedIndices (rng: Random) (v: int) : int[] =
    let count = rng.Next(0, v) // 0 … v−1
    Array.init v id |> Array.sortBy (fun _ -> rng.Next()) |> Array.truncate count |> Array.sort

/// One vector of extreme logits: each entry is near +1e4 (with O(1) spread, so that the mass
/// is shared among several entries), near −1e4, or anywhere in ±1e4; at least one entry is near +1e4.
let extremeLogits (rng: Random) (v: int) : float[] =
    let xs =
        Array.init v (fun _ ->
            match rng.Next 3 with
            | 0 -> 1e4 + 3.0 * gaussian rng
            | 1 -> -1e4 + 3.0 * gaussian rng
            | _ -> 1e4 * (2.0 * rng.NextDouble() - 1.0))
    xs[rng.Next v] <- 1e4 + 3.0 * gaussian rng
    xs

/// Sets the given entries of a copy of xs to −∞.
let withNegInf (masked: int[]) (xs: float[]) =
    let ys = Array.copy xs
    for i in masked do ys[i] <- Double.NegativeInfinity
    ys

/// A (teacher, student) pair of extreme logits (±1e4 scale) whose −∞ entries sit at the SAME indices
/// on both sides (a masked vocabulary entry); never all −∞.
let extremeLogitPair (rng: Random) (v: int) : float[] * float[] =
    let masked = randomMaskedIndices rng v
    let teacher = extremeLogits rng v |> withNegInf masked
    let student = extremeLogits rng v |> withNegInf masked
    teacher, student

/// A (teacher, student) logit pair for properties. Kind says how it was made (shown on failure).
type LogitPair =
    { Teacher: float[]
      Student: float[]
      Kind: string }

    override p.ToString() = $"{p.Kind}, V = {p.Teacher.Length}\n teacher %A{p.Teacher}\n student %A{p.Student}"

    member p.V = p.Teacher.Length

/// Makes one pair from a seed: ordinary logits at a scale from 0.1 to 30, or extreme logits with
/// shared −∞ entries.
let makeLogitPair (seed: int) (v: int) (extreme: bool) (scale: float) =
    let rng = Random(seed)
    if extreme then
        let t, s = extremeLogitPair rng v
        { Teacher = t; Student = s; Kind = $"extreme (seed {seed})" }
    else
        { Teacher = randomLogits rng v scale; Student = randomLogits rng v scale; Kind = $"normal scale {scale} (seed {seed})" }

/// Pairs with V in [minV, maxV]; a third of them extreme.
let logitPairGenWith (minV: int) (maxV: int) (extremeFraction: int) : Gen<LogitPair> =
    gen {
        let! seed = Gen.choose (0, Int32.MaxValue)
        let! v = Gen.choose (minV, maxV)
        let! kind = Gen.choose (0, 99)
        let! scale = Gen.elements [ 0.1; 1.0; 3.0; 10.0; 30.0 ]
        return makeLogitPair seed v (kind < extremeFraction) scale
    }

/// (teacher, student) logit pairs with V from 2 to 64, about a third with extreme values (±1e4, shared −∞).
let logitPairGen : Gen<LogitPair> = logitPairGenWith 2 64 33

/// Arbitrary for logitPairGen (no shrinking: the seed is shown instead).
let logitPairs : Arbitrary<LogitPair> = Arb.fromGen logitPairGen

/// Ordinary (non-extreme) pairs, V from 2 to 64.
let ordinaryLogitPairs : Arbitrary<LogitPair> = Arb.fromGen (logitPairGenWith 2 64 0)

/// Extreme pairs only, V from 2 to 64.
let extremeLogitPairs : Arbitrary<LogitPair> = Arb.fromGen (logitPairGenWith 2 64 100)

/// Small ordinary pairs (V from 2 to 8), e.g. for finite-difference gradients.
let smallLogitPairs : Arbitrary<LogitPair> =
    gen {
        let! seed = Gen.choose (0, Int32.MaxValue)
        let! v = Gen.choose (2, 8)
        let! scale = Gen.elements [ 0.5; 1.0; 2.0 ]
        return makeLogitPair seed v false scale
    }
    |> Arb.fromGen

/// A small verifier-outcome matrix: outcomes[q][i] for N problems (1 … maxN) and K samples (1 … maxK).
let outcomeMatrixGen (maxN: int) (maxK: int) : Gen<bool[][]> =
    gen {
        let! n = Gen.choose (1, maxN)
        let! k = Gen.choose (1, maxK)
        return! Gen.arrayOfLength n (Gen.arrayOfLength k (Gen.elements [ true; false ]))
    }

/// Outcome matrices with N ≤ 6 problems and K ≤ 8 samples.
let outcomeMatrices : Arbitrary<bool[][]> = Arb.fromGen (outcomeMatrixGen 6 8)

// ---------------------------------------------------------------------------------------------
// Naive float64 references, written from the formulas without Trd.Core
// ---------------------------------------------------------------------------------------------

module Naive =

    /// log softmax: x − (m + log Σ exp(x − m)), m the largest finite entry; −∞ stays −∞.
    let logSoftmax (xs: float[]) =
        let m = xs |> Array.filter (fun x -> not (Double.IsNegativeInfinity x)) |> Array.max
        let mutable s = 0.0
        for x in xs do
            s <- s + exp (x - m)
        let z = m + log s
        xs |> Array.map (fun x -> x - z)

    /// softmax as probabilities.
    let softmax (xs: float[]) = logSoftmax xs |> Array.map exp

    /// Σ_v p(v) (log p(v) − log q(v)) over entries with p(v) > 0, from log-probabilities.
    let klFromLog (lp: float[]) (lq: float[]) =
        let mutable s = 0.0
        for v in 0 .. lp.Length - 1 do
            let p = exp lp[v]
            if p > 0.0 then s <- s + p * (lp[v] - lq[v])
        s

    /// Forward KL D(π_T ‖ π_θ) from raw logits at temperature t (applied once).
    let forwardKl (t: float) (teacherLogits: float[]) (studentLogits: float[]) =
        klFromLog (teacherLogits |> Array.map (fun x -> x / t) |> logSoftmax) (studentLogits |> Array.map (fun x -> x / t) |> logSoftmax)

    /// Reverse KL D(π_θ ‖ π_T) from raw logits at temperature t.
    let reverseKl (t: float) (teacherLogits: float[]) (studentLogits: float[]) =
        klFromLog (studentLogits |> Array.map (fun x -> x / t) |> logSoftmax) (teacherLogits |> Array.map (fun x -> x / t) |> logSoftmax)

    /// The scaled generalised JSD(β) for β ∈ (0, 1) at T = 1, with the mixture M = β p + (1 − β) q formed
    /// in probability space: [β D(p ‖ M) + (1 − β) D(q ‖ M)] / (β (1 − β)).
    let jsd (beta: float) (teacherLogits: float[]) (studentLogits: float[]) =
        let lp, lq = logSoftmax teacherLogits, logSoftmax studentLogits
        let p, q = Array.map exp lp, Array.map exp lq
        let m = Array.map2 (fun a b -> beta * a + (1.0 - beta) * b) p q
        let mutable dp, dq = 0.0, 0.0
        for v in 0 .. p.Length - 1 do
            if p[v] > 0.0 then dp <- dp + p[v] * (lp[v] - log m[v])
            if q[v] > 0.0 then dq <- dq + q[v] * (lq[v] - log m[v])
        (beta * dp + (1.0 - beta) * dq) / (beta * (1.0 - beta))

    /// KL between two explicit probability vectors (0 · log 0 = 0).
    let klProbs (p: float[]) (q: float[]) =
        Array.fold2 (fun acc a b -> if a = 0.0 then acc else acc + a * log (a / b)) 0.0 p q

    /// n choose k as a float.
    let choose (n: int) (k: int) =
        if k < 0 || k > n then 0.0
        else Seq.fold (fun acc i -> acc * float (n - k + i) / float i) 1.0 (seq { 1 .. k })

    /// All k-subsets of 0 … n−1.
    let subsets (n: int) (k: int) : int list list =
        let rec go start k =
            if k = 0 then [ [] ]
            else [ for i in start .. n - 1 do for rest in go (i + 1) (k - 1) -> i :: rest ]
        go 0 k

/// The message of the exception f raises (failing the test when it raises none or another type).
let throwsMessage<'e when 'e :> exn> (f: unit -> unit) =
    try
        f ()
        Expecto.Tests.failtestf "expected %s, nothing was raised" typeof<'e>.Name
    with
    | :? 'e as e -> e.Message
