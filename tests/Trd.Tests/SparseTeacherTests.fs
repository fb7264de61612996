/// A teacher known by its top-K (a served engine's prompt log-probabilities) against the dense float64 reference.
module Trd.Tests.SparseTeacherTests

open System
open Expecto
open TorchSharp
open Trd.Core
open Trd.Runtime.Objectives

let private logits (rng: Random) (v: int) (scale: float) = Array.init v (fun _ -> scale * (rng.NextDouble() * 2.0 - 1.0))

/// A recipe a sparse teacher of K entries can evaluate: top-K' or top-K' + tail (K' ≤ K) with any direction, clip and
/// temperature, or a sampled estimator on the reverse KL.
let private sparseRecipe (rng: Random) (k: int) (temperature: float) =
    let k' = 1 + rng.Next k
    let clip = match rng.Next 3 with 0 -> NoClip | 1 -> PerPosition(0.05 + rng.NextDouble()) | _ -> PerVocabEntry(0.05 + rng.NextDouble())
    match rng.Next 4 with
    | 0 -> Recipe.Create("sampled", Reverse, estimator = (match rng.Next 3 with 0 -> K1 | 1 -> K2 | _ -> K3), temperature = temperature,
                         clip = (match clip with PerVocabEntry _ -> NoClip | c -> c))
    | _ ->
        let direction = match rng.Next 3 with 0 -> Forward | 1 -> Reverse | _ -> Jsd(float (rng.Next 11) / 10.0)
        let support = if rng.Next 2 = 0 then TeacherTopK k' else TeacherTopKWithTail k'
        Recipe.Create("sparse", direction, support = support, clip = clip, temperature = temperature)

let private close (tolerance: float) (a: Evaluation) (b: Evaluation) (what: string) =
    Expect.floatClose { absolute = tolerance; relative = tolerance } a.Loss b.Loss $"{what}: loss"
    Expect.floatClose { absolute = tolerance; relative = tolerance } a.KlPreClip b.KlPreClip $"{what}: D before the clip"
    Expect.floatClose { absolute = tolerance; relative = tolerance } a.ClipFraction b.ClipFraction $"{what}: clip fraction"
    for i in 0 .. a.PerPosition.Length - 1 do
        Expect.floatClose { absolute = tolerance; relative = tolerance } a.PerPosition[i] b.PerPosition[i] $"{what}: D_{i}"

/// N positions of dense teacher and student logits, the teacher's sparse view with K entries, a mask and targets.
let private batch (rng: Random) (v: int) (k: int) (n: int) (teacherScale: float) =
    let teacher = Array.init n (fun _ -> logits rng v teacherScale)
    let student = Array.init n (fun _ -> logits rng v 3.0)
    let targets = Array.init n (fun _ -> rng.Next v)
    let sparse = Array.init n (fun i -> SparseTeacher.ofLogits k teacher[i] targets[i])
    let mask = Array.init n (fun i -> if i = 0 || rng.Next 4 > 0 then 1.0 else 0.0)
    teacher, student, targets, sparse, mask

/// The executor on a batch: (loss, D_t, ∂loss/∂z_θ rows) computed in `compute`.
let private executor (compute: torch.ScalarType) (recipe: Recipe) (sparse: SparseTeacherPosition[]) (student: float[][]) (mask: float[]) (targets: int[]) =
    let n, v = student.Length, student[0].Length
    use s = torch.tensor(Array.concat student, dtype = torch.float64).reshape(int64 n, int64 v).to_type(compute).requires_grad_(true)
    use ids = torch.tensor(sparse |> Array.collect (fun p -> p.Ids |> Array.map int64), dtype = torch.int64).reshape(int64 n, -1L)
    use lp = torch.tensor(sparse |> Array.collect _.LogProbs, dtype = torch.float64).reshape(int64 n, -1L)
    use target = torch.tensor(sparse |> Array.map _.TargetLogProb, dtype = torch.float64)
    use m = torch.tensor(mask, dtype = torch.float32)
    use ys = torch.tensor(targets |> Array.map int64, dtype = torch.int64)
    use r = SparseTeacherObjective.Evaluate(recipe, s, ids, lp, m, target, ys, ObjectiveOptions(ComputeType = compute))
    r.Loss.backward()
    let grad = s.grad.to_type(torch.float64).data<float>().ToArray() |> Array.chunkBySize v
    float (r.Loss.to_type(torch.float64).item<float>()), r.PerPosition.to_type(torch.float64).data<float>().ToArray(), grad, r.KlPreClip

[<Tests>]
let tests =
    testList "SparseTeacher" [
        testCase "when the top-K holds all the mass (K = V) it equals the dense reference, at any temperature" <| fun () ->
            let rng = Random 21
            for trial in 1 .. 300 do
                let v = 2 + rng.Next 12
                let temperature = [| 1.0; 0.5; 2.0; 0.8 + rng.NextDouble() |][rng.Next 4]
                let recipe = sparseRecipe rng v temperature
                let teacher, student, targets, sparse, mask = batch rng v v 5 4.0
                close 1e-9 (SparseTeacher.evaluate recipe sparse student mask targets 0.0)
                    (Objective.evaluate recipe teacher student mask targets 0.0) $"trial {trial}: {recipe}"

        testCase "at T = 1 it equals the dense reference for any stored K ≥ K' (the top-K' and the tail are the teacher's own)" <| fun () ->
            let rng = Random 22
            for trial in 1 .. 300 do
                let v = 8 + rng.Next 40
                let k = 1 + rng.Next v
                let recipe = sparseRecipe rng k 1.0
                let teacher, student, targets, sparse, mask = batch rng v k 5 4.0
                close 1e-9 (SparseTeacher.evaluate recipe sparse student mask targets 0.0)
                    (Objective.evaluate recipe teacher student mask targets 0.0) $"trial {trial}: V = {v}, K = {k}, {recipe}"

        testCase "at T ≠ 1 with mass outside the top-K it is the tail-as-one-token approximation, which vanishes with the tail" <| fun () ->
            let rng = Random 23
            let recipe = Recipe.Create("top-8 + tail at T = 2", Forward, support = TeacherTopKWithTail 8, temperature = 2.0)
            // A spread teacher: the tail is heavy and the approximation shows.
            let teacher, student, targets, sparse, mask = batch rng 64 16 4 1.0
            let dense = Objective.evaluate recipe teacher student mask targets 0.0
            let approx = SparseTeacher.evaluate recipe sparse student mask targets 0.0
            Expect.isGreaterThan (abs (approx.Loss - dense.Loss)) 1e-6 "a heavy tail: the two differ (the test can fail)"
            // A peaked teacher: 16 ids (a different 16 at each position) hold all but ~e^-60 of the mass.
            let teacher =
                Array.init 4 (fun _ ->
                    let favoured = set [ for _ in 1 .. 16 -> rng.Next 64 ]
                    Array.init 64 (fun v -> (if favoured.Contains v then 30.0 else -30.0) + rng.NextDouble()))
            let k = teacher |> Array.map (fun t -> t |> Array.filter (fun x -> x > 0.0) |> Array.length) |> Array.max
            let sparse = Array.init 4 (fun i -> SparseTeacher.ofLogits k teacher[i] targets[i])
            let tailMass = sparse |> Array.map (fun p -> 1.0 - (p.LogProbs |> Array.sumBy exp)) |> Array.max
            Expect.isLessThan tailMass 1e-6 "the tail is negligible"
            close 1e-6 (SparseTeacher.evaluate recipe sparse student mask targets 0.0)
                (Objective.evaluate recipe teacher student mask targets 0.0) "a negligible tail: the two agree"

        testCase "the tempered buckets are a distribution on K + 1 entries, and the tail at T = 1 is 1 − Σ_K p" <| fun () ->
            let rng = Random 24
            for _ in 1 .. 100 do
                let v = 4 + rng.Next 30
                let sparse = SparseTeacher.ofLogits (1 + rng.Next v) (logits rng v 5.0) -1
                for temperature in [ 1.0; 0.7; 1.9 ] do
                    let b, _ = SparseTeacher.buckets temperature v sparse
                    Expect.equal b.Length (sparse.Ids.Length + 1) "K + 1 buckets"
                    Expect.floatClose Accuracy.veryHigh (b |> Array.sumBy exp) 1.0 $"sums to 1 at T = {temperature}"
                let b, _ = SparseTeacher.buckets 1.0 v sparse
                Expect.floatClose Accuracy.high (exp b[b.Length - 1]) (1.0 - (sparse.LogProbs |> Array.sumBy exp)) "the tail"
                Expect.isTrue (sparse.TargetLogProb = Double.NegativeInfinity) "no target: −∞"

        testCase "a recipe that needs the full vocabulary or more than the stored top-K is refused, naming what would work" <| fun () ->
            let p = SparseTeacher.problems Recipes.trd 64
            Expect.equal p.Length 1 "TRD (full vocabulary) is refused"
            Expect.stringContains p[0] "'TRD' needs the teacher's full vocabulary" "names the recipe"
            Expect.stringContains p[0] "top_k ≤ 64" "and what would work"
            Expect.isEmpty (SparseTeacher.problems (Recipes.trd.WithSupport(TeacherTopKWithTail 64)) 64) "TRD on top-64 + tail runs"
            Expect.isNonEmpty (SparseTeacher.problems Recipes.reverseKlTopK 16) "top-32 from a stored top-16 is refused"
            Expect.isEmpty (SparseTeacher.problems (Recipe.Create("k3", Reverse, estimator = K3)) 1) "a sampled estimator reads one token"
            let sparse = SparseTeacher.ofLogits 4 [| 1.0; 2.0; 3.0; 4.0; 5.0 |] 0
            Expect.throwsT<ArgumentException> (fun () -> SparseTeacher.position Recipes.trd sparse [| 0.0; 0.0; 0.0; 0.0; 0.0 |] 0 |> ignore) "position refuses it"
            let outside = { sparse with Ids = [| 0; 1; 2; 9 |] }
            Expect.throwsT<ArgumentException> (fun () ->
                SparseTeacher.position (Recipes.trd.WithSupport(TeacherTopK 4)) outside [| 0.0; 0.0; 0.0; 0.0; 0.0 |] 0 |> ignore) "an id outside V"
    
        testCase "the executor equals the float64 reference on random recipes, in float64 (1e-9) and float32 (1e-4)" <| fun () ->
            let rng = Random 25
            for trial in 1 .. 60 do
                let v = 8 + rng.Next 40
                let k = 1 + rng.Next v
                let temperature = [| 1.0; 0.7; 1.5 |].[rng.Next 3]
                let recipe = sparseRecipe rng k temperature
                let _, student, targets, sparse, mask = batch rng v k 6 4.0
                let reference = SparseTeacher.evaluate recipe sparse student mask targets 0.0
                for compute, tolerance in [ torch.float64, 1e-9; torch.float32, 1e-4 ] do
                    let loss, perPosition, _, klPre = executor compute recipe sparse student mask targets
                    let what = $"trial {trial} ({compute}): V = {v}, K = {k}, {recipe}"
                    Expect.floatClose { absolute = tolerance; relative = tolerance } loss reference.Loss $"{what}: loss"
                    Expect.floatClose { absolute = tolerance; relative = tolerance } klPre reference.KlPreClip $"{what}: D before the clip"
                    // PerPosition is returned in float32 whatever the compute dtype.
                    let stored = max tolerance 1e-6
                    for i in 0 .. perPosition.Length - 1 do
                        Expect.floatClose { absolute = stored; relative = stored } perPosition[i] reference.PerPosition[i] $"{what}: D_{i}"

        testCase "the executor's autograd gradient equals float64 finite differences of the reference" <| fun () ->
            let rng = Random 26
            for trial in 1 .. 20 do
                let v = 6 + rng.Next 10
                let k = 1 + rng.Next v
                let temperature = if rng.Next 2 = 0 then 1.0 else 0.8
                let recipe = (sparseRecipe rng k temperature).WithClip NoClip
                let _, student, targets, sparse, _ = batch rng v k 1 3.0
                let _, _, grad, _ = executor torch.float64 recipe sparse student [| 1.0 |] targets
                let h = 1e-6
                for j in 0 .. v - 1 do
                    let at (delta: float) =
                        let z = Array.copy student[0]
                        z[j] <- z[j] + delta
                        (SparseTeacher.position recipe sparse.[0] z targets.[0]).Contribution
                    let numeric = (at h - at -h) / (2.0 * h)
                    Expect.floatClose { absolute = 1e-6; relative = 1e-5 } grad.[0].[j] numeric $"trial {trial}: ∂/∂z_{j}, {recipe}"

        testCase "the executor refuses a full-vocabulary recipe and ids outside the vocabulary, naming them" <| fun () ->
            let sparse = [| SparseTeacher.ofLogits 2 [| 1.0; 2.0; 3.0 |] 0 |]
            let fails (recipe: Recipe) (sparse: SparseTeacherPosition[]) =
                try
                    executor torch.float64 recipe sparse [| [| 0.0; 0.1; 0.2 |] |] [| 1.0 |] [| 0 |] |> ignore
                    failtest "accepted"
                with :? ArgumentException as e -> e.Message
            Expect.stringContains (fails Recipes.trd sparse) "needs the teacher's full vocabulary" "full vocabulary"
            Expect.stringContains (fails (Recipes.trd.WithSupport(TeacherTopK 2)) [| { sparse[0] with Ids = [| 0; 7 |] } |]) "outside the student's vocabulary" "an id outside V"
    ]
