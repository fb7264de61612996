namespace Trd.Report

open System
open System.Text.Json
open System.Text.Json.Nodes
open Plotly.NET
open Plotly.NET.LayoutObjects

/// The report's figures, built with Plotly.NET and emitted as Plotly.newPlot calls against the page's one shared
/// plotly.min.js (no library per chart, no CDN). Values on percentage axes are ×100.
[<RequireQualifiedAccess>]
module Charts =

    /// One colour per model or method, the same in every figure and in the page's legends (Trd.Core's catalogue).
    let colour (model: string) = Trd.Core.Methods.colour model

    /// `colour` at some opacity, for bands.
    let private translucent (hex: string) (alpha: float) =
        let c i = Convert.ToInt32(hex.Substring(i, 2), 16)
        Color.fromString (FormattableString.Invariant $"rgba({c 1}, {c 3}, {c 5}, {alpha})")

    let private finite (v: float) = if Double.IsFinite v then Some v else None

    /// Plotly.NET writes NaN as the string "NaN"; plotly.js wants null for a gap. Returns a fresh tree.
    let rec private nanToNull (node: JsonNode | null) : JsonNode | null =
        match node with
        | :? JsonObject as o ->
            let copy = JsonObject()
            for p in o do
                copy.Add(p.Key, nanToNull p.Value)
            upcast copy
        | :? JsonArray as a ->
            let copy = JsonArray()
            for item in a do
                copy.Add(item = nanToNull item)
            upcast copy
        | :? JsonValue as v ->
            match v.GetValueKind() with
            | JsonValueKind.String when (match v.GetValue<string>() with "NaN" | "Infinity" | "-Infinity" -> true | _ -> false) -> null
            // Six significant digits are more than a chart or its hover labels show, and keep the page small.
            | JsonValueKind.Number ->
                let inv = Globalization.CultureInfo.InvariantCulture
                JsonValue.Create(Double.Parse(v.GetValue<double>().ToString("G6", inv), inv))
            | _ -> v.DeepClone()
        | _ -> null

    /// The shared look, merged over what Plotly.NET wrote (charts are built with UseDefaults = false: no template).
    let private style (layout: JsonObject) (height: int) (legend: bool) =
        layout["height"] <- JsonValue.Create height
        layout.Remove "width" |> ignore
        layout["autosize"] <- JsonValue.Create true
        layout["font"] <- JsonNode.Parse """{"family":"system-ui, -apple-system, 'Segoe UI', sans-serif","size":12,"color":"#222"}"""
        layout["margin"] <- JsonNode.Parse """{"l":56,"r":12,"t":36,"b":44}"""
        layout["paper_bgcolor"] <- JsonValue.Create "#ffffff"
        layout["plot_bgcolor"] <- JsonValue.Create "#ffffff"
        // In the report colours mean the same model in every chart, so the page shows one legend per group of charts
        // (Report); a chart on a page of its own (ChartFile) keeps Plotly's.
        layout["showlegend"] <- JsonValue.Create legend
        layout["hovermode"] <- JsonValue.Create "closest"
        match layout["title"] with
        | :? JsonObject as t ->
            t["x"] <- JsonValue.Create 0.01
            t["xanchor"] <- JsonValue.Create "left"
            t["font"] <- JsonNode.Parse """{"size":13}"""
        | _ -> ()
        for axis in [ "xaxis"; "yaxis" ] do
            let a =
                match layout[axis] with
                | :? JsonObject as a -> a
                | _ ->
                    let a = JsonObject()
                    layout[axis] <- a
                    a
            a["gridcolor"] <- JsonValue.Create "#e6e6e6"
            a["zerolinecolor"] <- JsonValue.Create "#bdbdbd"
            a["linecolor"] <- JsonValue.Create "#9e9e9e"
            a["automargin"] <- JsonValue.Create true

    /// A chart's figure ({data, layout}) as JSON for Plotly.newPlot, with or without Plotly's own legend.
    let figureWith (legend: bool) (height: int) (chart: GenericChart) : string =
        let root =
            match JsonNode.Parse(GenericChart.toFigureJson chart) with
            | :? JsonObject as o -> o
            | _ -> invalidOp "Plotly.NET wrote a figure that is not a JSON object"
        let data = nanToNull root["data"]
        let layout =
            match root["layout"] with
            | :? JsonObject as l -> l.DeepClone().AsObject()
            | _ -> JsonObject()
        layout.Remove "template" |> ignore
        style layout height legend
        let figure = JsonObject()
        figure["data"] <- data
        figure["layout"] <- layout
        figure.ToJsonString(JsonSerializerOptions(WriteIndented = false))

    /// A chart's figure as JSON for the report (legends drawn by the page).
    let figure (height: int) (chart: GenericChart) : string = figureWith false height chart

    /// The div and the script that draw a chart into it.
    let embed (id: string) (height: int) (chart: GenericChart) : string =
        // "</" cannot appear inside a <script> element.
        let json = (figure height chart).Replace("</", "<\\/")
        $"<div class=\"chart\" id=\"{Html.esc id}\" style=\"height:{height}px\"></div>\n<script>trdPlot(\"{Html.esc id}\", {json});</script>"

    let private titled (title: string) (x: string) (y: string) (chart: GenericChart) =
        chart
        |> Chart.withTitle title
        |> Chart.withXAxisStyle (TitleText = x)
        |> Chart.withYAxisStyle (TitleText = y)

    /// One line per run: the mean over seeds, with the min–max band behind it (Fig. 3).
    type Band = { Name: string; Model: string; Steps: float[]; Mean: float[]; Min: float[]; Max: float[] }

    /// Fig. 3's panels: a metric over optimiser steps, one mean line and min–max band per run.
    let bands (title: string) (yTitle: string) (runs: Band seq) : GenericChart =
        runs
        |> Seq.collect (fun r ->
            let c = colour r.Model
            // The band bridges steps where min or max is missing: a fill with gaps draws stray polygons.
            let kept = [| for i in 0 .. r.Steps.Length - 1 do if Double.IsFinite r.Min[i] && Double.IsFinite r.Max[i] then i |]
            let pick (values: float[]) = kept |> Array.map (fun i -> values[i])
            [ Chart.Line(x = pick r.Steps, y = pick r.Max, Name = r.Name + " max", ShowLegend = false, LineWidth = 0.0,
                         LineColor = translucent c 0.0, UseDefaults = false)
              Chart.Line(x = pick r.Steps, y = pick r.Min, Name = r.Name + " min", ShowLegend = false, LineWidth = 0.0,
                         LineColor = translucent c 0.0, Fill = StyleParam.Fill.ToNext_y, FillColor = translucent c 0.18,
                         UseDefaults = false)
              Chart.Line(x = r.Steps, y = r.Mean, Name = r.Name, LineColor = Color.fromHex c, LineWidth = 2.0,
                         UseDefaults = false) ])
        |> Chart.combine
        |> titled title "optimiser step" yTitle

    /// One bar per category with its 95% interval.
    type Bar = { Category: string; Mean: float; Low: float; High: float }

    /// Grouped bars with interval whiskers: one group per category, one bar per series (model).
    let groupedBars (title: string) (yTitle: string) (series: (string * string * Bar[]) seq) : GenericChart =
        series
        |> Seq.map (fun (name, model, bars) ->
            let means = bars |> Array.map (fun b -> b.Mean)
            Chart.Column(values = means, Keys = (bars |> Array.map _.Category), Name = name,
                         MarkerColor = Color.fromHex (colour model), UseDefaults = false)
            |> Chart.withYErrorStyle (
                Array = (bars |> Array.map (fun b -> (finite (b.High - b.Mean) |> Option.defaultValue 0.0))),
                Arrayminus = (bars |> Array.map (fun b -> (finite (b.Mean - b.Low) |> Option.defaultValue 0.0))),
                Symmetric = false, Thickness = 1.2, Width = 3))
        |> Chart.combine
        |> Chart.withLayoutStyle (BarMode = StyleParam.BarMode.Group)
        |> titled title "" yTitle

    /// Box plots of length distributions (Fig. 5 left, Figs. 6–7 left).
    let boxes (title: string) (yTitle: string) (groups: (string * string * float[]) seq) : GenericChart =
        groups
        |> Seq.map (fun (name, hex, values) ->
            Chart.BoxPlot(Y = values, Name = name, MarkerColor = Color.fromHex hex, BoxMean = StyleParam.BoxMean.True,
                          UseDefaults = false))
        |> Chart.combine
        |> titled title "" yTitle

    /// The 2×2 joint outcome of y_o (rows) and y_r (columns) as an annotated heatmap (Figs. 6–7 right).
    let joint (title: string) (passPass: float) (passFail: float) (failPass: float) (failFail: float) : GenericChart =
        let z = [ [ passPass; passFail ]; [ failPass; failFail ] ]
        let labels = z |> List.map (List.map (fun v -> if Double.IsFinite v then v.ToString("F0", Globalization.CultureInfo.InvariantCulture) else "—"))
        Chart.AnnotatedHeatmap(zData = z, annotationText = labels, X = [ "y_r pass"; "y_r fail" ], Y = [ "y_o pass"; "y_o fail" ],
                               ColorScale = StyleParam.Colorscale.Custom [ 0.0, Color.fromHex "#eef3fa"; 1.0, Color.fromHex "#5b8bc7" ], ShowScale = false, ReverseYAxis = true, UseDefaults = false)
        |> titled title "" ""

    /// Lines over k (Fig. 5 right): one per model.
    let lines (title: string) (xTitle: string) (yTitle: string) (series: (string * string * float[] * float[]) seq) : GenericChart =
        series
        |> Seq.map (fun (name, model, x, y) ->
            Chart.Line(x = x, y = y, Name = name, ShowMarkers = true, LineColor = Color.fromHex (colour model),
                       MarkerColor = Color.fromHex (colour model), UseDefaults = false))
        |> Chart.combine
        |> titled title xTitle yTitle

    /// TRD − best baseline per grid cell, in points, as an annotated heatmap: rows and columns are the grid's knob
    /// values, each cell shows its value. `embedGap` adds what Plotly.NET's heatmap does not take: a diverging scale
    /// centred on 0 and each cell's interval in its hover.
    let gapHeatmap (title: string) (x: string[]) (y: string[]) (z: float[][]) (labels: string[][]) : GenericChart =
        Chart.AnnotatedHeatmap(zData = z, annotationText = labels, X = x, Y = y,
                               ColorScale = StyleParam.Colorscale.Custom [ 0.0, Color.fromHex "#cf222e"; 0.5, Color.fromHex "#f6f8fa"; 1.0, Color.fromHex "#1a7f37" ],
                               ShowScale = true, ReverseYAxis = true, UseDefaults = false)
        |> titled title "" ""

    /// The div and script of a gap heatmap, with its scale centred on 0 (±the largest |value|) and `hover` as each
    /// cell's hover text ([row][column]).
    let embedGap (id: string) (height: int) (chart: GenericChart) (z: float[][]) (hover: string[][]) : string =
        let root =
            match JsonNode.Parse(figure height chart) with
            | :? JsonObject as o -> o
            | _ -> invalidOp "Plotly.NET wrote a figure that is not a JSON object"
        let trace =
            match root["data"] with
            | :? JsonArray as data when data.Count > 0 ->
                match data[0] with
                | :? JsonObject as o -> o
                | _ -> invalidOp "the heatmap's trace is not a JSON object"
            | _ -> invalidOp "the heatmap's figure has no trace"
        let extent = z |> Array.concat |> Array.filter Double.IsFinite |> Array.map abs |> Array.fold max 1.0
        trace["zmin"] <- JsonValue.Create (0.0 - extent)
        trace["zmax"] <- JsonValue.Create extent
        trace["zmid"] <- JsonValue.Create 0.0
        trace["hoverinfo"] <- JsonValue.Create "text"
        trace["text"] <- JsonNode.Parse(JsonSerializer.Serialize hover)
        trace["colorbar"] <- JsonNode.Parse """{"title":{"text":"pts"},"thickness":12}"""
        let json = root.ToJsonString(JsonSerializerOptions(WriteIndented = false)).Replace("</", "<\\/")
        $"<div class=\"chart\" id=\"{Html.esc id}\" style=\"height:{height}px\"></div>\n<script>trdPlot(\"{Html.esc id}\", {json});</script>"
