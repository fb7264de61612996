// Shared by the ablation scripts (sweep-*.fsx, opd-vs-opsd.fsx, custom-recipe.fsx), which start with
//
//   #r "nuget: TorchSharp, 0.107.0"
//   #r "nuget: libtorch-cpu-linux-x64, 2.10.0"
//   #load "LoadTorchSharp.fsx" "Trd.fsx" "Ablation.fsx"
//
// It opens the gym ablation (runs/ablations, or $TRD_ABLATIONS) with the quick study's sizes: 64 corpus problems,
// 32 held-out problems, K = 16 samples each, one training seed. Arms are cached by recipe, so a rerun only prints.
//
// Why every number carries an interval: 32 held-out problems are few. The 95% interval is a bootstrap over those
// problems (Trd.Core.Bootstrap, the one `trd study` uses), and Δ is the paired difference on the same problems.
// A Δ whose interval contains 0 is not a difference this gym resolves; nor does it cover training-seed noise.
//
// Run one script at a time: two TorchSharp processes on a 2-core machine oversubscribe its threads, and an arm that
// takes ~4 s alone took ~100 s beside a running `trd study`.
//
// Needs `dotnet build src/Trd.Cli -c Release` (Trd.Runtime, and Trd.Report with the plotly.min.js charts load).
#r "nuget: Plotly.NET, 6.0.0"
#r "../src/Trd.Cli/bin/Release/net10.0/linux-x64/Trd.Report.dll"

open System
open System.Diagnostics
open System.IO
open System.Text.Json
open Plotly.NET
open Trd.Core
open Trd.Runtime.Study

let private clock = Stopwatch.StartNew()

/// The ablation directory: $TRD_ABLATIONS, else runs/ablations at the repository root.
let directory =
    match Environment.GetEnvironmentVariable "TRD_ABLATIONS" with
    | null | "" -> Path.GetFullPath(Path.Combine(__SOURCE_DIRECTORY__, "..", "runs", "ablations"))
    | dir -> Path.GetFullPath dir

/// The training seed (one: these are quick ablations, not the study).
let seed = 1L

/// The pipeline's log goes to a file; the console gets one line per arm, and the gym's model training when the models
/// are not cached yet (minutes, once per machine).
let logPath = Path.Combine(directory, "ablation.log")
Directory.CreateDirectory directory |> ignore
let private writeLog (line: string) =
    File.AppendAllText(logPath, DateTime.Now.ToString "HH:mm:ss " + line + "\n")
    if line.StartsWith "gym " && not (line.Contains "cached at") then printfn "  %s" line

let gym = GymAblation(directory, seed = seed, log = Action<string> writeLog)

printfn "gym ablation in %s (pipeline log: %s)" (Path.GetRelativePath(Environment.CurrentDirectory, directory)) (Path.GetFileName logPath)

/// Trains (or reuses) one arm: the recipe on that setting's shared corpus, then Avg@16 / Pass@16 on the held-out set.
let run (setting: Setting) (recipe: Recipe) : AblationArm =
    let started = clock.Elapsed
    printf "  %-4s %s ..." (string setting) (string recipe)
    let arm = gym.Run(setting, recipe)
    printfn " %5.0f s" (clock.Elapsed - started).TotalSeconds
    arm

// ---- scores per held-out problem ---------------------------------------------------------------------------------

/// One model's held-out samples: per problem (ordered by id), the fraction of its K samples that are correct
/// (Avg@K's term) and 1 if any is (Pass@K's term).
type Scores = { Ids: string[]; Avg: float[]; Pass: float[] }

/// The scores in an eval/<model>/heldout.jsonl, checked against the summary the pipeline computed from the same file
/// (so the table and summary.json cannot disagree).
let private read (path: string) (summary: Trd.Runtime.Pipeline.EvalSummary) : Scores =
    let problems =
        Trd.Runtime.Data.RecordFile.Read<Trd.Runtime.Pipeline.EvalRecord>(path)
        |> Seq.map (fun r -> r.Id, (r.Samples |> Array.map (fun x -> x.Correct)))
        |> Seq.sortBy fst
        |> Seq.toArray
    let fraction (c: bool[]) = float (c |> Array.filter id |> Array.length) / float c.Length
    let s =
        { Ids = Array.map fst problems
          Avg = problems |> Array.map (snd >> fraction)
          Pass = problems |> Array.map (fun (_, c) -> if Array.contains true c then 1.0 else 0.0) }
    if abs (Array.average s.Avg - summary.MacroAvgAtK) > 1e-9 || abs (Array.average s.Pass - summary.MacroPassAtK) > 1e-9 then
        failwithf "%s: the samples give Avg %.4f / Pass %.4f but the summary says %.4f / %.4f" path
            (Array.average s.Avg) (Array.average s.Pass) summary.MacroAvgAtK summary.MacroPassAtK
    s

/// The base student's and the OPD teacher's held-out scores (evaluated once, then read back).
let reference =
    lazy (
        let r = gym.Reference()
        read r.BaseSamplesPath r.Base, read r.TeacherSamplesPath r.Teacher)

/// An arm's scores per held-out problem.
let scores (arm: AblationArm) : Scores = read arm.SamplesPath arm.Summary

/// Mean and 95% bootstrap interval over the held-out problems (one seed).
let interval (values: float[]) = Bootstrap.mean [| values |]

/// The paired difference a − b on the same held-out problems, with its 95% bootstrap interval.
let difference (a: Scores) (b: Scores) (pick: Scores -> float[]) =
    if a.Ids <> b.Ids then failwith "the two arms were evaluated on different held-out problems"
    Bootstrap.difference [| pick a |] [| pick b |]

// ---- tables ------------------------------------------------------------------------------------------------------

let private pct (i: Interval) = sprintf "%5.1f [%5.1f, %5.1f]" (100.0 * i.Mean) (100.0 * i.Low) (100.0 * i.High)
let private signedPct (i: Interval) = sprintf "%+5.1f [%+5.1f, %+5.1f]" (100.0 * i.Mean) (100.0 * i.Low) (100.0 * i.High)
let private resolved (i: Interval) = if i.Low > 0.0 || i.High < 0.0 then " *" else ""

let private footnote (problems: int) =
    printfn "  Avg@16 and Pass@16 in %%, [95%% bootstrap interval over the %d held-out problems]; one training seed." problems
    printfn "  Δ is paired on the same problems; * marks a Δ whose interval excludes 0. Differences of a few points are noise"
    printfn "  here, and no interval covers training-seed variation: rerun with other seeds before believing a starred Δ."

/// The mean over training steps of one field of the arm's metrics.jsonl (e.g. "clip_fraction", "kl_pre_clip"); a step
/// whose value was not finite (written as null) counts as NaN, so a diverged run shows as NaN, not as a smaller mean.
let trainingMean (field: string) (arm: AblationArm) =
    Trd.Runtime.Logging.MetricsLog.Read(arm.MetricsPath).Records
    |> Seq.filter (fun r -> r.Step.HasValue && r.Values.ContainsKey field)
    |> Seq.map (fun r -> let v = r.Values[field] in if v.HasValue then v.Value else nan)
    |> Seq.average

/// Prints the base student and the OPD teacher, then each (label, arm) with Avg@16 and Pass@16, the paired
/// Δ Avg@16 against the row labelled `versus`, and one column per (header, value of an arm) in `extra`.
let tableWith (extra: (string * (AblationArm -> string)) list) (title: string) (versus: string) (rows: (string * AblationArm) list) =
    let baseScores, teacherScores = reference.Value
    let scored = rows |> List.map (fun (label, arm) -> label, arm, scores arm)
    let against =
        match scored |> List.tryFind (fun (label, _, _) -> label = versus) with
        | Some (_, _, s) -> s
        | None -> failwithf "table: no row is labelled '%s'" versus
    let width = scored |> List.map (fun (label, _, _) -> label.Length) |> List.fold max 24
    let deltaHeader = $"Δ Avg@16 vs {versus}"
    let deltaWidth = max 24 deltaHeader.Length
    printfn "\n%s" title
    (sprintf "  %-*s  %-20s  %-20s  %-*s%s" width "" "Avg@16" "Pass@16" deltaWidth deltaHeader
        (extra |> List.map (fun (h, _) -> sprintf "  %12s" h) |> String.concat "")).TrimEnd() |> printfn "%s"
    let line label (s: Scores) delta cells =
        (sprintf "  %-*s  %s  %s  %-*s%s" width label (pct (interval s.Avg)) (pct (interval s.Pass)) deltaWidth delta cells).TrimEnd() |> printfn "%s"
    line "base student" baseScores "" ""
    line "OPD teacher" teacherScores "" ""
    for label, arm, s in scored do
        let delta = if label = versus then "(reference)" else let d = difference s against _.Avg in signedPct d + resolved d
        line label s delta (extra |> List.map (fun (_, f) -> sprintf "  %12s" (f arm)) |> String.concat "")
    footnote baseScores.Ids.Length

/// `tableWith` without extra columns.
let table title versus rows = tableWith [] title versus rows

/// Prints recipes side by side in the two settings: Avg@16 and Pass@16 in OPD and OPSD, and the paired Δ Avg@16
/// (OPSD − OPD) per recipe.
let tableBySetting (title: string) (rows: (string * AblationArm * AblationArm) list) =
    let baseScores, teacherScores = reference.Value
    let width = rows |> List.map (fun (l, _, _) -> l.Length) |> List.fold max 24
    printfn "\n%s" title
    printfn "  %-*s  %-20s  %-20s  %-20s  %-20s  %s" width "" "OPD Avg@16" "OPSD Avg@16" "OPD Pass@16" "OPSD Pass@16" "Δ Avg@16 OPSD − OPD"
    let blank = String(' ', 20)
    printfn "  %-*s  %s  %s  %s" width "base student (both)" (pct (interval baseScores.Avg)) blank (pct (interval baseScores.Pass))
    printfn "  %-*s  %s  %s  %s" width "OPD teacher" (pct (interval teacherScores.Avg)) blank (pct (interval teacherScores.Pass))
    for label, opd, opsd in rows do
        let a, b = scores opd, scores opsd
        let d = difference b a _.Avg
        printfn "  %-*s  %s  %s  %s  %s  %s%s" width label (pct (interval a.Avg)) (pct (interval b.Avg))
            (pct (interval a.Pass)) (pct (interval b.Pass)) (signedPct d) (resolved d)
    footnote baseScores.Ids.Length

// ---- charts ------------------------------------------------------------------------------------------------------

let private palette = [| "#1f77b4"; "#d62728"; "#2ca02c"; "#9467bd" |]

/// Saves <ablations>/charts/<script>.html: two panels, Avg@16 and Pass@16 (in %), one bar per label and series with
/// its 95% whisker, the base student as a grey dashed line. Legend entries come from the first panel only; with several
/// series each bar is also labelled with its series' name, so the chart reads the same with or without a legend.
let chartSeries (title: string) (series: (string * (string * AblationArm) list) list) : unit =
    let baseScores, _ = reference.Value
    let panel (first: bool) (metric: string) (pick: Scores -> float[]) =
        let bars =
            series
            |> List.mapi (fun i (name, rows) ->
                let intervals = rows |> List.map (fun (_, arm) -> interval (pick (scores arm)))
                let labels = rows |> List.map fst
                Chart.Column(
                    values = (intervals |> List.map (fun x -> 100.0 * x.Mean)), Keys = labels, Name = name,
                    ShowLegend = (first && series.Length > 1), MarkerColor = Color.fromHex palette[i % palette.Length],
                    MultiText = (if series.Length > 1 then List.replicate labels.Length name else []),
                    TextPosition = StyleParam.TextPosition.Inside, UseDefaults = false)
                |> Chart.withYErrorStyle (
                    Array = (intervals |> List.map (fun x -> 100.0 * (x.High - x.Mean))),
                    Arrayminus = (intervals |> List.map (fun x -> 100.0 * (x.Mean - x.Low))),
                    Symmetric = false, Thickness = 1.2, Width = 3))
        let labels = series |> List.collect (snd >> List.map fst) |> List.distinct
        let baseLine =
            Chart.Line(x = labels, y = List.replicate labels.Length (100.0 * Array.average (pick baseScores)), Name = "base student",
                       ShowLegend = first, LineColor = Color.fromHex "#7f7f7f", LineDash = StyleParam.DrawingStyle.Dash, UseDefaults = false)
        bars @ [ baseLine ]
        |> Chart.combine
        |> Chart.withYAxisStyle (TitleText = metric + " (%)", MinMax = (0.0, 100.0))
    let chart =
        [ panel true "Avg@16" _.Avg; panel false "Pass@16" _.Pass ]
        |> Chart.Grid(nRows = 1, nCols = 2)
        |> Chart.withLayoutStyle (BarMode = StyleParam.BarMode.Group)
        |> Chart.withTitle (title + " · whiskers: 95% bootstrap interval · dashed: base student")
    let script = Path.GetFileNameWithoutExtension(fsi.CommandLineArgs[0])
    let path = Trd.Report.ChartFile.save (Path.Combine(directory, "charts")) script chart
    printfn "\nchart: %s" (Path.GetRelativePath(Environment.CurrentDirectory, path))
    printfn "done in %.0f s (after the script compiled)" clock.Elapsed.TotalSeconds

/// `chartSeries` with one series.
let chart (title: string) (rows: (string * AblationArm) list) = chartSeries title [ ("", rows) ]
