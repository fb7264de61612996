module Trd.Tests.Program

open System
open System.Reflection
open Expecto
open Expecto.Impl

/// After Expecto's own summary, the one line CI reads: "N passed, N failed[, N skipped]".
let private summaryLine (summary: TestRunSummary) =
    let failed = summary.failed.Length + summary.errored.Length
    let skipped = if summary.ignored.IsEmpty then "" else $", {summary.ignored.Length} skipped"
    // On a line of its own: Expecto's last output may leave the cursor mid-line.
    printfn "\n%d passed, %d failed%s" summary.passed.Length failed skipped

/// `--fast`: the pure and unit tests alone, the loop to run while editing (README, "Tests"). They build tiny models at
/// most and start no process; everything that trains, runs a pipeline, a study, the CLI, the sample, the scripts or
/// the notebooks is left to the full run. A module not named here runs only in the full run.
let private fastModules =
    set [ "AnalyzerTests"; "ChatTemplateTests"; "CheckpointDirectoryTests"; "CorpusAnalysisTests"; "DivergenceTests"
          "GradientFormTests"; "InteropTests"; "MetricsTests"; "MixtureTests"; "NumericsTests"; "ObjectiveSpecTests"
          "Qwen3ConfigTests"; "RecipeTests"; "ReductionTests"; "SafeTensorsTests"; "ScheduleTests"; "StatsTests"
          "TokenizerTests"; "VerifierTests"; "ExecutorTests"; "ModelTests"; "TorchTests"; "DataTests"; "LoggingTests"
          "ReportTests"; "SurfaceTests"; "SparseTeacherTests"; "ServingContractTests"; "SequenceSamplingTests"; "ShapingTests"; "ShapedExecutorTests" ]

let private isFast (moduleType: Type) =
    moduleType.FullName.StartsWith("Trd.Tests.", StringComparison.Ordinal) && fastModules.Contains(moduleType.Name)

[<EntryPoint>]
let main argv =
    let defaults = [ CLIArguments.No_Spinner; CLIArguments.Append_Summary_Handler(SummaryHandler summaryLine) ]
    if Array.contains "--fast" argv then
        let rest = argv |> Array.filter ((<>) "--fast")
        match testFromAssemblyWithFilter isFast (Assembly.GetExecutingAssembly()) with
        | Some tests -> runTestsWithCLIArgs defaults rest tests
        | None -> eprintfn "no fast tests found"; 2
    else runTestsInAssemblyWithCLIArgs defaults argv
