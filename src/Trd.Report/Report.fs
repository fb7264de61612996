namespace Trd.Report

open System
open System.IO
open System.Reflection
open System.Text
open Plotly.NET

/// A study's results.json as one offline report.html (docs/report.md): what was run, Tables 1–4, Fig. 3's training
/// diagnostics, Fig. 5 and Figs. 6–7's trajectory analysis, Fig. 8's difficulty buckets, pass@k curves, App. B.3's
/// subset ablation and the paper's claims with their verdicts. Every printed value of results.json is a span naming its
/// JSON pointer and format (Html.span), so each number can be checked against the file.
module Report =

    /// The report's name in a study directory.
    [<Literal>]
    let ReportFileName = "report.html"

    /// The chart library's name, beside Trd.Report.dll and beside every report.html.
    [<Literal>]
    let PlotlyJsFileName = "plotly.min.js"

    /// The plotly.js version Plotly.NET targets (its Globals.PLOTLYJS_VERSION); build/PlotlyJs.targets fetches it.
    [<CompiledName("PlotlyJsVersion")>]
    let plotlyJsVersion: string = Globals.PLOTLYJS_VERSION

    /// The sections' ids, in page order.
    [<CompiledName("SectionIds")>]
    let sectionIds: string[] = [| "verdicts"; "summary"; "results"; "diagnostics"; "trajectories"; "buckets"; "passk"; "subsets"; "claims" |]

    // ---- ordering and names ---------------------------------------------------------------------------------------

    /// A model's place in every table and chart: Trd.Core's catalogue order (Base, Teacher, then Table 13's methods).
    let private rank (model: string) = Trd.Core.Methods.rank model

    let private byModel (rows: ResultRow seq) = rows |> Seq.sortBy (fun r -> rank r.Model.Value) |> Seq.toArray

    let private td (cls: string) (inner: string) = if cls = "" then $"<td>{inner}</td>" else $"<td class=\"{cls}\">{inner}</td>"
    let private th (inner: string) = $"<th>{inner}</th>"
    let private thNum (inner: string) = $"<th class=\"n\">{inner}</th>"
    let private dash = "<span class=\"missing\">—</span>"

    // Printed values, by format (Format).
    let private pct = Html.num "pct1"
    let private spct = Html.num "signed_pct1"
    let private int' = Html.num "int"
    let private f1 = Html.num "f1"
    let private pts = Html.interval "pts1"
    let private spts = Html.interval "signed_pts1"
    let private lines (parts: string seq) = String.concat "\n" parts

    /// Percent of a mean with its interval below it: "42.3%" and "[40.1, 44.5]".
    let private meanWithInterval (e: Estimate) = $"{pct e.Mean} {pts e}"

    /// The class of a change by its interval: up or down when the interval excludes zero.
    let private direction (d: Estimate) =
        if d.Low.Value > 0.0 then "up" elif d.High.Value < 0.0 then "down" else "flat"

    let private delta (d: Estimate option) =
        match d with
        | Some d -> td $"n {direction d}" $"{spct d.Mean} {spts d}"
        | None -> td "n" dash

    let private trajectoryName (t: Text option) =
        match t with
        | Some t -> Html.text t
        | None -> dash

    let private percent (v: float) = v * 100.0

    let private bar (category: string) (e: Estimate) : Charts.Bar =
        { Category = category; Mean = percent e.Mean.Value; Low = percent e.Low.Value; High = percent e.High.Value }

    /// A section's page state: charts get unique ids in page order.
    type private Page() =
        let mutable charts = 0
        member _.Chart (height: int) (chart: GenericChart) =
            charts <- charts + 1
            Charts.embed $"chart-{charts}" height chart

    // ---- sections --------------------------------------------------------------------------------------------------

    let private settingsOf (r: StudyResults) : Text[] =
        let named = r.Study.Settings
        let extra =
            Seq.concat [ r.Rows |> Seq.map _.Setting; r.Diagnostics |> Seq.map _.Setting; r.Trajectories |> Seq.map _.Setting ]
            |> Seq.filter (fun s -> named |> Array.forall (fun n -> n.Value <> s.Value))
            |> Seq.distinctBy _.Value
        Array.append named (Seq.toArray extra)

    let private h3 (setting: Text) = $"<h3>{Html.upper setting}</h3>"

    /// The legend of a group of charts: each model's colour and its label (charts carry none of their own).
    let private legend (entries: (string * string) seq) =
        entries
        |> Seq.map (fun (model, label) -> $"<span class=\"entry\"><span class=\"swatch\" style=\"background:{Charts.colour model}\"></span>{label}</span>")
        |> String.concat ""
        |> sprintf "<div class=\"legend\">%s</div>"

    let private rowLegend (rows: ResultRow seq) = rows |> Seq.map (fun x -> x.Model.Value, Html.text x.Label) |> legend

    let private keyed (entries: (string * Text)[]) =
        entries
        |> Array.map (fun (key, value) -> $"<span class=\"key\">{Html.esc key}</span> {Html.text value}")
        |> String.concat "<br>"

    let private joinedNum (format: string) (values: Num[]) = values |> Array.map (Html.num format) |> String.concat ", "
    let private joinedText (values: Text[]) = values |> Array.map Html.text |> String.concat ", "

    let internal verdictClass (verdict: string) =
        match verdict with
        | "reproduced" -> "ok"
        | "not reproduced" -> "bad"
        | "inconclusive" -> "warn"
        | _ -> "other"

    /// The models' own cards: solve and refinement accuracy on unseen pretraining-split problems, beside the refined
    /// trajectories' accuracy in each setting's corpus (the refinement the study actually drew).
    let private cards (r: StudyResults) =
        if r.ModelCards.Length = 0 then ""
        else
            let opt (v: Num option) = match v with Some x -> td "n" (pct x) | None -> td "n" dash
            let rows =
                r.ModelCards
                |> Array.map (fun c ->
                    [ td "label" (Html.text c.Role); td "n" (Html.num "int" c.ModelSeed); td "n" (pct c.SolveAccuracy)
                      opt c.RefineAccuracy; opt c.RefineWithReferenceAccuracy; td "src" $"<code>{Html.text c.Directory}</code>" ] |> Seq.ofList)
            let corpus =
                r.Trajectories
                |> Array.map (fun a ->
                    let acc key = a.Accuracy |> Array.tryFind (fun (k, _) -> k = key) |> Option.map snd
                    match acc "y_o", acc "y_r" with
                    | Some yo, Some yr -> $"{Html.upper a.Setting}: y_o {meanWithInterval yo}, y_r {meanWithInterval yr}"
                    | _ -> "")
                |> Array.filter (fun x -> x <> "")
                |> String.concat "; "
            let table = Html.table "compact" [ th "Model"; thNum "Model seed"; thNum "Solve"; thNum "Refine (OPD)"; thNum "Refine given y* (OPSD)"; th "Directory" ] rows
            $"<h4>The models' refinement accuracy</h4>{table}<p class=\"note\">Each model's card (card.json): accuracy on unseen "
            + "pretraining-split problems at the rollout sampling. Refinement is what TRD's y_r rests on: the OPD teacher refines the "
            + $"student's attempt, and in OPSD the student refines its own given y*. Verifier accuracy of the corpus this study drew: {corpus}.</p>"

    /// Claims × settings, coloured by verdict: the study's answer before its tables.
    let private verdicts (r: StudyResults) =
        if r.Claims.Length = 0 then "<p class=\"note\">No claims were evaluated.</p>"
        else
            let settings = r.Claims |> Array.map (fun c -> c.Setting.Value) |> Array.distinct
            let ids = r.Claims |> Array.map (fun c -> c.Id.Value) |> Array.distinct
            let rows =
                ids
                |> Array.map (fun id ->
                    let first = r.Claims |> Array.find (fun c -> c.Id.Value = id)
                    let cells =
                        settings
                        |> Array.map (fun s ->
                            match r.Claims |> Array.tryFind (fun c -> c.Id.Value = id && c.Setting.Value = s) with
                            | Some c -> $"<td><span class=\"badge {verdictClass c.Verdict.Value}\">{Html.text c.Verdict}</span></td>"
                            | None -> td "" dash)
                    Seq.append [ td "label" (Html.text first.Id) ] cells)
            Html.table "verdicts" (Seq.append [ th "Claim" ] (settings |> Array.map (fun s -> th (Html.esc (s.ToUpperInvariant()))))) rows
            + $"<p class=\"note\">Each verdict follows the rule stated with the claim at the end of the report, from intervals, never a point estimate.</p>"

    let private summary (r: StudyResults) =
        let s = r.Study
        let fact (term: string) (value: string) = $"<dt>{term}</dt><dd>{value}</dd>"
        [ "<dl class=\"facts\">"
          fact "Command" $"<code>{Html.text s.Command}</code>"
          fact "Quick plan" (Html.yesNo s.Quick)
          fact "Seeds" (joinedNum "int" s.Seeds)
          (match s.ModelSeeds with
           | Some m -> fact "Model seeds" (Html.num "int" m + " (independent trainings of the student and teacher; every seed ran under each)")
           | None -> "")
          fact "Settings" (s.Settings |> Array.map Html.upper |> String.concat ", ")
          fact "Methods" (joinedText s.Methods)
          fact "Samples per problem (K)" (Html.num "int" s.K)
          fact "Problems" $"{int' s.TrainProblems} corpus problems per seed; {int' s.HeldoutProblems} held-out problems"
          fact "Models" (keyed s.Models)
          fact "Machine" (Html.text s.Machine)
          fact "Started" (Html.text s.Started)
          fact "Duration" (Html.num "duration" s.Seconds)
          fact "Versions" (keyed s.Versions)
          (if r.Gym.Length = 0 then fact "Gym" "the default gym (docs/gym.md)"
           else fact "Gym variant" (keyed r.Gym))
          "</dl>"
          cards r ]
        |> String.concat "\n"

    /// Below this mean share of the teacher's mass outside its top-K, a top-K support renormalises away almost nothing:
    /// Reverse KL w/ Top-K is then Reverse KL to within that share, and the report says the baseline is degenerate.
    let DegenerateTopKMass = 0.01

    /// What the two loss-level baselines did to their objective here: the share of positions Forward KL w/ Clip clipped,
    /// and the teacher mass Reverse KL w/ Top-K's support dropped (flagged when it is too small to matter).
    let private objectiveChecks (r: StudyResults) (setting: Text) =
        let checks = r.ObjectiveChecks |> Array.filter (fun c -> c.Setting.Value = setting.Value)
        let find id = checks |> Array.tryFind (fun c -> c.Method.Value = id)
        let clip =
            match find Trd.Core.Methods.forwardKlClip.Id with
            | Some c ->
                let share, interval = pct c.ClipFraction.Mean, pts c.ClipFraction
                [ $"Forward KL w/ Clip clipped {share} {interval} of its positions (D_t above the threshold; mean over steps)." ]
            | None -> []
        let topk =
            match find Trd.Core.Methods.reverseKlTopK.Id with
            | Some { TeacherMassOutsideTopK = Some m; TopK = k } ->
                let kText = int' k
                let flag =
                    if Double.IsFinite m.Mean.Value && m.High.Value < DegenerateTopKMass then
                        $" <strong>Degenerate on this gym:</strong> the top-{kText} drops less than one percent of the teacher's mass, so this baseline is Reverse KL to within that share; its row says nothing the Reverse KL row does not."
                    else ""
                let mass, interval = Html.num "pct2" m.Mean, Html.interval "pts2" m
                [ $"Reverse KL w/ Top-K: the teacher's mass outside its top-{kText} along y_o is {mass} {interval} on average.{flag}" ]
            | _ -> []
        match clip @ topk with
        | [] -> ""
        | lines -> "<p class=\"note\">" + String.concat " " lines + "</p>"

    let private results (page: Page) (r: StudyResults) (setting: Text) =
        let rows = r.Rows |> Array.filter (fun x -> x.Setting.Value = setting.Value) |> byModel
        if rows.Length = 0 then $"{h3 setting}<p class=\"note\">No result rows for this setting.</p>"
        else
            let k = int' r.Study.K
            let kText = Format.number "int" r.Study.K.Value
            let contenders = rows |> Array.filter (fun x -> x.Model.Value <> "teacher")
            let best (pick: ResultRow -> Estimate) =
                contenders |> Array.map (fun x -> (pick x).Mean.Value) |> Array.filter Double.IsFinite
                |> fun v -> if v.Length = 0 then nan else Array.max v
            let bestAvg, bestPass = best _.AvgAtK, best _.PassAtK
            let mark (best: float) (e: Estimate) = if e.Mean.Value = best then "n best" else "n"
            let header =
                [ th "Model"; th "Trajectory"; thNum $"Avg@{k} (%%)"; thNum "Change from base"; thNum $"Pass@{k} (%%)"; thNum "Change from base" ]
            let body =
                rows
                |> Array.map (fun x ->
                    [ td "label" (Html.text x.Label)
                      td "traj" (trajectoryName x.Trajectory)
                      td (if x.Model.Value = "teacher" then "n" else mark bestAvg x.AvgAtK) (meanWithInterval x.AvgAtK)
                      delta x.DeltaAvgAtK
                      td (if x.Model.Value = "teacher" then "n" else mark bestPass x.PassAtK) (meanWithInterval x.PassAtK)
                      delta x.DeltaPassAtK ] |> Seq.ofList)
            let reference = rows[0].AvgAtK
            let caption =
                $"<caption>{Html.upper setting}: Avg@{k} and Pass@{k} on the held-out problems, the mean over "
                + $"{int' reference.Seeds} run(s) (model seed × seed) of {int' r.Study.HeldoutProblems} held-out problems "
                + $"({int' reference.Problems} problem scores) with its 95%% bootstrap interval; "
                + "changes from base are paired over runs and problems. Bold: best in the block (teacher aside).</caption>"
            let table = (Html.table "results" header body).Replace("<thead>", caption + "<thead>")
            let perSeed =
                rows
                |> Array.collect (fun x ->
                    x.PerSeed
                    |> Array.map (fun s ->
                        [ td "label" (Html.text x.Label)
                          td "n" (match s.ModelSeed with Some m -> Html.num "int" m | None -> "")
                          td "n" (Html.num "int" s.Seed); td "n" (Html.num "pct1" s.AvgAtK)
                          td "n" (Html.num "pct1" s.PassAtK); td "src" $"<code>{Html.text s.Source}</code>" ] |> Seq.ofList))
            let perSeedTable =
                Html.table "compact" [ th "Model"; thNum "Model seed"; thNum "Seed"; thNum $"Avg@{k}"; thNum $"Pass@{k}"; th "Evaluation file" ] perSeed
            let chart =
                rows
                |> Array.map (fun x -> x.Label.Value, x.Model.Value, [| bar $"Avg@{kText}" x.AvgAtK; bar $"Pass@{kText}" x.PassAtK |])
                |> Charts.groupedBars $"Avg@{kText} and Pass@{kText} with 95%% intervals" "%"
            [ h3 setting
              table
              objectiveChecks r setting
              rowLegend rows
              page.Chart 340 chart
              $"<details><summary>Per-seed scores and their evaluation files</summary>{perSeedTable}</details>" ]
            |> String.concat "\n"

    let private metrics =
        [| "kl_correct", "D<sup>correct</sup>", "per-token KL, correct rollouts"
           "kl_incorrect", "D<sup>incorrect</sup>", "per-token KL, incorrect rollouts"
           "ppl_gap", "PPL gap", "PPL<sub>S</sub> − PPL<sub>T</sub>"
           "epistemic_mass", "Epistemic-token mass", "teacher's mass"
           "loss", "Loss", "training loss" |]

    let private diagnostics (page: Page) (r: StudyResults) (setting: Text) =
        let runs =
            r.Diagnostics
            |> Array.filter (fun d -> d.Setting.Value = setting.Value)
            |> Array.sortBy (fun d -> rank d.Method.Value)
        if runs.Length = 0 then $"{h3 setting}<p class=\"note\">No training diagnostics for this setting.</p>"
        else
            let series (d: DiagnosticRun) (metric: string) = d.Metrics |> Array.tryFind (fun (m, _) -> m = metric) |> Option.map snd
            let charts =
                metrics
                |> Array.choose (fun (metric, title, yTitle) ->
                    let bands =
                        runs
                        |> Array.choose (fun d ->
                            series d metric
                            |> Option.map (fun s ->
                                { Charts.Band.Name = $"{d.Label.Value} on {d.Trajectory.Value}"
                                  Charts.Band.Model = d.Method.Value
                                  Charts.Band.Steps = s.Steps |> Array.map _.Value
                                  Charts.Band.Mean = s.Mean |> Array.map _.Value
                                  Charts.Band.Min = s.Min |> Array.map _.Value
                                  Charts.Band.Max = s.Max |> Array.map _.Value }))
                    if bands.Length = 0 then None else Some(page.Chart 300 (Charts.bands title yTitle bands)))
            let last (values: Num[]) = if values.Length = 0 then dash else Html.num "f3" values[values.Length - 1]
            let lastRow (d: DiagnosticRun) =
                let step =
                    match d.Metrics |> Array.tryHead with
                    | Some(_, s) when s.Steps.Length > 0 -> Html.num "int" s.Steps[s.Steps.Length - 1]
                    | _ -> dash
                [ td "label" (Html.text d.Label); td "traj" (Html.text d.Trajectory); td "n" step ]
                @ (metrics |> Array.toList |> List.map (fun (m, _, _) -> td "n" (series d m |> Option.map (fun s -> last s.Mean) |> Option.defaultValue dash)))
                |> Seq.ofList
            let lastTable =
                Html.table "compact"
                    ([ th "Method"; th "Trajectory"; thNum "Last step" ] @ (metrics |> Array.toList |> List.map (fun (_, t, _) -> thNum t)))
                    (runs |> Array.map lastRow)
            let sources =
                runs
                |> Array.collect (fun d -> d.Sources |> Array.map (fun s -> $"<li>{Html.text d.Label}: <code>{Html.text s}</code></li>"))
                |> String.concat ""
            let runLegend = runs |> Array.map (fun d -> d.Method.Value, $"{Html.text d.Label} on {Html.text d.Trajectory}") |> legend
            [ h3 setting
              runLegend
              $"<div class=\"grid\">{lines charts}</div>"
              "<p class=\"note\">Mean over seeds at the last logged step:</p>"
              lastTable
              $"<details><summary>Training logs</summary><ul class=\"sources\">{sources}</ul></details>" ]
            |> String.concat "\n"

    let private lengthKinds =
        [| "y_star", "y*", "#2ca02c"
           "y_o", "y_o", "#1f77b4"
           "y_o_correct", "y_o correct", "#6baed6"
           "y_o_incorrect", "y_o incorrect", "#08519c"
           "y_r", "y_r", "#d62728"
           "y_r_correct", "y_r correct", "#fc9272"
           "y_r_incorrect", "y_r incorrect", "#a50f15" |]

    let private accuracyKinds = [| "y_star", "y*"; "y_o", "y_o"; "y_r", "y_r" |]

    let private ordered (known: (string * string)[]) (entries: (string * 'T)[]) : (string * string * 'T)[] =
        let first = known |> Array.choose (fun (key, name) -> entries |> Array.tryFind (fun (k, _) -> k = key) |> Option.map (fun (_, v) -> key, name, v))
        let rest = entries |> Array.filter (fun (k, _) -> known |> Array.forall (fun (key, _) -> key <> k)) |> Array.map (fun (k, v) -> k, k, v)
        Array.append first rest

    let private trajectories (page: Page) (r: StudyResults) (setting: Text) =
        match r.Trajectories |> Array.tryFind (fun t -> t.Setting.Value = setting.Value) with
        | None -> $"{h3 setting}<p class=\"note\">No trajectory analysis for this setting.</p>"
        | Some t ->
            let lengths = ordered (lengthKinds |> Array.map (fun (k, n, _) -> k, n)) t.Lengths
            let lengthTable =
                Html.table "compact"
                    [ th "Trajectory"; thNum "Count"; thNum "Mean"; thNum "Median"; thNum "p10"; thNum "p90" ]
                    (lengths
                     |> Array.map (fun (_, name, l) ->
                         [ td "label" (Html.esc name); td "n" (Html.num "int" l.Count); td "n" (Html.num "f1" l.Mean)
                           td "n" (Html.num "f0" l.Median); td "n" (Html.num "f0" l.P10); td "n" (Html.num "f0" l.P90) ] |> Seq.ofList))
            let colourOf key = lengthKinds |> Array.tryFind (fun (k, _, _) -> k = key) |> Option.map (fun (_, _, c) -> c) |> Option.defaultValue "#9467bd"
            let boxes = Charts.boxes "Trajectory length" "tokens" (lengths |> Array.map (fun (k, n, l) -> n, colourOf k, l.Values))
            let accuracy = ordered accuracyKinds t.Accuracy
            let accuracyTable =
                Html.table "compact" [ th "Trajectory"; thNum "Verifier accuracy (%)" ]
                    (accuracy |> Array.map (fun (_, name, e) -> [ td "label" (Html.esc name); td "n" (meanWithInterval e) ] |> Seq.ofList))
            let accuracyChart =
                Charts.groupedBars "Verifier accuracy, 95% intervals" "%"
                    (accuracy |> Array.map (fun (k, n, e) -> n, (if k = "y_r" then Trd.Core.Methods.trd.Id elif k = "y_o" then Trd.Core.Methods.forwardKl.Id else Trd.Core.Methods.baseModel.Id), [| bar n e |]))
            let j = t.Joint
            let jointTable =
                Html.table "joint" [ th ""; thNum "y_r pass"; thNum "y_r fail" ]
                    [ [ th "y_o pass"; td "n" (Html.num "int" j.PassPass); td "n price" (Html.num "int" j.PassFail) ] |> Seq.ofList
                      [ th "y_o fail"; td "n gain" (Html.num "int" j.FailPass); td "n" (Html.num "int" j.FailFail) ] |> Seq.ofList ]
            let jointChart =
                Charts.joint "Joint outcome of y_o and y_r" j.PassPass.Value j.PassFail.Value j.FailPass.Value j.FailFail.Value
            let sources = t.Sources |> Array.map (fun s -> $"<li><code>{Html.text s}</code></li>") |> String.concat ""
            [ h3 setting
              "<div class=\"grid\">"
              $"<div>{page.Chart 360 boxes}{lengthTable}</div>"
              $"<div>{page.Chart 360 accuracyChart}{accuracyTable}</div>"
              $"<div>{page.Chart 360 jointChart}{jointTable}<p class=\"note\">fail→pass: refinements that recover a failed rollout; pass→fail: the price.</p></div>"
              "</div>"
              $"<details><summary>Corpus files</summary><ul class=\"sources\">{sources}</ul></details>" ]
            |> String.concat "\n"

    let private buckets (page: Page) (r: StudyResults) (setting: Text) =
        let rows = r.Rows |> Array.filter (fun x -> x.Setting.Value = setting.Value) |> byModel
        let withBuckets = rows |> Array.filter (fun x -> x.Buckets.Length > 0)
        if withBuckets.Length = 0 then $"{h3 setting}<p class=\"note\">No difficulty buckets for this setting.</p>"
        else
            let reference = withBuckets[0]
            let k = int' r.Study.K
            let header =
                th "Model"
                :: (reference.Buckets |> Array.toList |> List.map (fun b -> thNum $"{Html.text b.Bucket}<br><small>{f1 b.Problems} problems</small>"))
            let table (name: string) (pick: BucketEstimate -> Estimate) =
                let body =
                    withBuckets
                    |> Array.map (fun x -> td "label" (Html.text x.Label) :: (x.Buckets |> Array.toList |> List.map (fun b -> td "n" (meanWithInterval (pick b)))) |> Seq.ofList)
                $"<h4>{name}</h4>" + Html.table "compact" header body
            let chart (name: string) (pick: BucketEstimate -> Estimate) =
                withBuckets
                |> Array.map (fun x -> x.Label.Value, x.Model.Value, x.Buckets |> Array.map (fun b -> bar b.Bucket.Value (pick b)))
                |> Charts.groupedBars $"{name} by base-difficulty bucket" "%"
            let kText = Format.number "int" r.Study.K.Value
            let avgChart, passChart = page.Chart 360 (chart $"Avg@{kText}" _.AvgAtK), page.Chart 360 (chart $"Pass@{kText}" _.PassAtK)
            let avgTable, passTable = table $"Avg@{k} (%%)" _.AvgAtK, table $"Pass@{k} (%%)" _.PassAtK
            [ h3 setting
              rowLegend withBuckets
              "<div class=\"grid two\">"
              $"<div>{avgChart}{avgTable}</div>"
              $"<div>{passChart}{passTable}</div>"
              "</div>"
              "<p class=\"note\">Buckets group held-out problems by how many of the K base samples solved them; the problem count is the mean over seeds.</p>" ]
            |> String.concat "\n"

    let private passk (page: Page) (r: StudyResults) (setting: Text) =
        let rows = r.Rows |> Array.filter (fun x -> x.Setting.Value = setting.Value && x.PassAtKCurve.Length > 0) |> byModel
        if rows.Length = 0 then $"{h3 setting}<p class=\"note\">No pass@k curves for this setting.</p>"
        else
            let chart =
                rows
                |> Array.map (fun x ->
                    x.Label.Value, x.Model.Value, Array.init x.PassAtKCurve.Length (fun i -> float (i + 1)), x.PassAtKCurve |> Array.map (fun v -> percent v.Value))
                |> Charts.lines "pass@k" "k (samples per problem)" "%"
            let k = int' r.Study.K
            let table =
                Html.table "compact" [ th "Model"; thNum "pass@k at k = 1"; thNum $"pass@k at k = {k}" ]
                    (rows
                     |> Array.map (fun x ->
                         [ td "label" (Html.text x.Label); td "n" (Html.num "pct1" x.PassAtKCurve[0])
                           td "n" (Html.num "pct1" x.PassAtKCurve[x.PassAtKCurve.Length - 1]) ] |> Seq.ofList))
            [ h3 setting; rowLegend rows; "<div class=\"grid two\">"; $"<div>{page.Chart 380 chart}</div>"; $"<div>{table}</div>"; "</div>" ]
            |> String.concat "\n"

    let private subsets (r: StudyResults) =
        match r.Subsets with
        | None ->
            "<p class=\"note\">The subset-filter ablation (App. B.3) was not requested. Run it with "
            + "<code>trd study --subsets</code> (OPSD; Forward KL, Reverse KL and TRD on the fail, succ and fail→succ subsets).</p>"
        | Some rows when rows.Length = 0 ->
            "<p class=\"note\">The subset-filter ablation was requested but produced no rows (it runs in the OPSD setting only).</p>"
        | Some rows ->
            let k = int' r.Study.K
            rows
            |> Array.groupBy (fun s -> s.Setting.Value, s.Method.Value)
            |> Array.map (fun ((setting, method), group) ->
                let full = r.Rows |> Array.tryFind (fun x -> x.Setting.Value = setting && x.Model.Value = method)
                let name = match full with Some f -> Html.text f.Label | None -> Html.text group[0].Method
                let fullRow =
                    match full with
                    | Some f ->
                        [ [ td "label" "all (no subset)"; td "n" dash; td "n" (meanWithInterval f.AvgAtK); td "n" dash
                            td "n" (meanWithInterval f.PassAtK); td "n" dash ] |> Seq.ofList ]
                    | None -> []
                let subsetRows =
                    group
                    |> Array.map (fun s ->
                        [ td "label" (Html.text s.Subset); td "n" (Html.num "int" s.Examples); td "n" (meanWithInterval s.AvgAtK)
                          delta s.DeltaAvgAtK; td "n" (meanWithInterval s.PassAtK); delta s.DeltaPassAtK ] |> Seq.ofList)
                    |> Array.toList
                let caption = $"<caption>{Html.upper group[0].Setting}, {name}: changes are from the method's no-subset row, not from base.</caption>"
                (Html.table "results" [ th "Subset"; thNum "Examples"; thNum $"Avg@{k} (%%)"; thNum "Change"; thNum $"Pass@{k} (%%)"; thNum "Change" ]
                    (fullRow @ subsetRows)).Replace("<thead>", caption + "<thead>"))
            |> String.concat "\n"

    let private claims (r: StudyResults) =
        if r.Claims.Length = 0 then "<p class=\"note\">No claims were evaluated.</p>"
        else
            r.Claims
            |> Array.map (fun c ->
                $"<li><span class=\"badge {verdictClass c.Verdict.Value}\">{Html.text c.Verdict}</span>"
                + $"<div class=\"claim\"><div class=\"text\">{Html.text c.Claim}</div>"
                + $"<div class=\"measured\">Measured: {Html.text c.Measured}</div>"
                + (match Trd.Core.Claims.paperFigure c.Id.Value with
                   | "" -> ""
                   | figure -> $"<div class=\"paper\"><span class=\"tag\">the paper's</span> {Html.esc figure}</div>")
                + $"<div class=\"rule\">Rule: {Html.text c.Rule}</div></div></li>")
            |> String.concat "\n"
            |> sprintf "<ul class=\"claims\">\n%s\n</ul>"

    // ---- the page --------------------------------------------------------------------------------------------------

    let internal css = """
:root { --ink: #1f2328; --muted: #59636e; --line: #d8dee4; --soft: #f6f8fa; --accent: #0b5cad;
        --ok: #1a7f37; --ok-bg: #dafbe1; --bad: #cf222e; --bad-bg: #ffebe9; --warn: #9a6700; --warn-bg: #fff8c5; }
* { box-sizing: border-box; }
body { margin: 0; color: var(--ink); background: #fff; font: 14px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
main { max-width: 1280px; margin: 0 auto; padding: 24px 28px 64px; }
header h1 { margin: 0 0 4px; font-size: 26px; }
header p { margin: 0; color: var(--muted); }
nav { position: sticky; top: 0; z-index: 10; background: rgba(255,255,255,.95); border-bottom: 1px solid var(--line);
      margin: 16px -28px 0; padding: 8px 28px; display: flex; flex-wrap: wrap; gap: 4px 16px; }
nav a { color: var(--accent); text-decoration: none; font-weight: 500; }
nav a:hover { text-decoration: underline; }
h2 { margin: 40px 0 8px; padding-bottom: 6px; border-bottom: 2px solid var(--line); font-size: 20px; scroll-margin-top: 48px; }
h3 { margin: 24px 0 8px; font-size: 16px; }
h4 { margin: 12px 0 4px; font-size: 14px; color: var(--muted); }
p.intro { color: var(--muted); max-width: 920px; }
p.note { color: var(--muted); font-size: 13px; }
code { font: 12.5px/1.4 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; background: var(--soft); padding: 1px 4px; border-radius: 4px; word-break: break-all; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 6px 20px; margin: 12px 0; }
dl.facts dt { color: var(--muted); }
dl.facts dd { margin: 0; }
.key { color: var(--muted); display: inline-block; min-width: 96px; }
table { border-collapse: collapse; margin: 8px 0 16px; font-variant-numeric: tabular-nums; }
caption { caption-side: top; text-align: left; color: var(--muted); font-size: 13px; padding: 0 0 6px; max-width: 920px; }
th, td { padding: 5px 10px; border-bottom: 1px solid var(--line); vertical-align: top; }
thead th { background: var(--soft); border-bottom: 2px solid var(--line); text-align: left; font-weight: 600; }
th.n, td.n { text-align: right; white-space: nowrap; }
td.label { font-weight: 500; white-space: nowrap; }
td.traj { font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 12.5px; }
td.src { font-size: 12px; }
td.best > .num:first-child { font-weight: 700; }
td.up > .num:first-child { color: var(--ok); }
td.down > .num:first-child { color: var(--bad); }
td.flat > .num:first-child { color: var(--muted); }
td.gain { background: var(--ok-bg); }
td.price { background: var(--bad-bg); }
.ci { display: block; color: var(--muted); font-size: 11.5px; }
.missing { color: var(--muted); }
table.compact td, table.compact th { padding: 3px 8px; }
table.joint th { background: var(--soft); }
.grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(380px, 1fr)); gap: 12px 20px; align-items: start; }
.grid.two { grid-template-columns: repeat(auto-fit, minmax(520px, 1fr)); }
.legend { display: flex; flex-wrap: wrap; gap: 4px 18px; margin: 4px 0 8px; font-size: 13px; }
.legend .swatch { display: inline-block; width: 12px; height: 12px; border-radius: 2px; margin-right: 6px; vertical-align: -1px; }
.chart { width: 100%; min-height: 300px; border: 1px solid var(--line); border-radius: 6px; }
.chart.missing { display: flex; align-items: center; justify-content: center; padding: 16px; background: var(--soft); }
details { margin: 4px 0 16px; }
summary { cursor: pointer; color: var(--accent); }
ul.sources { margin: 6px 0; padding-left: 20px; font-size: 12.5px; }
ul.claims { list-style: none; padding: 0; margin: 12px 0; }
ul.claims li { display: flex; gap: 14px; align-items: flex-start; padding: 10px 0; border-bottom: 1px solid var(--line); }
.claim .measured, .claim .rule { color: var(--muted); font-size: 13px; }
.claim .paper { font-size: 13px; border-left: 3px solid var(--line); padding-left: 8px; margin: 4px 0; }
.tag { font-size: 11px; text-transform: uppercase; letter-spacing: .04em; color: var(--muted); border: 1px solid var(--line); border-radius: 4px; padding: 0 4px; }
table.verdicts .badge { display: inline-block; min-width: 120px; }
.badge { flex: 0 0 128px; text-align: center; padding: 2px 10px; border-radius: 999px; font-size: 12px; font-weight: 600; border: 1px solid; }
.badge.ok { color: var(--ok); background: var(--ok-bg); border-color: var(--ok); }
.badge.bad { color: var(--bad); background: var(--bad-bg); border-color: var(--bad); }
.badge.warn { color: var(--warn); background: var(--warn-bg); border-color: var(--warn); }
.badge.other { color: var(--muted); background: var(--soft); border-color: var(--muted); }
.num[title]:hover { outline: 1px dotted var(--accent); cursor: help; }
footer { margin-top: 48px; color: var(--muted); font-size: 12.5px; border-top: 1px solid var(--line); padding-top: 10px; }
"""

    let internal script = """
// Charts are drawn once the page is laid out, so each takes the width of its final grid cell.
var trdFigures = [];
function trdPlot(id, figure) { trdFigures.push([id, figure]); }
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll(".num").forEach(function (e) { e.title = "results.json " + e.dataset.json; });
  trdFigures.forEach(function (f) {
    var el = document.getElementById(f[0]);
    if (typeof Plotly === "undefined") {
      el.className += " missing";
      el.textContent = "This chart needs plotly.min.js beside report.html (trd study copies it there).";
      return;
    }
    Plotly.newPlot(el, f[1].data, f[1].layout, { responsive: true, displaylogo: false });
  });
});
"""

    let internal section (id: string) (title: string) (intro: string) (body: string) =
        let intro = if intro = "" then "" else $"<p class=\"intro\">{intro}</p>\n"
        $"<section>\n<h2 id=\"{id}\">{title}</h2>\n{intro}{body}\n</section>"

    /// report.html for a study's results.
    [<CompiledName("RenderResults")>]
    let renderResults (r: StudyResults) : string =
        let page = Page()
        let settings = settingsOf r
        let perSetting (render: Page -> StudyResults -> Text -> string) = settings |> Array.map (render page r) |> String.concat "\n"
        let k = int' r.Study.K
        let titles =
            [| "verdicts", "Verdicts"; "summary", "Summary"; "results", "Results"; "diagnostics", "Training diagnostics"; "trajectories", "Trajectories"
               "buckets", "Difficulty buckets"; "passk", "Pass@k"; "subsets", "Subset ablation"; "claims", "Claims" |]
        let nav = titles |> Array.map (fun (id, t) -> $"<a href=\"#{id}\">{t}</a>") |> String.concat ""
        let quick = if r.Study.Quick.Value = "true" then " (quick plan)" else ""
        let sections =
            [ section "verdicts" "Verdicts"
                  "The paper's claims as this study measured them, by setting. Green: reproduced; red: not reproduced; yellow: inconclusive."
                  (verdicts r)
              section "summary" "Summary" "What was run." (summary r)
              section "results" "Results (Tables 1–4)"
                  ($"Avg@{k} and Pass@{k} of every model in each setting: the base student, the OPD teacher, the four dense-KL baselines trained on y_o and TRD trained on y_r."
                   + (if r.Study.Methods |> Array.exists (fun (m: Text) -> Trd.Core.Methods.shaped |> Array.exists (fun s -> s.Id = m.Value)) then
                          " Shaped methods beyond the paper (docs/methods.md), trained on y_o, sit between the baselines and TRD; the claims do not count them as baselines."
                      else ""))
                  (perSetting results)
              section "diagnostics" "Training diagnostics (Fig. 3)"
                  "Per-step diagnostics of each method's training run: the baselines measured on their rollouts y_o, TRD on its refinements y_r. Lines: the mean over seeds; bands: min to max over seeds."
                  (perSetting diagnostics)
              section "trajectories" "Trajectories (Fig. 5 left, Figs. 6–7)"
                  "The training corpus of each setting pooled over seeds: lengths of the reference y*, the rollouts y_o and the refinements y_r (split by verdict), their verifier accuracy, and the 2×2 joint outcome of y_o and y_r."
                  (perSetting trajectories)
              section "buckets" "Difficulty buckets (Fig. 8)"
                  $"Avg@{k} and Pass@{k} of each model on the held-out problems grouped by how often the base model solved them."
                  (perSetting buckets)
              section "passk" "Pass@k (Fig. 5 right)"
                  $"pass@k for k from one to {k} samples per problem (unbiased estimator); at k = 1 it equals Avg@{k}."
                  (perSetting passk)
              section "subsets" "Subset ablation (App. B.3)"
                  "Forward KL, Reverse KL and TRD trained on subsets of the OPSD corpus filtered by the outcome of y_o (fail, succ) and of y_o and y_r (fail→succ)."
                  (subsets r)
              section "claims" "Claims" "Each claim of the paper, its verdict under the stated rule, and what this study measured." (claims r) ]
        let html =
            [ "<!DOCTYPE html>"
              "<html lang=\"en\">"
              "<head>"
              "<meta charset=\"utf-8\">"
              "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
              $"<meta name=\"generator\" content=\"Trd.Report (Plotly.NET; plotly.js {plotlyJsVersion})\">"
              "<title>Trd study report</title>"
              $"<style>{css}</style>"
              $"<script src=\"{PlotlyJsFileName}\"></script>"
              $"<script>{script}</script>"
              "</head>"
              "<body>"
              "<main>"
              "<header>"
              $"<h1>Trd study report{quick}</h1>"
              "<p>Trajectory-Refined Distillation against the dense-KL baselines on the prefix-failure gym, aggregated from the study's results.json.</p>"
              $"<nav>{nav}</nav>"
              "</header>"
              String.concat "\n" sections
              "<footer>Every value printed here is read from results.json: hover over a number to see its JSON pointer. "
              + "Charts are drawn by plotly.min.js beside this file; nothing is loaded from the network.</footer>"
              "</main>"
              "</body>"
              "</html>" ]
        String.concat "\n" html + "\n"

    /// report.html for the text of a results.json.
    [<CompiledName("Render")>]
    let render (resultsJson: string) : string = Results.parse Results.FileName resultsJson |> renderResults

    // ---- writing ---------------------------------------------------------------------------------------------------

    /// Where the build put plotly.min.js: beside Trd.Report.dll (build/PlotlyJs.targets).
    [<CompiledName("PlotlyJsSource")>]
    let plotlyJsSource () : string =
        let location = Assembly.GetExecutingAssembly().Location
        let directory = if String.IsNullOrEmpty location then AppContext.BaseDirectory else Path.GetDirectoryName location |> string
        Path.Combine(directory, PlotlyJsFileName)


    let private sameBytes (a: string) (b: string) =
        File.Exists b && FileInfo(a).Length = FileInfo(b).Length && File.ReadAllBytes(a).AsSpan().SequenceEqual(File.ReadAllBytes(b))

    /// Copies plotly.min.js into a directory (unless the same file is already there), for pages that load it by a
    /// relative path. Fails, saying where the file should come from, when the build did not fetch it.
    [<CompiledName("CopyPlotlyJs")>]
    let copyPlotlyJs (directory: string) : string =
        let plotly = plotlyJsSource ()
        if not (File.Exists plotly) then
            raise (FileNotFoundException(
                $"{plotly}: plotly.min.js is missing beside Trd.Report.dll, so the charts could not be drawn offline. "
                + $"The build fetches it (build/PlotlyJs.targets: npm pack plotly.js-dist-min@{plotlyJsVersion}); rebuild "
                + $"without -p:TrdFetchPlotlyJs=false, or copy plotly.min.js {plotlyJsVersion} (package/plotly.min.js of that npm "
                + "package) there. See docs/report.md.", plotly))
        let target = Path.Combine(Path.GetFullPath directory, PlotlyJsFileName)
        if not (sameBytes plotly target) then
            Trd.Runtime.Checkpoints.AtomicFile.Write(target, fun s -> (use source = File.OpenRead plotly in source.CopyTo s))
        target

    let private writeHtml (directory: string) (results: StudyResults) =
        copyPlotlyJs directory |> ignore
        let html = renderResults results
        let report = Path.Combine(directory, ReportFileName)
        Trd.Runtime.Checkpoints.AtomicFile.WriteText(report, html)
        report

    /// Rebuilds report.html from a study directory's results.json (atomically), with the plotly.min.js it loads.
    /// Returns report.html's path.
    [<CompiledName("Write")>]
    let write (studyDirectory: string) : string =
        let directory = Path.GetFullPath studyDirectory
        Results.read directory |> writeHtml directory

    /// Writes report.html for results the study has just computed, in memory (the same page `write` rebuilds from
    /// results.json). Returns report.html's path.
    [<CompiledName("WriteResults")>]
    let writeResults (results: Trd.Runtime.Study.StudyResults) (studyDirectory: string) : string =
        Results.ofStudy results |> writeHtml (Path.GetFullPath studyDirectory)
