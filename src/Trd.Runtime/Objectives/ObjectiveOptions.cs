using TorchSharp;
using static TorchSharp.torch;

namespace Trd.Runtime.Objectives;

/// <summary>How the executor evaluates a recipe.</summary>
public sealed record ObjectiveOptions
{
    /// <summary>Positions per chunk (the paper's full-vocabulary KL chunk size is 512, Table 14).</summary>
    public int ChunkSize { get; init; } = 512;

    /// <summary>
    /// The loss denominator: the optimiser step's global response-token count when accumulating gradients
    /// (Trd.Core.Reduction). 0 uses this call's own Σ mask.
    /// </summary>
    public double Normaliser { get; init; }

    /// <summary>
    /// The dtype the divergence is accumulated in: float32 (default, whatever the input dtype, bf16 included)
    /// or float64 (reference-grade, slower).
    /// </summary>
    public ScalarType ComputeType { get; init; } = ScalarType.Float32;

    /// <summary>Also return log π(y_t) at T = 1 for the trajectory tokens (needs targets): PPL_S, PPL_T, δ_t.</summary>
    public bool TokenLogProbs { get; init; }

    /// <summary>
    /// Token ids of the epistemic onset set ℰ (App. C.5): when given, the teacher's mass on ℰ at T = 1 is
    /// returned per position.
    /// </summary>
    public long[]? EpistemicTokenIds { get; init; }

    /// <summary>
    /// When given (K ≥ 1), the teacher's mass outside its top-K at T = 1 is returned per position: what a
    /// teacher-top-K support drops (Reverse KL w/ Top-K renormalises over the K kept entries).
    /// </summary>
    public int? TeacherTopKMassK { get; init; }

    /// <summary>
    /// Use the closed-form gradient (softmax(z_θ/T) − p_T)/T for forward KL over the full vocabulary (TRD, Forward
    /// KL, Forward KL w/ Clip): no per-chunk graph, a third of the memory. Off: autograd, as for every other recipe.
    /// </summary>
    public bool ClosedFormGradient { get; init; } = true;

    /// <summary>
    /// The step plan's per-position values for a shaped recipe (<see cref="Trd.Core.Recipe.IsShaped"/>): required by
    /// such a recipe, refused by any other. Build it with <see cref="PositionShaping.FromPlan"/>.
    /// </summary>
    public PositionShaping? Shaping { get; init; }

    /// <summary>The defaults.</summary>
    public static ObjectiveOptions Default { get; } = new();
}

/// <summary>
/// A recipe evaluated on N positions: the differentiable loss and the diagnostics computed in the same pass.
/// Scalars are already read back; per-position tensors are detached, [N], float32, on the input's device.
/// </summary>
public sealed class ObjectiveResult : IDisposable
{
    /// <summary>
    /// Σ_t m_t · contribution_t / normaliser: a 0-dim tensor in the compute dtype (float32 unless float64 was asked
    /// for), differentiable with respect to the student inputs.
    /// </summary>
    public required Tensor Loss { get; init; }

    /// <summary>Token-weighted mean of D_t over the mask, before per-position clipping.</summary>
    public required double KlPreClip { get; init; }

    /// <summary>Token-weighted mean of the contributions, after per-position clipping.</summary>
    public required double KlPostClip { get; init; }

    /// <summary>Fraction of masked positions with D_t &gt; c.</summary>
    public required double ClipFraction { get; init; }

    /// <summary>Σ_t m_t.</summary>
    public required double Tokens { get; init; }

    /// <summary>D_t for every position [N] (masked or not), before per-position clipping.</summary>
    public required Tensor PerPosition { get; init; }

    /// <summary>log π_θ(y_t) at T = 1 [N], when <see cref="ObjectiveOptions.TokenLogProbs"/>.</summary>
    public Tensor? StudentTokenLogProbs { get; init; }

    /// <summary>log π_T(y_t) at T = 1 [N], when <see cref="ObjectiveOptions.TokenLogProbs"/>.</summary>
    public Tensor? TeacherTokenLogProbs { get; init; }

    /// <summary>Σ_{v∈ℰ} π_T(v) at T = 1 [N], when <see cref="ObjectiveOptions.EpistemicTokenIds"/> is given.</summary>
    public Tensor? EpistemicMass { get; init; }

    /// <summary>1 − Σ of the teacher's top-K probabilities at T = 1 [N], when <see cref="ObjectiveOptions.TeacherTopKMassK"/> is given.</summary>
    public Tensor? TeacherMassOutsideTopK { get; init; }

    /// <inheritdoc />
    public void Dispose()
    {
        Loss.Dispose();
        PerPosition.Dispose();
        StudentTokenLogProbs?.Dispose();
        TeacherTokenLogProbs?.Dispose();
        EpistemicMass?.Dispose();
        TeacherMassOutsideTopK?.Dispose();
    }
}
