/// `trd study --quick` end to end, as CI runs it: the gym models (trained into the model cache on a fresh machine),
/// the whole comparison, results.json and report.html. The test asserts the report's shape and that every number in it
/// traces to a file of the run; it asserts no claim's verdict (the verdicts are whatever the run measures).
module Trd.Tests.StudyTests

open System
open System.Diagnostics
open System.IO
open System.Text.Json
open System.Text.Json.Nodes
open System.Text.RegularExpressions
open Expecto
open Trd.Report

let private trdDll () = CliTests.trdDll.Force()

/// Runs `trd study --quick --out <dir>` once (the model cache is the default one, so a machine trains the gym models
/// once and reuses them), returning the directory, the exit code and the output.
let private quickStudy =
    lazy
        (let directory = Path.Combine(Path.GetTempPath(), "trd-study-" + Guid.NewGuid().ToString("N"))
         let psi = ProcessStartInfo("dotnet", [ trdDll (); "study"; "--quick"; "--out"; directory ], WorkingDirectory = TestData.repositoryRoot,
                                    RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false)
         let watch = Stopwatch.StartNew()
         use p = Process.Start psi
         let out = p.StandardOutput.ReadToEndAsync()
         let err = p.StandardError.ReadToEndAsync()
         if not (p.WaitForExit(TimeSpan.FromMinutes 25.0)) then
             p.Kill true
             failwithf "trd study --quick did not finish in 25 minutes\n%s" err.Result
         eprintfn "trd study --quick: %.0f s (models %s)" watch.Elapsed.TotalSeconds (if err.Result.Contains "(not cached" then "trained first" else "cached")
         directory, p.ExitCode, out.Result, err.Result)

let private finished () =
    let directory, code, out, err = quickStudy.Force()
    if code <> 0 then failwithf "trd study --quick exited with %d\nstdout:\n%s\nstderr (last 4000 chars):\n%s" code out (err.Substring(max 0 (err.Length - 4000)))
    directory

/// The quick study's directory, once it has finished (running it first if no test has): the gym models are then in the
/// default model cache, and notebooks 03–05 read this study.
let quickStudyDirectory () = finished ()

let private resultsNode directory = JsonNode.Parse(File.ReadAllText(Path.Combine(directory, "results.json")))

/// One top-level array of results.json, after checking how many entries it has.
let private entries (directory: string) (key: string) (count: int) (what: string) =
    let results = resultsNode directory
    let xs = results[key].AsArray()
    Expect.equal (xs.Count) count what
    xs

let private str (n: JsonNode) = n.GetValue<string>()
let private num (n: JsonNode) = n.GetValue<float>()
let private int32 (n: JsonNode) = n.GetValue<int>()
let private bool (n: JsonNode) = n.GetValue<bool>()
let private int64 (n: JsonNode) = n.GetValue<int64>()
let private close (a: float) (b: float) = abs (a - b) <= 1e-9

/// Avg@K and Pass@K recomputed from one eval file (the held-out problems in problems/heldout.jsonl order).
let private scoresOf (directory: string) (source: string) =
    let heldout = File.ReadAllLines(Path.Combine(directory, "problems", "heldout.jsonl")) |> Array.map (fun l -> JsonNode.Parse(l)["id"] |> str)
    let records =
        File.ReadAllLines(Path.Combine(directory, source))
        |> Array.filter (fun l -> l.Trim() <> "")
        |> Array.map (fun l ->
            let n = JsonNode.Parse l
            (n["id"] |> str), [| for s in n["samples"].AsArray() -> s["correct"] |> bool |])
        |> dict
    let perProblem = heldout |> Array.map (fun id -> records[id])
    let avg = perProblem |> Array.averageBy (fun s -> s |> Array.averageBy (fun c -> if c then 1.0 else 0.0))
    let pass = perProblem |> Array.averageBy (fun s -> if Array.contains true s then 1.0 else 0.0)
    avg, pass, perProblem |> Array.map Array.length


[<Tests>]
let tests =
    testSequenced <| testList "Study" [
        // Off in CI (TRD_STUDY_TWICE=1 runs it): every study run is exposed to the open TorchSharp GC race
        // (docs/performance.md, "Stress"), and a second one would double CI's chance of meeting it.
        testCase "a second trd study --quick into another directory writes the same bytes (clock fields aside)" <| fun () ->
            if Environment.GetEnvironmentVariable "TRD_STUDY_TWICE" <> "1" then skiptest "set TRD_STUDY_TWICE=1 to run a second quick study"
            let first = finished ()
            let second = Path.Combine(Path.GetTempPath(), "trd-study-" + Guid.NewGuid().ToString("N"))
            let psi = ProcessStartInfo("dotnet", [ trdDll (); "study"; "--quick"; "--out"; second ], WorkingDirectory = TestData.repositoryRoot,
                                       RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false)
            use p = Process.Start psi
            let err = p.StandardError.ReadToEndAsync()
            p.StandardOutput.ReadToEnd() |> ignore
            if not (p.WaitForExit(TimeSpan.FromMinutes 25.0)) then p.Kill true; failwith "the second study did not finish"
            Expect.equal p.ExitCode 0 $"second study: {err.Result}"
            let a, b = DeterminismTests.fingerprint first, DeterminismTests.fingerprint second
            Expect.sequenceEqual (Map.keys b) (Map.keys a) "the same files"
            for KeyValue(relative, h) in a do Expect.equal b[relative] h $"{relative} is the same"
            Expect.isTrue (a.ContainsKey "results.json") "results.json is compared"

        testCase "trd study --quick finishes in under 60 lines, ending with the verdict table and the report's path" <| fun () ->
            let directory = finished ()
            let _, _, out, err = quickStudy.Force()
            Expect.stringContains out "report: " "the report's path is printed"
            let lines = (out + err).Split('\n', StringSplitOptions.RemoveEmptyEntries)
            Expect.isLessThan lines.Length 60 $"the console's lines (stdout and stderr): {lines.Length}"
            Expect.isFalse (err.Contains "step ") "training steps go to the log, not the console"
            Expect.isFalse ((out + err).Contains "\u001b[") "no control codes when the output is redirected"
            let table = Regex.Matches(out, @"^(\w+)\s+(reproduced|not reproduced|inconclusive)\s+(reproduced|not reproduced|inconclusive)\s*$", RegexOptions.Multiline)
            Expect.equal table.Count 7 "a row per claim with its OPD and OPSD verdicts"
            Expect.stringContains (File.ReadAllText(Path.Combine(directory, "logs", "study.log"))) "step 1:" "the log keeps every step"
            Expect.isTrue (File.Exists(Path.Combine(directory, "report.html"))) "report.html"
            Expect.isTrue (File.Exists(Path.Combine(directory, "plotly.min.js"))) "plotly.min.js beside it"
            Expect.isTrue (File.Exists(Path.Combine(directory, "logs", "study.log"))) "the log"

        testCase "the report has every section, and every number in it is a value of results.json" <| fun () ->
            let directory = finished ()
            let html = File.ReadAllText(Path.Combine(directory, "report.html"))
            let json = File.ReadAllText(Path.Combine(directory, "results.json"))
            for id in Report.sectionIds do
                Expect.stringContains html $"<h2 id=\"{id}\"" $"section {id}"
            Expect.equal (ReportTests.checkNumbers json html) [] "every printed number traces to results.json"
            Expect.isGreaterThan (ReportTests.spans html).Length 300 "the page prints the run's values"

        testCase "trd report rebuilds from results.json the page the study wrote from its results in memory" <| fun () ->
            let directory = finished ()
            let written = File.ReadAllText(Path.Combine(directory, "report.html"))
            let copy = Path.Combine(Path.GetTempPath(), "trd-report-" + Guid.NewGuid().ToString("N"))
            Directory.CreateDirectory copy |> ignore
            File.Copy(Path.Combine(directory, "results.json"), Path.Combine(copy, "results.json"))
            let psi = ProcessStartInfo("dotnet", [ trdDll (); "report"; "--study"; copy ], RedirectStandardOutput = true, RedirectStandardError = true)
            use p = Process.Start psi
            let err = p.StandardError.ReadToEnd()
            p.WaitForExit()
            Expect.equal p.ExitCode 0 err
            Expect.equal (File.ReadAllText(Path.Combine(copy, "report.html"))) written "the same page"
            File.WriteAllText(Path.Combine(copy, "results.json"), File.ReadAllText(Path.Combine(copy, "results.json")).Replace("\"k\": ", "\"k\": \"eight\", \"x\": "))
            use bad = Process.Start(ProcessStartInfo("dotnet", [ trdDll (); "report"; "--study"; copy ], RedirectStandardOutput = true, RedirectStandardError = true))
            let err = bad.StandardError.ReadToEnd()
            bad.WaitForExit()
            Expect.equal bad.ExitCode 2 err
            Expect.stringContains err "/study/k: expected a number (an integer), got the string \"eight\"" "names the pointer and what was found"

        testCase "re-aggregating the finished study from its files gives the results it computed from its steps in memory" <| fun () ->
            let directory = finished ()
            let written = Trd.Runtime.Study.StudyResults.Read directory
            let cache = Trd.Runtime.Gym.GymModels.DefaultCacheRoot()
            let options = Trd.Runtime.Study.StudyOptions(Directory = directory, CacheRoot = cache).AsQuick()
            let student = Trd.Runtime.Gym.GymModels.Ensure(Trd.Runtime.Gym.GymModels.Student, cache)
            let again = Trd.Runtime.Study.StudyAggregator(directory, options, Trd.Runtime.Study.StudyAggregator.LoadTokenizer student).Aggregate(written.Study)
            let json (r: Trd.Runtime.Study.StudyResults) = JsonSerializer.Serialize(r, Trd.Runtime.Study.StudyResults.Json)
            Expect.equal (json again) (json written) "the same results.json"

        testCase "results.json's scores recompute from the eval files they name" <| fun () ->
            let directory = finished ()
            let results = resultsNode directory
            let k = results["study"]["k"] |> int32
            let rows = results["rows"].AsArray()
            let models = [ for r in rows -> (r["setting"] |> str), (r["model"] |> str) ]
            for setting in [ "opd"; "opsd" ] do
                for model in [ "base"; "forward_kl"; "forward_kl_clip"; "reverse_kl"; "reverse_kl_topk"; "trd" ] do
                    Expect.contains models (setting, model) $"a {setting} row for {model}"
            Expect.contains models ("opd", "teacher") "the OPD teacher's row"
            for r in rows do
                let perSeed = r["per_seed"].AsArray()
                Expect.equal perSeed.Count 1 "one seed under --quick"
                for s in perSeed do
                    let source = s["source"] |> str
                    let avg, pass, samples = scoresOf directory source
                    Expect.all samples (fun n -> n = k) $"{source}: K samples per problem"
                    Expect.isTrue (close avg (s["avg_at_k"] |> num)) $"{source}: Avg@K {avg} recomputed"
                    Expect.isTrue (close pass (s["pass_at_k"] |> num)) $"{source}: Pass@K {pass} recomputed"
                    Expect.isTrue (close avg (r["avg_at_k"]["mean"] |> num)) $"{source}: the row's mean is its one seed's"
                let curve = r["pass_at_k_curve"].AsArray() |> Seq.map (fun v -> v |> num) |> Array.ofSeq
                Expect.equal curve.Length k "pass@k for k = 1…K"
                Expect.isTrue (close curve[0] (r["avg_at_k"]["mean"] |> num)) "pass@1 = Avg@K"
                Expect.isTrue (close curve[k - 1] (r["pass_at_k"]["mean"] |> num)) "pass@K = Pass@K"

        testCase "the diagnostics and the trajectory analysis name files that hold what results.json says" <| fun () ->
            let directory = finished ()
            let results = resultsNode directory
            let diagnostics = entries directory "diagnostics" 10 "five methods × two settings"
            for d in diagnostics do
                let source = d["sources"].AsArray()[0] |> str
                let lines = File.ReadAllLines(Path.Combine(directory, source)) |> Array.filter (fun l -> l.Trim() <> "") |> Array.map JsonNode.Parse
                let loss = d["series"]["loss"]
                let steps = loss["steps"].AsArray() |> Seq.map (fun v -> v |> int64) |> Array.ofSeq
                Expect.isNonEmpty steps $"{source}: logged steps"
                let logged = lines |> Array.filter (fun n -> n["loss"] <> null) |> Array.map (fun n -> (n["step"] |> int64), (n["loss"] |> num)) |> dict
                steps |> Array.iteri (fun i step ->
                    Expect.isTrue (close logged[step] (loss["mean"].AsArray()[i] |> num)) $"{source}: loss at step {step}")
            for t in results["trajectories"].AsArray() do
                let joint = t["joint"]
                let total = [ "pass_pass"; "pass_fail"; "fail_pass"; "fail_fail" ] |> List.sumBy (fun c -> joint[c] |> int32)
                let source = t["sources"].AsArray() |> Seq.map (fun s -> s |> str) |> Seq.find (fun s -> s.EndsWith "refinements.jsonl")
                let records = File.ReadAllLines(Path.Combine(directory, source)) |> Array.filter (fun l -> l.Trim() <> "")
                Expect.equal total records.Length $"{source}: the 2×2 counts every refinement once"
                let lengths = t["lengths"]
                let yo = lengths["y_o"]
                let yoCount = int32 yo["count"]
                Expect.equal yoCount records.Length "a y_o length per corpus record"

        testCase "analysis.json and results.json agree on every statistic both hold (one analysis path)" <| fun () ->
            // Under --quick there is one seed, so the study's pooled statistics are the one corpus's: the same numbers.
            let directory = finished ()
            let results = resultsNode directory
            let names = [ "y*", "y_star"; "y_o", "y_o"; "y_r", "y_r" ]
            for t in results["trajectories"].AsArray() do
                let setting = t["setting"] |> str
                let path = Path.Combine(directory, "seed-1", setting, "analysis", "analysis.json")
                let analysis = JsonNode.Parse(File.ReadAllText path)
                let byName = analysis["trajectories"].AsArray() |> Seq.map (fun n -> (n["trajectory"] |> str), n) |> dict
                for analysisName, resultsName in names do
                    let a = byName[analysisName]
                    let r = t["lengths"][resultsName]
                    let what = $"{setting} {resultsName}"
                    Expect.equal (a["lengths"]["count"] |> int32) (r["count"] |> int32) $"{what}: count"
                    for analysisKey, resultsKey in [ "mean", "mean"; "median", "median"; "p10", "p10"; "p90", "p90" ] do
                        Expect.floatClose Accuracy.veryHigh (a["lengths"][analysisKey] |> num) (r[resultsKey] |> num) $"{what}: {resultsKey}"
                    let accuracy = t.["accuracy"].[resultsName].["mean"] |> num
                    Expect.floatClose Accuracy.veryHigh (a["accuracy"] |> num) accuracy $"{what}: accuracy"
                for analysisKey, resultsKey in [ "pass_pass", "pass_pass"; "pass_fail", "pass_fail"; "fail_pass", "fail_pass"; "fail_fail", "fail_fail" ] do
                    Expect.equal (analysis["joint"][analysisKey] |> int32) (t["joint"][resultsKey] |> int32) $"{setting} joint {resultsKey}"

        testCase "every method reads its setting's one corpus in place: no copy, its config.json names it, its run directory is recorded" <| fun () ->
            let directory = finished ()
            for setting in [ "opd"; "opsd" ] do
                let corpus = Path.Combine(directory, "seed-1", setting, "corpus")
                Expect.isTrue (File.Exists(Path.Combine(corpus, "refinements.jsonl"))) $"{setting}: the drawn corpus"
                for m in Trd.Core.Methods.all do
                    let run = Path.Combine(directory, "seed-1", setting, m.ConfigName)
                    Expect.isFalse (Directory.Exists(Path.Combine(run, "corpus"))) $"{setting}/{m.ConfigName}: no copy of the corpus"
                    let config = JsonNode.Parse(File.ReadAllText(Path.Combine(run, "config.json")))
                    Expect.equal (config["corpus"] |> str) corpus $"{setting}/{m.ConfigName}: config.json names the shared corpus"
                    Expect.equal (config["setting"] |> str) setting $"{setting}/{m.ConfigName}: its setting"
                    Expect.isTrue (File.Exists(Path.Combine(run, "manifest.json"))) $"{setting}/{m.ConfigName}: manifest"
                    Expect.isFalse (File.Exists(Path.Combine(run, ".trd.lock.json"))) $"{setting}/{m.ConfigName}: the lock was released"

        testCase "one claim line per claim and setting, each with a verdict, the measured values and the rule" <| fun () ->
            let directory = finished ()
            let claims = entries directory "claims" 14 "seven claims × two settings"
            for c in claims do
                Expect.contains [ "reproduced"; "not reproduced"; "inconclusive" ] (c["verdict"] |> str) "verdict"
                Expect.isNotEmpty (c["measured"] |> str) "measured"
                Expect.isNotEmpty (c["rule"] |> str) "rule"

        testCase "a rerun resumes the finished study without training or sampling again" <| fun () ->
            let directory = finished ()
            let before = File.ReadAllText(Path.Combine(directory, "seed-1", "opd", "trd", "eval", "trained", "heldout.jsonl"))
            let psi = ProcessStartInfo("dotnet", [ trdDll (); "study"; "--quick"; "--out"; directory ], WorkingDirectory = TestData.repositoryRoot,
                                       RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false)
            let watch = Stopwatch.StartNew()
            use p = Process.Start psi
            let err = p.StandardError.ReadToEndAsync()
            p.StandardOutput.ReadToEnd() |> ignore
            p.WaitForExit()
            Expect.equal p.ExitCode 0 $"rerun exit code\n{err.Result}"
            Expect.equal (File.ReadAllText(Path.Combine(directory, "seed-1", "opd", "trd", "eval", "trained", "heldout.jsonl"))) before "evaluation kept"
            Expect.isLessThan watch.Elapsed.TotalSeconds 60.0 "nothing is recomputed"

        testCase "trd study --methods runs shaped methods beside the paper's: reported, not counted as the claims' baselines" <| fun () ->
            finished () |> ignore   // the gym models are cached
            let directory = Path.Combine(Path.GetTempPath(), "trd-study-methods-" + Guid.NewGuid().ToString("N"))
            let run (args: string list) =
                let psi = ProcessStartInfo("dotnet", trdDll () :: args, WorkingDirectory = TestData.repositoryRoot,
                                           RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false)
                use p = Process.Start psi
                let err = p.StandardError.ReadToEndAsync()
                let out = p.StandardOutput.ReadToEnd()
                if not (p.WaitForExit(TimeSpan.FromMinutes 10.0)) then p.Kill true; failwith "trd study --methods did not finish"
                p.ExitCode, out, err.Result
            let code, _, err = run [ "study"; "--quick"; "--methods"; "trd,nope"; "--out"; directory + "-bad" ]
            Expect.equal code 2 "an unknown method is refused with exit 2"
            Expect.stringContains err "nope" "naming it"
            Expect.isFalse (Directory.Exists(directory + "-bad")) "nothing written"
            let code, out, err = run [ "study"; "--quick"; "--methods"; "forward-kl,gndpo,trd"; "--out"; directory ]
            Expect.equal code 0 $"exit code; stderr:\n{err}\nstdout:\n{out}"
            let results = resultsNode directory
            let rows = results["rows"].AsArray() |> Seq.map (fun r -> str r["setting"], str r["model"]) |> Set.ofSeq
            for setting in [ "opd"; "opsd" ] do
                for model in [ "forward_kl"; "gndpo"; "trd" ] do
                    Expect.isTrue (rows.Contains(setting, model)) $"{setting} {model} in results.json"
            for c in results["claims"].AsArray() do
                if str c["id"] = "trd_beats_baselines" then
                    let measured = str c["measured"]
                    Expect.stringContains measured "Forward KL" "the paper's baseline is counted"
                    Expect.isFalse (measured.Contains "GNDPO") $"GNDPO is not one of the paper's baselines: {measured}"
            for b in results["best_baseline"].AsArray() do Expect.equal (str b["baseline"]) "forward_kl" "the best baseline is the paper's"
            let report = File.ReadAllText(Path.Combine(directory, "report.html"))
            Expect.stringContains report "GNDPO" "the report shows the shaped method"
            Expect.stringContains report "Shaped methods beyond the paper" "and says the claims do not count it"
            Expect.isFalse ((File.ReadAllText(Path.Combine(finished (), "report.html"))).Contains "Shaped methods beyond the paper") "the default study's report has no such line"

        testCase "a directory holding another plan is refused with its study.json named" <| fun () ->
            let directory = finished ()
            let psi = ProcessStartInfo("dotnet", [ trdDll (); "study"; "--out"; directory ], WorkingDirectory = TestData.repositoryRoot,
                                       RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false)
            use p = Process.Start psi
            let err = p.StandardError.ReadToEndAsync()
            p.StandardOutput.ReadToEnd() |> ignore
            p.WaitForExit()
            Expect.notEqual p.ExitCode 0 "refused"
            Expect.stringContains err.Result "study.json" "names the plan file"
    ]
