// Shared by the notebooks (loaded by their first cell, after the #r lines): where a notebook's charts go, and where
// the study that notebooks 03–05 read lives (`Notebook.Charts`, `Notebook.study ()`). Runs unchanged in VS Code's Polyglot Notebooks and under notebooks/run.fsx.
// The run files are read through Trd.Runtime (RecordFile), as the runtime itself reads them.
#r "../src/Trd.Cli/bin/Release/net10.0/linux-x64/Trd.Runtime.dll"

open System
open System.IO
open System.Text.Json.Nodes
open Plotly.NET


/// A notebook's chart folder, notebooks/output/<name>/: every chart is saved there as a page of its own that opens
/// offline (plotly.min.js is copied beside it). CI checks each `charts.Save "name"` produced its page.
type Charts(notebook: string) =
    let directory = Path.Combine(__SOURCE_DIRECTORY__, "output", notebook)
    member _.Directory = directory
    /// Saves the chart as output/<notebook>/<name>.html and returns it (so a Polyglot cell can still show it inline).
    member _.Save (name: string) (chart: GenericChart) : GenericChart =
        let path = Trd.Report.ChartFile.save directory name chart
        printfn "chart: %s" (Path.GetRelativePath(__SOURCE_DIRECTORY__, path))
        chart

let private hasResults (dir: string) = File.Exists(Path.Combine(dir, "results.json"))

/// The study notebooks 03–05 read: $TRD_STUDY if set, else runs/study, else runs/study-quick (the folders
/// `trd study` and `trd study --quick` write). Fails, saying what to run, when none holds a results.json.
let study () : string =
    let root = Path.GetFullPath(Path.Combine(__SOURCE_DIRECTORY__, ".."))
    match Environment.GetEnvironmentVariable "TRD_STUDY" with
    | null | "" ->
        let candidates = [ Path.Combine(root, "runs", "study"); Path.Combine(root, "runs", "study-quick") ]
        match candidates |> List.tryFind hasResults with
        | Some dir -> dir
        | None ->
            failwithf "no study found (looked for results.json in %s): run `./trd study --quick` first, or set TRD_STUDY to a study folder"
                (String.Join(" and ", candidates))
    | dir ->
        let dir = Path.GetFullPath dir
        if not (hasResults dir) then failwithf "TRD_STUDY=%s holds no results.json: is it a folder `trd study` wrote?" dir
        dir

/// The records of a JSONL file, read as the runtime reads its run files (Trd.Runtime.Data.RecordFile: blank lines
/// skipped, a torn last line left out, a bad line an error naming the file and line).
let jsonl (path: string) : JsonNode[] =
    Trd.Runtime.Data.RecordFile.ReadObjects path |> Seq.map (fun o -> o :> JsonNode) |> Seq.toArray
