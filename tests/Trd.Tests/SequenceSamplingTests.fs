/// Per-sequence sampling (issue 14, §1): the float64 reference (Trd.Core.SequenceSampling), the sampler's tensor path
/// held to it, and the property the served path rests on: a sequence's tokens depend on its seed and its model only.
module Trd.Tests.SequenceSamplingTests

open System
open Expecto
open TorchSharp
open Trd.Core
open Trd.Runtime.Generation
open Trd.Tests.ModelTests

let private prompt (rng: Random) (length: int) = Array.init length (fun _ -> rng.Next(1, 97))

let private sampling seeds n =
    SamplingOptions(Temperature = 1.0, TopP = 0.9, TopK = 20, MaxNewTokens = 12, SamplesPerPrompt = n, PromptSeeds = seeds)

[<Tests>]
let tests =
    testList "Sequence sampling" [
        testCase "the stream: uniforms in (0, 1), the same for the same (seed, step), roughly uniform, independent of other seeds" <| fun () ->
            let us = [| for step in 0 .. 19999 -> SequenceSampling.uniform 42L step |]
            Expect.isTrue (us |> Array.forall (fun u -> u > 0.0 && u < 1.0)) "inside (0, 1)"
            Expect.equal (SequenceSampling.uniform 42L 7) us[7] "a pure function of (seed, step)"
            Expect.isLessThan (abs (Array.average us - 0.5)) 0.01 "mean near 1/2"
            let deciles = us |> Array.countBy (fun u -> int (u * 10.0)) |> Array.map snd
            Expect.isTrue (deciles |> Array.forall (fun c -> c > 1800 && c < 2200)) $"deciles about 2000 each: {deciles}"
            Expect.notEqual (SequenceSampling.uniform 43L 0) (SequenceSampling.uniform 42L 0) "another seed, another stream"
            Expect.equal (SequenceSampling.sampleSeed 100L 3) 103L "sample j of a prompt seeded s: s + j (vLLM's rule)"

        testCase "the reference draw inverts the cumulative weights and never draws a zero weight" <| fun () ->
            let w = [| 0.0; 0.2; 0.0; 0.5; 0.3; 0.0 |]
            Expect.equal (SequenceSampling.draw w (1e-9)) 1 "the first positive weight at the bottom"
            Expect.equal (SequenceSampling.draw w (0.2)) 1 "a cumulative boundary belongs to the lower index"
            Expect.equal (SequenceSampling.draw w (0.2000001)) 3 "just past it, the next positive weight"
            Expect.equal (SequenceSampling.draw w (0.999999999)) 4 "the top: the last positive weight, not the zero after it"
            let counts = Array.zeroCreate 6
            for step in 0 .. 29999 do
                let i = SequenceSampling.draw w (SequenceSampling.uniform 5L step)
                counts[i] <- counts[i] + 1
            Expect.equal (counts[0] + counts[2] + counts[5]) 0 "zero weights never drawn"
            for i in [ 1; 3; 4 ] do
                Expect.isLessThan (abs (float counts[i] / 30000.0 - w[i])) 0.015 $"index {i} drawn at its weight"
            Expect.throwsT<ArgumentException> (fun () -> SequenceSampling.draw [| 0.0; 0.0 |] (0.5) |> ignore) "all zero"
            Expect.throwsT<ArgumentException> (fun () -> SequenceSampling.draw [| 1.0 |] (1.0) |> ignore) "u outside (0, 1)"

        testCase "the sampler's tensor draw equals the float64 reference on every row (temperature, top-k and top-p applied)" <| fun () ->
            let rng = Random 3
            let rows, v = 64, 50
            let values = Array.init rows (fun _ -> Array.init v (fun _ -> float32 (rng.NextDouble() * 6.0 - 3.0)))
            let logits = torch.tensor(Array.concat values).view(int64 rows, int64 v)
            let t, k, topP = 0.7, 12, 0.9
            let us = Array.init rows (fun r -> SequenceSampling.uniform (int64 r) 0)
            let struct (ids, _) = Sampler.Choose(logits, SamplingOptions(Temperature = t, TopP = topP, TopK = k), null, torch.tensor(us, dtype = torch.float64))
            let got = ids.data<int64>().ToArray()
            /// The filtered distribution in float64: z / T, the k largest kept, then the smallest prefix (by probability)
            /// whose mass reaches p.
            let weights (row: float32[]) =
                let z = row |> Array.map (fun x -> float x / t)
                let kth = (Array.sortDescending z)[k - 1]
                let kept = z |> Array.map (fun x -> if x >= kth then x else Double.NegativeInfinity)
                let p = Numerics.softmax kept
                let order = Array.init v id |> Array.sortBy (fun i -> -p[i])
                let mutable before = 0.0
                let w = Array.zeroCreate v
                for i in order do
                    if before < topP then w[i] <- p[i]
                    before <- before + p[i]
                w
            for r in 0 .. rows - 1 do
                Expect.equal (int got[r]) (SequenceSampling.draw (weights values[r]) us[r]) $"row {r}"

        testCase "a prompt's samples depend on its seed only: alone, in a batch at another row, or as n separate seeds" <| fun () ->
            use model = tinyModel false torch.float32 31L
            let rng = Random 32
            let a, b, c = prompt rng 5, prompt rng 8, prompt rng 3
            let batch = Sampler.Generate(model, [| a; b; c |], sampling [| 10L; 20L; 30L |] 2)
            let alone = Sampler.Generate(model, [| b |], sampling [| 20L |] 2)
            Expect.sequenceEqual alone[0].Tokens batch[2].Tokens "b's first sample alone = in the batch"
            Expect.sequenceEqual alone[1].Tokens batch[3].Tokens "b's second sample alone = in the batch"
            let reordered = Sampler.Generate(model, [| c; b |], sampling [| 30L; 20L |] 2)
            Expect.sequenceEqual reordered[2].Tokens batch[2].Tokens "b at another row"
            Expect.sequenceEqual reordered[0].Tokens batch[4].Tokens "c at another row"
            let second = Sampler.Generate(model, [| b |], sampling [| 21L |] 1)
            Expect.sequenceEqual second[0].Tokens batch[3].Tokens "sample 1 of seed 20 = sample 0 of seed 21"
            Expect.isFalse (batch[2].Tokens = batch[3].Tokens && batch[0].Tokens = batch[1].Tokens) "the samples of a prompt differ"
            Expect.throwsT<ArgumentException> (fun () -> Sampler.Generate(model, [| a; b |], sampling [| 1L |] 1) |> ignore) "one seed per prompt"
    ]
