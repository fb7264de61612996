namespace Trd.Report

open System
open System.IO
open System.Text
open Plotly.NET

/// A Plotly.NET chart saved as a page of its own that opens offline: the page loads plotly.min.js by a relative path
/// and the file is copied beside it once (the same shared copy report.html uses). For notebooks and scripts, whose
/// charts must open without a network.
module ChartFile =

    let private page (title: string) (height: int) (chart: GenericChart) =
        let json = (Charts.figureWith true height chart).Replace("</", "<\\/")
        String.concat "\n" [
            "<!DOCTYPE html>"
            "<html lang=\"en\"><head><meta charset=\"utf-8\">"
            $"<title>{Html.esc title}</title>"
            $"<script src=\"{Report.PlotlyJsFileName}\"></script>"
            "<style>body{margin:16px;font:14px system-ui,sans-serif}#chart{width:100%}</style>"
            "</head><body>"
            $"<div id=\"chart\" style=\"height:{height}px\"></div>"
            "<script>"
            $"var figure = {json};"
            "if (typeof Plotly === \"undefined\") document.getElementById(\"chart\").textContent = \"This chart needs plotly.min.js beside this file.\";"
            "else Plotly.newPlot(\"chart\", figure.data, figure.layout, { responsive: true, displaylogo: false });"
            "</script>"
            "</body></html>"
            "" ]

    /// Writes chart as <c>directory/name.html</c> (height in pixels), with plotly.min.js beside it. Returns the path.
    [<CompiledName("SaveWithHeight")>]
    let saveWithHeight (directory: string) (name: string) (height: int) (chart: GenericChart) : string =
        if String.IsNullOrWhiteSpace name || name.IndexOfAny(Path.GetInvalidFileNameChars()) >= 0 || name.Contains ".." then
            invalidArg "name" $"'{name}' is not a plain file name (the chart is written as <name>.html)"
        if height < 100 then invalidArg "height" $"height {height} px: at least 100"
        let directory = Path.GetFullPath directory
        Directory.CreateDirectory directory |> ignore
        Report.copyPlotlyJs directory |> ignore
        let path = Path.Combine(directory, name + ".html")
        Trd.Runtime.Checkpoints.AtomicFile.WriteText(path, page name height chart)
        path

    /// Writes chart as <c>directory/name.html</c>, 440 px high, with plotly.min.js beside it. Returns the path.
    [<CompiledName("Save")>]
    let save (directory: string) (name: string) (chart: GenericChart) : string = saveWithHeight directory name 440 chart
