/// `trd study --grid`: the gym's knobs as recipes, the grid's plan and its parsing, and a small grid end to end with
/// tiny-step models (so CI trains its four models in seconds): every cell a study, OPSD run once per student,
/// grid-results.json summarising the cells from their results.json, and the prediction judged from their gaps.
module Trd.Tests.GridTests

open System
open System.IO
open Expecto
open Trd.Core
open Trd.Runtime.Gym
open Trd.Runtime.Study

let private options directory =
    StudyOptions(Directory = directory, CacheRoot = Path.Combine(directory, "cache"))

/// The default chains with every phase cut to a few steps.
let private tiny (steps: int) =
    let sp = GymModels.StudentPretrain.WithSteps steps
    let student = GymModels.Student.WithSteps(steps).WithInitFrom(sp)
    let teacher = GymModels.Teacher.WithSteps(steps).WithInitFrom(GymModels.TeacherPretrain.WithSteps(steps).WithInitFrom(sp))
    student, teacher

[<Tests>]
let tests =
    testList "Grid" [
        testCase "the default variant leaves every recipe, key and plan as it was" <| fun () ->
            for recipe in [ GymModels.Student; GymModels.Teacher; GymModels.StudentPretrain; GymModels.TeacherPretrain ] do
                Expect.equal ((GymVariant.Default.Apply recipe).Key) recipe.Key $"{recipe.Name}: key"
                Expect.isFalse (recipe.ToJson().Contains "recovery") "recipe.json has no recovery key by default"
            // turning a knob to its default value keeps the keys too (line is stored as the default)
            let same = GymVariant.Default.With("catch", "0.4").With("recovery", "line").With("slip", "0.4").With("terms", "3-7")
            Expect.equal ((same.Apply GymModels.Teacher).Key) GymModels.Teacher.Key "teacher key"
            Expect.equal ((same.Apply GymModels.Student).Key) GymModels.Student.Key "student key"

        testCase "each knob changes the recipes its role owns, along the init_from chain" <| fun () ->
            let v = GymVariant.Default.With("catch", "0.8")
            Expect.equal ((v.Apply GymModels.Student).Key) GymModels.Student.Key "catch leaves the student"
            let t = v.Apply GymModels.Teacher
            Expect.floatClose Accuracy.high t.CarryShare 0.2 "teacher keeps 20% of dropped carries"
            Expect.floatClose Accuracy.high t.InitFrom.CarryShare 0.2 "and so does its first phase"
            Expect.equal t.InitFrom.InitFrom.Key GymModels.StudentPretrain.Key "the student's first phase below it is untouched"
            let s = GymVariant.Default.With("slip", "0.2").Apply GymModels.Teacher
            Expect.floatClose Accuracy.high s.InitFrom.InitFrom.SlipRate 0.2 "slip: the student's first phase in the teacher's chain"
            Expect.floatClose Accuracy.high s.SlipRate GymModels.Teacher.SlipRate "slip: not the teacher's own"
            let r = GymVariant.Default.With("recovery", "restart").With("terms", "4-9").Apply GymModels.Student
            Expect.equal r.EffectiveRecovery Recovery.Restart "recovery"
            Expect.equal r.InitFrom.EffectiveRecovery Recovery.Restart "recovery down the chain"
            Expect.equal (r.MinTerms, r.MaxTerms) (4, 9) "terms"
            Expect.stringContains (r.ToJson()) "\"recovery\": \"restart\"" "recipe.json names the recovery"
            Expect.equal r.ResponseBudget 256 "restart at 9 terms: twice 128"

        testCase "--grid arguments are parsed into cells, first axis slowest, and bad ones name themselves" <| fun () ->
            let plan = GridPlan.Parse(options "/tmp/g", [ "catch=0,0.8"; "recovery=line,restart" ])
            Expect.equal [ for c in plan.Cells -> string c ]
                [ "catch=0 recovery=line"; "catch=0 recovery=restart"; "catch=0.8 recovery=line"; "catch=0.8 recovery=restart" ] "cells"
            Expect.equal [ for c in plan.Cells -> c.Folder ].[3] "catch-0.8_recovery-restart" "folder"
            // OPSD runs once per student: in the first catch of each recovery only
            Expect.equal [ for c in plan.Cells -> plan.SettingsOf(c).Length ] [ 2; 2; 1; 1 ] "settings per cell"
            Expect.equal (plan.OpsdSource(plan.Cells[3])) (plan.Cells[1]) "OPSD of catch=0.8 restart comes from catch=0 restart"
            for bad, words in [ [ "catch=2" ], "'2' is not a rate"; [ "teacher=1" ], "unknown knob 'teacher'"; [ "recovery=redo" ], "unknown recovery 'redo'"
                                [ "terms=1-7" ], "2 ≤ MIN ≤ MAX ≤ 9"; [ "catch=0"; "catch=1" ], "given twice"; [ "catch" ], "KNOB=V1,V2"
                                [ "catch=0,0.0" ], "repeats" ] do
                let e = Expect.throwsC (fun () -> GridPlan.Parse(options "/tmp/g", bad) |> ignore) id
                Expect.stringContains e.Message words (String.Join(" ", bad))

        testCase "restart and none write the recovery forms the knobs promise" <| fun () ->
            let terms = [| 7; 3; 8; 5 |]
            let slip = [| { Step = 1; Delta = -10; Mode = Fix } |]
            Expect.equal (Gym.render Recovery.Restart terms slip) "7+3=10\n10+8=8\nWait, let me redo this.\n7+3=10\n10+8=18\n18+5=23\n\\boxed{23}" "restart"
            Expect.equal (Gym.render Recovery.Line terms slip) (Gym.withSlips terms slip) "line is withSlips"
            Expect.throwsT<ArgumentException> (fun () -> Gym.render Recovery.Never terms slip |> ignore) "none never catches"
            for seed in 1UL .. 200UL do
                let attempt = Gym.drawAttemptUnder Recovery.Never (Gym.Rng seed) [| 9; 8; 7; 6; 5; 4; 3 |] 0.9 0.0 0.0
                Expect.isFalse (attempt.Contains "Wait") $"seed {seed}: no correction under none"
            Expect.equal (Gym.responseBudget Gym.defaultLevel Recovery.Line) 96 "the default budget is unchanged"

        testCase "Bootstrap.contrast: independent samples, each resampled on its own" <| fun () ->
            let a = [| [| 0.2; 0.4; 0.6; 0.8 |]; [| 0.1; 0.3; 0.5 |] |]
            let shifted = a |> Array.map (Array.map (fun x -> x - 0.25))
            let c = Bootstrap.contrast [| 0; 1 |] a [| 0; 1 |] shifted
            Expect.floatClose Accuracy.high c.Mean 0.25 "the difference of the pooled means"
            Expect.isLessThan c.Low 0.25 "an interval around it (the two sides draw differently)"
            Expect.isGreaterThan c.High 0.25 "an interval around it"
            Expect.equal (c.Seeds, c.Problems) (4, 14) "both sides counted"
            let constant = Bootstrap.contrast [| 0 |] [| [| 0.5; 0.5 |] |] [| 0 |] [| [| 0.25; 0.25; 0.25 |] |]
            Expect.equal (constant.Low, constant.High) (0.25, 0.25) "constant data: a zero-width interval at the difference"
            Expect.isTrue (Double.IsNaN (Bootstrap.contrast [| 0 |] [| [||] |] [| 0 |] a.[..0]).Mean) "an empty side gives NaN"
            Expect.equal (Bootstrap.contrast [| 0; 1 |] a [| 0; 1 |] shifted) c "the same data, the same interval"
            Expect.throwsT<ArgumentException> (fun () -> Bootstrap.contrast [| 0 |] [| [| nan |] |] [| 0 |] a.[..0] |> ignore) "a non-finite score is refused"

        testCase "Claims.advantageGrows judges the contrast's interval" <| fun () ->
            let i m l h = { Mean = m; Low = l; High = h; Seeds = 3; Problems = 192 }
            let v (contrast: Interval) = (Claims.advantageGrows "catch 0 vs 0.8" "Avg@16" (i 0.0 -0.1 0.1) (i -0.1 -0.2 0.0) contrast).Verdict
            Expect.equal (v (i 0.1 0.02 0.2)) Reproduced "above 0"
            Expect.equal (v (i -0.1 -0.2 -0.02)) NotReproduced "below 0"
            Expect.equal (v (i 0.05 -0.01 0.1)) Inconclusive "straddles 0"
            Expect.equal (v (i nan nan nan)) Inconclusive "undefined"
            Expect.isNotEmpty (Claims.paperFigure "refined_shorter_more_correct") "the paper's figure for a comparable claim"
            Expect.equal (Claims.paperFigure "no_such_claim") "" "none for an unknown id"

        testCase "a 2 × 2 grid of tiny models runs end to end and its summary traces to the cells' results" <| fun () ->
            let directory = Path.Combine(Path.GetTempPath(), "trd-grid-" + Guid.NewGuid().ToString("N"))
            try
                let student, teacher = tiny 12
                let baseOptions =
                    (options directory).WithModels(student, teacher).WithPlan([| 1L |], 16, 8)
                    |> fun o -> o.WithComparison([| Methods.forwardKl; Methods.trd |], 4)
                let plan = GridPlan.Parse(baseOptions, [ "catch=0,0.8"; "recovery=line,none" ])
                let finished = Collections.Generic.List<string>()
                let watch = Diagnostics.Stopwatch.StartNew()
                GymGrid(plan).Run(fun cell _ -> finished.Add(string cell)) |> ignore
                eprintfn "2 × 2 tiny grid: %.0f s" watch.Elapsed.TotalSeconds
                Expect.equal (List.ofSeq finished) [ for c in plan.Cells -> string c ] "every cell ran, in order"
                Expect.isTrue (File.Exists(Path.Combine(directory, GridResults.FileName))) "grid-results.json"
                let read = GridResults.Read directory
                Expect.equal read.Cells.Length 4 "four cells"
                for cell in plan.Cells do
                    let study = StudyResults.Read(plan.CellDirectory cell)
                    let summary = read.Cells |> Array.find (fun c -> c.Folder = cell.Folder)
                    let opd = summary.Settings |> Array.find (fun s -> s.Setting = "opd")
                    let gap = study.BestBaseline |> Array.find (fun g -> g.Setting = "opd" && g.Metric = "avg_at_k")
                    Expect.equal opd.GapAvgAtK gap.Gap $"{cell}: the OPD gap is the cell's own results.json's"
                    Expect.equal opd.Source cell.Folder "OPD comes from the cell itself"
                    let opsd = summary.Settings |> Array.find (fun s -> s.Setting = "opsd")
                    Expect.equal opsd.Source (plan.OpsdSource cell).Folder "OPSD comes from the first cell of the student"
                    Expect.equal (Directory.Exists(Path.Combine(plan.CellDirectory cell, "seed-1", "opsd"))) (plan.OpsdSource cell = cell) "OPSD ran only there"
                    // the gap's values are TRD − best baseline per problem: their mean is the gap's
                    Expect.floatClose Accuracy.high (gap.Values |> Array.concat |> Array.average) gap.Gap.Mean "values behind the gap"
                // cells that change only catch share the student; catch changes the teacher
                let c0 = read.Cells[0]
                let c2 = read.Cells[2]
                Expect.equal c0.Student c2.Student "catch=0 and catch=0.8 share the student"
                Expect.notEqual c0.Teacher c2.Teacher "but not the teacher"
                // predictions: catch in OPD for each recovery, recovery in OPD for each catch and in OPSD once; two metrics each
                let count id setting = read.Predictions |> Array.filter (fun p -> p.Id = id && p.Setting = setting) |> Array.length
                Expect.equal (count "advantage_grows_catch" "opd") 4 "catch, OPD: 2 recoveries × 2 metrics"
                Expect.equal (count "advantage_grows_catch" "opsd") 0 "catch is not judged in OPSD"
                Expect.equal (count "advantage_grows_recovery" "opd") 4 "recovery, OPD: 2 catches × 2 metrics"
                Expect.equal (count "advantage_grows_recovery" "opsd") 2 "recovery, OPSD: once per student pair × 2 metrics"
                for p in read.Predictions do
                    Expect.contains [ "reproduced"; "not reproduced"; "inconclusive" ] p.Verdict "a verdict by the rule"
                // the grid's report: heatmaps per setting, every number traced to grid-results.json, cells linked
                let report = Trd.Report.GridReport.write directory
                let html = File.ReadAllText report
                let json = File.ReadAllText(Path.Combine(directory, GridResults.FileName))
                Expect.equal (ReportTests.checkNumbers json html) [] "every number of the grid report traces to grid-results.json"
                for id in [ "where"; "prediction"; "mechanism"; "verdicts"; "models"; "plan" ] do
                    Expect.stringContains html $"id=\"{id}\"" $"section {id}"
                Expect.equal (Text.RegularExpressions.Regex.Matches(html, "\"zmid\":0").Count) 4 "two heatmaps (Avg, Pass) per setting"
                for cell in plan.Cells do
                    Expect.stringContains html $"href=\"cells/{cell.Folder}/report.html\"" "each cell links to its own report"
                // a rerun resumes: nothing trains again and the summary is the same
                let again = GymGrid(plan).Run()
                Expect.equal (again.Cells |> Array.map (fun c -> c.Settings[0].GapAvgAtK)) (read.Cells |> Array.map (fun c -> c.Settings[0].GapAvgAtK)) "resumed"
                // another plan in the same directory is refused before anything is written
                let other = GridPlan.Parse(baseOptions, [ "catch=0,0.4" ])
                let e = Expect.throwsC (fun () -> GymGrid(other).Run() |> ignore) id
                Expect.stringContains e.Message "another plan" "refused"
            finally
                try Directory.Delete(directory, true) with _ -> ()
    ]
