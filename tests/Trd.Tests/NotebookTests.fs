/// The notebooks, run as CI runs them: every F# cell in order with `dotnet fsi` (notebooks/Runner.fs), each chart
/// they save checked to open offline. Notebooks 03–05 read the quick study that the Study tests run.
module Trd.Tests.NotebookTests

open System
open System.IO
open Expecto
open Plotly.NET
open Trd.Notebooks

let private notebooks = Path.Combine(TestData.repositoryRoot, "notebooks")

/// A throwaway notebook in notebooks/ (so relative paths resolve as a real one's), deleted with its output afterwards.
let private withNotebook (cells: (string * string) list) (test: string -> unit) =
    let name = $"test-{Guid.NewGuid():N}"
    let path = Path.Combine(notebooks, name + ".ipynb")
    let cellJson (kind: string, source: string) =
        let kernel = if kind = "code" then "fsharp" else kind
        let meta = if kind = "markdown" then "{}" else $$$"""{"polyglot_notebook": {"kernelName": "{{{kernel}}}"}}"""
        let cellType = if kind = "markdown" then "markdown" else "code"
        $$$"""{"cell_type": "{{{cellType}}}", "metadata": {{{meta}}}, "source": {{{Text.Json.JsonSerializer.Serialize(source)}}}, "outputs": []}"""
    let cellsJson = String.Join(",", cells |> List.map cellJson)
    File.WriteAllText(path, $$$"""{"cells": [{{{cellsJson}}}], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}""")
    try test path
    finally
        File.Delete path
        let script = Path.Combine(notebooks, $".{name}.run.fsx")
        if File.Exists script then File.Delete script
        let output = Runner.outputDirectory path
        if Directory.Exists output then Directory.Delete(output, true)

let private runNotebook (file: string) (environment: (string * string) list) =
    let result = Runner.run (Path.Combine(notebooks, file)) environment (TimeSpan.FromMinutes 15.0)
    eprintfn "notebook %s: %.0f s, %d charts" file result.Seconds result.ExpectedCharts.Length
    Expect.equal result.ExitCode 0 $"{file}: every cell runs; output:\n{result.Output}"
    Expect.isEmpty result.ChartProblems $"{file}: every chart is saved and opens offline"
    Expect.isGreaterThanOrEqual result.ExpectedCharts.Length 3 $"{file} draws its charts"

[<Tests>]
let tests =
    testList "Notebooks" [
        testList "runner" [
            testCase "a chart page loads plotly.min.js from its own folder and nothing from the network" <| fun () ->
                let directory = Path.Combine(Path.GetTempPath(), $"trd-chart-{Guid.NewGuid():N}")
                try
                    let page = Chart.Line(x = [ 1.0; 2.0 ], y = [ 3.0; nan ]) |> Trd.Report.ChartFile.save directory "line"
                    Expect.equal page (Path.Combine(directory, "line.html")) "the page's path"
                    Expect.isNone (Runner.chartProblem directory "line") "the runner accepts it"
                    Expect.isTrue (File.Exists(Path.Combine(directory, "plotly.min.js"))) "plotly.min.js beside it"
                    Expect.stringContains (File.ReadAllText page) "null" "NaN written as null (a gap), not as invalid JSON"
                    Expect.stringContains (File.ReadAllText page) "\"showlegend\":true" "a page of one chart keeps Plotly's legend"
                    File.Delete(Path.Combine(directory, "plotly.min.js"))
                    Expect.isSome (Runner.chartProblem directory "line") "without plotly.min.js the page would not draw"
                    Expect.throwsT<ArgumentException> (fun () -> Trd.Report.ChartFile.save directory "../up" (Chart.Line(x = [ 1 ], y = [ 1 ])) |> ignore) "not a plain name"
                finally
                    if Directory.Exists directory then Directory.Delete(directory, true)

            testCase "cells run in order; #!fsharp is dropped; other kernels and magic commands are refused naming the cell" <| fun () ->
                withNotebook [ "markdown", "# title"; "code", "#!fsharp\nlet x = 1"; "code", "printfn \"%d\" (x + 1)" ] (fun path ->
                    let cells = Runner.codeCells path
                    Expect.equal (cells |> Array.map _.Index) [| 2; 3 |] "code cells keep their position among all cells"
                    Expect.equal cells[0].Source "let x = 1" "the magic line is dropped"
                    Expect.stringContains (Runner.toScript "n.ipynb" cells) "# 1 \"n.ipynb, cell 3\"" "a line directive names the cell")
                withNotebook [ "code", "let x = 1"; "code", "#!time\nlet y = 2" ] (fun path ->
                    try
                        Runner.codeCells path |> ignore
                        failtest "a magic command was accepted"
                    with :? InvalidDataException as e -> Expect.stringContains e.Message "cell 2: the magic command '#!time'" "names the cell and the command")
                withNotebook [ "code", "let x = 1"; "csharp", "var y = 2;" ] (fun path ->
                    try
                        Runner.codeCells path |> ignore
                        failtest "a C# cell was accepted"
                    with :? InvalidDataException as e -> Expect.stringContains e.Message "cell 2 is in 'csharp'" "names the cell and its kernel")

            testCase "an error in a cell fails the run and names the cell; a chart that was not saved is reported" <| fun () ->
                withNotebook [ "code", "let x = 1"; "code", "// charts.Save \"never\"\nlet y = x + 1"; "code", "if x = 1 then failwith \"boom in cell three\"" ] (fun path ->
                    let result = Runner.run path [] (TimeSpan.FromMinutes 2.0)
                    Expect.notEqual result.ExitCode 0 "the exception fails the run"
                    Expect.stringContains result.Output "boom in cell three" "the error is in the output")
                withNotebook [ "code", "let x: int = \"text\"" ] (fun path ->
                    let result = Runner.run path [] (TimeSpan.FromMinutes 2.0)
                    Expect.notEqual result.ExitCode 0 "a type error fails the run"
                    Expect.stringContains result.Output ", cell 1(1," "the compiler's message points at cell 1, line 1")
                withNotebook [ "code", "// charts.Save \"never\"\nprintfn \"ran\"" ] (fun path ->
                    let result = Runner.run path [] (TimeSpan.FromMinutes 2.0)
                    Expect.equal result.ExitCode 0 "the cells ran"
                    Expect.equal result.ExpectedCharts [| "never" |] "the chart the cell names"
                    Expect.isFalse result.Succeeded "a named chart with no page fails the notebook"
                    Expect.stringContains result.ChartProblems[0] "never: no page" "and is named")
        ]

        testSequenced <| testList "run" [
            testCase "01 — KL directions under prefix failure" <| fun () -> runNotebook "01-kl-directions.ipynb" []
            testCase "02 — the fragmented gradient (on the gym student)" <| fun () ->
                StudyTests.quickStudyDirectory () |> ignore // the gym models are cached once the study has run
                runNotebook "02-fragmented-gradient.ipynb" []
            testCase "03 — training diagnostics" <| fun () ->
                runNotebook "03-training-diagnostics.ipynb" [ "TRD_STUDY", StudyTests.quickStudyDirectory () ]
            testCase "04 — trajectories" <| fun () ->
                runNotebook "04-trajectories.ipynb" [ "TRD_STUDY", StudyTests.quickStudyDirectory () ]
            testCase "05 — evaluation" <| fun () ->
                runNotebook "05-evaluation.ipynb" [ "TRD_STUDY", StudyTests.quickStudyDirectory () ]
        ]
    ]
