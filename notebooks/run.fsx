// Runs notebooks' F# cells with `dotnet fsi`, as CI does (no .NET Interactive kernel needed), and checks their charts:
//
//   dotnet fsi notebooks/run.fsx                          # every notebooks/*.ipynb, in name order
//   dotnet fsi notebooks/run.fsx notebooks/01-kl-directions.ipynb
//
// Notebooks 03–05 read a study: TRD_STUDY=runs/study-quick dotnet fsi notebooks/run.fsx (see docs/getting-started-notebooks.md).
#load "Runner.fs"

open System
open System.IO
open Trd.Notebooks

let notebooks =
    match fsi.CommandLineArgs |> Array.skip 1 with
    | [||] -> Directory.GetFiles(__SOURCE_DIRECTORY__, "*.ipynb") |> Array.sort
    | paths -> paths |> Array.map Path.GetFullPath

let environment =
    match Environment.GetEnvironmentVariable "TRD_STUDY" with
    | null | "" -> []
    | study -> [ ("TRD_STUDY", Path.GetFullPath study) ]

let mutable failed = 0
for notebook in notebooks do
    printfn "== %s" (Path.GetFileName notebook)
    let result = Runner.run notebook environment (TimeSpan.FromMinutes 20.0)
    printf "%s" result.Output
    if result.Succeeded then
        printfn "== %s: %d charts in %s (%.0f s)" (Path.GetFileName notebook) result.ExpectedCharts.Length (Runner.outputDirectory notebook) result.Seconds
    else
        failed <- failed + 1
        printfn "== %s FAILED (exit code %d)" (Path.GetFileName notebook) result.ExitCode
        for problem in result.ChartProblems do printfn "   %s" problem
exit (if failed = 0 then 0 else 1)
