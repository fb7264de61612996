using Trd.Runtime.Checkpoints;
namespace Trd.Runtime.Generation;

/// <summary>
/// How to sample continuations. Defaults are the paper's stage-1 settings (App. C.1): T = 0.6, top-p 0.95,
/// top-k 20. Temperature 0 is greedy decoding.
/// </summary>
public sealed record SamplingOptions
{
    /// <summary>Softmax temperature; 0 means greedy (arg max).</summary>
    public double Temperature { get; init; } = 0.6;

    /// <summary>Nucleus: keep the smallest set of tokens whose probability reaches p (1 keeps all).</summary>
    public double TopP { get; init; } = 0.95;

    /// <summary>Keep the k most likely tokens (≤ 0 keeps all).</summary>
    public int TopK { get; init; } = 20;

    /// <summary>At most this many new tokens per sample.</summary>
    public int MaxNewTokens { get; init; } = 256;

    /// <summary>Samples per prompt; they share the prompt's prefill.</summary>
    public int SamplesPerPrompt { get; init; } = 1;

    /// <summary>Tokens that end a sample (included in it), e.g. &lt;|im_end|&gt; and &lt;|endoftext|&gt;.</summary>
    public IReadOnlyList<int> StopTokenIds { get; init; } = Array.Empty<int>();

    /// <summary>
    /// The seed of the one sampling generator of a call when <see cref="PromptSeeds"/> is not given: the same seed and
    /// the same prompts give the same samples (a prompt's samples then depend on the whole call).
    /// </summary>
    public long Seed { get; init; }

    /// <summary>
    /// One seed per prompt: sample j of prompt i then draws from its own stream seeded PromptSeeds[i] + j
    /// (<see cref="Trd.Core.SequenceSampling"/>, vLLM's rule for n samples), so its tokens do not depend on the other
    /// prompts of the call. The pipeline's stages and <c>trd serve</c> sample this way.
    /// </summary>
    public IReadOnlyList<long>? PromptSeeds { get; init; }

    /// <summary>
    /// The seed a served request for prompt <paramref name="prompt"/> carries: its own, or without
    /// <see cref="PromptSeeds"/> the call's <see cref="Seed"/> (what one seeded request with several prompts means to vLLM).
    /// </summary>
    public long SeedOf(int prompt) => PromptSeeds is { } seeds ? seeds[prompt] : Seed;

    /// <summary>
    /// Sample only ids below this (0: no limit): the tokenizer's vocabulary size, when the model's output layer is
    /// padded past it (Qwen3: 151,936 rows for 151,669 ids) and an id there would decode to nothing.
    /// </summary>
    public int VocabularyLimit { get; init; }

    /// <summary>The highest temperature accepted: far above any useful one, and low enough that z / T stays a number.</summary>
    public const double MaxTemperature = 100;

    /// <summary>The largest response budget accepted (a million tokens, past every model's context).</summary>
    public const int MaxTokens = 1 << 20;

    /// <summary>Throws on values that cannot be sampled with.</summary>
    public void Validate()
    {
        if (!(Temperature >= 0 && Temperature <= MaxTemperature)) throw new ArgumentException($"temperature must lie in [0, {MaxTemperature}], got {Temperature}");
        if (TopK < 0) throw new ArgumentException($"top-k must be ≥ 0 (0: off), got {TopK}");
        if (MaxNewTokens > MaxTokens) throw new ArgumentException($"max new tokens must be ≤ {MaxTokens:N0}, got {MaxNewTokens:N0}");
        if (!(TopP > 0 && TopP <= 1)) throw new ArgumentException($"TopP must lie in (0, 1], got {TopP}");
        if (MaxNewTokens < 1) throw new ArgumentException($"MaxNewTokens must be ≥ 1, got {MaxNewTokens}");
        if (SamplesPerPrompt < 1) throw new ArgumentException($"SamplesPerPrompt must be ≥ 1, got {SamplesPerPrompt}");
        if (VocabularyLimit < 0) throw new ArgumentException($"VocabularyLimit must be ≥ 0, got {VocabularyLimit}");
    }
}

/// <summary>One sampled continuation.</summary>
/// <param name="Prompt">Index of the prompt it continues.</param>
/// <param name="Tokens">The new tokens, ending with the stop token when one was sampled.</param>
/// <param name="LogProbs">log π(y_t | ·) of each new token under the model at temperature 1 (before top-k/top-p).</param>
/// <param name="Truncated">True when MaxNewTokens ran out before a stop token.</param>
public sealed record Sample(int Prompt, int[] Tokens, float[] LogProbs, bool Truncated);
