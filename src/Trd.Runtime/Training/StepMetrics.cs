namespace Trd.Runtime.Training;

/// <summary>
/// The diagnostics of one optimiser step (App. C.5), each a token-weighted mean over the step's response tokens
/// (numerators and denominators accumulated across micro-batches, then divided). NaN where a side has no token.
/// </summary>
public sealed record StepMetrics
{
    /// <summary>The 0-based optimiser step.</summary>
    public long Step { get; init; }
    /// <summary>The loss summed over micro-batches (each normalised by the step's global token count).</summary>
    public double Loss { get; init; }
    /// <summary>D before per-position clipping.</summary>
    public double KlPreClip { get; init; }
    /// <summary>The trained contribution after clipping.</summary>
    public double KlPostClip { get; init; }
    /// <summary>Share of positions with D_t &gt; c.</summary>
    public double ClipFraction { get; init; }
    /// <summary>D^correct: D over sequences whose stage-1 rollout passed.</summary>
    public double KlCorrect { get; init; }
    /// <summary>D^incorrect: D over sequences whose stage-1 rollout failed.</summary>
    public double KlIncorrect { get; init; }
    /// <summary>PPL_S of the trajectory tokens (T = 1).</summary>
    public double PplStudent { get; init; }
    /// <summary>PPL_T of the trajectory tokens (T = 1).</summary>
    public double PplTeacher { get; init; }
    /// <summary>PPL_S − PPL_T.</summary>
    public double PplGap => PplStudent - PplTeacher;
    /// <summary>The teacher's mean mass on ℰ (T = 1).</summary>
    public double EpistemicMass { get; init; }
    /// <summary>
    /// The teacher's mean mass outside its top-<see cref="TopKMassK"/> at T = 1: what a teacher-top-K support drops
    /// (and renormalises away) on this step's trajectory positions.
    /// </summary>
    public double TeacherMassOutsideTopK { get; init; } = double.NaN;
    /// <summary>The K of <see cref="TeacherMassOutsideTopK"/> (the recipe's own top-K, else 32).</summary>
    public int TopKMassK { get; init; }
    /// <summary>The global gradient norm before clipping.</summary>
    public double GradNorm { get; init; }
    /// <summary>The learning rate this step's update used.</summary>
    public double LearningRate { get; init; }
    /// <summary>Response tokens trained on.</summary>
    public double Tokens { get; init; }
    /// <summary>Sequences trained on.</summary>
    public int Sequences { get; init; }
    /// <summary>Trajectories cut to fit max_length in this step.</summary>
    public int Cut { get; init; }
    /// <summary>Response tokens per second of wall time.</summary>
    public double TokensPerSecond { get; init; }

    /// <summary>A shaped recipe's step plan (weights, gates, switch, filter); null for the paper's recipes.</summary>
    public ShapingMetrics? Shaping { get; init; }

    /// <summary>The metrics as name → value (the JSONL log's and TensorBoard's tags).</summary>
    public IReadOnlyDictionary<string, double> ToDictionary()
    {
        var values = Values();
        if (Shaping is { } s)
        {
            values["weight_mean"] = s.WeightMean;
            values["weight_std"] = s.WeightStd;
            values["masked_fraction"] = s.MaskedFraction;
            values["switched_fraction"] = s.SwitchedFraction;
            values["trajectories_filtered"] = s.TrajectoriesFiltered;
        }
        return values;
    }

    Dictionary<string, double> Values() => new()
    {
        ["loss"] = Loss, ["kl_pre_clip"] = KlPreClip, ["kl_post_clip"] = KlPostClip, ["clip_fraction"] = ClipFraction,
        ["kl_correct"] = KlCorrect, ["kl_incorrect"] = KlIncorrect, ["ppl_student"] = PplStudent, ["ppl_teacher"] = PplTeacher,
        ["ppl_gap"] = PplGap, ["epistemic_mass"] = EpistemicMass, ["teacher_mass_outside_topk"] = TeacherMassOutsideTopK, ["topk_mass_k"] = TopKMassK, ["grad_norm"] = GradNorm, ["learning_rate"] = LearningRate,
        ["tokens"] = Tokens, ["sequences"] = Sequences, ["cut"] = Cut, ["tokens_per_second"] = TokensPerSecond,
    };
}

/// <summary>What a shaped recipe's plan did in one step (Trd.Core.StepPlan), over the kept trajectories' positions.</summary>
public sealed record ShapingMetrics
{
    /// <summary>Mean of w_t.</summary>
    public double WeightMean { get; init; }
    /// <summary>Population standard deviation of w_t.</summary>
    public double WeightStd { get; init; }
    /// <summary>Fraction of positions with w_t = 0 (masked by a gate).</summary>
    public double MaskedFraction { get; init; }
    /// <summary>Fraction of positions that took the switch's other divergence (NaN without a switch).</summary>
    public double SwitchedFraction { get; init; }
    /// <summary>Trajectories the filter dropped.</summary>
    public int TrajectoriesFiltered { get; init; }
}
