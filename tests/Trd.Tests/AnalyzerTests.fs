/// build/Trd.Analyzers: TRD001 and TRD002 reject the temporary TorchSharp Scalars behind the GC race (docs/performance.md,
/// "Stress"), and accept the held forms Trd.Runtime uses. Each case compiles a C# snippet against the TorchSharp this
/// process loads and runs the analyzer on it.
module Trd.Tests.AnalyzerTests

open System
open System.Collections.Immutable
open System.IO
open Expecto
open Microsoft.CodeAnalysis
open Microsoft.CodeAnalysis.CSharp
open Microsoft.CodeAnalysis.Diagnostics
open Trd.Analyzers

let private references =
    lazy
        (AppContext.GetData("TRUSTED_PLATFORM_ASSEMBLIES") :?> string).Split(Path.PathSeparator)
        |> Array.map (fun p -> MetadataReference.CreateFromFile p :> MetadataReference)

/// The analyzer's diagnostics (id, the flagged source text) on a method body with tensors a, b in scope.
let private diagnostics (body: string) =
    let source =
        $"""
using TorchSharp;
using static TorchSharp.torch;
static class Held {{ public static readonly Scalar One = 1L.ToScalar(); }}
static class Snippet
{{
    static Tensor Run(Tensor a, Tensor b, double x)
    {{
        {body}
    }}
}}"""
    let tree = CSharpSyntaxTree.ParseText source
    let compilation =
        CSharpCompilation.Create("snippet", [ tree ], references.Value, CSharpCompilationOptions(OutputKind.DynamicallyLinkedLibrary))
    let errors = compilation.GetDiagnostics() |> Seq.filter (fun d -> d.Severity = DiagnosticSeverity.Error) |> Seq.toList
    if not errors.IsEmpty then failwithf "the snippet does not compile: %A" errors
    let analyzers = ImmutableArray.Create<DiagnosticAnalyzer>(TemporaryScalarAnalyzer())
    compilation.WithAnalyzers(analyzers).GetAnalyzerDiagnosticsAsync().Result
    |> Seq.map (fun d -> d.Id, tree.GetText().ToString(d.Location.SourceSpan))
    |> Seq.sort
    |> Seq.toList

let private flagged body expected = Expect.equal (diagnostics body) (List.sort expected) body
let private clean body = Expect.isEmpty (diagnostics body) body

[<Tests>]
let tests =
    testList "analyzers" [
        test "TRD001: a number passed where TorchSharp takes a Scalar" {
            flagged "return a.mul(0.5);" [ "TRD001", "0.5" ]
            flagged "return a.clamp_max(x);" [ "TRD001", "x" ]
            flagged "return a.masked_fill(a.gt(b), double.NegativeInfinity);" [ "TRD001", "double.NegativeInfinity" ]
        }
        test "TRD001: a ToScalar() that nothing holds for the call" {
            flagged "return a.mul(x.ToScalar());" [ "TRD001", "x.ToScalar()" ]
            // A plain local is not held: it is dead once its handle is read.
            flagged "var s = x.ToScalar(); return a.mul(s);" [ "TRD001", "x.ToScalar()" ]
        }
        test "TRD002: a TorchSharp member that makes its own temporary" {
            flagged "return a + b;" [ "TRD002", "a + b" ]                      // a.add(b, 1)
            flagged "return a * 2.0;" [ "TRD002", "a * 2.0" ]
            flagged "return a.add(b);" [ "TRD002", "a.add(b)" ]
            flagged "return arange(4L, device: a.device);" [ "TRD002", "arange(4L, device: a.device)"; "TRD001", "4L" ]
            flagged "a.add_(b); return a;" [ "TRD002", "a.add_(b)" ]
            flagged "a += b; return a;" [ "TRD002", "a += b" ]
        }
        test "TRD003: a Generator that is not a using local" {
            flagged "var g = new Generator(1UL); return rand(new long[] { 2 }, generator: g);" [ "TRD003", "new Generator(1UL)" ]
            clean "using var g = new Generator(1UL); return rand(new long[] { 2 }, generator: g);"
        }
        test "held forms pass" {
            clean "using var s = x.ToScalar(); return a.mul(s);"
            clean "using Scalar s = 0.5; return a.mul(s);"
            clean "return a.add(b, Held.One);"
            clean "using var s = x.ToScalar(); return a.add(b, s).sub(b).mul(b);"    // sub(Tensor) and mul(Tensor) take no Scalar
        }
        test "the member list is made from the TorchSharp this build uses" {
            let root = TestData.repositoryRoot
            let header = File.ReadLines(Path.Combine(root, "build", "Trd.Analyzers", "TorchSharpTemporaryScalars.txt")) |> Seq.head
            let props = File.ReadAllText(Path.Combine(root, "Directory.Packages.props"))
            let version = Text.RegularExpressions.Regex.Match(props, "<TorchSharpVersion>([^<]+)</TorchSharpVersion>").Groups[1].Value
            Expect.stringStarts header $"# TorchSharp {version}:" "regenerate the list with build/Trd.Analyzers/list-temporary-scalars.fsx"
        }
    ]
