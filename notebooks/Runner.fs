/// Runs a Polyglot (.NET Interactive) notebook's F# code cells, in order, with `dotnet fsi`, for machines without the
/// .NET Interactive kernel (CI): the cells are written into one script beside the notebook (so relative #r, #load and
/// file paths resolve as they do in the notebook, whose working directory is its own folder), each cell preceded by a
/// line directive naming the notebook and the cell, so a compile error or a stack trace points at the cell. Then the
/// charts each cell saves (`charts.Save "name"`) must exist as offline pages under output/<notebook>/.
///
/// Used by notebooks/run.fsx (by hand) and by the tests (NotebookTests).
module Trd.Notebooks.Runner

open System
open System.Diagnostics
open System.IO
open System.Text
open System.Text.Json
open System.Text.RegularExpressions

/// One code cell: its index among all the notebook's cells (1-based, as an editor counts them) and its source.
type CodeCell = { Index: int; Source: string }

/// The outcome of running one notebook.
type RunResult =
    { Notebook: string
      ExitCode: int
      /// stdout and stderr of dotnet fsi, interleaved as they came.
      Output: string
      /// The chart names the cells save, in order of appearance.
      ExpectedCharts: string[]
      /// Expected charts with no page, or whose page does not draw offline (the reason after the name).
      ChartProblems: string[]
      Seconds: float }

    member r.Succeeded = r.ExitCode = 0 && r.ChartProblems.Length = 0

let private fail (path: string) (message: string) = raise (InvalidDataException($"{path}: {message}"))

let private kernelOf (metadata: JsonElement) =
    let mutable m = Unchecked.defaultof<JsonElement>
    let mutable k = Unchecked.defaultof<JsonElement>
    if metadata.ValueKind = JsonValueKind.Object && metadata.TryGetProperty("polyglot_notebook", &m) && m.TryGetProperty("kernelName", &k) then
        Some(k.GetString())
    elif metadata.ValueKind = JsonValueKind.Object && metadata.TryGetProperty("dotnet_interactive", &m) && m.TryGetProperty("language", &k) then
        Some(k.GetString())
    else None

let private sourceOf (path: string) (index: int) (cell: JsonElement) =
    let mutable source = Unchecked.defaultof<JsonElement>
    if not (cell.TryGetProperty("source", &source)) then fail path $"cell {index} has no \"source\""
    match source.ValueKind with
    | JsonValueKind.String -> source.GetString()
    | JsonValueKind.Array -> String.Join("", [| for line in source.EnumerateArray() -> line.GetString() |])
    | _ -> fail path $"cell {index}: \"source\" is neither a string nor a list of lines"

/// The F# code cells of an .ipynb notebook, in order. Refuses a code cell in another language, and Polyglot magic
/// commands other than #!fsharp (the runner has only F#), naming the cell.
let codeCells (path: string) : CodeCell[] =
    use doc =
        try JsonDocument.Parse(File.ReadAllText path)
        with :? JsonException as e -> fail path $"not a notebook (invalid JSON: {e.Message})"
    let root = doc.RootElement
    let mutable cells = Unchecked.defaultof<JsonElement>
    if root.ValueKind <> JsonValueKind.Object || not (root.TryGetProperty("cells", &cells)) || cells.ValueKind <> JsonValueKind.Array then
        fail path "not a notebook (no \"cells\" list)"
    let mutable metadata = Unchecked.defaultof<JsonElement>
    let defaultKernel =
        let mutable m = Unchecked.defaultof<JsonElement>
        let mutable ki = Unchecked.defaultof<JsonElement>
        let mutable d = Unchecked.defaultof<JsonElement>
        if root.TryGetProperty("metadata", &metadata) && metadata.TryGetProperty("polyglot_notebook", &m)
           && m.TryGetProperty("kernelInfo", &ki) && ki.TryGetProperty("defaultKernelName", &d) then d.GetString()
        else "fsharp"
    [| for i, cell in Seq.indexed (cells.EnumerateArray()) do
           let index = i + 1
           let mutable cellType = Unchecked.defaultof<JsonElement>
           if not (cell.TryGetProperty("cell_type", &cellType)) then fail path $"cell {index} has no \"cell_type\""
           if cellType.GetString() = "code" then
               let mutable cellMetadata = Unchecked.defaultof<JsonElement>
               let kernel =
                   if cell.TryGetProperty("metadata", &cellMetadata) then kernelOf cellMetadata |> Option.defaultValue defaultKernel
                   else defaultKernel
               if kernel <> "fsharp" then fail path $"cell {index} is in '{kernel}', not F#: the runner runs F# cells only"
               let lines =
                   (sourceOf path index cell).Replace("\r\n", "\n").Split('\n')
                   |> Array.filter (fun line ->
                       let t = line.Trim()
                       if t.StartsWith "#!" then
                           if t = "#!fsharp" || t = "#!f#" then false
                           else fail path $"cell {index}: the magic command '{t}' needs the .NET Interactive kernel; the runner has only F#"
                       else true)
               { Index = index; Source = String.Join("\n", lines) } |]

/// The one script the cells become: each cell after a line directive naming the notebook and the cell, so an error
/// reads "01-kl-directions.ipynb, cell 4(3,1): …" (line 3 of cell 4).
let toScript (notebookFile: string) (cells: CodeCell[]) : string =
    let sb = StringBuilder()
    for cell in cells do
        sb.Append($"# 1 \"{notebookFile}, cell {cell.Index}\"\n").Append(cell.Source).Append("\n") |> ignore
    sb.ToString()

/// The names the cells save charts under (`charts.Save "name"` / `|> charts.Save "name"`), in order.
let expectedCharts (cells: CodeCell[]) : string[] =
    [| for cell in cells do
           for m in Regex.Matches(cell.Source, "\\.Save\\s+\"([^\"]+)\"") -> m.Groups[1].Value |]
    |> Array.distinct

/// Where a notebook's chart pages go: output/<notebook name>/ beside the notebook.
let outputDirectory (notebookPath: string) =
    Path.Combine(Path.GetDirectoryName(Path.GetFullPath notebookPath), "output", Path.GetFileNameWithoutExtension notebookPath)

/// Why a chart page would not draw offline, if it would not.
let chartProblem (directory: string) (name: string) : string option =
    let page = Path.Combine(directory, name + ".html")
    if not (File.Exists page) then Some $"{name}: no page {page}"
    else
        let html = File.ReadAllText page
        if not (html.Contains "<script src=\"plotly.min.js\"></script>") then Some $"{name}: the page does not load plotly.min.js from its own folder"
        elif not (html.Contains "Plotly.newPlot") then Some $"{name}: the page draws nothing (no Plotly.newPlot)"
        elif Regex.IsMatch(html, "<script[^>]+src=\"(https?:)?//") then Some $"{name}: the page loads a script from the network"
        elif not (File.Exists(Path.Combine(directory, "plotly.min.js"))) then Some $"{name}: plotly.min.js is missing beside the page"
        else None

/// Runs a notebook: clears its output folder, runs its cells with `dotnet fsi` in the notebook's folder (extra
/// environment variables added), and checks its charts. Fails (a TimeoutException) after `timeout`.
let run (notebookPath: string) (environment: (string * string) list) (timeout: TimeSpan) : RunResult =
    let notebookPath = Path.GetFullPath notebookPath
    let folder = Path.GetDirectoryName notebookPath
    let name = Path.GetFileNameWithoutExtension notebookPath
    let cells = codeCells notebookPath
    if cells.Length = 0 then fail notebookPath "the notebook has no code cells"
    let output = outputDirectory notebookPath
    if Directory.Exists output then Directory.Delete(output, true)
    let script = Path.Combine(folder, $".{name}.run.fsx")
    File.WriteAllText(script, toScript (Path.GetFileName notebookPath) cells, UTF8Encoding false)
    let psi = ProcessStartInfo("dotnet", [ "fsi"; "--quiet"; "--nologo"; script ], WorkingDirectory = folder,
                               RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false)
    for key, value in environment do psi.Environment[key] <- value
    let log = StringBuilder()
    let watch = Stopwatch.StartNew()
    use p = new Process(StartInfo = psi)
    let append (e: DataReceivedEventArgs) = if not (isNull e.Data) then lock log (fun () -> log.AppendLine e.Data |> ignore)
    p.OutputDataReceived.Add append
    p.ErrorDataReceived.Add append
    p.Start() |> ignore
    p.BeginOutputReadLine()
    p.BeginErrorReadLine()
    if not (p.WaitForExit timeout) then
        p.Kill true
        raise (TimeoutException($"{notebookPath}: the cells did not finish within {timeout}; output so far:\n{log}"))
    p.WaitForExit()
    let expected = expectedCharts cells
    let problems =
        if p.ExitCode <> 0 then [||]
        elif expected.Length = 0 then [| "the notebook saves no chart (charts.Save \"name\")" |]
        else expected |> Array.choose (chartProblem output)
    { Notebook = notebookPath; ExitCode = p.ExitCode; Output = lock log (fun () -> log.ToString())
      ExpectedCharts = expected; ChartProblems = problems; Seconds = watch.Elapsed.TotalSeconds }
