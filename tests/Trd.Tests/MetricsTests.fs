module Trd.Tests.MetricsTests

open System
open Expecto
open FsCheck.FSharp
open Trd.Core
open Trd.Tests.Generators

let private t, f = true, false

[<Tests>]
let tests =
    testList "Metrics" [
        testList "Avg@K and Pass@K" [
            testCase "avgAtK and passAtK on a hand matrix" <| fun () ->
                // problem 0: 2 of 4; problem 1: 0 of 4; problem 2: 4 of 4
                let outcomes = [| [| t; f; t; f |]; [| f; f; f; f |]; [| t; t; t; t |] |]
                expectRel 1e-15 (Metrics.avgAtK outcomes) ((0.5 + 0.0 + 1.0) / 3.0) "Avg@4"
                expectRel 1e-15 (Metrics.passAtK outcomes) (2.0 / 3.0) "Pass@4"

            testCase "avgAtK and passAtK reject empty and ragged matrices" <| fun () ->
                Expect.throwsT<ArgumentException> (fun () -> Metrics.avgAtK [||] |> ignore) "no problems"
                Expect.throwsT<ArgumentException> (fun () -> Metrics.passAtK [| [||] |] |> ignore) "K = 0"
                Expect.throwsT<ArgumentException> (fun () -> Metrics.avgAtK [| [| t |]; [| t; f |] |] |> ignore) "ragged"

            testCase "unbiasedPassAtK equals the fraction of k-subsets with ≥ 1 correct, for every n ≤ 8, c ≤ n, k ≤ n" <| fun () ->
                for n in 1 .. 8 do
                    for c in 0 .. n do
                        for k in 1 .. n do
                            // samples 0 … c−1 are the correct ones
                            let subsets = Naive.subsets n k
                            let hits = subsets |> List.filter (List.exists (fun i -> i < c)) |> List.length
                            let expected = float hits / float subsets.Length
                            expectAbs 1e-12 (Metrics.unbiasedPassAtK n c k) expected $"n = {n}, c = {c}, k = {k}"
                            // and the closed form 1 − C(n−c, k)/C(n, k)
                            expectAbs 1e-12 (Metrics.unbiasedPassAtK n c k) (1.0 - Naive.choose (n - c) k / Naive.choose n k) "closed form"

            testCase "unbiasedPassAtK rejects n < 1, c outside [0, n], k outside [1, n]" <| fun () ->
                for n, c, k in [ 0, 0, 1; 4, -1, 1; 4, 5, 1; 4, 2, 0; 4, 2, 5 ] do
                    Expect.throwsT<ArgumentException> (fun () -> Metrics.unbiasedPassAtK n c k |> ignore) $"n = {n}, c = {c}, k = {k}"

            testProperty "passAtKCurve's last point (k = K = n) equals passAtK and its first equals avgAtK" <|
                Prop.forAll outcomeMatrices (fun outcomes ->
                    let curve = Metrics.passAtKCurve outcomes
                    Expect.hasLength curve outcomes[0].Length "k = 1 … K"
                    expectAbs 1e-12 curve[curve.Length - 1] (Metrics.passAtK outcomes) "pass@K"
                    expectAbs 1e-12 curve[0] (Metrics.avgAtK outcomes) "pass@1 = Avg@K"
                    for i in 1 .. curve.Length - 1 do
                        Expect.isGreaterThanOrEqual (curve[i] + 1e-12) curve[i - 1] "non-decreasing in k")
        ]

        testList "difficulty buckets" [
            testCase "buckets for K = 16 are B0, B1–8, B9–16" <| fun () ->
                Expect.equal (Metrics.buckets 16)
                    [| { Label = "B0"; Low = 0; High = 0 }; { Label = "B1–8"; Low = 1; High = 8 }; { Label = "B9–16"; Low = 9; High = 16 } |] "K = 16"

            testCase "bucketOf for K = 16 on hand cases" <| fun () ->
                for passes, label in [ 0, "B0"; 1, "B1–8"; 5, "B1–8"; 8, "B1–8"; 9, "B9–16"; 16, "B9–16" ] do
                    Expect.equal (Metrics.bucketOf 16 passes).Label label $"b = {passes}"
                for passes in [ -1; 17 ] do
                    Expect.throwsT<ArgumentException> (fun () -> Metrics.bucketOf 16 passes |> ignore) $"b = {passes}"

            testCase "buckets generalise to K = 5 as B0, B1–2, B3–5" <| fun () ->
                Expect.equal (Metrics.buckets 5 |> Array.map (fun b -> b.Label, b.Low, b.High)) [| "B0", 0, 0; "B1–2", 1, 2; "B3–5", 3, 5 |] "K = 5"
                Expect.equal (Metrics.bucketOf 5 2).Label "B1–2" "b = 2"
                Expect.equal (Metrics.bucketOf 5 3).Label "B3–5" "b = 3"
                Expect.throwsT<ArgumentException> (fun () -> Metrics.buckets 1 |> ignore) "K < 2"

            testCase "for every K ≥ 2 the buckets partition 0 … K" <| fun () ->
                for k in 2 .. 40 do
                    let bs = Metrics.buckets k
                    let covered = bs |> Array.collect (fun b -> [| b.Low .. b.High |])
                    Expect.equal covered [| 0 .. k |] $"K = {k}"
        ]

        testList "training metrics" [
            testCase "perplexity of a constant log-probability ln(1/4) is 4 (masked positions ignored)" <| fun () ->
                let lp = [| log 0.25; log 0.25; -100.0; log 0.25 |]
                expectRel 1e-14 (Metrics.perplexity lp [| 1.0; 1.0; 0.0; 1.0 |]) 4.0 "ppl"

            testCase "tokenWeightedMean is Σ m x / Σ m" <| fun () ->
                expectRel 1e-15 (Metrics.tokenWeightedMean [| 1.0; 3.0; 7.0 |] [| 1.0; 1.0; 0.0 |]) 2.0 "mean"

            testCase "epistemicMass sums the teacher's softmax over distinct token ids (hand logits)" <| fun () ->
                // softmax of (0, ln 2, ln 3, ln 4) is (1, 2, 3, 4)/10
                let logits = [| 0.0; log 2.0; log 3.0; log 4.0 |]
                expectRel 1e-14 (Metrics.epistemicMass logits [| 1; 3; 3 |]) 0.6 "ids 1 and 3, duplicate ignored"
                expectRel 1e-14 (Metrics.epistemicMass logits [| 0; 1; 2; 3 |]) 1.0 "all"
                Expect.equal (Metrics.epistemicMass logits [||]) 0.0 "no ids"
                Expect.throwsT<ArgumentException> (fun () -> Metrics.epistemicMass logits [| 4 |] |> ignore) "id outside V"

            testCase "epistemicMass is read at T = 1 and is stable at ±1e4 with −∞ entries" <| fun () ->
                let logits = [| 1e4; 1e4; -1e4; Double.NegativeInfinity |]
                // logits of size 1e4 are resolved only to ulp(1e4) ≈ 1.8e-12, hence 1e-11
                expectRel 1e-11 (Metrics.epistemicMass logits [| 0 |]) 0.5 "half"
                Expect.equal (Metrics.epistemicMass logits [| 2; 3 |]) 0.0 "underflowed and masked"

            testCase "meanEpistemicMass is the token-weighted mean over positions" <| fun () ->
                let a = [| 0.0; 0.0 |] // mass 1/2 on id 0
                let b = [| 0.0; log 3.0 |] // mass 1/4 on id 0
                expectRel 1e-14 (Metrics.meanEpistemicMass [| a; b; b |] [| 0 |] [| 1.0; 1.0; 0.0 |]) ((0.5 + 0.25) / 2.0) "mean"

            testCase "epistemicPhrases are the 16 phrases of App. C.5" <| fun () ->
                Expect.hasLength Metrics.epistemicPhrases 16 "16 phrases"
                Expect.equal (Set.ofArray Metrics.epistemicPhrases).Count 16 "distinct"
                for p in [ "Wait"; "Actually"; "Hmm" ] do Expect.contains Metrics.epistemicPhrases p p

            testCase "splitByOutcome gives the token-weighted KL of passed and failed trajectories (hand case)" <| fun () ->
                let perPosition = [| [| 1.0; 3.0 |]; [| 10.0; 20.0; 99.0 |]; [| 5.0 |] |]
                let masks = [| [| 1.0; 1.0 |]; [| 1.0; 1.0; 0.0 |]; [| 1.0 |] |]
                let s = Metrics.splitByOutcome perPosition masks [| true; false; true |]
                expectRel 1e-15 s.Correct ((1.0 + 3.0 + 5.0) / 3.0) "D^correct"
                expectRel 1e-15 s.Incorrect ((10.0 + 20.0) / 2.0) "D^incorrect"

            testCase "splitByOutcome is NaN on a side with no tokens" <| fun () ->
                let s = Metrics.splitByOutcome [| [| 1.0; 3.0 |] |] [| [| 1.0; 1.0 |] |] [| true |]
                expectRel 1e-15 s.Correct 2.0 "correct"
                Expect.isTrue (Double.IsNaN s.Incorrect) "no failed trajectory"
                let s2 = Metrics.splitByOutcome [| [| 1.0 |]; [| 2.0 |] |] [| [| 0.0 |]; [| 1.0 |] |] [| true; false |]
                Expect.isTrue (Double.IsNaN s2.Correct) "a passed trajectory with an all-zero mask"
                Expect.equal s2.Incorrect 2.0 "incorrect"
                Expect.throwsT<ArgumentException> (fun () -> Metrics.splitByOutcome [| [| 1.0 |] |] [| [| 1.0 |] |] [||] |> ignore) "lengths"
        ]
    ]
