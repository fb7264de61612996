/// Trd.Core as C# sees it: no F#-only types in public signatures, PascalCase compiled names.
module Trd.Tests.InteropTests

open System
open System.Reflection
open Expecto

let private fsharpOnly (t: Type) =
    let rec check (t: Type) =
        let name = if t.IsGenericType then t.GetGenericTypeDefinition().FullName else t.FullName
        (not (isNull name) && (name.StartsWith "Microsoft.FSharp.Core.FSharpOption" || name.StartsWith "Microsoft.FSharp.Core.FSharpFunc"
                                || name.StartsWith "Microsoft.FSharp.Collections.FSharpList"))
        || (t.HasElementType && check (t.GetElementType()))
        || (t.IsGenericType && t.GetGenericArguments() |> Array.exists check)
    check t

[<Tests>]
let tests =
    testList "C# surface" [
        testCase "no public Trd.Core member takes or returns FSharpOption, FSharpFunc or FSharpList" <| fun () ->
            let assembly = typeof<Trd.Core.Recipe>.Assembly
            let offenders =
                [ for t in assembly.GetExportedTypes() do
                    for m in t.GetMethods(BindingFlags.Public ||| BindingFlags.Static ||| BindingFlags.Instance ||| BindingFlags.DeclaredOnly) do
                        let types = m.ReturnType :: [ for p in m.GetParameters() -> p.ParameterType ]
                        if types |> List.exists fsharpOnly then $"{t.FullName}.{m.Name}" ]
            Expect.isEmpty offenders "members with F#-only types"
        testCase "module functions are compiled with PascalCase names" <| fun () ->
            let assembly = typeof<Trd.Core.Recipe>.Assembly
            let modules =
                assembly.GetExportedTypes()
                |> Array.filter (fun t ->
                    t.GetCustomAttributes(typeof<CompilationMappingAttribute>, false)
                    |> Seq.exists (fun a -> (a :?> CompilationMappingAttribute).SourceConstructFlags = SourceConstructFlags.Module))
            Expect.isGreaterThanOrEqual modules.Length 10 "the algebra's modules were found"
            let lower =
                [ for t in modules do
                    for m in t.GetMethods(BindingFlags.Public ||| BindingFlags.Static ||| BindingFlags.DeclaredOnly) do
                        if not m.IsSpecialName && Char.IsLower m.Name[0] then $"{t.Name}.{m.Name}" ]
            Expect.isEmpty lower "functions without [<CompiledName>]"
        testCase "a recipe is built from C#-style optional arguments" <| fun () ->
            let r = Trd.Core.Recipe.Create("x", Trd.Core.Reverse, clip = Trd.Core.PerPosition 0.1)
            Expect.equal r.Support Trd.Core.FullVocabulary "default support"
            Expect.equal r.Clip (Trd.Core.PerPosition 0.1) "given clip"
            Expect.equal r.Temperature 1.0 "default temperature"
    ]
