using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using Trd.Runtime.Generation;
using Trd.Runtime.Pipeline;
using Trd.Runtime.Data;

namespace Trd.Cli.Serve;

/// <summary>
/// The part of vLLM's OpenAI-compatible <c>/v1/completions</c> request that <c>trd serve</c> reads (snake_case, as vLLM
/// takes it). The prompt is text, token ids, or a list of either; ids are sent and returned as ids, so a client's
/// contexts are exactly the ones training uses.
/// </summary>
sealed record CompletionRequest
{
    public string? Model { get; init; }
    public JsonNode? Prompt { get; init; }
    public int N { get; init; } = 1;
    public int MaxTokens { get; init; } = 16;
    public double Temperature { get; init; } = 1.0;
    public double TopP { get; init; } = 1.0;
    /// <summary>vLLM's convention: −1 (or 0) keeps every token.</summary>
    public int TopK { get; init; } = -1;
    public long? Seed { get; init; }
    public int[]? StopTokenIds { get; init; }
    public bool SkipSpecialTokens { get; init; } = true;
    public bool ReturnTokenIds { get; init; }
    /// <summary>
    /// Log-probabilities of the generated tokens (vLLM's <c>logprobs</c>): 0 gives each sampled token's, at T = 1 before
    /// top-k and top-p as vLLM's raw log-probabilities are; the top-N alternatives (N &gt; 0) are not computed here.
    /// </summary>
    public int? Logprobs { get; init; }
    /// <summary>The top-K log-probabilities at every prompt position (vLLM's <c>prompt_logprobs</c>; the first is null).</summary>
    public int? PromptLogprobs { get; init; }
}

/// <summary>
/// Serves <c>/v1/completions</c> in vLLM's shapes from the <see cref="ModelHost"/>: a request's prompts are sampled with
/// its seed, sample j of each prompt drawing from seed + j as vLLM seeds its n child requests (and as the in-process
/// pipeline does, <see cref="Trd.Core.SequenceSampling"/>), so the same request gives the same tokens however the
/// server groups it. Without a seed each prompt gets a fresh random one.
/// </summary>
sealed class CompletionsApi(ModelHost host)
{
    public static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        UnmappedMemberHandling = JsonUnmappedMemberHandling.Skip,    // vLLM ignores what it does not know; so do we
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };

    /// <summary>A prompt as token ids: text is encoded, ids are checked against the vocabulary.</summary>
    public static int[] PromptIds(ModelHost host, JsonNode? node, string key)
    {
        var ids = node switch
        {
            JsonValue v when v.TryGetValue<string>(out var text) => host.Tokenizer.Encode(text).ToArray(),
            JsonArray a when a.All(x => x is JsonValue xv && xv.TryGetValue<long>(out _)) => a.Select(x => checked((int)x!.GetValue<long>())).ToArray(),
            _ => throw new BadRequestException($"{key}: expected text or token ids"),
        };
        if (ids.Length == 0) throw new BadRequestException($"{key}: empty");
        var bad = Array.FindIndex(ids, id => id < 0 || id >= host.VocabSize);
        if (bad >= 0) throw new BadRequestException($"{key}: token id {ids[bad]} is outside the vocabulary [0, {host.VocabSize})");
        return ids;
    }

    /// <summary>The prompts of a request: one, or a list of them.</summary>
    int[][] Prompts(JsonNode? prompt) => prompt switch
    {
        null => throw new BadRequestException("prompt: required"),
        JsonArray a when a.Count > 0 && (a[0] is JsonArray || a[0]?.GetValueKind() == JsonValueKind.String) => a.Select((p, i) => PromptIds(host, p, $"prompt[{i}]")).ToArray(),
        _ => [PromptIds(host, prompt, "prompt")],
    };

    /// <summary>Sampling options from a request's fields, 400 naming the field when one is out of range.</summary>
    public static SamplingOptions Options(ModelHost host, int n, int maxTokens, double temperature, double topP, int topK, long? seed, int[]? stop, int prompts)
    {
        if (n < 1) throw new BadRequestException($"n: must be ≥ 1, got {n}");
        if (maxTokens < 1) throw new BadRequestException($"max_tokens: must be ≥ 1, got {maxTokens}");
        var options = new SamplingOptions
        {
            Temperature = temperature, TopP = topP, TopK = Math.Max(0, topK), MaxNewTokens = maxTokens, SamplesPerPrompt = n,
            PromptSeeds = Enumerable.Range(0, prompts).Select(_ => seed ?? Random.Shared.NextInt64()).ToArray(),
            StopTokenIds = stop ?? host.Tokenizer.StopIds, VocabularyLimit = host.Tokenizer.VocabularySize,
        };
        try { options.Validate(); }
        catch (ArgumentException e) { throw new BadRequestException(e.Message); }
        return options;
    }

    public async Task<JsonObject> Complete(CompletionRequest request)
    {
        var model = request.Model ?? host.Name;
        if (request.PromptLogprobs is < 0) throw new BadRequestException($"prompt_logprobs: must be ≥ 0, got {request.PromptLogprobs}");
        if (request.Logprobs is { } n && n != 0)
            throw new BadRequestException($"logprobs: trd serve gives the sampled tokens' log-probabilities only (logprobs: 0), got {n}; use prompt_logprobs for a top-K");
        var prompts = Prompts(request.Prompt);
        var options = Options(host, request.N, request.MaxTokens, request.Temperature, request.TopP, request.TopK, request.Seed, request.StopTokenIds, prompts.Length);
        var samples = await host.Sample(model, prompts, options);
        var promptLogprobs = request.PromptLogprobs is { } k
            ? await Task.WhenAll(prompts.Select(async p => p.Length < 2 ? new JsonArray { null } : PromptLogprobs(p, await host.TopK(model, p, Math.Max(1, k)))))
            : null;
        var choices = new JsonArray();
        for (var i = 0; i < samples.Count; i++)
        {
            var s = samples[i];
            var choice = new JsonObject
            {
                ["index"] = i,
                ["text"] = host.Tokenizer.Decode(s.Tokens, skipSpecialTokens: request.SkipSpecialTokens),
                ["logprobs"] = request.Logprobs is null ? null : TokenLogprobs(s),
                ["finish_reason"] = s.Truncated ? "length" : "stop",
                ["stop_reason"] = !s.Truncated && s.Tokens.Length > 0 ? s.Tokens[^1] : null,
            };
            if (request.ReturnTokenIds)
            {
                choice["token_ids"] = new JsonArray(s.Tokens.Select(t => (JsonNode)t).ToArray());
                choice["prompt_token_ids"] = new JsonArray(prompts[s.Prompt].Select(t => (JsonNode)t).ToArray());
            }
            if (promptLogprobs is not null) choice["prompt_logprobs"] = promptLogprobs[s.Prompt].DeepClone();
            choices.Add(choice);
        }
        var completion = samples.Sum(s => s.Tokens.Length);
        var promptTokens = prompts.Sum(p => p.Length) * request.N;
        return new JsonObject
        {
            ["id"] = $"cmpl-{Guid.NewGuid():N}",
            ["object"] = "text_completion",
            ["created"] = DateTimeOffset.UtcNow.ToUnixTimeSeconds(),
            ["model"] = model,
            ["choices"] = choices,
            ["usage"] = new JsonObject { ["prompt_tokens"] = promptTokens, ["completion_tokens"] = completion, ["total_tokens"] = promptTokens + completion },
        };
    }

    /// <summary>
    /// vLLM's <c>prompt_logprobs</c> for one prompt: null for the first token, then for each later token a map from
    /// token id (as text) to <c>{logprob, rank, decoded_token}</c> holding the model's top-K and the prompt's own token.
    /// </summary>
    JsonArray PromptLogprobs(int[] prompt, TeacherScores scores)
    {
        var result = new JsonArray { null };
        for (var t = 0; t < scores.Positions; t++)
        {
            var entry = new JsonObject();
            for (var j = 0; j < scores.K; j++)
                entry[scores.Ids[t * scores.K + j].ToString()] = Logprob(scores.Ids[t * scores.K + j], scores.LogProbs[t * scores.K + j], j + 1);
            var own = prompt[t + 1];
            if (!entry.ContainsKey(own.ToString()))
                entry[own.ToString()] = Logprob(own, scores.TargetLogProbs[t], null);
            result.Add(entry);
        }
        return result;
    }

    /// <summary>vLLM's completion <c>logprobs</c> object for <c>logprobs: 0</c>: each token, its log-probability and offset.</summary>
    JsonObject TokenLogprobs(Sample s)
    {
        var texts = s.Tokens.Select(t => host.Tokenizer.Decode([t], skipSpecialTokens: false)).ToArray();
        var offsets = new JsonArray();
        var offset = 0;
        foreach (var text in texts) { offsets.Add(offset); offset += text.Length; }
        return new JsonObject
        {
            ["text_offset"] = offsets,
            ["token_logprobs"] = new JsonArray(s.LogProbs.Select(l => (JsonNode?)(float.IsFinite(l) ? l : null)).ToArray()),
            ["tokens"] = new JsonArray(texts.Select(t => (JsonNode)t).ToArray()),
            ["top_logprobs"] = new JsonArray(texts.Select((t, i) => (JsonNode)new JsonObject { [t] = float.IsFinite(s.LogProbs[i]) ? s.LogProbs[i] : null }).ToArray()),
        };
    }

    JsonObject Logprob(int id, float logprob, int? rank) => new()
    {
        ["logprob"] = float.IsFinite(logprob) ? logprob : null,
        ["rank"] = rank,
        ["decoded_token"] = host.Tokenizer.Decode([id], skipSpecialTokens: false),
    };
}
