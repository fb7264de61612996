// The paper's five recipes in both settings on the gym: OPD (a separate, frozen teacher π_T) and OPSD (the student's
// own backbone, adapters off, conditioned on the reference solution y*), 10 arms, one table side by side.
//
// Paper: §3 (Eq. 1 OPD, Eq. 2 OPSD), §6.2–6.3 and Tables 1–4 (the two settings' results), Table 13 (the recipes;
// Forward KL w/ Clip uses c = 0.1 under OPD and 0.06 under OPSD, App. C.6). On the gym the OPSD teacher is the
// student itself shown y*, so it is weaker than the OPD teacher; the table's OPD-teacher row is for OPD only.
//
//   dotnet fsi scripts/opd-vs-opsd.fsx           (after `dotnet build src/Trd.Cli -c Release`)
//
// Wall time of `time dotnet fsi` on this machine (2 cores; gym models cached, reference evaluated, corpus drawn):
// 34–39 s with every arm trained (10 arms, and the OPSD corpus drawn), 6 s when every arm is cached.
#r "nuget: TorchSharp, 0.107.0"
#r "nuget: libtorch-cpu-linux-x64, 2.10.0"
#load "LoadTorchSharp.fsx" "Trd.fsx" "Ablation.fsx"
open Trd.Core

let rows =
    Array.zip (Recipes.all Opd) (Recipes.all Opsd)
    |> Array.map (fun (opd, opsd) -> opd.Name, Ablation.run Opd opd, Ablation.run Opsd opsd)
    |> Array.toList

Ablation.tableBySetting "The paper's five recipes on the gym, OPD and OPSD" rows
Ablation.chartSeries "The five recipes, OPD vs OPSD"
    [ "OPD", rows |> List.map (fun (name, opd, _) -> name, opd)
      "OPSD", rows |> List.map (fun (name, _, opsd) -> name, opsd) ]
