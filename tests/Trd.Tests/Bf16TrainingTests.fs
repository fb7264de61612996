/// Training a bfloat16 model at the paper's learning rate (5e-6): the LoRA adapters are float32 over a bf16 base and
/// full fine-tuning steps float32 master weights, so a bf16 run moves the weights the way a float32 run from the same
/// (bf16-rounded) starting point does. Without them an Adam update (≈ lr per element) is far below bf16's spacing
/// (2⁻⁸ of a weight) and is rounded away: the adapters' A and the full model never move.
module Trd.Tests.Bf16TrainingTests

open System
open System.IO
open Expecto
open TorchSharp
open Trd.Core
open Trd.Runtime.Checkpoints
open Trd.Runtime.Lora
open Trd.Runtime.Models
open Trd.Runtime.Pipeline
open Trd.Runtime.Training

type private ST = torch.ScalarType

let private tempDir () =
    let d = Path.Combine(Path.GetTempPath(), "trd-bf16-" + Guid.NewGuid().ToString("N"))
    Directory.CreateDirectory d |> ignore
    d

/// A student and a teacher saved once, rounded to bf16: both runs start from exactly the same weights.
let private startingPoint =
    lazy (
        let root = tempDir ()
        let save (seed: int64) (name: string) =
            use model = ModelTests.tinyModel false ST.Float32 seed
            let raw = Path.Combine(root, name + "-raw")
            Qwen3Checkpoint.Save(model, raw) |> ignore
            use rounded = Qwen3Checkpoint.Load(raw, torch.CPU, ST.BFloat16)
            let dir = Path.Combine(root, name)
            Qwen3Checkpoint.Save(rounded, dir) |> ignore
            dir
        save 31L "student", save 32L "teacher")

let private examples (count: int) (seed: int) =
    let r = Random(seed)
    [| for i in 0 .. count - 1 ->
         let ctx = Array.init (4 + r.Next 4) (fun _ -> r.Next 90)
         TrainExample($"p{i}", ctx, ctx, Array.init (6 + r.Next 6) (fun _ -> r.Next 90), i % 2 = 0, "y_o") |]

/// 20 optimiser steps of TRD's recipe at lr 5e-6 (constant after no warmup, cosine to 90%), one sequence a step.
let private configWith (saveEvery: int) (lora: LoraSpec) =
    TrainConfig(Lora = lora, LearningRate = 5e-6, WarmupRatio = 0.0, FloorRatio = 0.9, GradAccum = 1, MicroBatch = 1, Epochs = 1,
                MaxLength = 64, SaveEvery = saveEvery, ChunkSize = 16, GradClip = 0.0)

let private config = configWith 100

let private flat (t: torch.Tensor) = t.detach().to_type(ST.Float64).cpu().flatten()

let private cosine (a: torch.Tensor) (b: torch.Tensor) =
    (a * b).sum().item<float>() / (a.norm().item<float>() * b.norm().item<float>())

/// The trainable tensors (as float64, by name) before and after a run on a model of the given dtype, with the losses.
type private Run = { Before: Map<string, torch.Tensor>; After: Map<string, torch.Tensor>; Losses: float[]; Directory: string; Model: Qwen3ForCausalLM }

let private train (dtype: ST) (lora: LoraSpec) =
    let studentDir, teacherDir = startingPoint.Force()
    let student = Qwen3Checkpoint.Load(studentDir, torch.CPU, dtype)
    use teacher = Qwen3Checkpoint.Load(teacherDir, torch.CPU, dtype)
    let dir = tempDir ()
    let seed = 4L
    // The adapters Trainer.Run attaches (same seed) on a throwaway copy, to know where they start.
    let before =
        use probe = Qwen3Checkpoint.Load(studentDir, torch.CPU, dtype)
        if not (isNull (box lora)) then
            PeftAdapter.Attach(probe, LoraConfig(Rank = lora.Rank, Alpha = lora.Alpha, Dropout = lora.Dropout), Trainer.Derive(seed, -1L, 0L))
        probe.named_parameters() |> Seq.filter (fun struct (_, p) -> p.requires_grad) |> Seq.map (fun struct (n, p) -> n, flat p) |> Map.ofSeq
    let losses = Collections.Generic.List<float>()
    Trainer.Run(TrainRequest(student, teacher, Recipes.trd, examples 20 9, config lora, seed, dir, null), false, Action<_>(fun m -> losses.Add m.Loss)) |> ignore
    let after = student.named_parameters() |> Seq.filter (fun struct (_, p) -> p.requires_grad) |> Seq.map (fun struct (n, p) -> n, flat p) |> Map.ofSeq
    { Before = before; After = after; Losses = losses.ToArray(); Directory = dir; Model = student }

let private deltas (run: Run) (names: string seq) =
    names |> Seq.map (fun n -> run.After[n] - run.Before[n]) |> Seq.toArray |> torch.cat

let private lossesAgree (bf16: Run) (fp32: Run) =
    // bf16 rounds every activation to 8 significant bits (relative 2⁻⁹ ≈ 0.2%); through two layers the loss moves by
    // a few tenths of a percent (measured: under 1%). 3% leaves room without admitting a curve of another run.
    for step, (a, b) in Seq.indexed (Array.zip bf16.Losses fp32.Losses) do
        Expect.isLessThan (abs (a - b) / abs b) 0.03 $"step {step}: bf16 loss {a} against float32 {b}"

[<Tests>]
let tests =
    testList "bf16 training" [
        test "LoRA on a bf16 base: float32 adapters move as a float32 run's do (cosine ≥ 0.99 after 20 steps at lr 5e-6)" {
            let lora = LoraSpec(Rank = 4, Alpha = 8.0, Dropout = 0.0)
            let fp32 = train ST.Float32 lora
            let bf16 = train ST.BFloat16 lora
            use _ = bf16.Model
            use _ = fp32.Model
            for struct (name, p) in bf16.Model.named_parameters() do
                if p.requires_grad then Expect.equal p.dtype ST.Float32 $"{name} is float32 over the bf16 base"
            for factor in [ "lora_A"; "lora_B" ] do
                let names = fp32.After.Keys |> Seq.filter (fun n -> n.Contains factor) |> Seq.sort |> Seq.toArray
                Expect.isNonEmpty names factor
                let reference = deltas fp32 names
                let ours = deltas bf16 names
                Expect.isGreaterThan (reference.norm().item<float>()) 0.0 $"{factor} moved in float32"
                let c = cosine ours reference
                Expect.isGreaterThanOrEqual c 0.99 $"{factor}: cosine of the bf16 run's deltas with the float32 run's"
                let ratio = ours.norm().item<float>() / reference.norm().item<float>()
                Expect.floatClose { absolute = 0.0; relative = 0.05 } ratio 1.0 $"{factor}: size of the bf16 run's delta against float32's"
            lossesAgree bf16 fp32
        }

        test "full fine-tuning of a bf16 model steps float32 master weights (cosine ≥ 0.99 after 20 steps at lr 5e-6)" {
            let fp32 = train ST.Float32 null
            let bf16 = train ST.BFloat16 null
            use _ = bf16.Model
            use _ = fp32.Model
            let names = fp32.After.Keys |> Seq.sort |> Seq.toArray
            let reference = deltas fp32 names
            // The bf16 run's own float32 masters, from its final checkpoint's optimiser state.
            let latest = TrainerCheckpoint.Latest(Path.Combine(bf16.Directory, Trainer.CheckpointsFolder))
            let state = SafeTensors.Open(Path.Combine(latest, TrainerCheckpoint.OptimizerFileName))
            let masters = names |> Array.map (fun n -> flat (state.Load(n + ".master")) - bf16.Before[n]) |> torch.cat
            let c = cosine masters reference
            Expect.isGreaterThanOrEqual c 0.99 "cosine of the bf16 run's master deltas with the float32 run's"
            Expect.floatClose { absolute = 0.0; relative = 0.05 } (masters.norm().item<float>() / reference.norm().item<float>()) 1.0 "size of the delta"
            // The bf16 weights are the masters rounded, so they move too: as many change as when the float32 run's
            // final weights are rounded to bf16.
            let moved (run: Run) (round: bool) =
                names |> Seq.sumBy (fun n ->
                    let after = if round then run.After[n].to_type(ST.BFloat16).to_type(ST.Float64) else run.After[n]
                    after.ne(run.Before[n]).sum().item<int64>())
            let total = names |> Seq.sumBy (fun n -> fp32.Before[n].numel())
            let ours, theirs = moved bf16 false, moved fp32 true
            Expect.isGreaterThan (float ours / float total) 0.01 $"share of bf16 weights changed ({ours} of {total})"
            Expect.floatClose { absolute = 0.0; relative = 0.1 } (float ours) (float theirs) "as many as float32's, rounded"
            lossesAgree bf16 fp32
        }

        test "a bf16 full fine-tuning resumed from a checkpoint continues from its masters, bit-identical" {
            let studentDir, teacherDir = startingPoint.Force()
            let c = configWith 1 null
            let data = examples 6 3
            let run (dir: string) (stopAt: int64 option) (resume: bool) =
                use student = Qwen3Checkpoint.Load(studentDir, torch.CPU, ST.BFloat16)
                use teacher = Qwen3Checkpoint.Load(teacherDir, torch.CPU, ST.BFloat16)
                let stop (m: StepMetrics) = if Some m.Step = stopAt then raise (OperationCanceledException "killed")
                try Trainer.Run(TrainRequest(student, teacher, Recipes.trd, data, c, 8L, dir, null), resume, Action<_>(stop)) |> ignore
                with :? OperationCanceledException -> ()
                student.named_parameters() |> Seq.map (fun struct (n, p) -> n, p.detach().to_type(ST.Float32).data<float32>().ToArray()) |> Seq.toArray
            let full = run (tempDir ()) None false
            let dir = tempDir ()
            run dir (Some 3L) false |> ignore
            let resumed = run dir None true
            for (n, a), (_, b) in Array.zip full resumed do Expect.sequenceEqual b a $"{n} bit-identical after resume"
        }
    ]
