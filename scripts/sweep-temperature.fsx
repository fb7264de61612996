// Sweeps the distillation temperature T of TRD on the gym (OPD): T ∈ {0.5, 1, 2}.
//
// Paper: App. C.8's loss, D^(T)(p ‖ q) = Σ_v p_T(v) (log p_T(v) − log q_T(v)) with p_T(v) ∝ exp(ℓ_v / T), applied
// once to both π_T and π_θ; the paper trains every method at T = 1 (App. C.7). T < 1 sharpens both sides towards their
// modes, T > 1 flattens them and weighs the teacher's minor modes (a correction onset, §4.1) more. TRD is Eq. 6:
// forward KL along the refined trajectory y_r, the teacher seeing y_o.
//
//   dotnet fsi scripts/sweep-temperature.fsx     (after `dotnet build src/Trd.Cli -c Release`)
//
// Wall time of `time dotnet fsi` on this machine (2 cores; gym models cached, reference evaluated, corpus drawn):
// 14–15 s with every arm trained (3 arms), 4 s when every arm is cached.
#r "nuget: TorchSharp, 0.107.0"
#r "nuget: libtorch-cpu-linux-x64, 2.10.0"
#load "LoadTorchSharp.fsx" "Trd.fsx" "Ablation.fsx"
open Trd.Core

let arms = [ for t in [ 0.5; 1.0; 2.0 ] -> $"TRD, T = {t}", Ablation.run Opd (Recipes.trd.WithTemperature t) ]

Ablation.table "TRD on the gym (OPD): the temperature T" "TRD, T = 1" arms
Ablation.chart "TRD (OPD): temperature T" arms
