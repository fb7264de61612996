module Trd.Tests.ReportTests

open System
open System.IO
open System.Net
open System.Text.Json
open System.Text.Json.Nodes
open System.Text.RegularExpressions
open Expecto
open Trd.Report

// ---------------------------------------------------------------------------------------------
// A synthetic results.json in the shape StudyAggregator writes (src/Trd.Runtime/Study/StudyResults.cs)
// ---------------------------------------------------------------------------------------------

let private methods = [ "forward_kl"; "Forward KL"; "forward_kl_clip"; "Forward KL w/ Clip"; "reverse_kl"; "Reverse KL"; "reverse_kl_topk"; "Reverse KL w/ Top-K"; "trd"; "TRD" ] |> List.chunkBySize 2 |> List.map (fun l -> l[0], l[1])

let private k = 8
let private seeds = [ 1L; 2L ]

/// A number, or the string results.json writes for NaN.
let private number (v: float) : JsonNode = if Double.IsNaN v then JsonValue.Create "NaN" else JsonValue.Create v

let private obj (fields: (string * JsonNode) list) : JsonNode =
    let o = JsonObject()
    for name, value in fields do o.Add(name, value)
    o

let private arr (items: JsonNode seq) : JsonNode =
    let a = JsonArray()
    for i in items do a.Add(item = i)
    a

let private str (s: string) : JsonNode = JsonValue.Create s
let private int' (i: int) : JsonNode = JsonValue.Create i
let private nul : JsonNode = null

let private estimate (mean: float) (width: float) (problems: int) =
    obj [ "mean", number mean; "low", number (mean - width); "high", number (mean + width); "seeds", int' seeds.Length; "problems", int' problems ]

/// The synthetic study: OPD and OPSD, two seeds, K = 8, one NaN bucket (TRD, OPD, top bucket) and NaN diagnostic steps;
/// with App. B.3's subset rows when `subsets`.
let syntheticNode (subsets: bool) : JsonObject =
    let rng = Random 17
    let u lo hi = lo + (hi - lo) * rng.NextDouble()
    let settings = [ "opd"; "opsd" ]
    let buckets = [ "B0", 11.5; "B1–4", 12.0; "B5–8", 8.5 ]
    let row setting (model: string) (label: string) (trajectory: string option) =
        let avg, pass = u 0.2 0.6, u 0.5 0.9
        let isBase = model = "base"
        obj [ "setting", str setting
              "model", str model
              "label", str label
              "trajectory", (match trajectory with Some t -> str t | None -> nul)
              "avg_at_k", estimate avg 0.04 32
              "pass_at_k", estimate pass 0.05 32
              "delta_avg_at_k", (if isBase then nul else estimate (u -0.05 0.08) 0.03 32)
              "delta_pass_at_k", (if isBase then nul else estimate (u -0.05 0.08) 0.03 32)
              "buckets", arr [ for name, n in buckets ->
                                   let m = if setting = "opd" && model = "trd" && name = "B5–8" then nan else u 0.0 1.0
                                   obj [ "bucket", str name; "problems", number n; "avg_at_k", estimate m 0.1 (int n); "pass_at_k", estimate m 0.1 (int n) ] ]
              "pass_at_k_curve", arr [ for i in 1 .. k -> number (avg + (pass - avg) * (1.0 - 1.0 / float i)) ]
              "per_seed", arr [ for s in seeds ->
                                    obj [ "seed", JsonValue.Create s; "avg_at_k", number (u 0.2 0.6); "pass_at_k", number (u 0.5 0.9)
                                          "source", str $"seed-{s}/{setting}/{model}/eval/trained/heldout.jsonl"; "model_seed", int' 1 ] ] ]
    let rows =
        [ for setting in settings do
            yield row setting "base" "Base" None
            if setting = "opd" then yield row setting "teacher" "Teacher" None
            for m, label in methods -> row setting m label (Some(if m = "trd" then "y_r" else "y_o")) ]
    let steps = 12
    let diagnostics =
        [ for setting in settings do
            for m, label in methods ->
                let series metric =
                    let mean = [| for i in 0 .. steps - 1 -> if metric = "kl_incorrect" && i = 3 then nan else u 0.1 1.0 / float (i + 1) |]
                    obj [ "steps", arr [ for i in 0 .. steps - 1 -> JsonValue.Create(int64 (i + 1)) :> JsonNode ]
                          "mean", arr (mean |> Seq.map number)
                          "min", arr (mean |> Seq.map (fun v -> number (v * 0.8)))
                          "max", arr (mean |> Seq.map (fun v -> number (v * 1.2))) ]
                obj [ "setting", str setting; "method", str m; "label", str label; "trajectory", str (if m = "trd" then "y_r" else "y_o")
                      "series", obj [ for metric in [ "kl_correct"; "kl_incorrect"; "ppl_gap"; "ppl_student"; "ppl_teacher"; "epistemic_mass"; "loss" ] -> metric, series metric ]
                      "sources", arr [ for s in seeds -> str $"seed-{s}/{setting}/{m.Replace('_', '-')}/train/metrics.jsonl" ] ] ]
    let lengths (count: int) (mean: float) =
        let values = Array.init count (fun _ -> int (u (mean * 0.5) (mean * 1.5))) |> Array.sort
        let q p = float values[int (Math.Round(p * float (values.Length - 1)))]
        obj [ "count", int' count; "mean", number (Array.averageBy float values); "median", number (q 0.5); "p10", number (q 0.1); "p90", number (q 0.9)
              "values", arr (values |> Seq.map int') ]
    let trajectories =
        [ for setting in settings ->
            obj [ "setting", str setting
                  "lengths", obj [ "y_star", lengths 64 40.0; "y_o", lengths 128 120.0; "y_o_correct", lengths 80 100.0; "y_o_incorrect", lengths 48 150.0
                                   "y_r", lengths 128 50.0; "y_r_correct", lengths 100 45.0; "y_r_incorrect", lengths 28 70.0 ]
                  "accuracy", obj [ "y_star", estimate 1.0 0.0 64; "y_o", estimate 0.62 0.05 128; "y_r", estimate 0.81 0.04 128 ]
                  "joint", obj [ "pass_pass", int' 74; "pass_fail", int' 6; "fail_pass", int' 26; "fail_fail", int' 22 ]
                  "sources", arr [ for s in seeds do
                                      yield str $"seed-{s}/{setting}/corpus/rollouts.jsonl"
                                      yield str $"seed-{s}/{setting}/corpus/refinements.jsonl" ] ] ]
    let subsetRows =
        [ for m in [ "forward_kl"; "reverse_kl"; "trd" ] do
            for subset in [ "fail"; "succ"; "fail-to-succ" ] ->
                obj [ "setting", str "opsd"; "method", str m; "subset", str subset; "examples", int' (int (u 20.0 90.0))
                      "avg_at_k", estimate (u 0.2 0.6) 0.04 32; "pass_at_k", estimate (u 0.5 0.9) 0.05 32
                      "delta_avg_at_k", estimate (u -0.1 0.05) 0.03 32; "delta_pass_at_k", estimate (u -0.1 0.05) 0.03 32
                      "sources", arr [ for s in seeds -> str $"seed-{s}/opsd/{m}@{subset}/eval/trained/heldout.jsonl" ] ] ]
    let claim id setting verdict (text: string) (measured: string) =
        obj [ "id", str id; "setting", str setting; "claim", str text; "verdict", str verdict; "measured", str measured
              "rule", str "reproduced when every 95% interval of the difference lies above 0; not reproduced when one lies below 0" ]
    let claims =
        [ claim "trd_beats_baselines" "opd" "reproduced" "OPD: TRD ≥ the dense-KL baselines on Avg@8 and Pass@8 (Tables 1–4)" "TRD − Forward KL, Avg@8: +3.1 [0.4, 5.9] pp; p < 0.05 & more"
          claim "d_incorrect_near_zero" "opsd" "not reproduced" "OPSD: D^incorrect ≈ 0 on y_o" "Forward KL on y_o: 0.412 [0.301, 0.533]; TRD on y_r: 0.388"
          claim "gains_hardest_bucket" "opsd" "inconclusive" "OPSD: TRD's gains over base concentrate on the hardest bucket B0 (App. B.2, Fig. 8)" "B0 Pass@8: +0.062 [−0.010, 0.140]" ]
    let root =
        obj [ "study", obj [ "command", str "trd study --quick --out runs/study-quick"
                             "quick", JsonValue.Create true
                             "seeds", arr [ for s in seeds -> JsonValue.Create s :> JsonNode ]
                             "settings", arr (settings |> Seq.map str)
                             "methods", arr (methods |> Seq.map (fst >> str))
                             "k", int' k
                             "train_problems", int' 64
                             "heldout_problems", int' 32
                             "models", obj [ "student", str "gym-student-d64-l2"; "teacher", str "gym-teacher-d128-l4" ]
                             "machine", str "Linux 6.1.0, 2 cores, .NET 10.0.0, cpu"
                             "started", str "2025-03-04T05:06:07.89Z"
                             "seconds", number 1234.5
                             "versions", obj [ "trd", str "0.1.0+abc"; "TorchSharp", str "0.107.0"; "git", str "0123456789ab (dirty)" ]
                             "model_seeds", int' 1 ]
              "rows", arr rows
              "diagnostics", arr diagnostics
              "trajectories", arr trajectories
              "subsets", (if subsets then arr subsetRows else nul)
              "claims", arr claims ]
    root.AsObject()

/// The synthetic results.json's text (indented; NaN as "NaN", the spelling of older files, which is still read).
let synthetic (subsets: bool) : string = (syntheticNode subsets).ToJsonString(JsonSerializerOptions(WriteIndented = true))

// ---------------------------------------------------------------------------------------------
// The traceability checker: every number printed is a span whose text re-derives from results.json
// ---------------------------------------------------------------------------------------------

let private spanPattern =
    Regex("<span class=\"num\" data-json=\"([^\"]*)\" data-format=\"([^\"]*)\">([^<]*)</span>", RegexOptions.Compiled)

let private decode (s: string) = WebUtility.HtmlDecode s |> string

/// Static text that may hold digits: the paper's table, figure and appendix names, "95%" intervals, "2×2", p10/p90, k = 1.
let private staticDigits =
    Regex(@"Tables? \d+(–\d+)?|Figs?\. \d+(–\d+)?|App\. B\.\d|95%|2×2|\bp10\b|\bp90\b|k = 1\b", RegexOptions.Compiled)

/// Digits in the page's visible text outside traceability spans (scripts, styles, tags, JSON member names aside).
let unwrappedNumbers (html: string) : string list =
    let text =
        [ Regex(@"<script\b[^>]*>.*?</script>", RegexOptions.Singleline), " "
          Regex(@"<style\b[^>]*>.*?</style>", RegexOptions.Singleline), " "
          // the paper's own figures, marked as the paper's beside a claim: not this study's numbers
          Regex("<div class=\"paper\">.*?</div>", RegexOptions.Singleline), " "
          spanPattern, " "
          Regex("<span class=\"key\">[^<]*</span>"), " "
          Regex("<[^>]+>"), " " ]
        |> List.fold (fun (s: string) (re, by) -> re.Replace(s, (by: string))) html
        |> decode
    let text = staticDigits.Replace(text, " ")
    [ for m in Regex.Matches(text, @"\d+") ->
        let start = max 0 (m.Index - 40)
        let context = text.Substring(start, min (m.Index + m.Length + 40) text.Length - start)
        let context = Regex.Replace(context, @"\s+", " ")
        $"unwrapped number \"{m.Value}\" in \"…{context}…\"" ]

/// Every mismatch between report.html and results.json: a span whose pointer names nothing, whose text is not its
/// value formatted as its data-format says, a malformed span, or a number printed outside a span. Empty when the page
/// is traceable.
let checkNumbers (resultsJson: string) (html: string) : string list =
    use document = JsonDocument.Parse resultsJson
    let matches = spanPattern.Matches html |> Seq.toList
    let malformed =
        let all = Regex.Matches(html, "class=\"num\"").Count
        if all <> matches.Length then [ $"{all - matches.Length} num span(s) not of the form <span class=\"num\" data-json=… data-format=…>text</span>" ] else []
    let mismatches =
        matches
        |> List.choose (fun m ->
            let pointer, format, shown = decode m.Groups[1].Value, decode m.Groups[2].Value, decode m.Groups[3].Value
            match JsonPointer.tryResolve document.RootElement pointer with
            | None -> Some $"{pointer}: names no value in results.json (the page shows \"{shown}\")"
            | Some value ->
                try
                    let expected = Format.element format value
                    if expected = shown then None else Some $"{pointer} ({format}): the page shows \"{shown}\", results.json gives \"{expected}\""
                with e -> Some $"{pointer} ({format}): {e.Message}")
    malformed @ mismatches @ unwrappedNumbers html

/// The traceability spans of a page: (pointer, format, text).
let spans (html: string) =
    [ for m in spanPattern.Matches html -> decode m.Groups[1].Value, decode m.Groups[2].Value, decode m.Groups[3].Value ]

/// A small study built from Trd.Runtime's own records and written by StudyResults.Write, so the report's parser is held
/// to the schema the runtime writes (names, nulls, NaN, dates).
let private runtimeStudy (directory: string) =
    let e m = Trd.Runtime.Study.Estimate(m, m - 0.1, m + 0.1, 1, 16)
    let buckets =
        [| Trd.Runtime.Study.BucketEstimate("B0", 5.0, e nan, e nan)
           Trd.Runtime.Study.BucketEstimate("B1–2", 6.0, e 0.4, e 0.6)
           Trd.Runtime.Study.BucketEstimate("B3–4", 5.0, e 0.8, e 0.9) |]
    let row setting model label trajectory (delta: Trd.Runtime.Study.Estimate) =
        Trd.Runtime.Study.ResultRow(setting, model, label, trajectory, e 0.3, e 0.6, delta, delta, buckets, [| 0.3; 0.45; 0.55; 0.6 |],
                                    [| Trd.Runtime.Study.SeedScore(1L, 0.3, 0.6, $"seed-1/{setting}/{model}/eval/trained/heldout.jsonl") |])
    let settings = [| "opd"; "opsd" |]
    let rows =
        [| for s in settings do
             yield row s "base" "Base" null null
             if s = "opd" then yield row s "teacher" "Teacher" null (e 0.05)
             yield row s "forward_kl" "Forward KL" "y_o" (e -0.02)
             yield row s "trd" "TRD" "y_r" (e 0.07) |]
    let series () =
        let d = Collections.Generic.Dictionary<string, Trd.Runtime.Study.Series>()
        for m in [ "kl_correct"; "kl_incorrect"; "ppl_gap"; "ppl_student"; "ppl_teacher"; "epistemic_mass"; "loss" ] do
            d[m] <- Trd.Runtime.Study.Series([| 1L; 2L; 3L |], [| 0.5; nan; 0.3 |], [| 0.4; nan; 0.2 |], [| 0.6; nan; 0.4 |])
        d
    let diagnostics =
        [| for s in settings do
             for m, label, t in [ "forward_kl", "Forward KL", "y_o"; "trd", "TRD", "y_r" ] ->
                 Trd.Runtime.Study.DiagnosticRun(s, m, label, t, series (), [| $"seed-1/{s}/{m}/train/metrics.jsonl" |]) |]
    let lengths () =
        let d = Collections.Generic.Dictionary<string, Trd.Runtime.Study.LengthStats>()
        for key in [ "y_star"; "y_o"; "y_o_correct"; "y_o_incorrect"; "y_r"; "y_r_correct"; "y_r_incorrect" ] do
            d[key] <- if key = "y_r_incorrect" then Trd.Runtime.Study.LengthStats(0, nan, nan, nan, nan, [||])
                      else Trd.Runtime.Study.LengthStats(3, 10.0, 10.0, 8.0, 12.0, [| 8; 10; 12 |])
        d
    let accuracy () =
        let d = Collections.Generic.Dictionary<string, Trd.Runtime.Study.Estimate>()
        for key in [ "y_star"; "y_o"; "y_r" ] do d[key] <- e 0.7
        d
    let trajectories =
        [| for s in settings ->
             Trd.Runtime.Study.TrajectoryAnalysis(s, lengths (), accuracy (), Trd.Runtime.Study.JointCounts(9, 1, 4, 2),
                                                  [| $"seed-1/{s}/corpus/rollouts.jsonl" |]) |]
    let claims =
        [| Trd.Runtime.Study.ClaimResult("trd_beats_baselines", "opd", "OPD: TRD ≥ the dense-KL baselines on Avg@4 and Pass@4 (Tables 1–4)",
                                         "inconclusive", "Forward KL, Avg@4: +1.0 [−2.0, 4.0] pp", "reproduced when …") |]
    let dictionary (pairs: (string * string) list) =
        let d = Collections.Generic.Dictionary<string, string>()
        for k, v in pairs do d[k] <- v
        d
    let info =
        Trd.Runtime.Study.StudyInfo("trd study --quick", true, [| 1L |], settings, [| "forward_kl"; "trd" |], 4, 16, 16,
                                    dictionary [ "student", "student-model"; "teacher", "teacher-model" ], "Linux, 2 cores",
                                    DateTime(2025, 1, 2, 3, 4, 5, DateTimeKind.Utc), 61.5, dictionary [ "trd", "0.1.0" ])
    let results = Trd.Runtime.Study.StudyResults(info, rows, diagnostics, trajectories, null, claims)
    results.Write directory
    results

let private tempDir () =
    let d = Path.Combine(Path.GetTempPath(), "trd-report-" + Guid.NewGuid().ToString("N"))
    Directory.CreateDirectory d |> ignore
    d

let private parseError (mutate: JsonObject -> unit) =
    let node = syntheticNode false
    mutate node
    Expect.throwsT<InvalidDataException> (fun () -> Report.render (node.ToJsonString()) |> ignore) "render refuses it"

let private errorOf (mutate: JsonObject -> unit) : string =
    let node = syntheticNode false
    mutate node
    try
        Report.render (node.ToJsonString()) |> ignore
        failtest "render accepted a malformed results.json"
    with :? InvalidDataException as e -> e.Message

[<Tests>]
let tests =
    testList "Report" [
        testList "JsonPointer" [
            testCase "escaped tokens round-trip through a pointer" <| fun () ->
                let p = JsonPointer.append (JsonPointer.append "" "a/b") "m~n"
                Expect.equal p "/a~1b/m~0n" "escaped"
                Expect.equal (JsonPointer.tokens p) [| "a/b"; "m~n" |] "unescaped"

            testCase "resolves members and array indices, and refuses leading zeros and missing members" <| fun () ->
                use d = JsonDocument.Parse """{"a":[10,{"b/c":"x"}],"":1}"""
                let get p = JsonPointer.tryResolve d.RootElement p |> Option.map _.GetRawText()
                Expect.equal (get "/a/0") (Some "10") "index"
                Expect.equal (get "/a/1/b~1c") (Some "\"x\"") "escaped member"
                Expect.equal (get "/") (Some "1") "empty member name"
                Expect.equal (get "") (Some(d.RootElement.GetRawText())) "whole document"
                Expect.equal (get "/a/01") None "leading zero"
                Expect.equal (get "/a/2") None "past the end"
                Expect.equal (get "/b") None "missing member"

            testCase "resolves in a JsonNode tree the same way" <| fun () ->
                let n = JsonNode.Parse """{"a":[10,{"b":null}]}"""
                Expect.equal (JsonPointer.tryResolveNode n "/a/0" |> Option.map (fun v -> (v |> Option.ofObj |> Option.get).ToJsonString())) (Some "10") "index"
                Expect.isTrue (JsonPointer.tryResolveNode n "/a/1/b" |> Option.exists isNull) "a JSON null is there"
                Expect.isNone (JsonPointer.tryResolveNode n "/a/1/c") "missing" ]

        testList "Format" [
            testCase "percentages, points, signs and fixed decimals print as the headers say" <| fun () ->
                Expect.equal (Format.number "pct1" 0.4236) "42.4%" "pct1"
                Expect.equal (Format.number "pts1" 0.4236) "42.4" "pts1"
                Expect.equal (Format.number "signed_pct1" 0.046) "+4.6%" "positive change"
                Expect.equal (Format.number "signed_pct1" -0.05) "-5.0%" "negative change"
                Expect.equal (Format.number "signed_pts1" -0.0004) "0.0" "a change that rounds to zero has no sign"
                Expect.equal (Format.number "f3" -0.0001) "0.000" "no negative zero"
                Expect.equal (Format.number "int" 64.0) "64" "int"
                Expect.equal (Format.number "duration" 1234.5) "20.6 min" "duration"

            testCase "NaN, infinities and null print as a dash" <| fun () ->
                Expect.equal (Format.number "pct1" nan) Format.Missing "NaN"
                use d = JsonDocument.Parse """["NaN","Infinity",null,0.5,"text",true]"""
                let e i = d.RootElement[i]
                Expect.equal (Format.element "pct1" (e 0)) "—" "\"NaN\""
                Expect.equal (Format.element "f3" (e 1)) "—" "\"Infinity\""
                Expect.equal (Format.element "text" (e 2)) "—" "null"
                Expect.equal (Format.element "pct1" (e 3)) "50.0%" "number"
                Expect.equal (Format.element "upper" (e 4)) "TEXT" "upper"
                Expect.equal (Format.element "yesno" (e 5)) "yes" "boolean" ]

        testCase "every section is present, in the order of the paper's report, each an h2 with its id" <| fun () ->
            let html = Report.render (synthetic true)
            let ids = [ for m in Regex.Matches(html, "<h2 id=\"([^\"]+)\"") -> m.Groups[1].Value ]
            Expect.equal ids (List.ofArray Report.sectionIds) "sections"
            Expect.equal ids [ "verdicts"; "summary"; "results"; "diagnostics"; "trajectories"; "buckets"; "passk"; "subsets"; "claims" ] "the ids the docs promise"

        testCase "every data-json pointer resolves and its formatted value is the span's text" <| fun () ->
            for subsets in [ true; false ] do
                let json = synthetic subsets
                let html = Report.render json
                Expect.equal (checkNumbers json html) [] "traceable"
                Expect.isGreaterThan (spans html).Length 500 "the page prints many values"

        testCase "the checker finds a number that does not match results.json and one printed outside a span" <| fun () ->
            let json = synthetic false
            let html = Report.render json
            let pointer = "/rows/0/avg_at_k/mean"
            let (_, _, shown) = spans html |> List.find (fun (p, f, _) -> p = pointer && f = "pct1")
            let tampered = html.Replace($"data-json=\"{pointer}\" data-format=\"pct1\">{shown}<", $"data-json=\"{pointer}\" data-format=\"pct1\">99.9%%<")
            Expect.exists (checkNumbers json tampered) (fun m -> m.Contains pointer) "wrong value found"
            let loose = html.Replace("<h2 id=\"claims\">Claims</h2>", "<h2 id=\"claims\">Claims</h2><p>42 problems</p>")
            Expect.exists (checkNumbers json loose) (fun m -> m.Contains "\"42\"") "loose number found"

        testCase "the subsets section shows App. B.3's tables when results.json has subsets" <| fun () ->
            let html = Report.render (synthetic true)
            let section = html.Substring(html.IndexOf "<h2 id=\"subsets\"", html.IndexOf "<h2 id=\"claims\"" - html.IndexOf "<h2 id=\"subsets\"")
            Expect.stringContains section "data-json=\"/subsets/8/subset\"" "the last subset row"
            Expect.stringContains section "fail-to-succ" "the fail→succ filter"
            Expect.stringContains section "no-subset row" "changes are from the no-subset row"
            Expect.isFalse (section.Contains "not requested") "no request hint"

        testCase "the subsets section says how to request the ablation when subsets is null" <| fun () ->
            let html = Report.render (synthetic false)
            let section = html.Substring(html.IndexOf "<h2 id=\"subsets\"", html.IndexOf "<h2 id=\"claims\"" - html.IndexOf "<h2 id=\"subsets\"")
            Expect.stringContains section "not requested" "says so"
            Expect.stringContains section "trd study --subsets" "says how"
            Expect.isFalse (section.Contains "<table") "no table"

        testCase "the page loads the one plotly.min.js beside it and nothing from the network" <| fun () ->
            let html = Report.render (synthetic true)
            Expect.equal (Regex.Matches(html, "<script src=\"plotly.min.js\"></script>").Count) 1 "one relative script"
            Expect.equal (Regex.Matches(html, "<script src=").Count) 1 "no other script file"
            Expect.isFalse (Regex.IsMatch(html, @"https?://|//cdn|cdn\.plot\.ly")) "no URL at all"
            Expect.isFalse (html.Contains "plotly.js v") "the library is not inlined"
            Expect.isGreaterThan (Regex.Matches(html, "trdPlot\\(\"chart-").Count) 20 "charts drawn through Plotly.newPlot"

        testCase "NaN values print as a dash and become gaps in the charts" <| fun () ->
            let json = synthetic false
            let html = Report.render json
            let nanPointer = "/rows/6/buckets/2/avg_at_k/mean"     // TRD, OPD, the top bucket: NaN
            Expect.equal ((syntheticNode false).["rows"].[6].["model"].GetValue<string>()) "trd" "the row is TRD's"
            let shown = spans html |> List.filter (fun (p, _, _) -> p = nanPointer) |> List.map (fun (_, _, t) -> t)
            Expect.equal shown [ "—" ] "a dash"
            Expect.isFalse (html.Contains "\"NaN\"") "no NaN string reaches plotly.js"

        testCase "a missing field is an error naming the file and the JSON pointer" <| fun () ->
            let m = errorOf (fun n -> n["rows"].[2].["avg_at_k"].AsObject().Remove "mean" |> ignore)
            Expect.stringContains m "results.json" "the file"
            Expect.stringContains m "/rows/2/avg_at_k" "where"
            Expect.stringContains m "\"mean\"" "the field"
            let m = errorOf (fun n -> n.Remove "claims" |> ignore)
            Expect.stringContains m "missing field \"claims\"" "a top-level field"

        testCase "a field of the wrong type is an error naming the pointer and what was found" <| fun () ->
            let m = errorOf (fun n -> n["study"].["k"] <- JsonValue.Create "eight")
            Expect.stringContains m "/study/k" "where"
            Expect.stringContains m "expected a number" "what was expected"
            Expect.stringContains m "\"eight\"" "what was found"
            let m = errorOf (fun n -> n["diagnostics"].[0].["series"].["loss"].["steps"] <- JsonValue.Create 3)
            Expect.stringContains m "/diagnostics/0/series/loss/steps: expected an array" "nested"
            parseError (fun n -> n["rows"] <- JsonValue.Create "none")

        testCase "plotly.min.js beside Trd.Report.dll is the plotly.js that Plotly.NET targets" <| fun () ->
            let path = Report.plotlyJsSource ()
            Expect.isTrue (File.Exists path) $"{path} (build/PlotlyJs.targets puts it there)"
            use reader = new StreamReader(path)
            let head = String(Array.init 200 (fun _ -> char (reader.Read())))
            Expect.stringContains head $"plotly.js v{Report.plotlyJsVersion}" "the version"
            Expect.equal Report.plotlyJsVersion "2.28.0" "Plotly.NET 6.0.0's Globals.PLOTLYJS_VERSION"

        testCase "Write puts report.html and plotly.min.js in the study directory" <| fun () ->
            let dir = tempDir ()
            try
                let json = synthetic true
                File.WriteAllText(Path.Combine(dir, "results.json"), json)
                let write = Func<string, string>(Report.write)     // as Trd.Cli passes it
                let report = write.Invoke dir
                Expect.equal report (Path.Combine(dir, "report.html")) "the path returned"
                Expect.equal (File.ReadAllText report) (Report.render json) "the rendered page"
                let plotly = Path.Combine(dir, "plotly.min.js")
                Expect.equal (File.ReadAllBytes plotly) (File.ReadAllBytes(Report.plotlyJsSource ())) "the library beside it"
                Expect.equal (write.Invoke dir) report "a second write"
                Expect.equal (Directory.GetFiles dir |> Array.map Path.GetFileName |> Array.sort) [| "plotly.min.js"; "report.html"; "results.json" |] "no temporary files"
            finally
                Directory.Delete(dir, true)

        testCase "results.json as Trd.Runtime's StudyResults writes it renders, and every number traces back to it" <| fun () ->
            let dir = tempDir ()
            try
                runtimeStudy dir |> ignore
                let report = Report.write dir
                let json = File.ReadAllText(Path.Combine(dir, "results.json"))
                let html = File.ReadAllText report
                Expect.equal (checkNumbers json html) [] "traceable"
                Expect.stringContains html "data-json=\"/study/started\" data-format=\"text\">2025-01-02T03:04:05Z<" "the start time as written"
                Expect.exists (spans html) (fun (p, _, t) -> p = "/rows/0/buckets/0/avg_at_k/mean" && t = "—") "NaN from the runtime prints as a dash"
                Expect.stringContains html "trd study --subsets" "no subsets: the hint"
            finally
                Directory.Delete(dir, true)

        testCase "the page of the results in memory is the page rebuilt from results.json (one schema: the runtime's records)" <| fun () ->
            let dir = tempDir ()
            try
                let results = runtimeStudy dir
                let inMemory = Report.renderResults (Results.ofStudy results)
                Expect.equal inMemory (Report.renderResults (Results.read dir)) "the same page"
                Expect.equal (checkNumbers (File.ReadAllText(Path.Combine(dir, "results.json"))) inMemory) [] "its pointers name results.json's values"
            finally
                Directory.Delete(dir, true)

        testCase "Write without results.json says which file is missing" <| fun () ->
            let dir = tempDir ()
            try
                try
                    Report.write dir |> ignore
                    failtest "Write accepted a directory without results.json"
                with :? FileNotFoundException as e ->
                    Expect.stringContains e.Message (Path.Combine(dir, "results.json")) "names the file"
            finally
                Directory.Delete(dir, true) ]
