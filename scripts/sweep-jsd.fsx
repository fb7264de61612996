// Sweeps the divergence along TRD's trajectory on the gym (OPD): the generalised JSD(β), β ∈ {0, 0.5, 1}.
//
// Paper: Eq. 6 (TRD: forward KL along y_r, the teacher π_T(· | x, y_o, y_r,<t) seeing the rollout) and §3 on the
// direction (reverse KL is mode-seeking, forward KL mode-covering); the JSD is GKD's (ref. [2]). Trd.Core's convention
// (src/Trd.Core/Divergence.fs): M = β π_T + (1 − β) π_θ and JSD(β) = [β D(π_T ‖ M) + (1 − β) D(π_θ ‖ M)] / (β (1 − β)),
// so β = 0 IS forward KL D(π_T ‖ π_θ) (TRD itself), β = 1 IS reverse KL D(π_θ ‖ π_T), and β = 0.5 sits between.
// The 1 / (β (1 − β)) scale (×4 at β = 0.5) also scales the gradient, i.e. the effective learning rate.
// The β = 0 arm is a different recipe value from TRD (direction "jsd", not "forward") and trains in its own directory:
// it should reproduce the TRD row, which makes it a check of the plumbing.
//
//   dotnet fsi scripts/sweep-jsd.fsx             (after `dotnet build src/Trd.Cli -c Release`)
//
// Wall time of `time dotnet fsi` on this machine (2 cores; gym models cached, reference evaluated, corpus drawn):
// 17–21 s with every arm trained (4 arms), 5 s when every arm is cached.
#r "nuget: TorchSharp, 0.107.0"
#r "nuget: libtorch-cpu-linux-x64, 2.10.0"
#load "LoadTorchSharp.fsx" "Trd.fsx" "Ablation.fsx"
open Trd.Core

let arms =
    [ "TRD (forward KL)", Ablation.run Opd Recipes.trd
      "β = 0 (= forward KL)", Ablation.run Opd { Recipes.trd with Name = "TRD JSD"; Direction = Jsd 0.0 }
      "β = 0.5", Ablation.run Opd { Recipes.trd with Name = "TRD JSD"; Direction = Jsd 0.5 }
      "β = 1 (= reverse KL)", Ablation.run Opd { Recipes.trd with Name = "TRD JSD"; Direction = Jsd 1.0 } ]

Ablation.table "TRD's trajectory y_r with the generalised JSD(β) on the gym (OPD)" "TRD (forward KL)" arms
Ablation.chart "Along y_r (OPD): JSD(β), β = 0 forward KL, β = 1 reverse KL" arms
