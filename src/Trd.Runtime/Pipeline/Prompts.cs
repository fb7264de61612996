using Trd.Core;
using Trd.Runtime.Tokenization;

namespace Trd.Runtime.Pipeline;

/// <summary>
/// The texts every stage conditions on (paper §5, App. C.4). The paper's own templates are not public, so these
/// are written from its description: the stage-1 prompt asks for a step-by-step solution with a boxed answer;
/// the refinement prompt shows the problem and the attempt y_o (OPSD: also the reference solution y*) and asks
/// for a rewrite that keeps the correct steps and the attempt's line of reasoning, fixes the errors and
/// outputs only the rewritten solution.
/// </summary>
/// <remarks>
/// One context, one place: the refinement prompt that generated y_r is the context the teacher scores y_r under
/// in stage 3 (Refine teacher prompt, Eq. 6), so the corpus stores it and training re-uses it verbatim.
/// </remarks>
public static class Prompts
{
    /// <summary>The instruction appended to every problem in stage 1 (and to the student's training context).</summary>
    public const string SolveInstruction = "Please reason step by step, and put your final answer within \\boxed{}.";

    /// <summary>The stage-1 user message: π_θ(· | x).</summary>
    public static string Initial(string problem) => $"{problem}\n\n{SolveInstruction}";

    /// <summary>
    /// OPSD's vanilla teacher context π_θ(· | x, y*): the problem with the reference solution shown as privileged
    /// information, asking for the same kind of answer.
    /// </summary>
    public static string InitialWithReference(string problem, string reference) =>
        $"{problem}\n\nA correct reference solution, for your eyes only:\n<reference>\n{reference}\n</reference>\n\n" +
        $"Write your own solution. {SolveInstruction}";

    /// <summary>
    /// The stage-2 user message: π_T(· | x, y_o) under OPD, π_θ(· | x, y_o, y*) under OPSD (reference not null).
    /// </summary>
    public static string Refine(string problem, string attempt, string? reference)
    {
        var text = new System.Text.StringBuilder();
        text.Append("Below is a problem and a student's attempt at it");
        text.Append(reference is null ? ".\n\n" : ", followed by a correct reference solution.\n\n");
        text.Append("<problem>\n").Append(problem).Append("\n</problem>\n\n");
        text.Append("<attempt>\n").Append(attempt).Append("\n</attempt>\n\n");
        if (reference is not null) text.Append("<reference>\n").Append(reference).Append("\n</reference>\n\n");
        text.Append("Rewrite the attempt into a correct solution. Keep every correct step and the attempt's own line of reasoning; ");
        text.Append("fix the steps that are wrong and continue correctly from there");
        text.Append(reference is null ? ". " : ", staying consistent with the reference solution. ");
        text.Append("Output only the rewritten solution, ending with the final answer within \\boxed{}.");
        return text.ToString();
    }

    /// <summary>The notice left where a piece of a prompt was shortened to fit the budget.</summary>
    public static string Notice(string what, int kept, int total) => $"[… {what} shortened to fit the prompt budget: {kept} of {total} tokens shown …]";
}

/// <summary>A templated prompt: its user message, its token ids, and a notice when a piece had to be shortened.</summary>
public sealed record BuiltPrompt(string UserMessage, int[] Ids, string? Notice);

/// <summary>
/// Builds chat-templated prompts under a token budget. When a refinement prompt is over budget, y_o is shortened
/// first (its head is kept: the prefix is what the rewrite builds on), then y*; each cut leaves a visible notice.
/// The problem and the instructions are never cut: a prompt that is over budget with both shortened to nothing
/// is returned as null and counted by the caller.
/// </summary>
public sealed class PromptBuilder
{
    readonly ITokenizer _tokenizer;
    readonly bool _enableThinking;

    /// <summary>
    /// A builder over one tokenizer, rendering with its model's chat template (<see cref="ITokenizer.ChatTemplate"/>);
    /// <paramref name="enableThinking"/> as in <see cref="ChatTemplate.Render(ChatTemplateKind, IReadOnlyList{ChatMessage}, bool, bool)"/>.
    /// </summary>
    public PromptBuilder(ITokenizer tokenizer, bool enableThinking)
    {
        _tokenizer = tokenizer ?? throw new ArgumentNullException(nameof(tokenizer));
        _enableThinking = enableThinking;
    }

    /// <summary>The templated ids of one user message, with the assistant's generation prompt, in the tokenizer's chat template.</summary>
    public int[] Encode(string userMessage) =>
        ChatTemplate.Encode(_tokenizer, new[] { ChatMessage.User(userMessage) }, addGenerationPrompt: true, enableThinking: _enableThinking);

    /// <summary>The stage-1 prompt (never shortened; over budget → null).</summary>
    public BuiltPrompt? Initial(string problem, int budget)
    {
        var message = Prompts.Initial(problem);
        var ids = Encode(message);
        return ids.Length <= budget ? new BuiltPrompt(message, ids, null) : null;
    }

    /// <summary>The context a recipe's teacher (or student) is conditioned on, from Trd.Core's context parts.</summary>
    /// <remarks>Only the prompt parts matter here; <see cref="ContextPart.TrajectoryPrefix"/> is the trajectory itself.</remarks>
    public static string UserMessage(IReadOnlyList<ContextPart> parts, string problem, string? reference, string? refinePrompt)
    {
        var hasReference = parts.Contains(ContextPart.ReferenceSolution);
        var hasRollout = parts.Contains(ContextPart.WholeRollout);
        if (hasReference && reference is null)
            throw new ArgumentException("this context shows the reference solution y*, but the problem has none (OPSD needs a 'solution' column)");
        if (hasRollout)
            return refinePrompt ?? throw new ArgumentException("this context shows y_o as the refinement prompt did, but no refinement prompt was recorded");
        return hasReference ? Prompts.InitialWithReference(problem, reference!) : Prompts.Initial(problem);
    }

    /// <summary>The stage-2 prompt within <paramref name="budget"/> tokens, shortening y_o, then y*.</summary>
    public BuiltPrompt? Refine(string problem, int[] attemptIds, string? reference, int budget)
    {
        string Decode(int[] ids, int n) => _tokenizer.Decode(ids.Take(n).ToArray(), skipSpecialTokens: true);
        var attemptText = Decode(attemptIds, attemptIds.Length);
        var full = Prompts.Refine(problem, attemptText, reference);
        var fullIds = Encode(full);
        if (fullIds.Length <= budget) return new BuiltPrompt(full, fullIds, null);

        // Shorten y_o: the largest kept prefix that fits (binary search on kept tokens).
        string WithAttempt(int kept, string? referenceText) =>
            Prompts.Refine(problem, kept == attemptIds.Length ? attemptText
                : Decode(attemptIds, kept) + "\n" + Prompts.Notice("attempt", kept, attemptIds.Length), referenceText);
        if (Fit(attemptIds.Length, kept => WithAttempt(kept, reference), budget) is var (shortened, kept) && shortened is not null)
            return shortened with { Notice = Prompts.Notice("attempt", kept, attemptIds.Length) };
        if (reference is null) return null;

        // y_o entirely gone, then y*.
        var referenceIds = _tokenizer.Encode(reference);
        string WithReference(int n) => WithAttempt(0, n == referenceIds.Length ? reference
            : _tokenizer.Decode(referenceIds.Take(n).ToArray()) + "\n" + Prompts.Notice("reference solution", n, referenceIds.Length));
        var (last, keptReference) = Fit(referenceIds.Length, WithReference, budget);
        return last is null ? null
            : last with { Notice = $"{Prompts.Notice("attempt", 0, attemptIds.Length)} {Prompts.Notice("reference solution", keptReference, referenceIds.Length)}" };
    }

    /// <summary>The largest n in [0, total) whose prompt fits, by binary search (token counts grow with n).</summary>
    (BuiltPrompt? prompt, int kept) Fit(int total, Func<int, string> build, int budget)
    {
        int lo = 0, hi = total - 1, found = -1;
        BuiltPrompt? best = null;
        while (lo <= hi)
        {
            var mid = (lo + hi) / 2;
            var message = build(mid);
            var ids = Encode(message);
            if (ids.Length <= budget) { found = mid; best = new BuiltPrompt(message, ids, null); lo = mid + 1; }
            else hi = mid - 1;
        }
        return (best, found);
    }
}
