// Every shaped method of issue 19 (Trd.Core.ShapedMethods: token weights, gates, a switch, a trajectory filter, step
// normalisation, the policy-gradient form) against TRD and the four baselines on the gym (OPD), each with its
// defaults — the paper's where published, Trd's otherwise (docs/methods.md says which). No tuning toward a winner.
//
// Each method is a recipe value: its arm trains from the base student on the shared OPD corpus, as every ablation arm
// does, and its metrics.jsonl logs per step what the plan did (masked fraction, weight spread, trajectories filtered).
//
//   dotnet fsi scripts/sweep-methods.fsx            (after `dotnet build src/Trd.Cli -c Release`)
//
// Wall time: docs/methods.md records the run its table comes from (command, date, machine).
#r "nuget: TorchSharp, 0.107.0"
#r "nuget: libtorch-cpu-linux-x64, 2.10.0"
#load "LoadTorchSharp.fsx" "Trd.fsx" "Ablation.fsx"
open Trd.Core

let baselines = [ for r in Recipes.all Opd -> r.Name, Ablation.run Opd r ]
let shaped = [ for m in ShapedMethods.all -> m.Label, Ablation.run Opd (ShapedMethods.defaultOf m) ]

/// The mean over training steps of a plan diagnostic, "–" for the paper's recipes (which have no plan).
let planMean (field: string) (format: float -> string) (arm: Trd.Runtime.Study.AblationArm) =
    let records = Trd.Runtime.Logging.MetricsLog.Read(arm.MetricsPath).Records |> Seq.filter (fun r -> r.Step.HasValue) |> Seq.toArray
    if records.Length = 0 || not (records[0].Values.ContainsKey field) then "–"
    else
        let values = records |> Array.map (fun r -> let v = r.Values[field] in if v.HasValue then v.Value else nan)
        if values |> Array.forall System.Double.IsNaN then "–" else format (Array.average values)

Ablation.tableWith
    [ ("masked", planMean "masked_fraction" (fun x -> sprintf "%.0f %%" (100.0 * x)))
      ("switched", planMean "switched_fraction" (fun x -> sprintf "%.0f %%" (100.0 * x)))
      ("w std", planMean "weight_std" (sprintf "%.2f"))
      ("filtered", planMean "trajectories_filtered" (sprintf "%.1f"))
      ("D (nats)", fun arm -> sprintf "%.3f" (Ablation.trainingMean "kl_pre_clip" arm)) ]
    "Shaped OPD methods (issue 19) against TRD and the paper's baselines on the gym (OPD), each at its defaults"
    "TRD" (baselines @ shaped)
Ablation.chart "Shaped OPD methods on the gym (OPD)" (baselines @ shaped)
