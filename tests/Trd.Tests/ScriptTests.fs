/// `dotnet fsi` scripts take TorchSharp from the NuGet cache through scripts/LoadTorchSharp.fsx.
module Trd.Tests.ScriptTests

open System
open System.Diagnostics
open System.IO
open Expecto

let private repositoryRoot =
    let rec up (dir: DirectoryInfo) =
        if isNull dir then failwith "no Trd.sln above the test binary"
        elif File.Exists(Path.Combine(dir.FullName, "Trd.sln")) then dir.FullName
        else up dir.Parent
    up (DirectoryInfo AppContext.BaseDirectory)

/// Runs `dotnet fsi script` (extra environment variables added), returning exit code and combined output; fails after
/// `timeout`.
let private fsiWith (environment: (string * string) list) (script: string) (timeout: TimeSpan) =
    let psi = ProcessStartInfo("dotnet", [ "fsi"; "--quiet"; script ], WorkingDirectory = repositoryRoot)
    for key, value in environment do psi.Environment[key] <- value
    psi.RedirectStandardOutput <- true
    psi.RedirectStandardError <- true
    use p = Process.Start psi
    let stdout = p.StandardOutput.ReadToEndAsync()
    let stderr = p.StandardError.ReadToEndAsync()
    if not (p.WaitForExit timeout) then
        p.Kill true
        failwith $"dotnet fsi {script} did not finish within {timeout}"
    p.ExitCode, stdout.Result + stderr.Result

let private fsi script timeout = fsiWith [] script timeout

/// An ablation script on the gym, in a fresh ablation directory: it runs, prints its table (the base student's row,
/// the reference row, one row per arm with intervals) and writes its chart as an offline page.
let private ablation (ablations: string) (script: string) (arms: string list) =
    StudyTests.quickStudyDirectory () |> ignore // the gym models are cached once the study has run
    let code, output = fsiWith [ "TRD_ABLATIONS", ablations ] $"scripts/{script}.fsx" (TimeSpan.FromMinutes 10.0)
    Expect.equal code 0 $"dotnet fsi scripts/{script}.fsx exit code; output:\n{output}"
    Expect.stringContains output "base student" "the base student's row"
    Expect.stringContains output "(reference)" "the row the Δ column is against"
    for arm in arms do Expect.stringContains output arm $"the arm {arm}"
    let page = Path.Combine(ablations, "charts", script + ".html")
    Expect.isTrue (File.Exists page) $"{page} written"
    Expect.stringContains (File.ReadAllText page) "<script src=\"plotly.min.js\"></script>" "the chart loads plotly.min.js beside it"
    Expect.isTrue (File.Exists(Path.Combine(ablations, "charts", "plotly.min.js"))) "plotly.min.js beside the chart"
    // Every arm is an ordinary run directory with its scores on disk.
    let arms = Directory.GetDirectories(Path.Combine(ablations, "seed-1", "opd"), "arm-*")
    Expect.isNonEmpty arms "arm directories"
    for dir in arms do Expect.isTrue (File.Exists(Path.Combine(dir, "eval", "trained", "summary.json"))) $"{dir} evaluated"

[<Tests>]
let tests =
    testSequenced <| testList "Scripts" [
        testCase "scripts/core-only.fsx: Trd.Core alone scores every recipe with the float64 reference, no TorchSharp" <| fun () ->
            let code, output = fsi "scripts/core-only.fsx" (TimeSpan.FromMinutes 5.0)
            Expect.equal code 0 $"dotnet fsi scripts/core-only.fsx exit code; output:\n{output}"
            for name in [ "Forward KL"; "Forward KL w/ Clip"; "Reverse KL"; "Reverse KL w/ Top-K"; "TRD" ] do
                Expect.isTrue (Text.RegularExpressions.Regex.IsMatch(output, $"(?m)^{Text.RegularExpressions.Regex.Escape name}\\s+loss \\d")) $"{name}: a loss"
            Expect.isFalse (output.Contains "TorchSharp") "no TorchSharp"

        testCase "a dotnet fsi script uses TorchSharp from the NuGet cache through the loader" <| fun () ->
            // The tour references src/Trd.Runtime's Release build, which building this test project produced.
            let built = Path.Combine(repositoryRoot, "src", "Trd.Runtime", "bin", "Release", "net10.0", "linux-x64", "Trd.Runtime.dll")
            if not (File.Exists built) then failtest $"{built} is missing: run the tests in Release (dotnet run -c Release)"
            let code, output = fsi "scripts/tour.fsx" (TimeSpan.FromMinutes 5.0)
            Expect.equal code 0 $"dotnet fsi scripts/tour.fsx exit code; output:\n{output}"
            Expect.stringContains output "TorchSharp loaded from the NuGet cache via" "the loader ran"
            Expect.stringContains output "libtorch 2.10.0" "libtorch initialised"
            // Reference (float64, Trd.Core) and executor (TorchSharp) columns agree on every recipe row.
            let rows =
                output.Split('\n')
                |> Array.choose (fun line ->
                    let parts = line.Split(' ', StringSplitOptions.RemoveEmptyEntries)
                    if parts.Length >= 4 then
                        match Double.TryParse parts[parts.Length - 3], Double.TryParse parts[parts.Length - 2] with
                        | (true, reference), (true, executor) when line.StartsWith "Forward" || line.StartsWith "Reverse" || line.StartsWith "TRD" -> Some(reference, executor)
                        | _ -> None
                    else None)
            Expect.equal rows.Length 5 $"five recipe rows in:\n{output}"
            for reference, executor in rows do
                Expect.floatClose Accuracy.medium executor reference "executor = reference"

        // The two quickest ablations (3 arms each), sharing one ablation directory as a user's runs/ablations would.
        testCase "custom-recipe.fsx and sweep-temperature.fsx train their arms on the gym and print their tables" <| fun () ->
            let ablations = Path.Combine(Path.GetTempPath(), $"trd-ablations-{Guid.NewGuid():N}")
            try
                ablation ablations "custom-recipe" [ "JSD(0.5), top-16 + tail, entry clip"; "TRD"; "Forward KL" ]
                ablation ablations "sweep-temperature" [ "TRD, T = 0.5"; "TRD, T = 1"; "TRD, T = 2" ]
            finally
                if Directory.Exists ablations then Directory.Delete(ablations, true)

        // Issue 19's sweep on its quick plan (the ablation sizes): 18 arms, every shaped method at its defaults.
        testCase "sweep-methods.fsx trains every shaped method, TRD and the baselines on the gym and prints the plan columns" <| fun () ->
            let ablations = Path.Combine(Path.GetTempPath(), $"trd-ablations-{Guid.NewGuid():N}")
            try
                ablation ablations "sweep-methods" [ for m in Trd.Core.ShapedMethods.all -> m.Label ]
                let arms = Directory.GetDirectories(Path.Combine(ablations, "seed-1", "opd"), "arm-*")
                Expect.equal arms.Length 18 "five paper recipes and thirteen shaped methods, one arm each"
            finally
                if Directory.Exists ablations then Directory.Delete(ablations, true)
    ]
