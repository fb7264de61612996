using System.Globalization;
using Trd.Core;

namespace Trd.Runtime.Gym;

/// <summary>
/// One member of the gym family (docs/gym.md, "Knobs"): the default gym with some knobs turned. A knob left null
/// keeps the default recipes' value, so the default variant's recipes are the default recipes, with the same keys
/// and the same shipped models. Applied to a recipe chain (<see cref="Apply"/>), each knob changes the recipes
/// its role owns:
/// <list type="bullet">
/// <item><c>catch</c> w: the teacher's recipes (teacher-pretrain, teacher): a dropped carry in its "solve" data is
/// caught with probability w (carry_share = 1 − w); the weight of the bimodal mixture's correction mode (§4.1).</item>
/// <item><c>recovery</c>: every recipe; how a caught slip is corrected in all data (<see cref="Recovery"/>).</item>
/// <item><c>slip</c>: the student's recipes (student-pretrain, student): the rate at which it drops a carry.</item>
/// <item><c>terms</c> min–max: every recipe, and the study's problems: harder levels have more steps to slip on.</item>
/// </list>
/// </summary>
public sealed record GymVariant
{
    /// <summary>The teacher's catch rate w ∈ [0, 1] (default recipes: 0.4).</summary>
    public double? Catch { get; init; }
    /// <summary>The recovery form (default: line).</summary>
    public Recovery? Recovery { get; init; }
    /// <summary>The student's slip rate ∈ [0, 1] (default recipes: 0.4).</summary>
    public double? Slip { get; init; }
    /// <summary>Terms per problem (default 3–7).</summary>
    public GymLevel? Terms { get; init; }

    /// <summary>The default gym: no knob turned.</summary>
    public static GymVariant Default { get; } = new();

    /// <summary>The knobs, in the order the grid and the names use.</summary>
    public static readonly string[] Knobs = ["catch", "recovery", "slip", "terms"];

    /// <summary>The level of the study's problems and budgets.</summary>
    public GymLevel Level => Terms ?? Trd.Core.Gym.DefaultLevel;
    /// <summary>The recovery in force.</summary>
    public Recovery EffectiveRecovery => Recovery ?? Trd.Core.Recovery.Line;
    /// <summary>The response budget of rollouts, refinements and evaluation (<see cref="Trd.Core.Gym.ResponseBudget"/>).</summary>
    public int ResponseBudget => Trd.Core.Gym.ResponseBudget(Level, EffectiveRecovery);
    /// <summary>True when no knob is turned.</summary>
    public bool IsDefault => this == Default;

    /// <summary>The same variant without the teacher's knob: what the student (and so the OPSD setting) depends on.</summary>
    public GymVariant StudentPart => this with { Catch = null };

    /// <summary>
    /// The recipe (and its <see cref="GymModelRecipe.InitFrom"/> chain) with this variant's knobs applied by role:
    /// names starting "teacher" take <see cref="Catch"/>, names starting "student" take <see cref="Slip"/>, all take
    /// <see cref="Recovery"/> and <see cref="Terms"/>. Line recovery is stored as the recipe's default (null).
    /// </summary>
    public GymModelRecipe Apply(GymModelRecipe recipe)
    {
        var applied = recipe with { InitFrom = recipe.InitFrom is { } from ? Apply(from) : null };
        if (Recovery is { } r) applied = applied with { RecoveryForm = r.IsLine ? null : r };
        if (Terms is { } level) applied = applied with { MinTerms = level.MinTerms, MaxTerms = level.MaxTerms };
        if (Slip is { } slip && recipe.Name.StartsWith("student", StringComparison.Ordinal)) applied = applied with { SlipRate = slip };
        if (Catch is { } w && recipe.Name.StartsWith("teacher", StringComparison.Ordinal)) applied = applied with { CarryShare = 1 - w };
        return applied;
    }

    /// <summary>The variant with one knob set from its command-line word ("catch", "0.8"); raises naming a bad one.</summary>
    public GymVariant With(string knob, string value)
    {
        double Rate()
        {
            if (!double.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out var p) || !(p >= 0 && p <= 1))
                throw new ArgumentException($"--grid {knob}={value}: '{value}' is not a rate in [0, 1]");
            return p;
        }
        return knob switch
        {
            "catch" => this with { Catch = Rate() },
            "slip" => this with { Slip = Rate() },
            "recovery" => this with { Recovery = ParseRecovery(value) },
            "terms" => this with { Terms = ParseTerms(value) },
            _ => throw new ArgumentException($"--grid {knob}={value}: unknown knob '{knob}' (expected {string.Join(", ", Knobs)})"),
        };
    }

    static Recovery ParseRecovery(string value)
    {
        try { return Trd.Core.Recovery.Parse(value); }
        catch (ArgumentException) { throw new ArgumentException($"--grid recovery={value}: unknown recovery '{value}' (expected line, restart or none)"); }
    }

    static GymLevel ParseTerms(string value)
    {
        var parts = value.Split('-');
        if (parts.Length is 1 or 2 && parts.All(p => int.TryParse(p, NumberStyles.None, CultureInfo.InvariantCulture, out _)))
        {
            var min = int.Parse(parts[0], CultureInfo.InvariantCulture);
            var max = int.Parse(parts[^1], CultureInfo.InvariantCulture);
            if (min >= 2 && max <= 9 && min <= max) return new GymLevel(min, max);
        }
        throw new ArgumentException($"--grid terms={value}: expected MIN-MAX terms per problem with 2 ≤ MIN ≤ MAX ≤ 9 (e.g. 3-7)");
    }

    /// <summary>The value of one knob as its word, or null when the knob is not turned.</summary>
    public string? ValueOf(string knob) => knob switch
    {
        "catch" => Catch?.ToString("0.###", CultureInfo.InvariantCulture),
        "slip" => Slip?.ToString("0.###", CultureInfo.InvariantCulture),
        "recovery" => Recovery?.ConfigName,
        "terms" => Terms is { } t ? $"{t.MinTerms}-{t.MaxTerms}" : null,
        _ => throw new ArgumentException($"unknown knob '{knob}'"),
    };

    /// <summary>"catch=0.8 recovery=restart" (the turned knobs), or "default".</summary>
    public override string ToString()
    {
        var set = Knobs.Select(k => (k, v: ValueOf(k))).Where(x => x.v is not null).Select(x => $"{x.k}={x.v}").ToArray();
        return set.Length == 0 ? "default" : string.Join(' ', set);
    }

    /// <summary>The variant's folder name: "catch-0.8_recovery-restart", or "default".</summary>
    public string Folder => IsDefault ? "default" : ToString().Replace('=', '-').Replace(' ', '_');

    /// <summary>The turned knobs, knob → value word (results.json and grid-results.json), empty for the default.</summary>
    public Dictionary<string, string> Turned() =>
        Knobs.Where(k => ValueOf(k) is not null).ToDictionary(k => k, k => ValueOf(k)!);

    /// <summary>The turned knobs as a JSON object (study.json and grid.json), empty for the default.</summary>
    public System.Text.Json.Nodes.JsonObject ToJson()
    {
        var node = new System.Text.Json.Nodes.JsonObject();
        foreach (var (knob, value) in Turned()) node[knob] = value;
        return node;
    }
}
