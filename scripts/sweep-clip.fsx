// Sweeps the clip constant c of Forward KL w/ Clip on the gym (OPD): c ∈ {0.03, 0.1, 0.3, 1} and no clip.
//
// Paper: App. C.8 ("the clipping baseline applies a per-token cap min(D_t, c) before averaging over the response
// mask") and Table 13 (c = 0.1 for OPD, 0.06 for OPSD). A position with D_t > c contributes the constant c and no
// gradient, so a small c silences exactly the high-divergence positions where a failed prefix meets a bimodal
// teacher (§4.1); no clip is the Forward KL row of Tables 1–2.
//
//   dotnet fsi scripts/sweep-clip.fsx            (after `dotnet build src/Trd.Cli -c Release`)
//
// Wall time of `time dotnet fsi` on this machine (2 cores; gym models cached, reference evaluated, corpus drawn):
// 20–26 s with every arm trained (5 arms), 5 s when every arm is cached.
#r "nuget: TorchSharp, 0.107.0"
#r "nuget: libtorch-cpu-linux-x64, 2.10.0"
#load "LoadTorchSharp.fsx" "Trd.fsx" "Ablation.fsx"
open Trd.Core

let arms =
    [ for c in [ 0.03; 0.1; 0.3; 1.0 ] -> $"c = {c}", Ablation.run Opd ((Recipes.forwardKlClip Opd).WithClip(PerPosition c)) ]
    @ [ ("no clip (Forward KL)", Ablation.run Opd Recipes.forwardKl) ]

// The fraction of trained positions with D_t > c (no gradient there), averaged over the training steps.
let clipped arm = sprintf "%.0f %%" (100.0 * Ablation.trainingMean "clip_fraction" arm)
Ablation.tableWith [ ("clipped", clipped) ] "Forward KL w/ Clip on the gym (OPD): the clip constant c" "no clip (Forward KL)" arms
Ablation.chart "Forward KL w/ Clip (OPD): clip constant c" arms
