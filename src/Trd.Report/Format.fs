namespace Trd.Report

open System
open System.Globalization
open System.Text.Json

/// How report.html prints a value of results.json. Each printed number carries its format name (data-format), so a
/// checker can re-read the value at the span's JSON pointer, format it again and compare.
///
/// Formats: "text" (a string as it is; numbers and booleans as JSON writes them), "upper" (a string in capitals),
/// "yesno" (a boolean), "int", "f<d>" (d decimals), "pct<d>" (×100, d decimals, "%"), "pts<d>" (×100, d decimals, no
/// sign: percentage points where the header says %), "signed_" before f, pct or pts (an explicit "+"), and "duration"
/// (seconds as s, min or h). NaN, infinities and null print as "—".
[<RequireQualifiedAccess>]
module Format =

    /// What a missing value (NaN, an empty bucket, null) prints as.
    [<Literal>]
    let Missing = "—"

    let private inv = CultureInfo.InvariantCulture

    let private fixedPoint (decimals: int) (value: float) =
        let s = value.ToString("F" + string decimals, inv)
        // -0.0004 rounds to "-0.0": a sign on zero says nothing.
        if s.StartsWith "-" && s.Substring(1) |> Seq.forall (fun c -> c = '0' || c = '.') then s.Substring 1 else s

    let private signed (s: string) =
        if s.StartsWith "-" || s |> Seq.forall (fun c -> c = '0' || c = '.') then s else "+" + s

    let private digits (format: string) (prefix: string) =
        match Int32.TryParse(format.Substring prefix.Length, NumberStyles.None, inv) with
        | true, d when d <= 6 -> d
        | _ -> invalidArg (nameof format) $"unknown format \"{format}\""

    /// A number in a numeric format.
    [<CompiledName("Number")>]
    let number (format: string) (value: float) : string =
        if not (Double.IsFinite value) then Missing
        else
            let isSigned = format.StartsWith "signed_"
            let f = if isSigned then format.Substring "signed_".Length else format
            let body =
                if f = "int" && not isSigned then fixedPoint 0 value
                elif f = "duration" && not isSigned then
                    if value < 90.0 then fixedPoint 0 value + " s"
                    elif value < 5400.0 then fixedPoint 1 (value / 60.0) + " min"
                    else fixedPoint 1 (value / 3600.0) + " h"
                elif f.StartsWith "pct" then fixedPoint (digits f "pct") (value * 100.0)
                elif f.StartsWith "pts" then fixedPoint (digits f "pts") (value * 100.0)
                elif f.StartsWith "f" then fixedPoint (digits f "f") value
                else invalidArg (nameof format) $"unknown format \"{format}\""
            let body = if isSigned then signed body else body
            if f.StartsWith "pct" then body + "%" else body

    /// A JSON number; null, which results.json writes for NaN (Trd.Runtime.Data.RunJson), is NaN; the named literals
    /// "NaN", "Infinity", "-Infinity" of older results files are read too.
    let tryNumber (value: JsonElement) : float option =
        match value.ValueKind with
        | JsonValueKind.Number -> Some(value.GetDouble())
        | JsonValueKind.Null -> Some nan
        | JsonValueKind.String ->
            match value.GetString() with
            | "NaN" -> Some nan
            | "Infinity" -> Some infinity
            | "-Infinity" -> Some -infinity
            | _ -> None
        | _ -> None

    /// A value of results.json as the report prints it in `format`.
    [<CompiledName("Element")>]
    let element (format: string) (value: JsonElement) : string =
        match format, value.ValueKind with
        | _, JsonValueKind.Null -> Missing
        | ("text" | "upper"), JsonValueKind.String ->
            let s = value.GetString() |> string
            if format = "upper" then s.ToUpperInvariant() else s
        | "text", (JsonValueKind.Number | JsonValueKind.True | JsonValueKind.False) -> value.GetRawText()
        | "yesno", JsonValueKind.True -> "yes"
        | "yesno", JsonValueKind.False -> "no"
        | _ ->
            match tryNumber value with
            | Some v -> number format v
            | None -> invalidArg (nameof value) $"format \"{format}\" does not apply to {value.ValueKind} {value.GetRawText()}"
