// A small tour of the objective algebra on TorchSharp: `dotnet fsi scripts/tour.fsx`.
//
// Needs `dotnet build src/Trd.Runtime -c Release` first. Evaluates the paper's five recipes on a
// bimodal teacher (§4.1) with the float64 reference and with the TorchSharp executor, and prints where
// forward and reverse KL put their weight.
#r "nuget: TorchSharp, 0.107.0"
#r "nuget: libtorch-cpu-linux-x64, 2.10.0"
#load "LoadTorchSharp.fsx"
#load "Trd.fsx"

open TorchSharp
open Trd.Core
open Trd.Runtime.Objectives

printfn "TorchSharp loaded from the NuGet cache via %s" LoadTorchSharp.LoadTorchSharp.loaded
printfn "%s\n" (Trd.Runtime.Devices.Describe Trd.Runtime.Devices.Default)

// A teacher under prefix failure (§4.1): mass split between continuing the wrong prefix (tokens 0–3) and a
// correction onset such as "Wait" (token 4); the student stays anchored on the wrong continuation.
let V = 64
let wrong = Mixture.concentrated V [| 0; 1; 2; 3 |] 0.97
let correction = Mixture.concentrated V [| 4 |] 0.97
let student = Mixture.concentrated V [| 0; 1; 2; 3 |] 0.99
let regions = [| { Name = "wrong continuation"; Tokens = [| 0; 1; 2; 3 |] }
                 { Name = "correction onset"; Tokens = [| 4 |] }
                 { Name = "rest"; Tokens = [| 5 .. V - 1 |] } |]

printfn "Where the divergence sits as the teacher's correction weight w grows (Fig. 2):"
printfn "(shares are signed: the rest of the vocabulary carries a small negative part, so a region can exceed 1)"
printfn "%6s %10s %10s %24s %24s" "w" "fwd KL" "rev KL" "fwd share: correction" "rev share: wrong"
for point in Mixture.sweep [| 0.05; 0.1; 0.2; 0.3; 0.5 |] wrong correction student regions do
    printfn "%6.2f %10.4f %10.4f %24.3f %24.3f" point.Weight point.ForwardKl point.ReverseKl point.Regions[1].ForwardShare point.Regions[0].ReverseShare

// The five recipes on one batch of positions: reference (float64, Trd.Core) and executor (TorchSharp, fp32).
let rng = System.Random 0
let positions = 8
let logits (p: float[]) = p |> Array.map (fun x -> log x + 0.3 * rng.NextDouble())
let teacherRows = Array.init positions (fun _ -> Mixture.mix 0.3 wrong correction |> logits)
let studentRows = Array.init positions (fun _ -> logits student)
let mask = Array.create positions 1.0
let toTensor (rows: float[][]) = torch.tensor(Array.concat rows, dtype = torch.float32).reshape(int64 positions, int64 V)

printfn "\nThe paper's five recipes (OPSD constants) on %d positions:" positions
printfn "%-22s %14s %14s %12s" "recipe" "reference" "executor" "clip frac"
for recipe in Recipes.all Opsd do
    let reference = Objective.evaluate recipe teacherRows studentRows mask [||] 0.0
    use s = (toTensor studentRows).requires_grad_()
    use result = ObjectiveExecutor.FromLogits(recipe, s, toTensor teacherRows, torch.ones(int64 positions))
    result.Loss.backward()
    printfn "%-22s %14.6f %14.6f %12.2f" recipe.Name reference.Loss (float (result.Loss.item<float32>())) result.ClipFraction

printfn "\nTRD scores like Forward KL on the same positions: what differs is where the positions come from, the"
printfn "refined trajectory y_r and the teacher's refinement context (Eq. 6), which the pipeline supplies."
