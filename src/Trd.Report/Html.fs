namespace Trd.Report

open System.Net

/// Small HTML helpers. A printed value of results.json is always a traceability span:
/// <span class="num" data-json="/pointer" data-format="pct1">42.3%</span>, whose text is Format applied to the value
/// at the pointer (docs/report.md).
[<RequireQualifiedAccess>]
module Html =

    /// Text escaped for an element or a double-quoted attribute.
    let esc (s: string) : string =
        match WebUtility.HtmlEncode s with
        | null -> ""
        | e -> e

    /// The traceability span of a value of results.json printed as `text` in `format`.
    let span (pointer: string) (format: string) (text: string) =
        $"<span class=\"num\" data-json=\"{esc pointer}\" data-format=\"{esc format}\">{esc text}</span>"

    /// A number of results.json in a numeric format (Format).
    let num (format: string) (n: Num) = span n.Pointer format (Format.number format n.Value)

    /// A string of results.json as it is.
    let text (t: Text) = span t.Pointer "text" t.Value

    /// A string of results.json in capitals (setting names: "opd" → "OPD").
    let upper (t: Text) = span t.Pointer "upper" (t.Value.ToUpperInvariant())

    /// A boolean of results.json as yes or no.
    let yesNo (t: Text) = span t.Pointer "yesno" (if t.Value = "true" then "yes" else "no")

    /// An estimate's 95% interval, "[low, high]", in `format`.
    let interval (format: string) (e: Estimate) =
        $"<span class=\"ci\">[{num format e.Low}, {num format e.High}]</span>"

    /// An element with a class.
    let el (tag: string) (cls: string) (inner: string) =
        if cls = "" then $"<{tag}>{inner}</{tag}>" else $"<{tag} class=\"{cls}\">{inner}</{tag}>"

    /// A table from a header row and body rows of ready cells (<th>/<td> included).
    let table (cls: string) (header: string seq) (rows: string seq seq) =
        let head = header |> String.concat ""
        let body = rows |> Seq.map (fun cells -> "<tr>" + String.concat "" cells + "</tr>") |> String.concat "\n"
        $"<table class=\"{cls}\"><thead><tr>{head}</tr></thead>\n<tbody>\n{body}\n</tbody></table>"
