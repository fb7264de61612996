// Prints a study's results.json as the markdown tables docs/study.md quotes: the verdicts (claim × setting) and the
// held-out scores with their 95% intervals. The docs' figures are pasted from this output, never typed:
//   dotnet fsi scripts/study-tables.fsx runs/study/results.json
open System
open System.IO
open System.Text.Json

let path = match fsi.CommandLineArgs with [| _; p |] -> p | _ -> failwith "usage: dotnet fsi scripts/study-tables.fsx RESULTS.json"
let root = JsonDocument.Parse(File.ReadAllText path).RootElement
let str (e: JsonElement) (name: string) = e.GetProperty(name).GetString()
let pct (e: JsonElement) = if e.ValueKind = JsonValueKind.Number then $"{100.0 * e.GetDouble():F1}" else "–"
let interval (e: JsonElement) =
    if e.ValueKind = JsonValueKind.Null then "–"
    else
        let m, l, h = pct (e.GetProperty "mean"), pct (e.GetProperty "low"), pct (e.GetProperty "high")
        $"{m} [{l}, {h}]"

let study = root.GetProperty "study"
let modelSeeds = match study.TryGetProperty "model_seeds" with | true, m -> m.GetInt32() | _ -> 1
printfn "Command `%s`; model seeds %d; seeds %s; %d held-out problems, K = %d; %s; started %s, %.0f s."
    (str study "command") modelSeeds (study.GetProperty("seeds").EnumerateArray() |> Seq.map string |> String.concat ", ")
    (study.GetProperty("heldout_problems").GetInt32()) (study.GetProperty("k").GetInt32()) (str study "machine")
    (str study "started") (study.GetProperty("seconds").GetDouble())
printfn ""

let settings = study.GetProperty("settings").EnumerateArray() |> Seq.map (fun s -> s.GetString()) |> Seq.toArray
let claims = root.GetProperty("claims").EnumerateArray() |> Seq.toArray
let ids = claims |> Array.map (fun c -> str c "id") |> Array.distinct
printfn "| claim | %s |" (settings |> Array.map (fun s -> s.ToUpperInvariant()) |> String.concat " | ")
printfn "|---|%s" (settings |> Array.map (fun _ -> "---|") |> String.concat "")
for id in ids do
    let verdict s = claims |> Array.tryFind (fun c -> str c "id" = id && str c "setting" = s) |> Option.map (fun c -> str c "verdict") |> Option.defaultValue "–"
    printfn "| `%s` | %s |" id (settings |> Array.map verdict |> String.concat " | ")
let count v = claims |> Array.filter (fun c -> str c "verdict" = v) |> Array.length
printfn ""
printfn "%d reproduced, %d not reproduced, %d inconclusive." (count "reproduced") (count "not reproduced") (count "inconclusive")
printfn ""

let k = study.GetProperty("k").GetInt32()
printfn "| setting | model | Avg@%d %% [95%%] | Pass@%d %% [95%%] | Δ Avg@%d vs base | Δ Pass@%d vs base |" k k k k
printfn "|---|---|---|---|---|---|"
for row in root.GetProperty("rows").EnumerateArray() do
    printfn "| %s | %s | %s | %s | %s | %s |" ((str row "setting").ToUpperInvariant()) (str row "label")
        (interval (row.GetProperty "avg_at_k")) (interval (row.GetProperty "pass_at_k"))
        (interval (row.GetProperty "delta_avg_at_k")) (interval (row.GetProperty "delta_pass_at_k"))
