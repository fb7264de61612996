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

/// Runs `dotnet fsi script`, returning exit code and combined output; fails after `timeout`.
let private fsi (script: string) (timeout: TimeSpan) =
    let psi = ProcessStartInfo("dotnet", [ "fsi"; "--quiet"; script ], WorkingDirectory = repositoryRoot)
    psi.RedirectStandardOutput <- true
    psi.RedirectStandardError <- true
    use p = Process.Start psi
    let stdout = p.StandardOutput.ReadToEndAsync()
    let stderr = p.StandardError.ReadToEndAsync()
    if not (p.WaitForExit timeout) then
        p.Kill true
        failwith $"dotnet fsi {script} did not finish within {timeout}"
    p.ExitCode, stdout.Result + stderr.Result

[<Tests>]
let tests =
    testSequenced <| testList "Scripts" [
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
    ]
