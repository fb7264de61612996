/// Float64 reference numerics shared by every module of the algebra: input checks, stable
/// log-sum-exp and log-softmax (with −∞ entries allowed), temperature, log(1 − eˣ).
/// Everything here is the slow, exact side that the TorchSharp executor is tested against.
module Trd.Core.Numerics

open System

/// Rejects what no objective can be computed from: an empty vector, NaN, +∞, or a row that
/// is −∞ everywhere. −∞ entries are allowed (masked vocabulary entries).
[<CompiledName("CheckLogits")>]
let checkLogits (what: string) (logits: float[]) =
    if isNull (box logits) || logits.Length = 0 then
        invalidArg what $"{what}: empty logit vector"
    let mutable finite = false
    for i in 0 .. logits.Length - 1 do
        let x = logits[i]
        if Double.IsNaN x then invalidArg what $"{what}: NaN at vocabulary index {i}"
        if Double.IsPositiveInfinity x then invalidArg what $"{what}: +inf at vocabulary index {i}"
        if not (Double.IsNegativeInfinity x) then finite <- true
    if not finite then invalidArg what $"{what}: every entry is -inf (no probability mass anywhere)"

/// log Σᵢ exp xᵢ, computed around the maximum; −∞ for an all −∞ vector.
[<CompiledName("LogSumExp")>]
let logSumExp (xs: float[]) =
    let m = Array.max xs
    if Double.IsNegativeInfinity m then m
    else
        let mutable s = 0.0
        for x in xs do
            s <- s + exp (x - m)
        m + log s

/// log softmax(x): xᵢ − log Σⱼ exp xⱼ. −∞ entries stay −∞.
[<CompiledName("LogSoftmax")>]
let logSoftmax (xs: float[]) =
    let m = Array.max xs
    if Double.IsNegativeInfinity m then Array.copy xs
    else
        // (x − m) − log Σ exp(x − m): exact for the largest entry, unlike x − (m + log Σ …) at |x| ≈ 1e4.
        let mutable s = 0.0
        for x in xs do
            s <- s + exp (x - m)
        let logS = log s
        xs |> Array.map (fun x -> (x - m) - logS)

/// softmax(x).
[<CompiledName("Softmax")>]
let softmax (xs: float[]) = logSoftmax xs |> Array.map exp

/// Log-probabilities at temperature T: log softmax(ℓ / T). The paper's Appendix C.8:
/// p_T(v) ∝ exp(ℓ_v / T). Applied exactly once, to teacher and student alike.
[<CompiledName("TemperedLogProbs")>]
let temperedLogProbs (temperature: float) (logits: float[]) =
    if not (temperature > 0.0) || Double.IsInfinity temperature then
        invalidArg "temperature" $"temperature must be a finite number > 0, got {temperature}"
    logits |> Array.map (fun l -> l / temperature) |> logSoftmax

/// log(1 + x), accurate for small x (Kahan's trick; .NET's double.LogP1 is log(1 + x) as written).
[<CompiledName("Log1p")>]
let log1p (x: float) =
    let u = 1.0 + x
    if u = 1.0 then x else log u * x / (u - 1.0)

/// eˣ − 1, accurate for small x (Kahan's trick).
[<CompiledName("Expm1")>]
let expm1 (x: float) =
    let u = exp x
    if u = 1.0 then x
    elif u - 1.0 = -1.0 then -1.0
    elif Double.IsPositiveInfinity u then u
    else (u - 1.0) * x / log u

/// log(1 − eˣ) for x ≤ 0, accurate at both ends (Mächler 2012): −∞ at x = 0, ≈ −eˣ as x → −∞.
/// Used for the tail bucket log(1 − Σ_top-K p).
[<CompiledName("Log1mExp")>]
let log1mExp (x: float) =
    if x > 0.0 then nan
    elif x > -0.6931471805599453 then log (-(expm1 x))
    else log1p (-(exp x))

/// p · (log p − log q) with the convention 0 · (anything) = 0, so that −∞ − (−∞) never yields NaN.
[<CompiledName("WeightedLogRatio")>]
let weightedLogRatio (p: float) (logP: float) (logQ: float) =
    if p = 0.0 then 0.0 else p * (logP - logQ)

/// Σᵢ mᵢ xᵢ / Σᵢ mᵢ: the token-weighted mean under a 0/1 (or fractional) mask.
[<CompiledName("MaskedMean")>]
let maskedMean (values: float[]) (mask: float[]) =
    if values.Length <> mask.Length then
        invalidArg "mask" $"mask has {mask.Length} entries but there are {values.Length} values"
    let mutable num = 0.0
    let mutable den = 0.0
    for i in 0 .. values.Length - 1 do
        if mask[i] <> 0.0 then
            num <- num + mask[i] * values[i]
            den <- den + mask[i]
    if den = 0.0 then invalidArg "mask" "the mask selects no position (empty mask)" else num / den
