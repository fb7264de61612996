namespace Trd.Report

open System
open System.IO
open System.Text.Json

// The grid's report.html: where TRD wins across gym variants (docs/study.md, "The grid"). Like the study's report, every
// number is read from a results file — grid-results.json here — and carries its JSON pointer; each cell links to its
// own study report (cells/<variant>/report.html).

/// One setting of one grid cell.
type GridCellSetting =
    { Setting: Text
      Source: Text
      BestAvgBaseline: Text
      GapAvgAtK: Estimate
      BestPassBaseline: Text
      GapPassAtK: Estimate
      BaseAvgAtK: Estimate
      TrdAvgAtK: Estimate
      DIncorrectYO: Num
      DIncorrectYR: Num
      EpistemicMassYO: Num
      EpistemicMassYR: Num
      YOAccuracy: Estimate
      YRAccuracy: Estimate
      Joint: JointCounts
      ClipFraction: Num option
      TeacherMassOutsideTopK: Num option
      Verdicts: (string * Text)[] }

/// One cell of the grid.
type GridCell =
    { Name: Text
      Folder: Text
      Knobs: (string * Text)[]
      Student: Text
      Teacher: Text
      Cards: ModelCard[]
      Settings: GridCellSetting[] }

/// grid-results.json.
type GridResults =
    { Command: Text
      Axes: (Text * Text[])[]
      Seeds: Num[]
      ModelSeeds: Num
      TrainProblems: Num
      HeldoutProblems: Num
      K: Num
      Machine: Text
      Started: Text
      Seconds: Num
      Versions: (string * Text)[]
      Cells: GridCell[]
      Predictions: ClaimResult[] }

/// The report's view of grid-results.json and the page drawn from it.
[<RequireQualifiedAccess>]
module GridReport =

    type private R = Trd.Runtime.Study.GridResults

    let private under = Results.under
    let private n = Results.n
    let private t = Results.t
    let private many at view xs = Results.many at view xs
    let private maybe at (v: Nullable<float>) = if v.HasValue then Some(n at v.Value) else None

    let private setting at (s: Trd.Runtime.Study.GridCellSetting) : GridCellSetting =
        let f = under at s
        { Setting = t (f (nameof s.Setting)) s.Setting; Source = t (f (nameof s.Source)) s.Source
          BestAvgBaseline = t (f (nameof s.BestAvgBaseline)) s.BestAvgBaseline; GapAvgAtK = Results.estimate (f (nameof s.GapAvgAtK)) s.GapAvgAtK
          BestPassBaseline = t (f (nameof s.BestPassBaseline)) s.BestPassBaseline; GapPassAtK = Results.estimate (f (nameof s.GapPassAtK)) s.GapPassAtK
          BaseAvgAtK = Results.estimate (f (nameof s.BaseAvgAtK)) s.BaseAvgAtK; TrdAvgAtK = Results.estimate (f (nameof s.TrdAvgAtK)) s.TrdAvgAtK
          DIncorrectYO = n (f (nameof s.DIncorrectYO)) s.DIncorrectYO; DIncorrectYR = n (f (nameof s.DIncorrectYR)) s.DIncorrectYR
          EpistemicMassYO = n (f (nameof s.EpistemicMassYO)) s.EpistemicMassYO; EpistemicMassYR = n (f (nameof s.EpistemicMassYR)) s.EpistemicMassYR
          YOAccuracy = Results.estimate (f (nameof s.YOAccuracy)) s.YOAccuracy; YRAccuracy = Results.estimate (f (nameof s.YRAccuracy)) s.YRAccuracy
          Joint = Results.joint (f (nameof s.Joint)) s.Joint
          ClipFraction = maybe (f (nameof s.ClipFraction)) s.ClipFraction
          TeacherMassOutsideTopK = maybe (f (nameof s.TeacherMassOutsideTopK)) s.TeacherMassOutsideTopK
          Verdicts = Results.keyed (f (nameof s.Verdicts)) t s.Verdicts }

    let private cell at (c: Trd.Runtime.Study.GridCell) : GridCell =
        let f = under at c
        { Name = t (f (nameof c.Name)) c.Name; Folder = t (f (nameof c.Folder)) c.Folder; Knobs = Results.keyed (f (nameof c.Knobs)) t c.Knobs
          Student = t (f (nameof c.Student)) c.Student; Teacher = t (f (nameof c.Teacher)) c.Teacher
          Cards = many (f (nameof c.Cards)) Results.modelCard c.Cards; Settings = many (f (nameof c.Settings)) setting c.Settings }

    /// The view of grid results in memory, each value with its pointer in grid-results.json.
    [<CompiledName("OfGrid")>]
    let ofGrid (r: R) : GridResults =
        let f = under "" r
        let g = r.Grid
        let gf = under (f (nameof r.Grid)) g
        let axes =
            g.Axes
            |> Array.mapi (fun i a ->
                let at = JsonPointer.appendIndex (gf (nameof g.Axes)) i
                let af = under at a
                t (af (nameof a.Knob)) a.Knob, many (af (nameof a.Values)) t a.Values)
        { Command = t (gf (nameof g.Command)) g.Command; Axes = axes
          Seeds = many (gf (nameof g.Seeds)) (fun p (x: int64) -> n p (float x)) g.Seeds
          ModelSeeds = n (gf (nameof g.ModelSeeds)) (float g.ModelSeeds)
          TrainProblems = n (gf (nameof g.TrainProblems)) (float g.TrainProblems)
          HeldoutProblems = n (gf (nameof g.HeldoutProblems)) (float g.HeldoutProblems)
          K = n (gf (nameof g.K)) (float g.K); Machine = t (gf (nameof g.Machine)) g.Machine
          Started = t (gf (nameof g.Started)) (JsonSerializer.Serialize(g.Started).Trim('"'))
          Seconds = n (gf (nameof g.Seconds)) g.Seconds; Versions = Results.keyed (gf (nameof g.Versions)) t g.Versions
          Cells = many (f (nameof r.Cells)) cell r.Cells
          Predictions = many (f (nameof r.Predictions)) Results.claim r.Predictions }

    /// Reads and checks a grid directory's grid-results.json (every error names the file and the JSON pointer).
    [<CompiledName("Read")>]
    let read (gridDirectory: string) : GridResults =
        let path = Path.Combine(gridDirectory, R.FileName)
        if not (File.Exists path) then
            raise (FileNotFoundException($"{path}: no grid-results.json (has `trd study --grid` finished in this directory?)", path))
        let document =
            try JsonDocument.Parse(File.ReadAllText path)
            with :? JsonException as e -> raise (InvalidDataException($"{path}: not JSON: {e.Message}", e))
        use document = document
        Schema.check path typeof<R> document.RootElement
        match document.RootElement.Deserialize<R>(Trd.Runtime.Study.StudyResults.Json) with
        | Null -> raise (InvalidDataException $"{path}: (the document): null")
        | NonNull results -> ofGrid results

    // ---- the page ----------------------------------------------------------------------------------------------

    let private td (cls: string) (inner: string) = if cls = "" then $"<td>{inner}</td>" else $"<td class=\"{cls}\">{inner}</td>"
    let private th (inner: string) = $"<th>{inner}</th>"
    let private thNum (inner: string) = $"<th class=\"n\">{inner}</th>"
    let private dash = "<span class=\"missing\">—</span>"
    let private pct = Html.num "pct1"
    let private spts (e: Estimate) = $"""{Html.num "signed_pts1" e.Mean} {Html.interval "pts1" e}"""
    let private g4 (x: Num) = Html.num "f4" x
    let private label (id: string) = Trd.Core.Methods.label id

    let private settingsOf (r: GridResults) =
        r.Cells |> Array.collect (fun c -> c.Settings |> Array.map (fun s -> s.Setting)) |> Array.distinctBy _.Value

    let private valueOf (c: GridCell) (knob: string) =
        c.Knobs |> Array.tryFind (fun (k, _) -> k = knob) |> Option.map (fun (_, v) -> v.Value) |> Option.defaultValue "default"

    /// The heatmaps of one setting: rows are the cells' values of every axis but the last, columns the last axis.
    let private heatmaps (next: unit -> string) (r: GridResults) (s: Text) =
        let axes = r.Axes |> Array.map (fun (k, _) -> k.Value)
        let columnKnob = axes[axes.Length - 1]
        let rowOf (c: GridCell) = axes[.. axes.Length - 2] |> Array.map (fun k -> $"{k}={valueOf c k}") |> String.concat " "
        let columns = (snd r.Axes[axes.Length - 1]) |> Array.map (fun v -> v.Value)
        let rows = r.Cells |> Array.map rowOf |> Array.distinct
        let kText = Format.number "int" r.K.Value
        let one (metric: string) (pick: GridCellSetting -> Estimate) (baseline: GridCellSetting -> Text) =
            let find row column =
                r.Cells |> Array.tryFind (fun c -> rowOf c = row && valueOf c columnKnob = column)
                |> Option.bind (fun c -> c.Settings |> Array.tryFind (fun x -> x.Setting.Value = s.Value) |> Option.map (fun x -> c, x))
            let z = rows |> Array.map (fun row -> columns |> Array.map (fun col -> match find row col with Some(_, x) -> 100.0 * (pick x).Mean.Value | None -> nan))
            let inv = Globalization.CultureInfo.InvariantCulture
            let labels = z |> Array.map (Array.map (fun v -> if Double.IsFinite v then v.ToString("+0.0;-0.0;0.0", inv) else "—"))
            let hover =
                rows |> Array.map (fun row -> columns |> Array.map (fun col ->
                    match find row col with
                    | Some(c, x) ->
                        let e = pick x
                        $"""{c.Name.Value}<br>TRD − {label (baseline x).Value}: {Format.number "signed_pts1" e.Mean.Value} pts """
                        + $"""[{Format.number "pts1" e.Low.Value}, {Format.number "pts1" e.High.Value}]<br>runs from {x.Source.Value}"""
                    | None -> "not run"))
            let y = if rows.Length = 1 && rows[0] = "" then [| "" |] else rows
            let chart = Charts.gapHeatmap $"{s.Value.ToUpperInvariant()}: TRD − best baseline, {metric}@{kText} (points)" (columns |> Array.map (fun v -> $"{columnKnob}={v}")) y z labels
            Charts.embedGap (next ()) (160 + 56 * rows.Length) chart z hover
        $"""<h3>{Html.upper s}</h3><div class="grid">{one "Avg" (fun x -> x.GapAvgAtK) (fun x -> x.BestAvgBaseline)}{one "Pass" (fun x -> x.GapPassAtK) (fun x -> x.BestPassBaseline)}</div>"""

    /// TRD's Avg@K at or above which a cell is flagged as near the ceiling: every method there is bounded by 100%, so
    /// its gap (and any contrast built on it) says more about saturation than about the mechanism.
    let Ceiling = 0.95

    let private gapTable (r: GridResults) (s: Text) =
        let k = Html.num "int" r.K
        let rows =
            r.Cells
            |> Array.choose (fun c -> c.Settings |> Array.tryFind (fun x -> x.Setting.Value = s.Value) |> Option.map (fun x -> c, x))
            |> Array.map (fun (c, x) ->
                [ td "label" $"<a href=\"cells/{Html.esc c.Folder.Value}/report.html\">{Html.text c.Name}</a>"
                  td "n" $"{pct x.BaseAvgAtK.Mean}"; td "n" $"{pct x.TrdAvgAtK.Mean}"
                  td "" (Html.esc (label x.BestAvgBaseline.Value)); td "n" (spts x.GapAvgAtK)
                  td "" (Html.esc (label x.BestPassBaseline.Value)); td "n" (spts x.GapPassAtK)
                  td "src" (if x.Source.Value = c.Folder.Value then "this cell" else $"<code>{Html.text x.Source}</code>")
                  td "" (if x.TrdAvgAtK.Mean.Value >= Ceiling then "near the ceiling: TRD solves almost every sample, so no gap can be large" else "") ] |> Seq.ofList)
        let table =
            Html.table "results" [ th "Cell"; thNum $"Base Avg@{k}"; thNum $"TRD Avg@{k}"; th "Best baseline (Avg)"; thNum "TRD − best, Avg (pts)"
                                   th "Best baseline (Pass)"; thNum "TRD − best, Pass (pts)"; th "Runs from" ] rows
        table.Replace("<thead>", $"<caption>{Html.upper s}: the best baseline is the one with the highest mean in the cell; the gap is paired over runs and problems with its 95%% bootstrap interval.</caption><thead>")

    let private diagnosticsTable (r: GridResults) (s: Text) =
        let opt (v: Num option) = match v with Some x -> td "n" (Html.num "pct2" x) | None -> td "n" dash
        let rows =
            r.Cells
            |> Array.choose (fun c -> c.Settings |> Array.tryFind (fun x -> x.Setting.Value = s.Value) |> Option.map (fun x -> c, x))
            |> Array.map (fun (c, x) ->
                [ td "label" (Html.text c.Name); td "n" (g4 x.DIncorrectYO); td "n" (g4 x.DIncorrectYR)
                  td "n" (Html.num "f4" x.EpistemicMassYO); td "n" (Html.num "f4" x.EpistemicMassYR)
                  td "n" $"{pct x.YOAccuracy.Mean} → {pct x.YRAccuracy.Mean}"
                  td "n" $"""{Html.num "int" x.Joint.FailPass} / {Html.num "int" x.Joint.PassFail}"""
                  opt x.ClipFraction; opt x.TeacherMassOutsideTopK ] |> Seq.ofList)
        Html.table "compact" [ th "Cell"; thNum "D^incorrect y_o"; thNum "D^incorrect y_r"; thNum "Epistemic mass y_o"; thNum "y_r"
                               thNum "Accuracy y_o → y_r"; thNum "fail→pass / pass→fail"; thNum "FKL w/ Clip clipped"; thNum "Teacher mass outside top-K" ] rows

    let private verdictsTable (r: GridResults) (s: Text) =
        let ids = r.Cells |> Array.collect (fun c -> c.Settings |> Array.filter (fun x -> x.Setting.Value = s.Value) |> Array.collect (fun x -> x.Verdicts |> Array.map fst)) |> Array.distinct
        let rows =
            r.Cells
            |> Array.choose (fun c -> c.Settings |> Array.tryFind (fun x -> x.Setting.Value = s.Value) |> Option.map (fun x -> c, x))
            |> Array.map (fun (c, x) ->
                Seq.append [ td "label" (Html.text c.Name) ]
                    (ids |> Array.map (fun id ->
                        match x.Verdicts |> Array.tryFind (fun (k, _) -> k = id) with
                        | Some(_, v) -> $"<td><span class=\"badge {Report.verdictClass v.Value}\">{Html.text v}</span></td>"
                        | None -> td "" dash)))
        Html.table "verdicts" (Seq.append [ th "Cell" ] (ids |> Array.map (fun id -> th (Html.esc id)))) rows

    let private cardsTable (r: GridResults) =
        let opt (v: Num option) = match v with Some x -> td "n" (pct x) | None -> td "n" dash
        let rows =
            r.Cells
            |> Array.collect (fun c ->
                c.Cards |> Array.map (fun m ->
                    [ td "label" (Html.text c.Name); td "" (Html.text m.Role); td "src" $"<code>{Html.text m.Directory}</code>"
                      td "n" (pct m.SolveAccuracy); opt m.RefineAccuracy; opt m.RefineWithReferenceAccuracy ] |> Seq.ofList))
        Html.table "compact" [ th "Cell"; th "Model"; th "Directory"; thNum "Solve"; thNum "Refine (OPD)"; thNum "Refine given y* (OPSD)" ] rows

    let private predictions (r: GridResults) =
        if r.Predictions.Length = 0 then "<p class=\"note\">The grid has no catch or recovery axis, so the prediction is not judged.</p>"
        else
            let items =
                r.Predictions
                |> Array.map (fun c ->
                    $"<li><span class=\"badge {Report.verdictClass c.Verdict.Value}\">{Html.text c.Verdict}</span>"
                    + $"<div class=\"claim\"><div class=\"text\">{Html.text c.Claim}</div>"
                    + $"<div class=\"measured\">Measured: {Html.text c.Measured}</div></div></li>")
                |> String.concat "\n"
            let rule = r.Predictions[0].Rule
            let paper = Trd.Core.Claims.paperFigure "advantage_grows_catch"
            $"<ul class=\"claims\">\n{items}\n</ul><p class=\"note\">Rule: {Html.text rule}</p>"
            + $"<div class=\"claim\"><div class=\"paper\"><span class=\"tag\">the paper's</span> {Html.esc paper}</div></div>"

    let private summary (r: GridResults) =
        let fact (term: string) (value: string) = $"<dt>{term}</dt><dd>{value}</dd>"
        let axes = r.Axes |> Array.map (fun (k, vs) -> $"""{Html.text k} = {vs |> Array.map Html.text |> String.concat ", "}""") |> String.concat "; "
        [ "<dl class=\"facts\">"
          fact "Command" $"<code>{Html.text r.Command}</code>"
          fact "Axes" axes
          fact "Every cell ran" $"""seeds {r.Seeds |> Array.map (Html.num "int") |> String.concat ", "}; {Html.num "int" r.TrainProblems} corpus and {Html.num "int" r.HeldoutProblems} held-out problems; K = {Html.num "int" r.K}; model seeds {Html.num "int" r.ModelSeeds}"""
          fact "Machine" (Html.text r.Machine)
          fact "Started" (Html.text r.Started)
          fact "Duration" (Html.num "duration" r.Seconds)
          fact "Versions" (r.Versions |> Array.map (fun (k, v) -> $"<span class=\"key\">{Html.esc k}</span> {Html.text v}") |> String.concat "<br>")
          "</dl>" ]
        |> String.concat "\n"

    /// report.html of a grid.
    [<CompiledName("Render")>]
    let render (r: GridResults) : string =
        let mutable charts = 0
        let next () =
            charts <- charts + 1
            $"grid-chart-{charts}"
        let settings = settingsOf r
        let per (f: Text -> string) = settings |> Array.map (fun s -> $"<h3>{Html.upper s}</h3>" + f s) |> String.concat "\n"
        let sections =
            [ Report.section "where" "Where TRD wins"
                  "TRD − the best dense-KL baseline in every cell of the grid (green: TRD ahead, red: behind; hover for the 95% interval). OPSD never uses the OPD teacher, so cells that differ only in the teacher's catch rate share one OPSD run."
                  (settings |> Array.map (heatmaps next r) |> String.concat "\n" |> fun h -> h + per (gapTable r))
              Report.section "prediction" "The mechanism's prediction"
                  "The paper's mechanism predicts that TRD's advantage grows as the teacher collapses onto the student's failures (a lower catch rate) and as recovery from a flawed prefix gets longer (line, then restart, then none). Each line compares the two ends of one axis with the other knobs equal."
                  (predictions r)
              Report.section "mechanism" "The mechanism per cell (Fig. 3, Figs. 6–7)"
                  "D^incorrect on y_o (Forward KL's run) against y_r (TRD's), the teacher's epistemic-token mass on each, the corpus's verifier accuracy, fail→pass against pass→fail, and what the two loss-level baselines did to their objective."
                  (per (diagnosticsTable r))
              Report.section "verdicts" "Claims per cell" "Each cell's own verdicts (its report has the measurements)." (per (verdictsTable r))
              Report.section "models" "The models" "Every cell's student and teacher, from their cards: solve and refinement accuracy on unseen problems." (cardsTable r)
              Report.section "plan" "What was run" "" (summary r) ]
        let nav =
            [| "where", "Where TRD wins"; "prediction", "Prediction"; "mechanism", "Mechanism"; "verdicts", "Claims per cell"; "models", "Models"; "plan", "Plan" |]
            |> Array.map (fun (id, title) -> $"<a href=\"#{id}\">{title}</a>") |> String.concat ""
        [ "<!DOCTYPE html>"; "<html lang=\"en\">"; "<head>"; "<meta charset=\"utf-8\">"
          "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
          "<title>Trd grid report</title>"
          $"<style>{Report.css}</style>"
          $"<script src=\"{Report.PlotlyJsFileName}\"></script>"
          $"""<script>{Report.script.Replace("results.json ", "grid-results.json ")}</script>"""
          "</head>"; "<body>"; "<main>"; "<header>"
          "<h1>Trd grid report</h1>"
          "<p>TRD against the dense-KL baselines across a grid of gym variants (docs/gym.md, \"Knobs\"), aggregated from grid-results.json; each cell's own report is linked from its name.</p>"
          $"<nav>{nav}</nav>"; "</header>"
          String.concat "\n" sections
          "<footer>Every value printed here is read from grid-results.json: hover over a number to see its JSON pointer.</footer>"
          "</main>"; "</body>"; "</html>" ]
        |> String.concat "\n"
        |> fun html -> html + "\n"

    let private writeHtml (directory: string) (view: GridResults) =
        Report.copyPlotlyJs directory |> ignore
        let report = Path.Combine(directory, Report.ReportFileName)
        Trd.Runtime.Checkpoints.AtomicFile.WriteText(report, render view)
        report

    /// Writes report.html (and plotly.min.js) into the grid directory for grid results in memory. Returns its path.
    [<CompiledName("WriteResults")>]
    let writeResults (results: R) (gridDirectory: string) : string =
        ofGrid results |> writeHtml (Path.GetFullPath gridDirectory)

    /// Rebuilds a grid's report.html from its grid-results.json. Returns its path.
    [<CompiledName("Write")>]
    let write (gridDirectory: string) : string =
        let directory = Path.GetFullPath gridDirectory
        read directory |> writeHtml directory
