using System.Collections.Immutable;
using System.IO;
using System.Linq;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Diagnostics;
using Microsoft.CodeAnalysis.Operations;

namespace Trd.Analyzers;

/// <summary>
/// Rejects temporary TorchSharp Scalars. A Scalar is a native object with a finalizer that no DisposeScope tracks;
/// TorchSharp passes its raw handle to libtorch, and once the handle is read nothing references the wrapper, so a
/// garbage collection started by another thread during the native call can free it while libtorch reads it
/// ("Expected false to be true", "Unknown scalar type" or a segfault: docs/performance.md, "Stress"). A Scalar must
/// therefore be held for the whole call: a <c>using</c> local (disposed after the call) or a static readonly field
/// (Trd.Runtime's <c>Scalars</c>).
/// <list type="bullet">
/// <item>TRD001: a number passed where TorchSharp takes a Scalar (an implicit conversion), or a <c>ToScalar()</c> not
/// held in a using local or static field.</item>
/// <item>TRD002: a TorchSharp member that makes such a temporary inside its own body (<c>a + b</c> is
/// <c>a.add(b, 1)</c>), from the list TorchSharpTemporaryScalars.txt, which list-temporary-scalars.fsx derives from
/// TorchSharp's source; call the overload that takes the Scalar instead.</item>
/// <item>TRD003: a <c>new Generator(…)</c> not held in a using local: it has a finalizer too, and a loop's last use
/// of a plain local leaves it unreferenced while libtorch draws from it.</item>
/// </list>
/// </summary>
[DiagnosticAnalyzer(LanguageNames.CSharp)]
public sealed class TemporaryScalarAnalyzer : DiagnosticAnalyzer
{
    const string Help = "docs/performance.md, \"Stress\"";

    public static readonly DiagnosticDescriptor Conversion = new(
        "TRD001", "Temporary TorchSharp Scalar",
        "'{0}' becomes a temporary TorchSharp Scalar that a garbage collection can free while libtorch reads it; hold it in a using local or a Scalars field (" + Help + ")",
        "Reliability", DiagnosticSeverity.Error, isEnabledByDefault: true);

    public static readonly DiagnosticDescriptor Member = new(
        "TRD002", "TorchSharp member with a temporary Scalar",
        "'{0}' makes a temporary Scalar inside TorchSharp that a garbage collection can free while libtorch reads it; call the overload that takes the Scalar and hold it in a using local or a Scalars field (" + Help + ")",
        "Reliability", DiagnosticSeverity.Error, isEnabledByDefault: true);

    public static readonly DiagnosticDescriptor Generator = new(
        "TRD003", "TorchSharp Generator not held",
        "'{0}' makes a TorchSharp Generator that a garbage collection can free while libtorch draws from it; declare it with using (" + Help + ")",
        "Reliability", DiagnosticSeverity.Error, isEnabledByDefault: true);

    static readonly ImmutableHashSet<string> RacyMembers = LoadRacyMembers();

    static ImmutableHashSet<string> LoadRacyMembers()
    {
        using var stream = typeof(TemporaryScalarAnalyzer).Assembly.GetManifestResourceStream("TorchSharpTemporaryScalars.txt")!;
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd().Split('\n').Select(l => l.Trim()).Where(l => l.Length > 0 && !l.StartsWith("#")).ToImmutableHashSet();
    }

    public override ImmutableArray<DiagnosticDescriptor> SupportedDiagnostics => ImmutableArray.Create(Conversion, Member, Generator);

    public override void Initialize(AnalysisContext context)
    {
        context.ConfigureGeneratedCodeAnalysis(GeneratedCodeAnalysisFlags.None);
        context.EnableConcurrentExecution();
        context.RegisterCompilationStartAction(start =>
        {
            var scalar = start.Compilation.GetTypeByMetadataName("TorchSharp.Scalar");
            if (scalar is null) return;   // not a TorchSharp project
            var generator = start.Compilation.GetTypeByMetadataName("TorchSharp.torch+Generator");
            if (generator is not null)
                start.RegisterOperationAction(c => OnCreation(c, generator), OperationKind.ObjectCreation);
            start.RegisterOperationAction(c => OnConversion(c, scalar), OperationKind.Conversion);
            start.RegisterOperationAction(c => OnInvocation(c, scalar), OperationKind.Invocation);
            start.RegisterOperationAction(c => OnOperator(c, ((IBinaryOperation)c.Operation).OperatorMethod), OperationKind.Binary);
            start.RegisterOperationAction(c => OnOperator(c, ((IUnaryOperation)c.Operation).OperatorMethod), OperationKind.Unary);
            start.RegisterOperationAction(c => OnOperator(c, ((ICompoundAssignmentOperation)c.Operation).OperatorMethod), OperationKind.CompoundAssignment);
        });
    }

    static void OnConversion(OperationAnalysisContext c, INamedTypeSymbol scalar)
    {
        var conversion = (IConversionOperation)c.Operation;
        if (!conversion.IsImplicit || conversion.OperatorMethod is null) return;
        if (!SymbolEqualityComparer.Default.Equals(conversion.Type, scalar)) return;
        if (IsHeld(conversion)) return;
        c.ReportDiagnostic(Diagnostic.Create(Conversion, conversion.Operand.Syntax.GetLocation(), conversion.Operand.Syntax.ToString()));
    }

    static void OnCreation(OperationAnalysisContext c, INamedTypeSymbol generator)
    {
        var creation = (IObjectCreationOperation)c.Operation;
        if (SymbolEqualityComparer.Default.Equals(creation.Type, generator) && !IsHeld(creation))
            c.ReportDiagnostic(Diagnostic.Create(Generator, creation.Syntax.GetLocation(), creation.Syntax.ToString()));
    }

    static void OnInvocation(OperationAnalysisContext c, INamedTypeSymbol scalar)
    {
        var invocation = (IInvocationOperation)c.Operation;
        var method = invocation.TargetMethod;
        if (method.Name == "ToScalar" && SymbolEqualityComparer.Default.Equals(method.ReturnType, scalar))
        {
            if (!IsHeld(invocation))
                c.ReportDiagnostic(Diagnostic.Create(Conversion, invocation.Syntax.GetLocation(), invocation.Syntax.ToString()));
            return;
        }
        OnOperator(c, method);
    }

    static void OnOperator(OperationAnalysisContext c, IMethodSymbol? method)
    {
        if (method is null) return;
        var id = method.OriginalDefinition.GetDocumentationCommentId();
        if (id is not null && RacyMembers.Contains(id))
            c.ReportDiagnostic(Diagnostic.Create(Member, c.Operation.Syntax.GetLocation(), c.Operation.Syntax.ToString()));
    }

    /// <summary>Held: the initializer of a using local, or of a static readonly field.</summary>
    static bool IsHeld(IOperation value)
    {
        var parent = value.Parent;
        if (parent is IVariableInitializerOperation { Parent: IVariableDeclaratorOperation { Parent: IVariableDeclarationOperation declaration } })
            return declaration.Parent is IVariableDeclarationGroupOperation { Parent: IUsingDeclarationOperation or IUsingOperation }
                || declaration.Parent is IUsingOperation;
        if (parent is IFieldInitializerOperation field)
            return field.InitializedFields.All(f => f.IsStatic && f.IsReadOnly);
        return false;
    }
}
