/// The public C# surface speaks in types: no string where a domain type exists, PascalCase names, no F# artefacts in
/// the sample a C# user starts from.
module Trd.Tests.SurfaceTests

open System
open System.Collections.Generic
open System.IO
open System.Reflection
open System.Text.RegularExpressions
open Expecto
open Trd.Core

/// The domain's words that have a type (Setting, ComparisonRow, SubsetFilter, Recipe and its parts, ScalarType, the
/// refine policies): a public string or string collection named like one of them is a string where a type exists.
let private typedWords =
    set [ "setting"; "settings"; "method"; "methods"; "recipe"; "recipes"; "subset"; "subsets"; "filter"; "filters"
          "dtype"; "direction"; "support"; "estimator"; "clip"; "trajectory"; "teacherprompt"; "onempty"; "ontruncated" ]

/// Types whose strings are words by design, each with the reason.
let private wordTypes =
    dict [ "Trd.Runtime.Pipeline.ObjectiveSpec", "the config's \"objective\" object as JSON writes it (PipelineConfig.Recipe is the typed value)"
           "Trd.Runtime.Pipeline.TrajectoryStats", "analysis.json's length distributions are named y*, y_o or y_r; y* (the reference solution) is not a Trajectory"
           "Trd.Runtime.Checkpoints.SafeTensorsEntry", "the safetensors header's own dtype word (\"BF16\", \"F8_E4M3\"), read before any ScalarType is chosen"
           // The results.json schema: its records are what the file holds, words and ids, read back by the report.
           "Trd.Runtime.Study.ResultRow", "results.json schema"
           "Trd.Runtime.Study.DiagnosticRun", "results.json schema"
           "Trd.Runtime.Study.TrajectoryAnalysis", "results.json schema"
           "Trd.Runtime.Study.SubsetRow", "results.json schema"
           "Trd.Runtime.Study.ClaimResult", "results.json schema"
           "Trd.Runtime.Study.StudyInfo", "results.json schema"
           "Trd.Runtime.Study.BestBaselineGap", "results.json schema"
           "Trd.Runtime.Study.ObjectiveCheck", "results.json schema"
           // The grid-results.json schema, read back by the grid report.
           "Trd.Runtime.Study.GridCellSetting", "grid-results.json schema"
           "Trd.Runtime.Study.GridInfo", "grid-results.json schema" ]

/// A type the check must flag.
type ProbeWithStrings() =
    member _.Setting = "opd"
    member _.Train(method: string) = method.Length

let private isStrings (t: Type) =
    t = typeof<string> || t = typeof<string[]> || (t.IsGenericType && typeof<IEnumerable<string>>.IsAssignableFrom t)

/// "Type.Member: name" for every public string property or parameter named like a typed word.
let private stringsWhereTypesExist (assembly: Assembly) =
    [ for t in assembly.GetExportedTypes() do
        if not (wordTypes.ContainsKey t.FullName) then
            let flags = BindingFlags.Public ||| BindingFlags.Instance ||| BindingFlags.Static ||| BindingFlags.DeclaredOnly
            for p in t.GetProperties flags do
                if isStrings p.PropertyType && typedWords.Contains(p.Name.ToLowerInvariant()) then $"{t.FullName}.{p.Name}"
            for m in t.GetMethods flags |> Seq.cast<MethodBase> |> Seq.append (t.GetConstructors() |> Seq.cast<MethodBase>) do
                if not m.IsSpecialName || m.IsConstructor then
                    for p in m.GetParameters() do
                        if isStrings p.ParameterType && typedWords.Contains(p.Name.ToLowerInvariant()) then
                            $"{t.FullName}.{m.Name}({p.Name})" ]

[<Tests>]
let tests =
    testList "Surface" [
        testCase "no public string in Trd.Runtime or Trd.Core where a domain type exists" <| fun () ->
            let found =
                [ typeof<Trd.Runtime.Pipeline.PipelineConfig>.Assembly; typeof<Recipe>.Assembly ]
                |> List.collect stringsWhereTypesExist
            Expect.isEmpty found $"""strings where a type exists: {String.Join("; ", found)}  (use Setting, ComparisonRow, SubsetFilter, Recipe, ScalarType, the policies)"""

        testCase "the check finds a string setting and a string method parameter (it can fail)" <| fun () ->
            let flagged = stringsWhereTypesExist (Assembly.GetExecutingAssembly())
            Expect.contains flagged $"{typeof<ProbeWithStrings>.FullName}.Setting" "a string property named Setting"
            Expect.contains flagged $"{typeof<ProbeWithStrings>.FullName}.Train(method)" "a string parameter named method"

        testCase "Trd.Core's public properties are PascalCase (union fields included)" <| fun () ->
            let lower =
                [ for t in typeof<Recipe>.Assembly.GetExportedTypes() do
                    for p in t.GetProperties(BindingFlags.Public ||| BindingFlags.Instance ||| BindingFlags.DeclaredOnly) do
                        if Char.IsLower p.Name[0] then $"{t.FullName}.{p.Name}" ]
            Expect.isEmpty lower $"""lower-case public properties: {String.Join("; ", lower)}"""

        testCase "recipes and their parts are built from C# with factory members and validated with an instance call" <| fun () ->
            let r = Recipe.Create("x", Direction.GeneralisedJsd 0.1, support = Support.TopK 8, clip = Clip.PerPositionAt 0.5)
            Expect.equal r.Direction (Jsd 0.1) "GeneralisedJsd"
            Expect.equal r.Support (TeacherTopK 8) "TopK"
            Expect.equal r.Clip (PerPosition 0.5) "PerPositionAt"
            Expect.equal (Support.TopKWithTail 4) (TeacherTopKWithTail 4) "TopKWithTail"
            Expect.equal (Clip.PerVocabEntryAt 0.2) (PerVocabEntry 0.2) "PerVocabEntryAt"
            Expect.equal (r.Validate()) r "a valid recipe validates to itself"
            let bad = Recipe.Create("bad", Forward, estimator = K3)
            Expect.isNonEmpty (bad.Problems()) "problems listed"
            Expect.throwsT<ArgumentException> (fun () -> bad.Validate() |> ignore) "Validate throws"

        testCase "the C# sample builds its recipe and config with types, not strings or F# artefacts" <| fun () ->
            let source = File.ReadAllText(Path.Combine(TestData.repositoryRoot, "samples", "Trd.Sample", "Program.cs"))
            for pattern, what in [ @"\.New[A-Z]\w*\(", "an F# union constructor (New…)"
                                   @"\w+Module\.", "an F# module artefact (…Module.)"
                                   @"(Setting|Recipe|Subset|Dtype|OnEmpty|OnTruncated)\s*=\s*""", "a string for a typed field" ] do
                let m = Regex.Match(source, pattern)
                Expect.isFalse m.Success $"the sample uses {what}: '{m.Value}'"
            for typed in [ "Setting = Setting.Opd"; "Recipe = recipe"; "ScalarType.Float32"; "EmptyRewritePolicy."; "TruncatedRewritePolicy."; "SubsetFilter." ] do
                Expect.stringContains source typed $"the sample shows {typed}"
    ]
