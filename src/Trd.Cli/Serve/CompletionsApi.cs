using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using Trd.Runtime.Generation;
using Trd.Runtime.Pipeline;
using Trd.Runtime.Scoring;

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
    /// <summary>The top-K log-probabilities at every prompt position (vLLM's <c>prompt_logprobs</c>; the first is null).</summary>
    public int? PromptLogprobs { get; init; }
}

/// <summary>A request that cannot be served, answered with 400 and vLLM's error shape.</summary>
sealed class BadRequestException(string message) : Exception(message);

/// <summary>
/// Serves one loaded model through <c>/v1/completions</c>: one request is one call of the runtime's KV-cache sampler
/// (its prompts and their n samples together, seeded by the request's seed), so a request gives the same tokens as
/// the same call in-process, whatever else the server is doing. Requests run one at a time.
/// </summary>
sealed class CompletionsApi(LoadedModel model, string name)
{
    readonly SemaphoreSlim _gate = new(1, 1);

    public static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        UnmappedMemberHandling = JsonUnmappedMemberHandling.Skip,    // vLLM ignores what it does not know; so do we
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };

    public string Name => name;

    /// <summary>The prompts of a request as token ids.</summary>
    int[][] Prompts(JsonNode? prompt)
    {
        int[] One(JsonNode? node) => node switch
        {
            JsonValue v when v.TryGetValue<string>(out var text) => model.Tokenizer.Encode(text).ToArray(),
            JsonArray a when a.All(x => x is JsonValue xv && xv.TryGetValue<long>(out _)) => a.Select(x => checked((int)x!.GetValue<long>())).ToArray(),
            _ => throw new BadRequestException("prompt: expected text, token ids, or a list of either"),
        };
        var prompts = prompt switch
        {
            null => throw new BadRequestException("prompt: required"),
            JsonArray a when a.Count > 0 && (a[0] is JsonArray || a[0]?.GetValueKind() == JsonValueKind.String) => a.Select(One).ToArray(),
            _ => [One(prompt)],
        };
        var v = model.Model.Config.VocabSize;
        foreach (var p in prompts)
        {
            if (p.Length == 0) throw new BadRequestException("prompt: empty");
            var bad = Array.FindIndex(p, id => id < 0 || id >= v);
            if (bad >= 0) throw new BadRequestException($"prompt: token id {p[bad]} is outside the vocabulary [0, {v})");
        }
        return prompts;
    }

    public async Task<JsonObject> Complete(CompletionRequest request, CancellationToken cancel)
    {
        if (request.Model is { } m && m != name) throw new BadRequestException($"model: '{m}' is not served here (this server serves '{name}')");
        if (request.N < 1) throw new BadRequestException($"n: must be ≥ 1, got {request.N}");
        if (request.MaxTokens < 1) throw new BadRequestException($"max_tokens: must be ≥ 1, got {request.MaxTokens}");
        if (request.PromptLogprobs is < 0) throw new BadRequestException($"prompt_logprobs: must be ≥ 0, got {request.PromptLogprobs}");
        var prompts = Prompts(request.Prompt);
        var options = new SamplingOptions
        {
            Temperature = request.Temperature, TopP = request.TopP, TopK = Math.Max(0, request.TopK), MaxNewTokens = request.MaxTokens,
            SamplesPerPrompt = request.N, Seed = request.Seed ?? Random.Shared.NextInt64(), StopTokenIds = request.StopTokenIds ?? model.Tokenizer.StopIds,
            VocabularyLimit = model.Tokenizer.VocabularySize,
        };
        try { options.Validate(); }
        catch (ArgumentException e) { throw new BadRequestException(e.Message); }

        await _gate.WaitAsync(cancel);
        try
        {
            var samples = new TorchGenerator(model.Model, name).Generate(prompts, options);
            var promptLogprobs = request.PromptLogprobs is { } k ? prompts.Select(p => PromptLogprobs(p, Math.Max(1, k))).ToArray() : null;
            var choices = new JsonArray();
            for (var i = 0; i < samples.Count; i++)
            {
                var s = samples[i];
                var prompt = prompts[s.Prompt];
                var finish = s.Truncated ? "length" : "stop";
                var choice = new JsonObject
                {
                    ["index"] = i,
                    ["text"] = model.Tokenizer.Decode(s.Tokens, skipSpecialTokens: request.SkipSpecialTokens),
                    ["logprobs"] = null,
                    ["finish_reason"] = finish,
                    ["stop_reason"] = !s.Truncated && s.Tokens.Length > 0 ? s.Tokens[^1] : null,
                };
                if (request.ReturnTokenIds)
                {
                    choice["token_ids"] = new JsonArray(s.Tokens.Select(t => (JsonNode)t).ToArray());
                    choice["prompt_token_ids"] = new JsonArray(prompt.Select(t => (JsonNode)t).ToArray());
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
                ["model"] = name,
                ["choices"] = choices,
                ["usage"] = new JsonObject { ["prompt_tokens"] = promptTokens, ["completion_tokens"] = completion, ["total_tokens"] = promptTokens + completion },
            };
        }
        finally { _gate.Release(); }
    }

    /// <summary>
    /// vLLM's <c>prompt_logprobs</c> for one prompt: null for the first token, then for each later token a map from
    /// token id (as text) to <c>{logprob, rank, decoded_token}</c> holding the model's top-K and the prompt's own token.
    /// </summary>
    JsonArray PromptLogprobs(int[] prompt, int k)
    {
        var result = new JsonArray { null };
        if (prompt.Length < 2) return result;
        var scores = TeacherScoring.TopK(model.Model, [("prompt", new ScoringPair(prompt[..1], prompt[1..]))], Math.Min(k, model.Model.Config.VocabSize))[0];
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

    JsonObject Logprob(int id, float logprob, int? rank) => new()
    {
        ["logprob"] = float.IsFinite(logprob) ? logprob : null,
        ["rank"] = rank,
        ["decoded_token"] = model.Tokenizer.Decode([id], skipSpecialTokens: false),
    };
}
