namespace Trd.Report

open System
open System.Text.Json
open System.Text.Json.Nodes

/// JSON Pointers (RFC 6901): how every number in report.html names the value of results.json it shows.
/// "" is the whole document; "/rows/0/avg_at_k/mean" walks object members and array indices; "~" and "/" in a
/// member name are written "~0" and "~1".
[<RequireQualifiedAccess>]
module JsonPointer =

    /// One reference token, escaped.
    [<CompiledName("Escape")>]
    let escape (token: string) = token.Replace("~", "~0").Replace("/", "~1")

    /// A pointer one member or index below `pointer`.
    [<CompiledName("Append")>]
    let append (pointer: string) (token: string) = pointer + "/" + escape token

    /// A pointer one array index below `pointer`.
    [<CompiledName("AppendIndex")>]
    let appendIndex (pointer: string) (index: int) = pointer + "/" + string index

    /// The unescaped reference tokens of a pointer.
    [<CompiledName("Tokens")>]
    let tokens (pointer: string) : string[] =
        if pointer = "" then [||]
        elif not (pointer.StartsWith "/") then invalidArg (nameof pointer) $"JSON pointer \"{pointer}\" does not start with \"/\""
        else pointer.Substring(1).Split('/') |> Array.map (fun t -> t.Replace("~1", "/").Replace("~0", "~"))

    let private index (token: string) (length: int) =
        match Int32.TryParse(token, Globalization.NumberStyles.None, Globalization.CultureInfo.InvariantCulture) with
        | true, i when i < length && (token = "0" || not (token.StartsWith "0")) -> Some i
        | _ -> None

    /// The value a pointer names in a document, if there is one.
    let tryResolve (root: JsonElement) (pointer: string) : JsonElement option =
        tokens pointer
        |> Array.fold (fun (element: JsonElement option) token ->
            element
            |> Option.bind (fun e ->
                match e.ValueKind with
                | JsonValueKind.Object ->
                    match e.TryGetProperty token with
                    | true, child -> Some child
                    | _ -> None
                | JsonValueKind.Array -> index token (e.GetArrayLength()) |> Option.map (fun i -> e[i])
                | _ -> None)) (Some root)

    /// The value a pointer names in a document; KeyNotFoundException naming the pointer when there is none.
    [<CompiledName("Resolve")>]
    let resolve (root: JsonElement) (pointer: string) : JsonElement =
        match tryResolve root pointer with
        | Some e -> e
        | None -> raise (Collections.Generic.KeyNotFoundException $"JSON pointer \"{pointer}\" names no value")

    /// The node a pointer names in a JsonNode tree; None when it names nothing. A JSON null that is there is Some null.
    let tryResolveNode (root: JsonNode | null) (pointer: string) : (JsonNode | null) option =
        tokens pointer
        |> Array.fold (fun (node: (JsonNode | null) option) token ->
            node
            |> Option.bind (fun n ->
                match n with
                | :? JsonObject as o ->
                    let mutable child: JsonNode | null = null
                    if o.TryGetPropertyValue(token, &child) then Some child else None
                | :? JsonArray as a -> index token a.Count |> Option.map (fun i -> a[i])
                | _ -> None)) (Some root)
