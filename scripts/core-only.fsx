// Trd.Core alone: the objective algebra in float64, with no TorchSharp and no model. Every recipe of the paper scored
// on two positions of made-up logits over a vocabulary of 64 (Reverse KL w/ Top-K keeps the teacher's top 32).
//
//   dotnet build src/Trd.Core -c Release && dotnet fsi scripts/core-only.fsx
//
// Objective.evaluate recipe teacher student mask targets normaliser takes
//   teacher, student: logits, one float[] of V entries per position (float[][], [positions][V]), before any softmax;
//   mask: one weight per position (1.0 counts it, 0.0 skips it);
//   targets: the sampled token per position, for the sampled estimators (k1, k2, k3); [||] for exact ones;
//   normaliser: the divisor of the masked sum (0.0: the mask's sum, a mean over positions).
#r "../src/Trd.Core/bin/Release/net10.0/linux-x64/Trd.Core.dll"
open Trd.Core

let logits (k: float) = Array.init 64 (fun i -> 3.0 * sin (k * float (i + 1)))     // [V] = [64]
let teacher = [| logits 0.7; logits 1.3 |]                                          // [2][64]: two positions
let student = [| logits 0.9; logits 1.1 |]
for recipe in Recipes.all Opd do
    let e = Objective.evaluate recipe teacher student [| 1.0; 1.0 |] [||] 0.0
    printfn "%-24s loss %.6f" recipe.Name e.Loss
