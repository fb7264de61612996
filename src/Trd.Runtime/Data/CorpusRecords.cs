using System.Text.Json.Serialization;

namespace Trd.Runtime.Data;

/// <summary>Stage 1's record of one problem: the prompt the student saw and its rollout y_o.</summary>
public sealed record RolloutRecord
{
    /// <summary>The problem's id.</summary>
    [JsonPropertyName("id")] public required string Id { get; init; }
    /// <summary>Its dataset.</summary>
    [JsonPropertyName("data_source")] public required string DataSource { get; init; }
    /// <summary>x.</summary>
    [JsonPropertyName("question")] public required string Question { get; init; }
    /// <summary>The ground truth.</summary>
    [JsonPropertyName("answer")] public required string Answer { get; init; }
    /// <summary>y*, or null.</summary>
    [JsonPropertyName("solution")] public string? Solution { get; init; }
    /// <summary>The user message the student answered (chat-templated at use).</summary>
    [JsonPropertyName("prompt")] public required string Prompt { get; init; }
    /// <summary>Templated prompt length in tokens.</summary>
    [JsonPropertyName("prompt_tokens")] public int PromptTokens { get; init; }
    /// <summary>y_o as text (special tokens dropped; after the think block, if any).</summary>
    [JsonPropertyName("y_o")] public required string YO { get; init; }
    /// <summary>y_o's token ids as sampled (the end-of-turn token included when it stopped): the trajectory baselines train on.</summary>
    [JsonPropertyName("y_o_ids")] public required int[] YOTokens { get; init; }
    /// <summary>|y_o| in tokens.</summary>
    [JsonPropertyName("y_o_tokens")] public int YOTokenCount { get; init; }
    /// <summary>y_o hit the token budget.</summary>
    [JsonPropertyName("y_o_truncated")] public bool YOTruncated { get; init; }
    /// <summary>The verifier's outcome on y_o.</summary>
    [JsonPropertyName("y_o_correct")] public bool YOCorrect { get; init; }
    /// <summary>The seed its sample was drawn with (from run seed, stage, batch and row; <c>SequenceSampling</c>).</summary>
    [JsonPropertyName("seed")] public long Seed { get; init; }
}

/// <summary>Stage 2's record of one problem: the refinement prompt and the rewrite y_r.</summary>
public sealed record RefinementRecord
{
    /// <summary>The problem's id.</summary>
    [JsonPropertyName("id")] public required string Id { get; init; }
    /// <summary>The refinement user message (the context the Refine teacher scores y_r under in stage 3).</summary>
    [JsonPropertyName("prompt")] public required string Prompt { get; init; }
    /// <summary>Templated prompt length in tokens.</summary>
    [JsonPropertyName("prompt_tokens")] public int PromptTokens { get; init; }
    /// <summary>What was shortened to fit the budget, or null.</summary>
    [JsonPropertyName("prompt_notice")] public string? PromptNotice { get; init; }
    /// <summary>y_r as text.</summary>
    [JsonPropertyName("y_r")] public required string YR { get; init; }
    /// <summary>y_r's training ids: the text under the chat template, ended by the end-of-turn token unless truncated.</summary>
    [JsonPropertyName("y_r_ids")] public required int[] YRTokens { get; init; }
    /// <summary>|y_r| in tokens.</summary>
    [JsonPropertyName("y_r_tokens")] public int YRTokenCount { get; init; }
    /// <summary>y_r hit the token budget.</summary>
    [JsonPropertyName("y_r_truncated")] public bool YRTruncated { get; init; }
    /// <summary>y_r is empty.</summary>
    [JsonPropertyName("y_r_empty")] public bool YREmpty { get; init; }
    /// <summary>The verifier's outcome on y_r.</summary>
    [JsonPropertyName("y_r_correct")] public bool YRCorrect { get; init; }
    /// <summary>"ok", "empty", "truncated" or <see cref="PromptOverBudget"/>.</summary>
    [JsonPropertyName("status")] public required string Status { get; init; }
    /// <summary>The status of a refinement whose prompt did not fit its budget: no y_r was generated.</summary>
    public const string PromptOverBudget = "prompt-over-budget";
    /// <summary>
    /// Whether the teacher produced a y_r: every status but <see cref="PromptOverBudget"/> (an empty or truncated y_r was
    /// generated and is measured). The corpus analysis and the study count y_r over these refinements only.
    /// </summary>
    [JsonIgnore] public bool HasRefinedTrajectory => Status != PromptOverBudget;
    /// <summary>The seed its sample was drawn with (from run seed, stage, batch and row; <c>SequenceSampling</c>).</summary>
    [JsonPropertyName("seed")] public long Seed { get; init; }
}
