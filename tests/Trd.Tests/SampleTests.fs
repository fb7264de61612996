/// samples/Trd.Sample, the C# program a runtime user starts from: built with the tests (a project reference) and run
/// on the gym models, which the quick study has put in the default cache.
module Trd.Tests.SampleTests

open System
open System.Diagnostics
open System.IO
open System.Text.Json.Nodes
open Expecto

let private sampleDll =
    Path.Combine(TestData.repositoryRoot, "samples", "Trd.Sample", "bin", "Release", "net10.0", "linux-x64", "Trd.Sample.dll")

let private runSample (out: string) =
    let psi = ProcessStartInfo("dotnet", [ sampleDll; "--out"; out ], WorkingDirectory = TestData.repositoryRoot,
                               RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false)
    use p = Process.Start psi
    let stdout = p.StandardOutput.ReadToEndAsync()
    let stderr = p.StandardError.ReadToEndAsync()
    if not (p.WaitForExit(TimeSpan.FromMinutes 10.0)) then
        p.Kill true
        failtest $"the sample did not finish in 10 minutes:\n{stdout.Result}"
    p.ExitCode, stdout.Result + stderr.Result

[<Tests>]
let tests =
    testSequenced <| testList "Sample" [
        testCase "the C# sample runs every stage with its own recipe and prints what the run's files hold" <| fun () ->
            if not (File.Exists sampleDll) then failtest $"{sampleDll} is missing: the tests build it (run them in Release)"
            StudyTests.quickStudyDirectory () |> ignore // the gym models are cached once the study has run
            let out = Path.Combine(Path.GetTempPath(), $"trd-sample-{Guid.NewGuid():N}")
            try
                let code, output = runSample out
                Expect.equal code 0 $"exit code; output:\n{output}"
                // The recipe composed in C# is the one the run recorded and trained.
                let config = JsonNode.Parse(File.ReadAllText(Path.Combine(out, "config.json")))
                let objective = config["objective"]
                let direction = objective["direction"].GetValue<string>()
                let beta = objective["jsd_beta"].GetValue<float>()
                Expect.equal direction "jsd" "the config records the composed objective"
                Expect.equal beta 0.1 "β"
                Expect.stringContains output "recipe  TRD-JSD(0.1) clip 1: JSD(β=0.1), full vocabulary, exact, clip D at 1" "the recipe printed"
                // Every printed score is the summary file's.
                for model in [ "base"; "trained" ] do
                    let summary = JsonNode.Parse(File.ReadAllText(Path.Combine(out, "eval", model, "summary.json")))
                    let avg = summary["macro_avg_at_k"].GetValue<float>()
                    let line = output.Split('\n') |> Array.tryFind (fun l -> l.StartsWith $"eval {model}")
                    Expect.isSome line $"an eval line for {model} in:\n{output}"
                    Expect.stringContains line.Value (avg.ToString("P1")) $"{model}'s Avg@K is summary.json's"
                Expect.isTrue (File.Exists(Path.Combine(out, "train", "metrics.jsonl"))) "training wrote its metrics"
                Expect.stringContains output "first y_r (" "a refinement read back"
                // A second run finds everything on disk: no stage samples or trains again.
                let code2, output2 = runSample out
                Expect.equal code2 0 $"rerun exit code; output:\n{output2}"
                Expect.stringContains output2 "corpus: 0 rollouts and 0 refinements sampled this run" "the rerun samples nothing"
            finally
                if Directory.Exists out then Directory.Delete(out, true)
    ]
