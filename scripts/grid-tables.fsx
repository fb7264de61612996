// Prints a grid's grid-results.json as the markdown tables docs/study.md quotes ("The grid"): TRD − the best baseline
// per cell and setting with 95% intervals, the mechanism's diagnostics per cell, the models' cards and the prediction's
// verdicts. The docs' figures are pasted from this output, never typed:
//   dotnet fsi scripts/grid-tables.fsx runs/grid/grid-results.json
open System
open System.IO
open System.Text.Json

let path = match fsi.CommandLineArgs with [| _; p |] -> p | _ -> failwith "usage: dotnet fsi scripts/grid-tables.fsx GRID-RESULTS.json"
let root = JsonDocument.Parse(File.ReadAllText path).RootElement
let str (e: JsonElement) (name: string) = e.GetProperty(name).GetString()
let num (e: JsonElement) = if e.ValueKind = JsonValueKind.Number then e.GetDouble() else nan
let f1 (x: float) = if Double.IsFinite x then x.ToString("0.0", Globalization.CultureInfo.InvariantCulture) else "–"
let signed (x: float) = if Double.IsFinite x then x.ToString("+0.0;-0.0;0.0", Globalization.CultureInfo.InvariantCulture) else "–"
let gap (e: JsonElement) =
    let m, l, h = num (e.GetProperty "mean"), num (e.GetProperty "low"), num (e.GetProperty "high")
    $"{signed (100.0 * m)} [{f1 (100.0 * l)}, {f1 (100.0 * h)}]"
let pct (e: JsonElement) = f1 (100.0 * num e)

let grid = root.GetProperty "grid"
printfn "Command `%s`; seeds %s; %d corpus and %d held-out problems, K = %d; %s; started %s, %.0f s."
    (str grid "command") (grid.GetProperty("seeds").EnumerateArray() |> Seq.map string |> String.concat ", ")
    (grid.GetProperty("train_problems").GetInt32()) (grid.GetProperty("heldout_problems").GetInt32()) (grid.GetProperty("k").GetInt32())
    (str grid "machine") (str grid "started") (grid.GetProperty("seconds").GetDouble())
printfn ""
let cells = root.GetProperty("cells").EnumerateArray() |> Seq.toArray
let k = grid.GetProperty("k").GetInt32()
printfn "| cell | setting | base Avg@%d | TRD Avg@%d | best baseline (Avg) | TRD − best, Avg@%d (pts) | best baseline (Pass) | TRD − best, Pass@%d (pts) |" k k k k
printfn "|---|---|---|---|---|---|---|---|"
for c in cells do
    for s in c.GetProperty("settings").EnumerateArray() do
        printfn "| %s | %s | %s | %s | %s | %s | %s | %s |" (str c "name") ((str s "setting").ToUpperInvariant())
            (pct (s.GetProperty("base_avg_at_k").GetProperty "mean")) (pct (s.GetProperty("trd_avg_at_k").GetProperty "mean"))
            (str s "best_avg_baseline") (gap (s.GetProperty "gap_avg_at_k")) (str s "best_pass_baseline") (gap (s.GetProperty "gap_pass_at_k"))
printfn ""
printfn "| cell | setting | D^incorrect y_o | D^incorrect y_r | epistemic mass y_o | y_r | accuracy y_o → y_r (%%) | fail→pass / pass→fail | FKL w/ Clip clipped (%%) | teacher mass outside top-32 (%%) |"
printfn "|---|---|---|---|---|---|---|---|---|---|"
let g4 (x: float) = if Double.IsFinite x then x.ToString("G3", Globalization.CultureInfo.InvariantCulture) else "–"
for c in cells do
    for s in c.GetProperty("settings").EnumerateArray() do
        let joint = s.GetProperty "joint"
        printfn "| %s | %s | %s | %s | %s | %s | %s → %s | %d / %d | %s | %s |" (str c "name") ((str s "setting").ToUpperInvariant())
            (g4 (num (s.GetProperty "d_incorrect_y_o"))) (g4 (num (s.GetProperty "d_incorrect_y_r")))
            (g4 (num (s.GetProperty "epistemic_mass_y_o"))) (g4 (num (s.GetProperty "epistemic_mass_y_r")))
            (pct (s.GetProperty("y_o_accuracy").GetProperty "mean")) (pct (s.GetProperty("y_r_accuracy").GetProperty "mean"))
            (joint.GetProperty("fail_pass").GetInt32()) (joint.GetProperty("pass_fail").GetInt32())
            (pct (s.GetProperty "clip_fraction")) (let m = s.GetProperty "teacher_mass_outside_topk" in (100.0 * num m).ToString("0.000", Globalization.CultureInfo.InvariantCulture))
printfn ""
printfn "| cell | student | solve | refine given y* | teacher | solve | refine |"
printfn "|---|---|---|---|---|---|---|"
for c in cells do
    let cards = c.GetProperty("cards").EnumerateArray() |> Seq.toArray
    let card role = cards |> Array.find (fun x -> str x "role" = role)
    let s, t = card "student", card "teacher"
    printfn "| %s | `%s` | %s | %s | `%s` | %s | %s |" (str c "name") (str s "directory") (pct (s.GetProperty "solve_accuracy"))
        (pct (s.GetProperty "refine_with_reference_accuracy")) (str t "directory") (pct (t.GetProperty "solve_accuracy")) (pct (t.GetProperty "refine_accuracy"))
printfn ""
printfn "| prediction | setting | verdict | measured |"
printfn "|---|---|---|---|"
for p in root.GetProperty("predictions").EnumerateArray() do
    printfn "| `%s` | %s | %s | %s |" (str p "id") ((str p "setting").ToUpperInvariant()) (str p "verdict") (str p "measured")
let predictions = root.GetProperty("predictions").EnumerateArray() |> Seq.toArray
let count v = predictions |> Array.filter (fun p -> str p "verdict" = v) |> Array.length
printfn ""
printfn "%d reproduced, %d not reproduced, %d inconclusive." (count "reproduced") (count "not reproduced") (count "inconclusive")
