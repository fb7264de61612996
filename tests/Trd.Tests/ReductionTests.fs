module Trd.Tests.ReductionTests

open System
open Expecto
open FsCheck.FSharp
open Trd.Core
open Trd.Tests.Generators

/// A step of 1 … 5 micro-batches, each with 1 … 12 positions, values in [0, 3), 0/1 masks with at least one 1 overall.
let private stepGen =
    gen {
        let! seed = Gen.choose (0, Int32.MaxValue)
        let rng = Random(seed)
        let b = rng.Next(1, 6)
        let values = Array.init b (fun _ -> Array.init (rng.Next(1, 13)) (fun _ -> 3.0 * rng.NextDouble()))
        let masks = values |> Array.map (Array.map (fun _ -> if rng.Next 4 = 0 then 0.0 else 1.0))
        masks[0][0] <- 1.0
        return values, masks
    }

let private steps = Arb.fromGen stepGen

[<Tests>]
let tests =
    testList "Reduction" [
        testProperty "tokenMean equals Σ m·x / Σ m over the concatenation of the micro-batches" <|
            Prop.forAll steps (fun (values, masks) ->
                let v, m = Array.concat values, Array.concat masks
                let expected = (Array.map2 (*) v m |> Array.sum) / Array.sum m
                expectRel 1e-13 (Reduction.tokenMean values masks) expected "token mean")

        testProperty "microBatchLosses sum to tokenMean (each divided by the step's token count)" <|
            Prop.forAll steps (fun (values, masks) ->
                let losses = Reduction.microBatchLosses values masks
                Expect.hasLength losses values.Length "one loss per micro-batch"
                expectRel 1e-13 (Array.sum losses) (Reduction.tokenMean values masks) "Σ losses"
                let total = Array.sumBy Array.sum masks
                Array.iteri (fun i l -> expectRel 1e-13 l ((Array.map2 (*) values[i] masks[i] |> Array.sum) / total) $"micro-batch {i}") losses)

        testCase "meanOfMicroBatchMeans differs from tokenMean when micro-batches hold different token counts" <| fun () ->
            // batch A: 1 token of value 1; batch B: 3 tokens of value 5.
            let values = [| [| 1.0 |]; [| 5.0; 5.0; 5.0 |] |]
            let masks = [| [| 1.0 |]; [| 1.0; 1.0; 1.0 |] |]
            expectRel 1e-15 (Reduction.tokenMean values masks) (16.0 / 4.0) "token mean = 4"
            expectRel 1e-15 (Reduction.meanOfMicroBatchMeans values masks) ((1.0 + 5.0) / 2.0) "mean of means = 3"

        testProperty "meanOfMicroBatchMeans equals tokenMean when every micro-batch has the same token count" <|
            Prop.forAll (Arb.fromGen (gen {
                let! seed = Gen.choose (0, Int32.MaxValue)
                let rng = Random(seed)
                let b, n = rng.Next(1, 6), rng.Next(1, 10)
                return Array.init b (fun _ -> Array.init n (fun _ -> rng.NextDouble())) })) (fun values ->
                let masks = values |> Array.map (Array.map (fun _ -> 1.0))
                expectRel 1e-13 (Reduction.meanOfMicroBatchMeans values masks) (Reduction.tokenMean values masks) "equal counts")

        testCase "perTrajectoryMean averages each trajectory's masked mean (hand case)" <| fun () ->
            let values = [| [| 1.0; 2.0; 3.0; 100.0 |]; [| 10.0 |] |]
            let masks = [| [| 1.0; 1.0; 1.0; 0.0 |]; [| 1.0 |] |]
            // (1 + 2 + 3)/3 = 2 and 10: mean 6; the token mean is 16 / 4 = 4
            expectRel 1e-15 (Reduction.perTrajectoryMean values masks) 6.0 "per trajectory"
            expectRel 1e-15 (Reduction.tokenMean values masks) 4.0 "token mean"

        testCase "stepTokenCount is Σ m over all micro-batches" <| fun () ->
            Expect.equal (Reduction.stepTokenCount [| [| 1.0; 0.0; 1.0 |]; [| 0.5 |] |]) 2.5 "count"

        testCase "an all-zero step mask raises; mismatched lengths raise" <| fun () ->
            Expect.throwsT<ArgumentException> (fun () -> Reduction.tokenMean [| [| 1.0 |] |] [| [| 0.0 |] |] |> ignore) "token mean"
            Expect.throwsT<ArgumentException> (fun () -> Reduction.microBatchLosses [| [| 1.0 |] |] [| [| 0.0 |] |] |> ignore) "losses"
            Expect.throwsT<ArgumentException> (fun () -> Reduction.tokenMean [| [| 1.0; 2.0 |] |] [| [| 1.0 |] |] |> ignore) "lengths"
            Expect.throwsT<ArgumentException> (fun () -> Reduction.tokenMean [| [| 1.0 |] |] [||] |> ignore) "counts"
    ]
