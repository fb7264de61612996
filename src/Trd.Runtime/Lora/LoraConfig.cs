namespace Trd.Runtime.Lora;

/// <summary>
/// A LoRA adapter's settings. Defaults are the paper's (App. C.6): rank 64, α 128, dropout 0.05, on every attention
/// and MLP projection.
/// </summary>
public sealed record LoraConfig
{
    /// <summary>The projections Qwen3 has, by module name.</summary>
    public static readonly IReadOnlyList<string> AllProjections = new[] { "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj" };

    /// <summary>r.</summary>
    public int Rank { get; init; } = 64;

    /// <summary>α (the update is scaled by α / r).</summary>
    public double Alpha { get; init; } = 128;

    /// <summary>Dropout on the adapter's input, in training mode.</summary>
    public double Dropout { get; init; } = 0.05;

    /// <summary>Module names to adapt (the last component of the module path).</summary>
    public IReadOnlyList<string> TargetModules { get; init; } = AllProjections;

    /// <summary>Throws on a setting the runtime cannot apply.</summary>
    public void Validate()
    {
        if (Rank < 1) throw new ArgumentException($"LoRA rank must be ≥ 1, got {Rank}");
        if (!(Alpha > 0) || double.IsInfinity(Alpha)) throw new ArgumentException($"LoRA alpha must be > 0, got {Alpha}");
        if (!(Dropout >= 0 && Dropout < 1)) throw new ArgumentException($"LoRA dropout must lie in [0, 1), got {Dropout}");
        if (TargetModules.Count == 0) throw new ArgumentException("LoRA needs at least one target module");
        foreach (var m in TargetModules)
            if (!AllProjections.Contains(m))
                throw new ArgumentException($"unknown LoRA target module '{m}': Qwen3's are {string.Join(", ", AllProjections)}");
    }
}
