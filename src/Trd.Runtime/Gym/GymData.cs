using Trd.Core;
using Trd.Runtime.Pipeline;
using GymTask = Trd.Core.Gym;

namespace Trd.Runtime.Gym;

/// <summary>One pretraining example: the user message (templated by the pipeline's prompts) and the target response.</summary>
public sealed record GymExample(string Task, string UserMessage, string Response);

/// <summary>
/// The pretraining stream of a gym model (docs/gym.md): problems from the pretraining split only (never a held-out or
/// corpus problem), each turned into one of four tasks with the pipeline's own prompt texts, so the contexts the
/// models learn are exactly those the pipeline later puts them in.
/// <list type="bullet">
/// <item>solve: <see cref="Prompts.Initial"/> → a solution with slips at <see cref="GymModelRecipe.SlipRate"/> per
/// step, some carried to a wrong answer, some fixed after "Wait, " — the bimodal habit after a slip;</item>
/// <item>solve with reference: <see cref="Prompts.InitialWithReference"/> → y* (OPSD's privileged teacher);</item>
/// <item>refine (OPD) and refine with reference (OPSD): <see cref="Prompts.Refine"/> over a corrupted attempt → y*,
/// which keeps every correct line of the attempt (the derivation is unique) and rewrites the rest.</item>
/// </list>
/// </summary>
public static class GymData
{
    /// <summary>The four tasks, in the order of the recipe's shares.</summary>
    public static readonly string[] Tasks = ["solve", "solve_with_reference", "refine", "refine_with_reference"];

    /// <summary>A task drawn by the recipe's shares (a batch holds one task, so its sequences have similar lengths).</summary>
    public static string DrawTask(GymTask.Rng rng, GymModelRecipe recipe)
    {
        var shares = new[] { recipe.Solve, recipe.SolveWithReference, recipe.Refine, recipe.RefineWithReference };
        var u = rng.Unit() * shares.Sum();
        for (var i = 0; i < shares.Length; i++)
            if ((u -= shares[i]) < 0) return Tasks[i];
        return Tasks[Array.FindLastIndex(shares, s => s > 0)];
    }

    /// <summary>One example of a task.</summary>
    public static GymExample Draw(GymTask.Rng rng, GymModelRecipe recipe, string task)
    {
        var terms = GymTask.DrawFrom(rng, recipe.Level, GymSplit.Pretraining);
        var question = GymTask.Question(terms);
        var reference = GymTask.Solution(terms);
        var recovery = recipe.EffectiveRecovery;
        string Attempt() => GymTask.DrawAttemptUnder(recovery, rng, terms, recipe.AttemptSlipRate, recipe.AttemptCarryShare, recipe.AttemptTruncate);
        string Solve() => GymTask.Render(recovery, terms, GymTask.DrawSlips(rng, terms, recipe.SlipRate, GymTask.CarryShareUnder(recovery, recipe.CarryShare)));
        return task switch
        {
            "solve" => new GymExample(task, Prompts.Initial(question), Solve()),
            "solve_with_reference" => new GymExample(task, Prompts.InitialWithReference(question, reference), reference),
            "refine" => new GymExample(task, Prompts.Refine(question, Attempt(), null), reference),
            "refine_with_reference" => new GymExample(task, Prompts.Refine(question, Attempt(), reference), reference),
            _ => throw new ArgumentException($"unknown gym task '{task}' (expected one of {string.Join(", ", Tasks)})", nameof(task)),
        };
    }
}
