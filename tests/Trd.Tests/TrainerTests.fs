/// Stage 3's optimiser and loop: AdamW against torch.optim.AdamW, clipping, accumulation normalised by the step's
/// global token count, checkpoints, and a stopped-then-resumed run ending bit-identical to an uninterrupted one.
module Trd.Tests.TrainerTests

open System
open System.IO
open Expecto
open TorchSharp
open Trd.Core
open Trd.Runtime.Models
open Trd.Runtime.Pipeline
open Trd.Runtime.Training

let private tempDir () =
    let d = Path.Combine(Path.GetTempPath(), "trd-trainer-" + Guid.NewGuid().ToString("N"))
    Directory.CreateDirectory d |> ignore
    d

let private parameters (seed: int64) =
    let g = new torch.Generator(uint64 seed)
    [| "w", torch.nn.Parameter(torch.randn([| 5L; 3L |], generator = g))
       "b", torch.nn.Parameter(torch.randn([| 4L |], generator = g)) |]

let private named (ps: (string * TorchSharp.Modules.Parameter)[]) = ps |> Array.map (fun (n, p) -> struct (n, p))


let private setGrads (ps: (string * TorchSharp.Modules.Parameter)[]) (seed: int64) =
    let g = new torch.Generator(uint64 seed)
    for _, p in ps do p.grad <- torch.randn(p.shape, generator = g)

let private examples (count: int) (seed: int) =
    let r = Random(seed)
    [| for i in 0 .. count - 1 ->
         let ctx = Array.init (3 + r.Next 4) (fun _ -> r.Next 90)
         TrainExample($"p{i}", ctx, Array.append [| 1; 2 |] ctx, Array.init (2 + r.Next 6) (fun _ -> r.Next 90), i % 2 = 0, "y_o") |]

let private configFor (epochs: int) (grad: int) (micro: int) (lora: LoraSpec) =
    TrainConfig(Lora = lora, LearningRate = 0.01, WarmupRatio = 0.25, GradAccum = grad, MicroBatch = micro, Epochs = epochs,
                MaxLength = 64, SaveEvery = 1, ChunkSize = 8)

let private adapterBytes (model: Qwen3ForCausalLM) =
    model.named_parameters()
    |> Seq.filter (fun struct (_, p) -> p.requires_grad)
    |> Seq.map (fun struct (n, p) -> n, p.detach().cpu().data<float32>().ToArray())
    |> Seq.toArray

/// One step of two identical students: against a teacher model, and against that teacher's top-K stored once.
let private denseAndStored (recipe: Recipe) (k: int) =
    let teacher = ModelTests.tinyModel false torch.float32 3L
    let studentA = ModelTests.tinyModel false torch.float32 5L
    let studentB = ModelTests.tinyModel false torch.float32 5L
    let xs = examples 6 7
    let store = Trd.Runtime.Data.TeacherScoreStore.Open(tempDir (), k)
    let pairs = xs |> Array.map (fun e -> struct (e.Id, Trd.Runtime.Scoring.ScoringPair(e.TeacherContext, e.Trajectory)))
    for scores in Trd.Runtime.Scoring.TeacherScoring.TopK(teacher, pairs, k, chunkSize = 5) do store.Append scores
    let parametersOf (m: Qwen3ForCausalLM) = m.named_parameters() |> Seq.map (fun struct (n, p) -> struct (n, p)) |> Seq.toArray
    use optA = new AdamW(parametersOf studentA, AdamWOptions())
    use optB = new AdamW(parametersOf studentB, AdamWOptions())
    let a = Distiller(studentA, teacher, recipe, 8, [| 3L; 5L |]).Step(1L, xs, 4, optA, 0.01, 1.0, fun i -> int64 i)
    let b = Distiller(studentB, store, recipe, 8, [| 3L; 5L |]).Step(1L, xs, 4, optB, 0.01, 1.0, fun i -> int64 i)
    a, b, adapterBytes studentA, adapterBytes studentB

[<Tests>]
let storedTeacherTests =
    testList "Trainer from stored teacher scores" [
        test "a step against the teacher's stored top-K equals the step against the teacher model (top-8 + tail and top-8, T = 1)" {
            for recipe in [ Recipes.forwardKl.WithSupport(TeacherTopKWithTail 8); Recipes.reverseKlTopK.WithSupport(TeacherTopK 8) ] do
                let a, b, wa, wb = denseAndStored recipe 16
                let close (x: float) (y: float) (what: string) = Expect.floatClose { absolute = 1e-5; relative = 1e-5 } y x $"{recipe.Name}: {what}"
                close a.Loss b.Loss "loss"
                close a.KlPreClip b.KlPreClip "D"
                close a.KlCorrect b.KlCorrect "D^correct"
                close a.KlIncorrect b.KlIncorrect "D^incorrect"
                close a.PplStudent b.PplStudent "PPL_S"
                close a.PplTeacher b.PplTeacher "PPL_T (the stored token log-probabilities)"
                close a.GradNorm b.GradNorm "gradient norm"
                // AdamW's first step moves a weight by ≈ lr · g / (|g| + ε): a gradient near ε (an id barely inside or
                // outside the support) differs in float32 between the two paths and its update by up to several % of lr
                // (measured up to 5.0% of lr after RoPE's frequencies moved to transformers' float32 computation; the bound
                // is 10% of lr, still far below the lr-sized move a wrong support or a wrong target would make).
                for (name, x), (_, y) in Array.zip wa wb do
                    for i in 0 .. x.Length - 1 do
                        Expect.floatClose { absolute = 1e-3; relative = 0.0 } (float y[i]) (float x[i]) $"{recipe.Name}: {name}[{i}] after the step (lr 0.01)"
        }

        test "TeacherScoring.TopK gives what Core's SparseTeacher.ofLogits gives on the model's logits (ids, log-probabilities, target)" {
            let teacher = ModelTests.tinyModel false torch.float32 3L
            let context, trajectory = [| 4; 8; 15; 16 |], [| 23; 42; 7 |]
            let scores = (Trd.Runtime.Scoring.TeacherScoring.TopK(teacher, [| struct ("p", Trd.Runtime.Scoring.ScoringPair(context, trajectory)) |], 5)).[0]
            let logits = ModelTests.referenceLogits teacher (Array.append context trajectory)       // float64, op by op
            for j in 0 .. trajectory.Length - 1 do
                let expected = SparseTeacher.ofLogits 5 logits[context.Length - 1 + j] trajectory[j]
                Expect.sequenceEqual scores.Ids[j * 5 .. j * 5 + 4] expected.Ids $"position {j}: the top-5 ids, in order"
                for i in 0 .. 4 do
                    Expect.floatClose { absolute = 1e-5; relative = 1e-5 } (float scores.LogProbs[j * 5 + i]) expected.LogProbs[i] $"position {j}: log-probability {i}"
                Expect.floatClose { absolute = 1e-5; relative = 1e-5 } (float scores.TargetLogProbs[j]) expected.TargetLogProb $"position {j}: the target's"
        }

        test "a recipe that needs the teacher's full vocabulary cannot train from stored scores" {
            let store = Trd.Runtime.Data.TeacherScoreStore.Open(tempDir (), 4)
            let student = ModelTests.tinyModel false torch.float32 5L
            let message = Generators.throwsMessage<ArgumentException> (fun () -> Distiller(student, store, Recipes.trd, 8, null) |> ignore)
            Expect.stringContains message "needs the teacher's full vocabulary" "says why"
        }
    ]

[<Tests>]
let tests =
    testList "Trainer" [
        test "AdamW follows torch.optim.AdamW step for step (decay on matrices, none on vectors)" {
            let ours = parameters 1L
            let theirs = parameters 1L
            use adamw = new AdamW(named ours, AdamWOptions(0.9, 0.95, 1e-6, 0.1))
            let decayed = torch.optim.AdamW([ snd theirs[0] ], 0.01, 0.9, 0.95, 1e-6, 0.1)
            let plain = torch.optim.AdamW([ snd theirs[1] ], 0.01, 0.9, 0.95, 1e-6, 0.0)
            for step in 1 .. 5 do
                setGrads ours (int64 step)
                setGrads theirs (int64 step)
                adamw.Step 0.01
                decayed.step() |> ignore
                plain.step() |> ignore
            for (name, a), (_, b) in Array.zip ours theirs do
                let diff = (a - b).abs().max().item<float32>()
                Expect.isLessThan (float diff) 1e-6 $"{name} after 5 steps"
            Expect.equal adamw.Steps 5L "steps"
        }

        test "AdamW state round-trips through safetensors and continues identically" {
            let dir = tempDir ()
            let a = parameters 2L
            let b = parameters 2L
            use first = new AdamW(named a, AdamWOptions())
            for s in 1 .. 3 do setGrads a (int64 s); first.Step 0.05
            first.Save(Path.Combine(dir, "opt.safetensors"))
            // b: same parameters as a, restored optimiser
            do
                use _ = torch.no_grad()
                for (_, pa), (_, pb) in Array.zip a b do pb.copy_(pa) |> ignore
            use second = new AdamW(named b, AdamWOptions())
            second.Load(Path.Combine(dir, "opt.safetensors"))
            Expect.equal second.Steps 3L "steps restored"
            setGrads a 9L; first.Step 0.05
            setGrads b 9L; second.Step 0.05
            for (_, pa), (_, pb) in Array.zip a b do
                Expect.isTrue (pa.equal(pb).all().item<bool>()) "bit-identical after the restored step"
        }

        test "AdamW load rejects a moment of the wrong shape, naming it" {
            let dir = tempDir ()
            let a = parameters 3L
            use opt = new AdamW(named a, AdamWOptions())
            setGrads a 1L; opt.Step 0.1
            opt.Save(Path.Combine(dir, "opt.safetensors"))
            let other = [| "w", torch.nn.Parameter(torch.zeros(2L, 2L)); "b", torch.nn.Parameter(torch.zeros(4L)) |]
            use wrong = new AdamW(named other, AdamWOptions())
            let message = Generators.throwsMessage<Trd.Runtime.Checkpoints.CheckpointException> (fun () -> wrong.Load(Path.Combine(dir, "opt.safetensors")))
            Expect.stringContains message "w.exp_avg" "names the tensor"
        }

        test "gradient clipping scales the global norm to the bound and reports the norm before" {
            let ps = parameters 4L
            setGrads ps 4L
            use opt = new AdamW(named ps, AdamWOptions())
            let before = opt.GradientNorm()
            let expected = ps |> Array.sumBy (fun (_, p) -> p.grad.pow(torch.tensor 2.0).sum().item<float32>() |> float) |> sqrt
            Expect.floatClose Accuracy.medium before expected "norm"
            let reported = opt.ClipGradients 0.5
            Expect.floatClose Accuracy.medium reported before "reported norm is the pre-clip one"
            Expect.floatClose Accuracy.low (opt.GradientNorm()) 0.5 "clipped to 0.5"
        }

        test "the schedule never runs the first update at learning rate 0" {
            Expect.isGreaterThan (Schedule.learningRate 5e-6 3 30 0.1 0) 0.0 "step 0"
        }

        test "accumulation normalises by the step's global token count: 2×1 and 1×2 give the same update" {
            let run (grad: int) (micro: int) =
                let dir = tempDir ()
                use student = ModelTests.tinyModel false torch.ScalarType.Float32 11L
                use teacher = ModelTests.tinyModel false torch.ScalarType.Float32 12L
                let c = configFor 1 grad micro (LoraSpec(Rank = 2, Alpha = 4.0, Dropout = 0.0))
                let request = TrainRequest(student, teacher, Recipes.forwardKl, examples 2 5, c, 3L, dir, null)
                Trainer.Run(request, false) |> ignore
                adapterBytes student
            let a = run 2 1
            let b = run 1 2
            for (n, x), (_, y) in Array.zip a b do
                let d = Array.map2 (fun (u: float32) v -> abs (u - v)) x y |> Array.max
                Expect.isLessThan (float d) 1e-6 $"{n}"
        }

        test "a run stopped after a checkpoint and resumed ends bit-identical to an uninterrupted one" {
            let c = configFor 2 2 1 (LoraSpec(Rank = 2, Alpha = 4.0, Dropout = 0.1))
            let data = examples 6 7
            let full =
                let dir = tempDir ()
                use student = ModelTests.tinyModel false torch.ScalarType.Float32 21L
                use teacher = ModelTests.tinyModel false torch.ScalarType.Float32 22L
                let metrics = Collections.Generic.List<StepMetrics>()
                let outcome = Trainer.Run(TrainRequest(student, teacher, Recipes.trd, data, c, 5L, dir, null), false, Action<_>(metrics.Add))
                Expect.equal outcome.Steps 6L "2 epochs × ⌈6 / 2⌉ steps"
                adapterBytes student, metrics |> Seq.map (fun m -> m.Loss) |> Seq.toArray
            let dir = tempDir ()
            let firstLosses =
                use student = ModelTests.tinyModel false torch.ScalarType.Float32 21L
                use teacher = ModelTests.tinyModel false torch.ScalarType.Float32 22L
                let losses = Collections.Generic.List<float>()
                let stop (m: StepMetrics) =
                    losses.Add m.Loss
                    if m.Step = 3L then raise (OperationCanceledException "killed")
                Generators.throwsMessage<OperationCanceledException> (fun () ->
                    Trainer.Run(TrainRequest(student, teacher, Recipes.trd, data, c, 5L, dir, null), false, Action<_>(stop)) |> ignore) |> ignore
                losses.ToArray()
            // Step 3 ran but was not checkpointed: the resumed run redoes it.
            let refused =
                Generators.throwsMessage<InvalidOperationException> (fun () ->
                    use student = ModelTests.tinyModel false torch.ScalarType.Float32 21L
                    use teacher = ModelTests.tinyModel false torch.ScalarType.Float32 22L
                    Trainer.Run(TrainRequest(student, teacher, Recipes.trd, data, c, 5L, dir, null), false) |> ignore)
            Expect.stringContains refused "--resume" "no silent restart over checkpoints"
            use student = ModelTests.tinyModel false torch.ScalarType.Float32 21L
            use teacher = ModelTests.tinyModel false torch.ScalarType.Float32 22L
            let rest = Collections.Generic.List<float>()
            let outcome = Trainer.Run(TrainRequest(student, teacher, Recipes.trd, data, c, 5L, dir, null), true, Action<_>(fun m -> rest.Add m.Loss))
            Expect.equal outcome.ResumedFrom 3L "resumed after the last checkpoint (step 3)"
            let weights, losses = full
            for (n, x), (_, y) in Array.zip weights (adapterBytes student) do
                Expect.sequenceEqual y x $"{n} bit-identical"
            Expect.sequenceEqual (Array.append firstLosses[0..2] (rest.ToArray())) losses "same losses step by step"
        }

        test "resuming on other examples is refused" {
            let dir = tempDir ()
            let c = configFor 1 1 1 (LoraSpec(Rank = 2, Alpha = 4.0, Dropout = 0.0))
            do
                use s = ModelTests.tinyModel false torch.ScalarType.Float32 1L
                use t = ModelTests.tinyModel false torch.ScalarType.Float32 2L
                Trainer.Run(TrainRequest(s, t, Recipes.forwardKl, examples 2 1, c, 1L, dir, null), false) |> ignore
            use s = ModelTests.tinyModel false torch.ScalarType.Float32 1L
            use t = ModelTests.tinyModel false torch.ScalarType.Float32 2L
            let message = Generators.throwsMessage<Trd.Runtime.Checkpoints.CheckpointException> (fun () ->
                Trainer.Run(TrainRequest(s, t, Recipes.forwardKl, examples 2 2, c, 1L, dir, null), true) |> ignore)
            Expect.stringContains message "other examples" "says why"
        }

        test "the per-epoch order is a seeded permutation" {
            let a = Trainer.Order(10, 3L, 0)
            Expect.sequenceEqual (Array.sort a) [| 0 .. 9 |] "a permutation"
            Expect.sequenceEqual (Trainer.Order(10, 3L, 0)) a "deterministic"
            Expect.notEqual (Trainer.Order(10, 3L, 1)) a "another epoch, another order"
        }
    ]
