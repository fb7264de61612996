module Trd.Tests.GradientFormTests

open System
open Expecto
open FsCheck.FSharp
open Trd.Core
open Trd.Tests.Generators

let private pair (context: int list) (target: int) = { Context = Array.ofList context; Target = target }

let private deltasGen =
    gen {
        let! seed = Gen.choose (0, Int32.MaxValue)
        let! n = Gen.choose (0, 20)
        let rng = Random(seed)
        return Array.init n (fun _ -> randomLogits rng 1 2.0 |> Array.head)
    }

/// A rollout, a failure index t, and a correction path of length k with correction[0] ≠ rollout[t].
let private failureGen =
    gen {
        let! seed = Gen.choose (0, Int32.MaxValue)
        let rng = Random(seed)
        let k = rng.Next(1, 7)
        let t = rng.Next(0, 8)
        let length = t + k + rng.Next(0, 4) // rollout[t] exists and the prefixes up to t + k − 1 do
        let vocab = 6 // a small vocabulary so that tokens repeat
        let rollout = Array.init length (fun _ -> rng.Next vocab)
        let correction = Array.init k (fun _ -> rng.Next vocab)
        if correction[0] = rollout[t] then correction[0] <- (rollout[t] + 1) % vocab
        return rollout, t, correction
    }

[<Tests>]
let tests =
    testList "GradientForm" [
        testProperty "returnToGo with γ = 0 equals the deltas (= surrogateCoefficients, Eq. 3)" <|
            Prop.forAll (Arb.fromGen deltasGen) (fun deltas ->
                Expect.equal (GradientForm.returnToGo 0.0 deltas) deltas "γ = 0"
                Expect.equal (GradientForm.surrogateCoefficients deltas) deltas "surrogate")

        testProperty "returnToGo with γ = 1 equals the suffix sums Σ_{t'≥t} δ_t' (App. A)" <|
            Prop.forAll (Arb.fromGen deltasGen) (fun deltas ->
                let g = GradientForm.returnToGo 1.0 deltas
                for t in 0 .. deltas.Length - 1 do
                    expectAbs 1e-12 g[t] (Array.sum deltas[t ..]) $"G_{t}")

        testCase "returnToGo with γ = 0.5 on (1, 2, 4) is (3, 4, 4)" <| fun () ->
            // G_2 = 4; G_1 = 2 + ½·4 = 4; G_0 = 1 + ½·2 + ¼·4 = 3
            Expect.equal (GradientForm.returnToGo 0.5 [| 1.0; 2.0; 4.0 |]) [| 3.0; 4.0; 4.0 |] "γ = 0.5"

        testCase "returnToGo rejects γ outside [0, 1]" <| fun () ->
            for g in [ -0.1; 1.5; nan ] do
                Expect.throwsT<ArgumentException> (fun () -> GradientForm.returnToGo g [| 1.0 |] |> ignore) $"γ = {g}"

        testCase "logRatios are δ_t = log π_θ(y_t) − log π_T(y_t); surrogateValue is Σ c_t log π_θ(y_t)" <| fun () ->
            Expect.equal (GradientForm.logRatios [| -1.0; -0.5 |] [| -2.0; -0.25 |]) [| 1.0; -0.25 |] "δ"
            Expect.equal (GradientForm.surrogateValue [| 2.0; -1.0 |] [| -1.0; -0.5 |]) -1.5 "Σ c log π"
            Expect.throwsT<ArgumentException> (fun () -> GradientForm.logRatios [| 1.0 |] [||] |> ignore) "lengths"

        testCase "§4.2 with k = 3: ideal pairs grow along the correction, fragmented pairs along the rollout" <| fun () ->
            // y_o = 10 11 | 12 13 14 (failure at t = 2); correction ȳ* = 90 91 92.
            let rollout = [| 10; 11; 12; 13; 14 |]
            let t = 2
            let correction = [| 90; 91; 92 |]
            let ideal = GradientForm.idealPairs rollout[.. t - 1] correction
            Expect.equal ideal [| pair [ 10; 11 ] 90; pair [ 10; 11; 90 ] 91; pair [ 10; 11; 90; 91 ] 92 |] "g_ideal pairs"
            let frag = GradientForm.fragmentedPairs rollout t correction[0] 3
            Expect.equal frag [| pair [ 10; 11 ] 90; pair [ 10; 11; 12 ] 90; pair [ 10; 11; 12; 13 ] 90 |] "g_frag pairs"
            Expect.equal (GradientForm.sharedPairs ideal frag) [| pair [ 10; 11 ] 90 |] "they share exactly (y_o,<t, ȳ*_t)"
            Expect.equal (GradientForm.sharedPairs frag ideal) [| pair [ 10; 11 ] 90 |] "symmetric"

        testProperty "for any rollout leaving the correction path at t (y_o,t ≠ ȳ*_t) the shared pairs are exactly the first pair" <|
            Prop.forAll (Arb.fromGen failureGen) (fun (rollout, t, correction) ->
                let k = correction.Length
                let ideal = GradientForm.idealPairs rollout[.. t - 1] correction
                let frag = GradientForm.fragmentedPairs rollout t correction[0] k
                Expect.hasLength ideal k "k ideal pairs"
                Expect.hasLength frag k "k fragmented pairs"
                Expect.equal (GradientForm.sharedPairs ideal frag) [| { Context = rollout[.. t - 1]; Target = correction[0] } |] "shared = first pair")

        testCase "when the rollout itself takes the correction onset, the second pairs coincide too" <| fun () ->
            let rollout = [| 10; 11; 90; 13 |]
            let ideal = GradientForm.idealPairs [| 10; 11 |] [| 90; 90 |]
            let frag = GradientForm.fragmentedPairs rollout 2 90 2
            Expect.equal (GradientForm.sharedPairs ideal frag) [| pair [ 10; 11 ] 90; pair [ 10; 11; 90 ] 90 |] "two shared"

        testCase "invalid k, t or an empty correction raise" <| fun () ->
            let rollout = [| 1; 2; 3 |]
            Expect.throwsT<ArgumentException> (fun () -> GradientForm.fragmentedPairs rollout 1 9 0 |> ignore) "k = 0"
            Expect.throwsT<ArgumentException> (fun () -> GradientForm.fragmentedPairs rollout -1 9 1 |> ignore) "t < 0"
            Expect.throwsT<ArgumentException> (fun () -> GradientForm.fragmentedPairs rollout 2 9 3 |> ignore) "t + k − 1 > |y_o|"
            Expect.throwsT<ArgumentException> (fun () -> GradientForm.idealPairs [| 1 |] [||] |> ignore) "k = 0 correction"
            // the largest valid case: prefixes up to the whole rollout
            Expect.hasLength (GradientForm.fragmentedPairs rollout 1 9 3) 3 "t + k − 1 = |y_o|"
    ]
