using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using Trd.Core;

namespace Trd.Runtime.Gym;

/// <summary>
/// How one gym model is made: its Qwen3 shape, the pretraining data mixture, and the optimisation. Trained models
/// are cached under <see cref="Key"/>, a hash of everything here and of <see cref="GymModels.Version"/>, so a
/// changed recipe (or a changed data generator) trains anew and an unchanged one is reused.
/// </summary>
public sealed record GymModelRecipe
{
    /// <summary>"student" or "teacher" (the cache directory's prefix).</summary>
    [JsonPropertyName("name")] public required string Name { get; init; }
    /// <summary>Qwen3 hidden size.</summary>
    [JsonPropertyName("hidden_size")] public int HiddenSize { get; init; } = 64;
    /// <summary>Decoder layers.</summary>
    [JsonPropertyName("layers")] public int Layers { get; init; } = 3;
    /// <summary>Query heads.</summary>
    [JsonPropertyName("heads")] public int Heads { get; init; } = 4;
    /// <summary>Key/value heads.</summary>
    [JsonPropertyName("kv_heads")] public int KvHeads { get; init; } = 2;
    /// <summary>Per-head size.</summary>
    [JsonPropertyName("head_dim")] public int HeadDim { get; init; } = 16;
    /// <summary>MLP width.</summary>
    [JsonPropertyName("intermediate_size")] public int IntermediateSize { get; init; } = 192;
    /// <summary>
    /// Another recipe whose trained model this one starts from (the teacher is the student trained longer, on cleaner
    /// data); null to start from random weights. The shape fields must then equal the starting model's.
    /// </summary>
    [JsonPropertyName("init_from")] public GymModelRecipe? InitFrom { get; init; }
    /// <summary>Initialisation and data seed.</summary>
    [JsonPropertyName("seed")] public long Seed { get; init; } = 1;
    /// <summary>Optimiser steps.</summary>
    [JsonPropertyName("steps")] public int Steps { get; init; } = 1500;
    /// <summary>Sequences per step.</summary>
    [JsonPropertyName("batch_size")] public int BatchSize { get; init; } = 32;
    /// <summary>Peak learning rate (linear warmup, cosine decay to 10%).</summary>
    [JsonPropertyName("learning_rate")] public double LearningRate { get; init; } = 3e-3;
    /// <summary>Warmup share of the steps.</summary>
    [JsonPropertyName("warmup_ratio")] public double WarmupRatio { get; init; } = 0.05;
    /// <summary>Fewest terms per problem.</summary>
    [JsonPropertyName("min_terms")] public int MinTerms { get; init; } = 3;
    /// <summary>Most terms per problem.</summary>
    [JsonPropertyName("max_terms")] public int MaxTerms { get; init; } = 7;

    /// <summary>Share of examples "solve x" (a solution with slips, see <see cref="SlipRate"/>).</summary>
    [JsonPropertyName("solve")] public double Solve { get; init; } = 1;
    /// <summary>Share of examples "solve x with y* shown" (OPSD's privileged context), target y*.</summary>
    [JsonPropertyName("solve_with_reference")] public double SolveWithReference { get; init; }
    /// <summary>Share of examples "refine y_o" (OPD's refinement prompt), target the corrected solution.</summary>
    [JsonPropertyName("refine")] public double Refine { get; init; }
    /// <summary>Share of examples "refine y_o given y*" (OPSD's refinement prompt), target the corrected solution.</summary>
    [JsonPropertyName("refine_with_reference")] public double RefineWithReference { get; init; }

    /// <summary>Probability of dropping a carry on a carrying step in "solve" targets (the model's own sloppiness; Trd.Core.Gym.drawSlips).</summary>
    [JsonPropertyName("slip_rate")] public double SlipRate { get; init; } = 0.05;
    /// <summary>Share of those slips carried to the end (the rest are fixed after "Wait, ").</summary>
    [JsonPropertyName("carry_share")] public double CarryShare { get; init; } = 0.5;
    /// <summary>Probability of dropping a carry on a carrying step of the attempts y_o in refinement examples.</summary>
    [JsonPropertyName("attempt_slip_rate")] public double AttemptSlipRate { get; init; } = 0.5;
    /// <summary>Share of attempt slips carried.</summary>
    [JsonPropertyName("attempt_carry_share")] public double AttemptCarryShare { get; init; } = 0.6;
    /// <summary>Share of attempts cut short.</summary>
    [JsonPropertyName("attempt_truncate")] public double AttemptTruncate { get; init; } = 0.1;
    /// <summary>
    /// How caught slips are corrected in every text of the data (solve targets and refinement attempts;
    /// <see cref="Recovery"/>, docs/gym.md "Knobs"). Null is <see cref="Recovery.Line"/>, the gym's original form, and is
    /// left out of recipe.json so the original recipes keep their keys (and their shipped models).
    /// </summary>
    [JsonPropertyName("recovery"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull), JsonConverter(typeof(RecoveryJson))]
    public Recovery? RecoveryForm { get; init; }

    /// <summary>The recovery in force (<see cref="RecoveryForm"/>, or line).</summary>
    [JsonIgnore] public Recovery EffectiveRecovery => RecoveryForm ?? Recovery.Line;
    /// <summary>The terms per problem, as the gym's level.</summary>
    [JsonIgnore] public GymLevel Level => new(MinTerms, MaxTerms);
    /// <summary>The response budget of this recipe's tasks (<see cref="Trd.Core.Gym.ResponseBudget"/>).</summary>
    [JsonIgnore] public int ResponseBudget => Trd.Core.Gym.ResponseBudget(Level, EffectiveRecovery);

    /// <summary>The recipe as JSON (snake_case, the cache's recipe.json).</summary>
    public string ToJson() => JsonSerializer.Serialize(this, new JsonSerializerOptions { WriteIndented = true });

    /// <summary>The cache key: the first 12 hex digits of sha256(recipe JSON, generator version).</summary>
    [JsonIgnore] public string Key => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(ToJson() + "\nversion " + GymModels.Version)))[..12];

    /// <summary>The same recipe with another number of steps (for F# callers, which cannot use <c>with</c> on C# records).</summary>
    public GymModelRecipe WithSteps(int steps) => this with { Steps = steps };

    /// <summary>The same recipe starting from another model (or none), for F# callers.</summary>
    public GymModelRecipe WithInitFrom(GymModelRecipe? initFrom) => this with { InitFrom = initFrom };

    /// <summary>Seeds of model seed m are this far apart: <c>seed + ModelSeedStride · (m − 1)</c>.</summary>
    public const long ModelSeedStride = 1000;

    /// <summary>
    /// The recipe of an independent training of the same model, model seed <paramref name="modelSeed"/> (1, 2, …):
    /// every seed along the <see cref="InitFrom"/> chain moves by <see cref="ModelSeedStride"/> · (m − 1), so
    /// initialisation and data differ, a chain shared by two recipes (the teacher starts from the student's first
    /// phase) stays shared, and model seed 1 is the recipe itself.
    /// </summary>
    public GymModelRecipe WithModelSeed(int modelSeed)
    {
        if (modelSeed < 1) throw new ArgumentOutOfRangeException(nameof(modelSeed), modelSeed, "model seeds are 1, 2, …");
        return modelSeed == 1 ? this
            : this with { Seed = Seed + ModelSeedStride * (modelSeed - 1), InitFrom = InitFrom?.WithModelSeed(modelSeed) };
    }

    /// <summary>Raises <see cref="ArgumentException"/> naming the first bad field.</summary>
    public GymModelRecipe Validated()
    {
        void Require(bool ok, string field, object value, string rule)
        {
            if (!ok) throw new ArgumentException($"gym model '{Name}': {field} = {value}: {rule}");
        }
        Require(HiddenSize > 0 && Layers > 0 && Heads > 0 && KvHeads > 0 && HeadDim > 0 && IntermediateSize > 0, "shape", $"{HiddenSize}/{Layers}/{Heads}/{KvHeads}/{HeadDim}", "all sizes must be positive");
        Require(Heads % KvHeads == 0, "heads", Heads, "must be a multiple of kv_heads");
        if (InitFrom is { } init)
        {
            init.Validated();
            Require((HiddenSize, Layers, Heads, KvHeads, HeadDim, IntermediateSize) == (init.HiddenSize, init.Layers, init.Heads, init.KvHeads, init.HeadDim, init.IntermediateSize),
                "shape", $"{HiddenSize}/{Layers}/{Heads}/{KvHeads}/{HeadDim}/{IntermediateSize}", $"must equal init_from '{init.Name}''s {init.HiddenSize}/{init.Layers}/{init.Heads}/{init.KvHeads}/{init.HeadDim}/{init.IntermediateSize}");
        }
        Require(Steps > 0, "steps", Steps, "must be positive");
        Require(BatchSize > 0, "batch_size", BatchSize, "must be positive");
        Require(LearningRate > 0, "learning_rate", LearningRate, "must be positive");
        Require(MinTerms >= 2 && MaxTerms <= 9 && MinTerms <= MaxTerms, "min_terms/max_terms", $"{MinTerms}/{MaxTerms}", "need 2 ≤ min ≤ max ≤ 9");
        Require(Solve >= 0 && SolveWithReference >= 0 && Refine >= 0 && RefineWithReference >= 0 && Solve + SolveWithReference + Refine + RefineWithReference > 0,
            "mixture", $"{Solve}/{SolveWithReference}/{Refine}/{RefineWithReference}", "shares must be ≥ 0 and not all 0");
        foreach (var (field, p) in new[] { ("slip_rate", SlipRate), ("carry_share", CarryShare), ("attempt_slip_rate", AttemptSlipRate), ("attempt_carry_share", AttemptCarryShare), ("attempt_truncate", AttemptTruncate) })
            Require(p >= 0 && p <= 1, field, p, "must lie in [0, 1]");
        return this;
    }
}

/// <summary>A <see cref="Recovery"/> as its config word ("line", "restart", "none").</summary>
sealed class RecoveryJson : JsonConverter<Recovery>
{
    public override Recovery Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) =>
        Recovery.Parse(reader.GetString() ?? throw new JsonException("recovery: expected a string"));

    public override void Write(Utf8JsonWriter writer, Recovery value, JsonSerializerOptions options) => writer.WriteStringValue(value.ConfigName);
}
