// Writes TorchSharpTemporaryScalars.txt, the list behind TRD002 (TemporaryScalarAnalyzer.cs): TorchSharp's public
// members that make a temporary Scalar in their own body (an implicit conversion to Scalar, or a ToScalar() not held
// in a local), and every member that calls one of them, transitively. Run it on the source of the TorchSharp version
// Directory.Packages.props names, whenever that version changes (a test holds the two versions together):
//   git clone --branch vX.Y.Z https://github.com/dotnet/TorchSharp  (or any checkout of that tag)
//   dotnet fsi build/Trd.Analyzers/list-temporary-scalars.fsx TorchSharp/src/TorchSharp X.Y.Z
// The compilation is approximate (no generated protobuf code, this runtime's reference assemblies), which is enough
// to bind the members and conversions it looks for.
#r "nuget: Microsoft.CodeAnalysis.CSharp, 5.12.0"
open System
open System.IO
open System.Collections.Generic
open Microsoft.CodeAnalysis
open Microsoft.CodeAnalysis.CSharp
open Microsoft.CodeAnalysis.CSharp.Syntax
let dir = fsi.CommandLineArgs.[1]
let version = fsi.CommandLineArgs.[2]
let files = Directory.EnumerateFiles(dir, "*.cs", SearchOption.AllDirectories) |> Seq.toArray
let opts = CSharpParseOptions(LanguageVersion.Preview)
let trees = files |> Array.map (fun f -> CSharpSyntaxTree.ParseText(File.ReadAllText f, opts, f))
let tpa = (AppContext.GetData("TRUSTED_PLATFORM_ASSEMBLIES") :?> string).Split(':')
let refs = tpa |> Seq.filter File.Exists |> Seq.map (fun p -> MetadataReference.CreateFromFile p :> MetadataReference) |> Seq.toArray
let comp = CSharpCompilation.Create("TorchSharp", trees, refs, CSharpCompilationOptions(OutputKind.DynamicallyLinkedLibrary, allowUnsafe = true))
let isScalar (t: ITypeSymbol) = not (isNull t) && t.Name = "Scalar" && t.ContainingNamespace.ToDisplayString() = "TorchSharp"
let racy = HashSet<ISymbol>(SymbolEqualityComparer.Default)
let calls = Dictionary<ISymbol, HashSet<ISymbol>>(SymbolEqualityComparer.Default) // callee -> callers
let addCall (callee: ISymbol) (caller: ISymbol) =
    let callee = callee.OriginalDefinition
    if not (calls.ContainsKey callee) then calls.[callee] <- HashSet<ISymbol>(SymbolEqualityComparer.Default)
    calls.[callee].Add caller |> ignore
for t in trees do
    let m = comp.GetSemanticModel(t, false)
    for node in t.GetRoot().DescendantNodes() do
        match node with
        | :? ExpressionSyntax as e ->
            let owner = m.GetEnclosingSymbol(e.SpanStart)
            let owner = if isNull owner then null else (match owner with :? IMethodSymbol as ms when ms.MethodKind = MethodKind.LambdaMethod || ms.MethodKind = MethodKind.LocalFunction -> (let mutable s = ms :> ISymbol in (while not (isNull s) && (match s with :? IMethodSymbol as x -> x.MethodKind = MethodKind.LambdaMethod || x.MethodKind = MethodKind.LocalFunction | _ -> false) do s <- s.ContainingSymbol); s) | o -> o)
            if not (isNull owner) && owner.ContainingType <> null && owner.ContainingType.ToDisplayString() <> "TorchSharp.Scalar" then
                let c = m.GetConversion e
                let ti = m.GetTypeInfo e
                if c.IsUserDefined && c.IsImplicit && isScalar ti.ConvertedType && not (isScalar ti.Type) then racy.Add owner |> ignore
                match e with
                | :? InvocationExpressionSyntax | :? ObjectCreationExpressionSyntax | :? BinaryExpressionSyntax | :? PrefixUnaryExpressionSyntax | :? AssignmentExpressionSyntax ->
                    let s = m.GetSymbolInfo(e).Symbol
                    if not (isNull s) then
                        if s.Name = "ToScalar" && (match s with :? IMethodSymbol as ms -> isScalar ms.ReturnType | _ -> false) then
                            // a ToScalar() whose result is not held in a using local
                            match e.Parent with
                            | :? EqualsValueClauseSyntax -> ()
                            | _ -> racy.Add owner |> ignore
                        addCall s owner
                | _ -> ()
        | _ -> ()
let q = Queue<ISymbol>(racy)
while q.Count > 0 do
    let s = q.Dequeue()
    match calls.TryGetValue(s.OriginalDefinition) with
    | true, callers -> for c in callers do if racy.Add c then q.Enqueue c
    | _ -> ()
let lines =
    racy
    |> Seq.filter (fun s -> s.DeclaredAccessibility = Accessibility.Public && (s.ContainingType.DeclaredAccessibility = Accessibility.Public))
    |> Seq.map (fun s -> s.GetDocumentationCommentId())
    |> Seq.filter (fun s -> not (isNull s))
    |> Seq.distinct |> Seq.sort |> Seq.toList
let header =
    [ sprintf "# TorchSharp %s: its public members that make a temporary Scalar in their own body, or call one that does." version
      sprintf "# Made by: dotnet fsi build/Trd.Analyzers/list-temporary-scalars.fsx TORCHSHARP_CHECKOUT/src/TorchSharp %s" version ]
File.WriteAllLines(Path.Combine(__SOURCE_DIRECTORY__, "TorchSharpTemporaryScalars.txt"), header @ lines)
printfn "%d members" lines.Length
