module Trd.Tests.NumericsTests

open System
open Expecto
open FsCheck.FSharp
open Trd.Core
open Trd.Tests.Generators

let private ln2 = log 2.0
let private ninf = Double.NegativeInfinity

/// Σ_{n=1}^{N} (−1)^{n+1} xⁿ / n, summed smallest term first (|x| ≪ 1).
let private log1pSeries (x: float) =
    Array.init 30 (fun i -> let n = float (i + 1) in (if i % 2 = 0 then 1.0 else -1.0) * (x ** n) / n)
    |> Array.rev
    |> Array.sum

/// Σ_{n=1}^{N} xⁿ / n!, smallest term first (|x| ≪ 1).
let private expm1Series (x: float) =
    let terms = Array.zeroCreate 25
    let mutable t = 1.0
    for i in 0 .. 24 do
        t <- t * x / float (i + 1)
        terms[i] <- t
    terms |> Array.rev |> Array.sum

let private expectArgumentMessage (f: unit -> unit) (fragments: string list) (what: string) =
    let ex = Expect.throwsC f id
    match ex with
    | :? ArgumentException as e ->
        for frag in fragments do
            Expect.stringContains e.Message frag $"{what}: message names the problem"
    | other -> failtestf "%s: expected ArgumentException, got %s" what (other.GetType().Name)

[<Tests>]
let tests =
    testList "Numerics" [
        testList "logSumExp and logSoftmax" [
            testCase "logSumExp of two entries at +1e4 is 1e4 + ln 2 (no overflow)" <| fun () ->
                expectRel 1e-15 (Numerics.logSumExp [| 1e4; 1e4 |]) (1e4 + ln2) "lse"

            testCase "logSumExp of two entries at −1e4 is −1e4 + ln 2 (no underflow to −∞)" <| fun () ->
                expectRel 1e-15 (Numerics.logSumExp [| -1e4; -1e4 |]) (-1e4 + ln2) "lse"

            testCase "logSumExp ignores −∞ entries: lse(−∞, 0, 0) = ln 2" <| fun () ->
                expectRel 1e-15 (Numerics.logSumExp [| ninf; 0.0; 0.0 |]) ln2 "lse"

            testCase "logSumExp of an all −∞ vector is −∞ (not NaN)" <| fun () ->
                Expect.equal (Numerics.logSumExp [| ninf; ninf |]) ninf "lse"

            testCase "logSoftmax at ±1e4 with a −∞ entry is [0, −2e4, −∞]" <| fun () ->
                let ls = Numerics.logSoftmax [| 1e4; -1e4; ninf |]
                Expect.equal ls[0] 0.0 "dominant entry"
                expectRel 1e-15 ls[1] -2e4 "dominated entry"
                Expect.equal ls[2] ninf "masked entry stays −∞"

            testCase "logSoftmax of equal entries at 1e4 is −ln V for each" <| fun () ->
                let ls = Numerics.logSoftmax (Array.create 7 1e4)
                for x in ls do expectRel 1e-12 x (-(log 7.0)) "uniform"

            testCase "softmax sums to 1 and is finite on extreme logits with −∞ entries" <| fun () ->
                let rng = Random(11)
                for _ in 1 .. 200 do
                    let v = rng.Next(2, 65)
                    let t, _ = extremeLogitPair rng v
                    let p = Numerics.softmax t
                    Expect.all p (fun x -> x >= 0.0 && x <= 1.0) "probabilities in [0, 1]"
                    expectAbs 1e-12 (Array.sum p) 1.0 "Σ p"

            testProperty "logSoftmax is invariant to adding a constant to every logit" <|
                Prop.forAll ordinaryLogitPairs (fun pair ->
                    let c = 123.25
                    let a = Numerics.logSoftmax pair.Teacher
                    let b = Numerics.logSoftmax (pair.Teacher |> Array.map ((+) c))
                    Array.iter2 (fun x y -> expectAbs 1e-10 x y "shifted") a b)
        ]

        testList "log1p, expm1, log1mExp" [
            testCase "log1p matches its Taylor series at tiny x (where log(1 + x) loses every digit)" <| fun () ->
                for x in [ 1e-5; 3e-8; 1e-12; -7e-10; 1e-17; -1e-300 ] do
                    expectRel 1e-14 (Numerics.log1p x) (log1pSeries x) $"log1p {x}"
                // the naive formula is wrong here by a large factor, so the test above is not vacuous
                Expect.isGreaterThan (relErr (log (1.0 + 1e-12)) (log1pSeries 1e-12)) 1e-5 "naive log(1 + x) is inaccurate"

            testCase "log1p agrees with log(1 + x) away from 0" <| fun () ->
                for x in [ 0.5; 3.0; -0.5; 1e3; -0.999 ] do
                    expectRel 1e-14 (Numerics.log1p x) (log (1.0 + x)) $"log1p {x}"

            testCase "expm1 matches its Taylor series at tiny x" <| fun () ->
                for x in [ 1e-5; -3e-8; 1e-12; 2e-15; -1e-300 ] do
                    expectRel 1e-14 (Numerics.expm1 x) (expm1Series x) $"expm1 {x}"

            testCase "expm1 agrees with exp x − 1 away from 0 and tends to −1" <| fun () ->
                for x in [ 0.7; -0.7; 5.0; -5.0 ] do
                    expectRel 1e-14 (Numerics.expm1 x) (exp x - 1.0) $"expm1 {x}"
                Expect.equal (Numerics.expm1 -50.0) -1.0 "e^−50 − 1 rounds to −1"

            testCase "log1mExp near 0 is log(−x) + x/2 + x²/24 (cancellation-free)" <| fun () ->
                for x in [ -1e-20; -1e-10; -1e-6; -3e-4 ] do
                    expectRel 1e-14 (Numerics.log1mExp x) (log (-x) + x / 2.0 + x * x / 24.0) $"log1mExp {x}"

            testCase "log1mExp far below 0 is −eˣ − e²ˣ/2 (not 0)" <| fun () ->
                for x in [ -50.0; -100.0; -700.0 ] do
                    let e = exp x
                    expectRel 1e-14 (Numerics.log1mExp x) (-e - e * e / 2.0) $"log1mExp {x}"

            testCase "log1mExp at moderate x equals log(1 − eˣ) on both branches (x above and below −ln 2)" <| fun () ->
                for x in [ -0.01; -0.3; -0.69; -0.7; -1.0 ] do
                    let expected = log (-(exp x - 1.0))
                    expectRel 1e-13 (Numerics.log1mExp x) expected $"log1mExp {x}"
                expectRel 1e-15 (Numerics.log1mExp (-ln2)) (-ln2) "log(1 − 1/2) = −ln 2"

            testCase "log1mExp is −∞ at 0 and NaN above 0" <| fun () ->
                Expect.equal (Numerics.log1mExp 0.0) ninf "x = 0"
                Expect.isTrue (Double.IsNaN(Numerics.log1mExp 0.1)) "x > 0"
        ]

        testList "checkLogits" [
            testCase "checkLogits rejects NaN, naming NaN and its index" <| fun () ->
                expectArgumentMessage (fun () -> Numerics.checkLogits "teacherLogits" [| 0.0; nan; 1.0 |]) [ "NaN"; "1"; "teacherLogits" ] "NaN"

            testCase "checkLogits rejects +inf, naming +inf and its index" <| fun () ->
                expectArgumentMessage (fun () -> Numerics.checkLogits "studentLogits" [| 0.0; 1.0; infinity |]) [ "+inf"; "2"; "studentLogits" ] "+inf"

            testCase "checkLogits rejects an all −∞ row, saying every entry is −inf" <| fun () ->
                expectArgumentMessage (fun () -> Numerics.checkLogits "teacherLogits" [| ninf; ninf |]) [ "-inf"; "every entry" ] "all −∞"

            testCase "checkLogits rejects an empty vector, saying it is empty" <| fun () ->
                expectArgumentMessage (fun () -> Numerics.checkLogits "teacherLogits" [||]) [ "empty" ] "empty"

            testCase "checkLogits accepts −∞ entries alongside finite ones and ±1e4" <| fun () ->
                Numerics.checkLogits "x" [| ninf; 1e4; -1e4; 0.0 |]
        ]

        testList "temperature" [
            testCase "temperedLogProbs rejects T ≤ 0, NaN and ∞, naming the temperature" <| fun () ->
                for t in [ 0.0; -1.0; nan; infinity; -0.0 ] do
                    expectArgumentMessage (fun () -> Numerics.temperedLogProbs t [| 0.0; 1.0 |] |> ignore) [ "temperature" ] $"T = {t}"

            testCase "temperedLogProbs at T = 2 is log softmax(ℓ/2)" <| fun () ->
                let l = [| 1.0; -3.0; 4.5; ninf |]
                let expected = Naive.logSoftmax [| 0.5; -1.5; 2.25; ninf |]
                let actual = Numerics.temperedLogProbs 2.0 l
                for i in 0 .. 2 do expectRel 1e-14 actual[i] expected[i] $"entry {i}"
                Expect.equal actual[3] ninf "−∞ stays −∞"
        ]

        testList "maskedMean" [
            testCase "maskedMean is Σ m x / Σ m with fractional weights" <| fun () ->
                expectRel 1e-15 (Numerics.maskedMean [| 1.0; 2.0; 100.0; 4.0 |] [| 1.0; 0.5; 0.0; 2.0 |]) ((1.0 + 1.0 + 8.0) / 3.5) "mean"

            testCase "maskedMean rejects an empty mask" <| fun () ->
                expectArgumentMessage (fun () -> Numerics.maskedMean [| 1.0 |] [| 0.0 |] |> ignore) [ "empty mask" ] "empty mask"
        ]
    ]
