namespace Trd.Report

open System
open System.Collections.Generic
open System.IO
open System.Reflection
open System.Text.Json
open System.Text.Json.Serialization

/// Checks a JSON document against the .NET records it is read into (their [JsonPropertyName]s, property types and
/// nullability), so that a bad results.json is refused with the file, the JSON pointer of the value, what was expected
/// and what was found — before System.Text.Json reads it. The records are the schema: nothing here names a field.
[<RequireQualifiedAccess>]
module Schema =

    let private describe (e: JsonElement) =
        let raw = e.GetRawText()
        let raw = if raw.Length > 40 then raw.Substring(0, 40) + "…" else raw
        match e.ValueKind with
        | JsonValueKind.Object -> "an object"
        | JsonValueKind.Array -> "an array"
        | JsonValueKind.String -> $"the string {raw}"
        | JsonValueKind.Null -> "null"
        | JsonValueKind.True | JsonValueKind.False -> $"the boolean {raw}"
        | _ -> $"the number {raw}"

    let private fail (source: string) (pointer: string) (message: string) : unit =
        let where = if pointer = "" then "(the document)" else pointer
        raise (InvalidDataException $"{source}: {where}: {message}")

    /// The JSON name of a property: its [JsonPropertyName], else its own name.
    let jsonName (p: PropertyInfo) =
        match p.GetCustomAttribute<JsonPropertyNameAttribute>() with
        | null -> p.Name
        | a -> a.Name

    /// Whether a property is a parameter of the record's constructor (so System.Text.Json requires nothing of an
    /// absent one, but the schema does unless it may be null).
    let private isConstructorParameter (t: Type) (p: PropertyInfo) =
        t.GetConstructors()
        |> Array.exists (fun c -> c.GetParameters() |> Array.exists (fun a -> String.Equals(a.Name, p.Name, StringComparison.OrdinalIgnoreCase)))

    let private dictionaryValueType (t: Type) =
        t.GetInterfaces()
        |> Array.append [| t |]
        |> Array.tryPick (fun i ->
            if i.IsGenericType && i.GetGenericTypeDefinition() = typedefof<IDictionary<_, _>> && i.GenericTypeArguments[0] = typeof<string>
            then Some i.GenericTypeArguments[1] else None)

    let rec private checkValue (nullability: NullabilityInfoContext) (source: string) (pointer: string) (t: Type) (mayBeNull: bool) (e: JsonElement) : unit =
        let underlying = match Nullable.GetUnderlyingType t with null -> t | u -> u
        let isFloat = underlying = typeof<float> || underlying = typeof<float32>
        let isInteger = underlying = typeof<int> || underlying = typeof<int64>
        match e.ValueKind with
        // null: a nullable value, or a float's NaN / ±Infinity (Trd.Runtime.Data.RunJson).
        | JsonValueKind.Null when mayBeNull || isFloat || underlying <> t -> ()
        | _ when isFloat ->
            match e.ValueKind with
            | JsonValueKind.Number -> ()
            | JsonValueKind.String when (match e.GetString() with "NaN" | "Infinity" | "-Infinity" -> true | _ -> false) -> ()
            | _ -> fail source pointer $"expected a number, got {describe e}"
        | _ when isInteger ->
            if e.ValueKind <> JsonValueKind.Number || not (fst (e.TryGetInt64())) then
                fail source pointer $"expected a number (an integer), got {describe e}"
        | _ when underlying = typeof<string> ->
            if e.ValueKind <> JsonValueKind.String then fail source pointer $"expected a string, got {describe e}"
        | _ when underlying = typeof<bool> ->
            if e.ValueKind <> JsonValueKind.True && e.ValueKind <> JsonValueKind.False then fail source pointer $"expected true or false, got {describe e}"
        | _ when underlying = typeof<DateTime> ->
            if e.ValueKind <> JsonValueKind.String || not (fst (e.TryGetDateTime())) then fail source pointer $"expected a date and time, got {describe e}"
        | _ when underlying.IsArray ->
            if e.ValueKind <> JsonValueKind.Array then fail source pointer $"expected an array, got {describe e}"
            else
                let element = underlying.GetElementType() |> nonNull
                e.EnumerateArray() |> Seq.iteri (fun i x -> checkValue nullability source (JsonPointer.appendIndex pointer i) element false x)
        | _ ->
            match dictionaryValueType underlying with
            | Some valueType ->
                if e.ValueKind <> JsonValueKind.Object then fail source pointer $"expected an object, got {describe e}"
                else for p in e.EnumerateObject() do checkValue nullability source (JsonPointer.append pointer p.Name) valueType false p.Value
            | None -> checkRecord nullability source pointer underlying e

    and private checkRecord (nullability: NullabilityInfoContext) (source: string) (pointer: string) (t: Type) (e: JsonElement) =
        if e.ValueKind <> JsonValueKind.Object then fail source pointer $"expected an object, got {describe e}"
        else
            for p in t.GetProperties(BindingFlags.Public ||| BindingFlags.Instance) do
                if p.CanRead && isNull (p.GetCustomAttribute<JsonIgnoreAttribute>()) then
                    let name = jsonName p
                    let mayBeNull = nullability.Create(p).ReadState = NullabilityState.Nullable
                    match e.TryGetProperty name with
                    | true, value -> checkValue nullability source (JsonPointer.append pointer name) p.PropertyType mayBeNull value
                    | _ when not mayBeNull && isConstructorParameter t p -> fail source pointer $"missing field \"{name}\""
                    | _ -> ()

    /// Checks `root` against the record type `t`; raises InvalidDataException naming `source` and the pointer.
    [<CompiledName("Check")>]
    let check (source: string) (t: Type) (root: JsonElement) =
        checkRecord (NullabilityInfoContext()) source "" t root      // a context per check: it is not thread-safe
