/// The TorchSharp executor against the float64 reference (Trd.Core.Objective), and its three paths
/// (chunked from logits, fused from hidden states, naive autograd) against each other.
module Trd.Tests.ExecutorTests

open System
open Expecto
open TorchSharp
open Trd.Core
open Trd.Runtime.Objectives

type private T = torch.Tensor

let private rows (n: int) (v: int) (make: int -> float[]) = Array.init n (fun _ -> make v)

let private gaussian (rng: Random) (scale: float) (v: int) =
    Array.init v (fun _ ->
        let u1, u2 = 1.0 - rng.NextDouble(), rng.NextDouble()
        scale * sqrt (-2.0 * log u1) * cos (2.0 * Math.PI * u2))

/// Extreme logits: ±1e4 scale and, at the same indices on both sides, −∞ entries (masked vocabulary).
let private extremePair (rng: Random) (n: int) (v: int) =
    let masked = Array.init v (fun i -> i > 0 && rng.NextDouble() < 0.2)
    let make () =
        gaussian rng 1e4 v |> Array.mapi (fun i x -> if masked[i] then Double.NegativeInfinity else x)
    rows n v (fun _ -> make ()), rows n v (fun _ -> make ())

let private toTensor (dtype: torch.ScalarType) (xs: float[][]) : T =
    let n, v = xs.Length, xs[0].Length
    torch.tensor(Array.concat xs, dtype = torch.float64).reshape(int64 n, int64 v).to_type(dtype)

let private toRows (x: T) : float[][] =
    let v = int x.shape[1]
    x.to_type(torch.float64).cpu().data<float>().ToArray() |> Array.chunkBySize v

let private relErr (actual: float) (expected: float) =
    if actual = expected then 0.0 else abs (actual - expected) / max (abs expected) 1e-30

let private maxRelErr (actual: float[]) (expected: float[]) =
    let scale = expected |> Array.map abs |> Array.max |> max 1e-30
    Array.map2 (fun a e -> abs (a - e) / scale) actual expected |> Array.max

let private mask (n: int) = Array.init n (fun i -> if i % 4 = 3 then 0.0 else 1.0)
let private maskT (m: float[]) = torch.tensor(m, dtype = torch.float32)
/// Trajectory tokens: tokens the student could have sampled (finite logits in its first row).
let private targetsFor (rng: Random) (student: float[][]) =
    let live = student[0] |> Array.indexed |> Array.filter (fun (_, x) -> not (Double.IsNegativeInfinity x)) |> Array.map fst
    Array.init student.Length (fun _ -> live[rng.Next live.Length])
let private targets (rng: Random) (n: int) (v: int) = Array.init n (fun _ -> rng.Next v)
/// No targets (an empty array) passes null, as a caller without trajectory tokens would.
let private targetsT (ys: int[]) : T = if ys.Length = 0 then null else torch.tensor(ys |> Array.map int64, dtype = torch.int64)

/// Recipes covering every primitive: the paper's five and the variants the algebra allows.
let private recipes =
    [ yield! Recipes.all Opd
      (Recipes.forwardKlClip Opsd).WithName("Forward KL w/ Clip c = 0.06")
      Recipe.Create("JSD 0.3", Jsd 0.3)
      Recipe.Create("JSD 0", Jsd 0.0)
      Recipe.Create("JSD 1", Jsd 1.0)
      Recipe.Create("forward top-8 + tail", Forward, support = TeacherTopKWithTail 8)
      Recipe.Create("reverse top-8 + tail", Reverse, support = TeacherTopKWithTail 8)
      Recipe.Create("forward top-8", Forward, support = TeacherTopK 8)
      Recipe.Create("forward per-entry clip", Forward, clip = PerVocabEntry 0.01)
      Recipe.Create("reverse clip", Reverse, clip = PerPosition 0.5)
      Recipe.Create("forward T=2", Forward, temperature = 2.0)
      Recipe.Create("reverse top-8 T=0.7", Reverse, support = TeacherTopK 8, temperature = 0.7)
      Recipe.Create("k1", Reverse, estimator = K1)
      Recipe.Create("k2", Reverse, estimator = K2)
      Recipe.Create("k3", Reverse, estimator = K3, clip = PerPosition 0.2) ]

let private reference (recipe: Recipe) teacher student (m: float[]) (ys: int[]) =
    Objective.evaluate recipe teacher student m ys 0.0

let private run (recipe: Recipe) (teacher: float[][]) (student: float[][]) (m: float[]) (ys: int[]) (dtype: torch.ScalarType) (chunk: int) =
    use s = toTensor dtype student
    use t = toTensor dtype teacher
    use mt = maskT m
    use yt = targetsT ys
    ObjectiveExecutor.FromLogits(recipe, s, t, mt, yt, ObjectiveOptions(ChunkSize = chunk))

let private sameAsReference (dtype: torch.ScalarType) (tolerance: float) (recipe: Recipe) (teacher: float[][]) (student: float[][]) (seed: int) =
    let rng = Random seed
    let n = teacher.Length
    let m, ys = mask n, targetsFor rng student
    // The reference sees exactly the values the executor sees (bf16 inputs are rounded first).
    let round (xs: float[][]) = use x = toTensor dtype xs in toRows x
    let expected = reference recipe (round teacher) (round student) m ys
    use actual = run recipe teacher student m ys dtype 3
    let loss = actual.Loss.item<float32>() |> float
    Expect.isLessThanOrEqual (relErr loss expected.Loss) tolerance $"{recipe.Name}: loss {loss} vs reference {expected.Loss}"
    Expect.isLessThanOrEqual (relErr actual.KlPreClip expected.KlPreClip) tolerance $"{recipe.Name}: pre-clip KL"
    Expect.isLessThanOrEqual (relErr actual.KlPostClip expected.KlPostClip) tolerance $"{recipe.Name}: post-clip KL"
    Expect.floatClose Accuracy.veryHigh actual.ClipFraction expected.ClipFraction $"{recipe.Name}: clip fraction"
    Expect.equal actual.Tokens expected.Tokens "token count"

let private referenceTests =
    testList "executor = float64 reference" [
        for recipe in recipes do
            for v in [ 2; 17; 300 ] do
                testCase $"{recipe.Name}, V = {v}, fp32, gaussian logits" <| fun () ->
                    let rng = Random(v)
                    let v' = match recipe.Support with TeacherTopK k | TeacherTopKWithTail k -> max k v | FullVocabulary -> v
                    sameAsReference torch.float32 1e-6 recipe (rows 9 v' (gaussian rng 3.0)) (rows 9 v' (gaussian rng 3.0)) v
            testCase $"{recipe.Name}, V = 64, fp32, extreme logits (±1e4, −inf entries)" <| fun () ->
                let teacher, student = extremePair (Random 7) 9 64
                sameAsReference torch.float32 1e-6 recipe teacher student 7
            testCase $"{recipe.Name}, V = 300, bf16 inputs" <| fun () ->
                let rng = Random 11
                sameAsReference torch.bfloat16 1e-2 recipe (rows 9 300 (gaussian rng 3.0)) (rows 9 300 (gaussian rng 3.0)) 11
        testCase "every paper recipe at Qwen3's V = 151,936, fp32" <| fun () ->
            let rng = Random 3
            let teacher, student = rows 2 151936 (gaussian rng 4.0), rows 2 151936 (gaussian rng 4.0)
            for recipe in Recipes.all Opsd do
                sameAsReference torch.float32 1e-6 recipe teacher student 3
        testCase "forward and reverse KL at V = 151,936 with extreme logits, fp32" <| fun () ->
            let teacher, student = extremePair (Random 5) 2 151936
            for recipe in [ Recipes.trd; Recipes.reverseKl; Recipes.reverseKlTopK ] do
                sameAsReference torch.float32 1e-6 recipe teacher student 5
    ]

/// Loss and ∂loss/∂(student logits) through the chunked path.
let private lossAndGrad (recipe: Recipe) (teacher: float[][]) (student: float[][]) (m: float[]) (ys: int[]) (compute: torch.ScalarType) (chunk: int) =
    use s = (toTensor compute student).requires_grad_()
    use t = toTensor compute teacher
    use mt = maskT m
    use yt = targetsT ys
    use r = ObjectiveExecutor.FromLogits(recipe, s, t, mt, yt, ObjectiveOptions(ChunkSize = chunk, ComputeType = compute))
    r.Loss.backward()
    float (r.Loss.to_type(torch.float64).item<float>()), toRows s.grad

let private naiveLossAndGrad (recipe: Recipe) (teacher: float[][]) (student: float[][]) (m: float[]) (ys: int[]) (compute: torch.ScalarType) =
    use s = (toTensor compute student).requires_grad_()
    use t = toTensor compute teacher
    use mt = maskT m
    use yt = targetsT ys
    use r = ObjectiveExecutor.Naive(recipe, s, t, mt, yt, ObjectiveOptions(ComputeType = compute))
    r.Loss.backward()
    float (r.Loss.to_type(torch.float64).item<float>()), toRows s.grad

let private gradientTests =
    testList "gradients" [
        testCase "forward KL: autograd gradient = (softmax(z_θ/T) − p_T)/T · m_t / Σm" <| fun () ->
            let rng = Random 21
            let teacher, student = rows 6 50 (gaussian rng 2.0), rows 6 50 (gaussian rng 2.0)
            let m = mask 6
            for temperature in [ 1.0; 2.0 ] do
                let recipe = Recipe.Create("forward", Forward, temperature = temperature)
                let _, grad = lossAndGrad recipe teacher student m [||] torch.float64 4
                let tokens = Array.sum m
                for i in 0 .. 5 do
                    let expected = Divergence.forwardKlGradient temperature teacher[i] student[i] |> Array.map (fun g -> g * m[i] / tokens)
                    Expect.isLessThanOrEqual (maxRelErr grad[i] expected) 1e-10 $"row {i}, T = {temperature}"
        testCase "reverse KL: autograd gradient = q ⊙ (log q − log p − D) / T · m_t / Σm" <| fun () ->
            let rng = Random 22
            let teacher, student = rows 5 40 (gaussian rng 2.0), rows 5 40 (gaussian rng 2.0)
            let m = Array.create 5 1.0
            let _, grad = lossAndGrad Recipes.reverseKl teacher student m [||] torch.float64 2
            for i in 0 .. 4 do
                let expected = Divergence.reverseKlGradient 1.0 teacher[i] student[i] |> Array.map (fun g -> g / 5.0)
                Expect.isLessThanOrEqual (maxRelErr grad[i] expected) 1e-10 $"row {i}"
        for recipe in recipes do
            testCase $"{recipe.Name}: autograd gradient = float64 finite differences" <| fun () ->
                let rng = Random 23
                let teacher, student = rows 3 36 (gaussian rng 1.0), rows 3 36 (gaussian rng 1.0)
                let ys = targets rng 3 36
                let m = Array.create 3 1.0
                let _, grad = lossAndGrad recipe teacher student m ys torch.float64 2
                for i in 0 .. 2 do
                    let expected = Objective.numericalGradient recipe teacher[i] student[i] ys[i] 1e-6 |> Array.map (fun g -> g / 3.0)
                    let scale = expected |> Array.map abs |> Array.max
                    if scale > 1e-9 then
                        Expect.isLessThanOrEqual (maxRelErr grad[i] expected) 1e-5 $"row {i}"
                    else
                        Expect.isLessThanOrEqual (grad[i] |> Array.map abs |> Array.max) 1e-9 $"row {i}: zero gradient"
        testCase "a position above the clip constant gets exactly zero gradient" <| fun () ->
            let recipe = Recipe.Create("clip", Forward, clip = PerPosition 0.05)
            let rng = Random 24
            let teacher = rows 4 10 (gaussian rng 3.0)
            // rows 0 and 2: student = teacher + small noise (D < c); rows 1 and 3: unrelated (D > c)
            let student = teacher |> Array.mapi (fun i t -> if i % 2 = 0 then t |> Array.map (fun x -> x + 0.01 * rng.NextDouble()) else gaussian rng 3.0 10)
            let m = Array.create 4 1.0
            let ref = reference recipe teacher student m [||]
            let _, grad = lossAndGrad recipe teacher student m [||] torch.float32 2
            for i in 0 .. 3 do
                let clipped = ref.PerPosition[i] > 0.05
                Expect.equal clipped (i % 2 = 1) $"row {i}: clipped = {clipped}"
                let g = grad[i] |> Array.map abs |> Array.max
                if clipped then Expect.equal g 0.0 $"row {i}: zero gradient above c"
                else Expect.isGreaterThan g 0.0 $"row {i}: gradient below c"
    ]

let private invarianceTests =
    testList "paths agree" [
        for recipe in recipes do
            testCase $"{recipe.Name}: chunk sizes 1, 5 and 512 give the same loss and gradient" <| fun () ->
                let rng = Random 31
                let teacher, student = rows 11 40 (gaussian rng 2.0), rows 11 40 (gaussian rng 2.0)
                let m, ys = mask 11, targets rng 11 40
                let l1, g1 = lossAndGrad recipe teacher student m ys torch.float32 1
                for chunk in [ 5; 512 ] do
                    let l, g = lossAndGrad recipe teacher student m ys torch.float32 chunk
                    Expect.isLessThanOrEqual (relErr l l1) 1e-6 $"loss, chunk {chunk}"
                    Expect.isLessThanOrEqual (maxRelErr (Array.concat g) (Array.concat g1)) 1e-5 $"gradient, chunk {chunk}"
            testCase $"{recipe.Name}: chunked = naive autograd (loss and gradient)" <| fun () ->
                let rng = Random 32
                let teacher, student = rows 7 36 (gaussian rng 2.0), rows 7 36 (gaussian rng 2.0)
                let m, ys = mask 7, targets rng 7 36
                let l, g = lossAndGrad recipe teacher student m ys torch.float64 3
                let ln, gn = naiveLossAndGrad recipe teacher student m ys torch.float64
                Expect.isLessThanOrEqual (relErr l ln) 1e-12 "loss"
                Expect.isLessThanOrEqual (maxRelErr (Array.concat g) (Array.concat gn)) 1e-10 "gradient"
        for dtype in [ torch.float32; torch.bfloat16 ] do
            testCase $"fused from hidden states = unfused from logits ({dtype}): loss, ∂/∂h and ∂/∂W" <| fun () ->
                torch.manual_seed 41L |> ignore
                let n, h, v = 10L, 16L, 50L
                use hs = torch.randn(n, h).to_type(dtype)
                use ws = (torch.randn(v, h) * 0.3).to_type(dtype)
                use ht = torch.randn(n, 24L).to_type(dtype)
                use wt = (torch.randn(v, 24L) * 0.3).to_type(dtype)
                use m = maskT (mask (int n))
                let opts = ObjectiveOptions(ChunkSize = 3)
                for recipe in [ Recipes.trd; Recipes.reverseKlTopK; Recipes.forwardKlClip Opd ] do
                    use hs1 = hs.detach().requires_grad_()
                    use ws1 = ws.detach().requires_grad_()
                    use fused = ObjectiveExecutor.Fused(recipe, hs1, ws1, ht, wt, m, null, opts)
                    fused.Loss.backward()
                    use hs2 = hs.detach().requires_grad_()
                    use ws2 = ws.detach().requires_grad_()
                    use zs = hs2.matmul(ws2.t())
                    use zt = ht.matmul(wt.t())
                    use unfused = ObjectiveExecutor.FromLogits(recipe, zs, zt, m, null, opts)
                    unfused.Loss.backward()
                    let tol = if dtype = torch.float32 then 1e-5 else 2e-2
                    let flat (x: T) = x.to_type(torch.float64).cpu().data<float>().ToArray()
                    Expect.isLessThanOrEqual (relErr (fused.Loss.item<float32>() |> float) (unfused.Loss.item<float32>() |> float)) tol $"{recipe.Name}: loss"
                    Expect.isLessThanOrEqual (maxRelErr (flat hs1.grad) (flat hs2.grad)) tol $"{recipe.Name}: ∂/∂h"
                    Expect.isLessThanOrEqual (maxRelErr (flat ws1.grad) (flat ws2.grad)) tol $"{recipe.Name}: ∂/∂W"
                    Expect.equal hs1.grad.dtype dtype "the hidden-state gradient keeps the input dtype"
        for recipe in [ Recipes.trd; Recipes.forwardKlClip Opd; Recipe.Create("forward T=2, JSD β=0", Jsd 0.0, temperature = 2.0) ] do
            testCase $"{recipe.Name}: the closed-form gradient equals autograd's (from logits and fused, with −inf entries)" <| fun () ->
                let teacher, student = extremePair (Random 71) 6 40
                // moderate logits with the same masked entries, so that gradients are not all zero
                let soften (rows: float[][]) = rows |> Array.map (Array.map (fun x -> if Double.IsNegativeInfinity x then x else x * 1e-4))
                let teacher, student = soften teacher, soften student
                let m = mask 6
                let closed = ObjectiveOptions(ChunkSize = 4, ComputeType = torch.float64)
                let viaAutograd = ObjectiveOptions(ChunkSize = 4, ComputeType = torch.float64, ClosedFormGradient = false)
                let grad (options: ObjectiveOptions) =
                    use s = (toTensor torch.float64 student).requires_grad_()
                    use t = toTensor torch.float64 teacher
                    use r = ObjectiveExecutor.FromLogits(recipe, s, t, maskT m, null, options)
                    r.Loss.backward()
                    float (r.Loss.item<float>()), toRows s.grad
                let l1, g1 = grad closed
                let l2, g2 = grad viaAutograd
                Expect.isLessThanOrEqual (relErr l1 l2) 1e-12 "loss"
                Expect.isLessThanOrEqual (maxRelErr (Array.concat g1) (Array.concat g2)) 1e-10 "∂/∂logits"
                torch.manual_seed 72L |> ignore
                let fused (options: ObjectiveOptions) =
                    use h = torch.randn(6L, 8L, dtype = torch.float64).requires_grad_()
                    use w = torch.randn(40L, 8L, dtype = torch.float64).requires_grad_()
                    use ht = torch.randn(6L, 5L, dtype = torch.float64)
                    use wt = torch.randn(40L, 5L, dtype = torch.float64)
                    use r = ObjectiveExecutor.Fused(recipe, h, w, ht, wt, maskT m, null, options)
                    r.Loss.backward()
                    h.grad.data<float>().ToArray(), w.grad.data<float>().ToArray()
                torch.manual_seed 73L |> ignore
                let dh1, dw1 = fused closed
                torch.manual_seed 73L |> ignore
                let dh2, dw2 = fused viaAutograd
                Expect.isLessThanOrEqual (maxRelErr dh1 dh2) 1e-10 "fused ∂/∂h"
                Expect.isLessThanOrEqual (maxRelErr dw1 dw2) 1e-10 "fused ∂/∂W"
        testCase "the normaliser divides the masked sum (gradient accumulation across micro-batches)" <| fun () ->
            let rng = Random 51
            let teacher, student = rows 4 9 (gaussian rng 1.0), rows 4 9 (gaussian rng 1.0)
            use s = toTensor torch.float32 student
            use t = toTensor torch.float32 teacher
            use m = maskT (mask 4)
            use own = ObjectiveExecutor.FromLogits(Recipes.trd, s, t, m)
            use global' = ObjectiveExecutor.FromLogits(Recipes.trd, s, t, m, null, ObjectiveOptions(Normaliser = 12.0))
            let ratio = float (global'.Loss.item<float32>()) / float (own.Loss.item<float32>())
            Expect.floatClose Accuracy.high ratio (3.0 / 12.0) "Σm = 3 here, so the loss scales by 3/12"
        testCase "without requires_grad nothing is differentiated and the loss is the same" <| fun () ->
            let rng = Random 52
            let teacher, student = rows 4 9 (gaussian rng 1.0), rows 4 9 (gaussian rng 1.0)
            use s = toTensor torch.float32 student
            use t = toTensor torch.float32 teacher
            use m = maskT (mask 4)
            use r = ObjectiveExecutor.FromLogits(Recipes.trd, s, t, m)
            Expect.isFalse r.Loss.requires_grad "no graph"
            let expected = reference Recipes.trd teacher student (mask 4) [||]
            Expect.isLessThanOrEqual (relErr (float (r.Loss.item<float32>())) expected.Loss) 1e-6 "loss"
    ]

let private diagnosticTests =
    testList "diagnostics in the same pass" [
        testCase "token log-probabilities at T = 1 and the teacher's epistemic mass match Trd.Core" <| fun () ->
            let rng = Random 61
            let teacher, student = rows 5 30 (gaussian rng 2.0), rows 5 30 (gaussian rng 2.0)
            let ys = targets rng 5 30
            let epistemic = [| 3L; 7L; 7L; 29L |]
            use s = toTensor torch.float32 student
            use t = toTensor torch.float32 teacher
            use m = maskT (mask 5)
            use y = targetsT ys
            let recipe = Recipe.Create("forward T=2", Forward, temperature = 2.0)
            use r = ObjectiveExecutor.FromLogits(recipe, s, t, m, y, ObjectiveOptions(TokenLogProbs = true, EpistemicTokenIds = epistemic, ChunkSize = 2))
            let get (x: T) = x.to_type(torch.float64).data<float>().ToArray()
            let sl, tl, em = get r.StudentTokenLogProbs, get r.TeacherTokenLogProbs, get r.EpistemicMass
            for i in 0 .. 4 do
                let expectedS, expectedT = Numerics.logSoftmax student[i], Numerics.logSoftmax teacher[i]
                Expect.floatClose Accuracy.medium sl[i] expectedS[ys[i]] $"student log π(y_{i})"
                Expect.floatClose Accuracy.medium tl[i] expectedT[ys[i]] $"teacher log π(y_{i})"
                Expect.floatClose Accuracy.medium em[i] (Metrics.epistemicMass teacher[i] [| 3; 7; 29 |]) $"epistemic mass at {i}"
        testCase "the teacher mass outside its top-K matches Trd.Core's float64 reference" <| fun () ->
            let rng = Random 63
            let teacher, student = rows 6 40 (gaussian rng 3.0), rows 6 40 (gaussian rng 1.0)
            use s = toTensor torch.float32 student
            use t = toTensor torch.float32 teacher
            use m = maskT (mask 6)
            for k in [ 1; 8; 39; 40; 64 ] do
                use r = ObjectiveExecutor.FromLogits(Recipes.reverseKl, s, t, m, null, ObjectiveOptions(TeacherTopKMassK = k, ChunkSize = 4))
                let outside = r.TeacherMassOutsideTopK.to_type(torch.float64).data<float>().ToArray()
                for i in 0 .. 5 do
                    Expect.isLessThanOrEqual (abs (outside[i] - Metrics.massOutsideTopK teacher[i] (min k 40))) 1e-6 $"K = {k}, position {i}"
                if k >= 40 then Expect.isLessThanOrEqual (outside |> Array.map abs |> Array.max) 1e-6 "K ≥ V drops nothing"
            use none = ObjectiveExecutor.FromLogits(Recipes.reverseKl, s, t, m, null, ObjectiveOptions(ChunkSize = 4))
            Expect.isNull none.TeacherMassOutsideTopK "not asked, not computed"
        testCase "per-position D and the clip fraction match the reference" <| fun () ->
            let rng = Random 62
            let teacher, student = rows 8 20 (gaussian rng 1.0), rows 8 20 (gaussian rng 1.0)
            let recipe = Recipes.forwardKlClip Opd
            let expected = reference recipe teacher student (mask 8) [||]
            use r = run recipe teacher student (mask 8) [||] torch.float32 3
            let d = r.PerPosition.to_type(torch.float64).data<float>().ToArray()
            Expect.isLessThanOrEqual (maxRelErr d expected.PerPosition) 1e-6 "D_t"
            Expect.isGreaterThan expected.ClipFraction 0.0 "some positions clip at c = 0.1"
            Expect.floatClose Accuracy.veryHigh r.ClipFraction expected.ClipFraction "clip fraction"
    ]

let private throwsWith (needle: string) (f: unit -> unit) =
    let e = Expect.throwsC f id
    Expect.stringContains e.Message needle $"the error names the problem ({needle})"

let private badInputTests =
    let logits (n: int64) (v: int64) = torch.randn(n, v)
    let m (n: int) = maskT (Array.create n 1.0)
    testList "bad input raises a clear error" [
        testCase "vocabulary sizes that differ (151,936 against 152,064)" <| fun () ->
            throwsWith "151936" (fun () -> ObjectiveExecutor.FromLogits(Recipes.trd, logits 1L 151936L, logits 1L 152064L, m 1) |> ignore)
            throwsWith "152064" (fun () -> ObjectiveExecutor.FromLogits(Recipes.trd, logits 1L 151936L, logits 1L 152064L, m 1) |> ignore)
        testCase "positions that differ" <| fun () ->
            throwsWith "positions" (fun () -> ObjectiveExecutor.FromLogits(Recipes.trd, logits 3L 8L, logits 4L 8L, m 3) |> ignore)
        testCase "a mask of the wrong length" <| fun () ->
            throwsWith "mask" (fun () -> ObjectiveExecutor.FromLogits(Recipes.trd, logits 3L 8L, logits 3L 8L, m 2) |> ignore)
        testCase "fused: a hidden size that does not match the output weight (checked before any matmul)" <| fun () ->
            throwsWith "hidden size" (fun () -> ObjectiveExecutor.Fused(Recipes.trd, logits 3L 8L, logits 20L 9L, logits 3L 8L, logits 20L 8L, m 3) |> ignore)
        testCase "fused: teacher and student vocabularies that differ" <| fun () ->
            throwsWith "vocabulary sizes differ" (fun () -> ObjectiveExecutor.Fused(Recipes.trd, logits 3L 8L, logits 20L 8L, logits 3L 8L, logits 21L 8L, m 3) |> ignore)
        testCase "1-D logits" <| fun () ->
            throwsWith "2-D" (fun () -> ObjectiveExecutor.FromLogits(Recipes.trd, torch.randn(8L), logits 1L 8L, m 1) |> ignore)
        testCase "NaN logits, naming the position" <| fun () ->
            let s = logits 4L 8L
            s[2L, 5L] <- torch.tensor(Double.NaN, dtype = torch.float32)
            throwsWith "NaN at position 2" (fun () -> ObjectiveExecutor.FromLogits(Recipes.trd, s, logits 4L 8L, m 4) |> ignore)
        testCase "+inf logits" <| fun () ->
            let t = logits 4L 8L
            t[1L, 0L] <- torch.tensor(Double.PositiveInfinity, dtype = torch.float32)
            throwsWith "+inf at position 1" (fun () -> ObjectiveExecutor.FromLogits(Recipes.trd, logits 4L 8L, t, m 4) |> ignore)
        testCase "a row that is −inf everywhere" <| fun () ->
            let s = logits 4L 8L
            s[3L] <- torch.full(8L, Double.NegativeInfinity)
            throwsWith "-inf over the whole vocabulary at position 3" (fun () -> ObjectiveExecutor.FromLogits(Recipes.trd, s, logits 4L 8L, m 4) |> ignore)
        testCase "an empty mask" <| fun () ->
            throwsWith "empty mask" (fun () -> ObjectiveExecutor.FromLogits(Recipes.trd, logits 3L 8L, logits 3L 8L, maskT [| 0.0; 0.0; 0.0 |]) |> ignore)
        testCase "K > V" <| fun () ->
            throwsWith "exceeds the vocabulary size" (fun () -> ObjectiveExecutor.FromLogits(Recipes.reverseKlTopK, logits 3L 8L, logits 3L 8L, m 3) |> ignore)
        testCase "β outside [0, 1]" <| fun () ->
            throwsWith "β must lie in [0, 1]" (fun () -> ObjectiveExecutor.FromLogits(Recipe.Create("bad", Jsd 1.5), logits 3L 8L, logits 3L 8L, m 3) |> ignore)
        testCase "c ≤ 0" <| fun () ->
            throwsWith "clip constant" (fun () -> ObjectiveExecutor.FromLogits(Recipe.Create("bad", Forward, clip = PerPosition 0.0), logits 3L 8L, logits 3L 8L, m 3) |> ignore)
        testCase "a sampled estimator without the trajectory tokens" <| fun () ->
            throwsWith "targets" (fun () -> ObjectiveExecutor.FromLogits(Recipe.Create("k3", Reverse, estimator = K3), logits 3L 8L, logits 3L 8L, m 3) |> ignore)
        testCase "targets outside the vocabulary" <| fun () ->
            throwsWith "outside the vocabulary" (fun () -> ObjectiveExecutor.FromLogits(Recipe.Create("k3", Reverse, estimator = K3), logits 3L 8L, logits 3L 8L, m 3, targetsT [| 0; 8; 1 |]) |> ignore)
        testCase "integer logits" <| fun () ->
            throwsWith "floating-point" (fun () -> ObjectiveExecutor.FromLogits(Recipes.trd, torch.zeros(3L, 8L, dtype = torch.int64), logits 3L 8L, m 3) |> ignore)
    ]

[<Tests>]
let tests =
    testSequenced <| testList "Executor" [ referenceTests; gradientTests; invarianceTests; diagnosticTests; badInputTests ]
