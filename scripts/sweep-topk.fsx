// Sweeps K of Reverse KL w/ Top-K on the gym (OPD): the teacher's top-K with K ∈ {2, 8, 32}, and the full vocabulary.
//
// Paper: App. C.8 ("Top-K replaces 𝒱 by the teacher's top-32 support 𝒮_t and renormalizes both p_T and q_T to sum
// to 1 on 𝒮_t") and Table 13 (K = 32); the full vocabulary is the Reverse KL row of Tables 1–2 (§3 on why the full
// vocabulary is the default). The gym's teacher is sharp (682 tokens, nearly all its mass on a few), so K = 32 renormalises
// by almost nothing: expect it to match the full vocabulary (its losses differ in the 5th digit; the samples can coincide).
//
//   dotnet fsi scripts/sweep-topk.fsx            (after `dotnet build src/Trd.Cli -c Release`)
//
// Wall time of `time dotnet fsi` on this machine (2 cores; gym models cached, reference evaluated, corpus drawn):
// 17–20 s with every arm trained (4 arms), 4 s when every arm is cached.
#r "nuget: TorchSharp, 0.107.0"
#r "nuget: libtorch-cpu-linux-x64, 2.10.0"
#load "LoadTorchSharp.fsx" "Trd.fsx" "Ablation.fsx"
open Trd.Core

let arms =
    [ for k in [ 2; 8; 32 ] -> $"top-{k}", Ablation.run Opd (Recipes.reverseKlTopK.WithSupport(TeacherTopK k)) ]
    @ [ ("full vocabulary (Reverse KL)", Ablation.run Opd Recipes.reverseKl) ]

Ablation.table "Reverse KL w/ Top-K on the gym (OPD): the support size K" "full vocabulary (Reverse KL)" arms
Ablation.chart "Reverse KL w/ Top-K (OPD): support size K" arms
