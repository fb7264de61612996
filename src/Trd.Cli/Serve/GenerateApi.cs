using System.Text.Json.Nodes;
using Trd.Runtime.Data;

namespace Trd.Cli.Serve;

/// <summary>SGLang's <c>sampling_params</c>, the part <c>trd serve</c> reads (SGLang's defaults).</summary>
sealed record GenerateSamplingParams
{
    public int MaxNewTokens { get; init; } = 128;
    public double Temperature { get; init; } = 1.0;
    public double TopP { get; init; } = 1.0;
    public int TopK { get; init; } = -1;
    public int N { get; init; } = 1;
    public int[]? StopTokenIds { get; init; }
    public long? SamplingSeed { get; init; }
    public bool SkipSpecialTokens { get; init; } = true;
}

/// <summary>SGLang's native <c>/generate</c> request, the part <c>trd serve</c> reads.</summary>
sealed record GenerateRequest
{
    public JsonNode? Text { get; init; }
    public JsonNode? InputIds { get; init; }
    public GenerateSamplingParams SamplingParams { get; init; } = new();
    public bool ReturnLogprob { get; init; }
    public int LogprobStartLen { get; init; } = -1;
    public int TopLogprobsNum { get; init; }
    /// <summary>The name of a loaded adapter to generate with (SGLang's <c>lora_path</c> takes the name).</summary>
    public string? LoraPath { get; init; }
}

/// <summary>
/// Serves SGLang's <c>/generate</c> from the <see cref="ModelHost"/>, so the SGLang client is tested against a real
/// server: <c>input_ids</c> (or text), one or a list; <c>sampling_params</c> with <c>n</c> and <c>sampling_seed</c>
/// (sample j draws from seed + j, as everywhere in Trd); <c>return_logprob</c> with <c>logprob_start_len</c> and
/// <c>top_logprobs_num</c> (entries <c>[logprob, token_id, null]</c>; the first input position has none). One input
/// with n = 1 answers an object, anything else a list, input-major.
/// </summary>
sealed class GenerateApi(ModelHost host)
{
    public async Task<JsonNode> Generate(GenerateRequest request)
    {
        var model = request.LoraPath ?? host.Name;
        var (inputs, single) = (request.InputIds, request.Text) switch
        {
            (null, null) => throw new BadRequestException("input_ids: give input_ids or text"),
            ({ } ids, null) => ids is JsonArray a && a.Count > 0 && a[0] is JsonArray
                ? (a.Select((x, i) => CompletionsApi.PromptIds(host, x, $"input_ids[{i}]")).ToArray(), false)
                : (new[] { CompletionsApi.PromptIds(host, ids, "input_ids") }, true),
            (null, { } text) => text is JsonArray a
                ? (a.Select((x, i) => CompletionsApi.PromptIds(host, x, $"text[{i}]")).ToArray(), false)
                : (new[] { CompletionsApi.PromptIds(host, text, "text") }, true),
            _ => throw new BadRequestException("input_ids: give input_ids or text, not both"),
        };
        var p = request.SamplingParams;
        if (request.TopLogprobsNum < 0) throw new BadRequestException($"top_logprobs_num: must be ≥ 0, got {request.TopLogprobsNum}");
        var options = CompletionsApi.Options(host, p.N, p.MaxNewTokens, p.Temperature, p.TopP, p.TopK, p.SamplingSeed, p.StopTokenIds, inputs.Length);
        var samples = await host.Sample(model, inputs, options);
        var start = request.ReturnLogprob ? request.LogprobStartLen : -1;
        var scores = start >= 0
            ? await Task.WhenAll(inputs.Select(x => x.Length < 2 ? Task.FromResult<TeacherScores?>(null)
                : host.TopK(model, x, Math.Max(1, request.TopLogprobsNum)).ContinueWith(t => (TeacherScores?)t.Result)))
            : null;
        var answers = new JsonArray();
        foreach (var s in samples)
        {
            var input = inputs[s.Prompt];
            var finish = s.Truncated
                ? new JsonObject { ["type"] = "length", ["length"] = options.MaxNewTokens }
                : new JsonObject { ["type"] = "stop", ["matched"] = s.Tokens.Length > 0 ? s.Tokens[^1] : null };
            var meta = new JsonObject
            {
                ["id"] = Guid.NewGuid().ToString("N"),
                ["finish_reason"] = finish,
                ["prompt_tokens"] = input.Length,
                ["completion_tokens"] = s.Tokens.Length,
                ["cached_tokens"] = 0,
            };
            if (request.ReturnLogprob)
            {
                meta["output_token_logprobs"] = new JsonArray(s.Tokens.Select((t, i) => (JsonNode)Entry(s.LogProbs[i], t)).ToArray());
                if (scores is not null) InputLogprobs(meta, input, scores[s.Prompt], Math.Min(start, input.Length), request.TopLogprobsNum);
            }
            answers.Add(new JsonObject
            {
                ["text"] = host.Tokenizer.Decode(s.Tokens, skipSpecialTokens: p.SkipSpecialTokens),
                ["output_ids"] = new JsonArray(s.Tokens.Select(t => (JsonNode)t).ToArray()),
                ["meta_info"] = meta,
            });
        }
        return single && p.N == 1 ? answers[0]!.DeepClone() : answers;
    }

    /// <summary>
    /// <c>input_token_logprobs</c> and <c>input_top_logprobs</c> from position <paramref name="start"/>: position 0 has
    /// no log-probability (null), position t ≥ 1 is scored given the tokens before it.
    /// </summary>
    static void InputLogprobs(JsonObject meta, int[] input, TeacherScores? scores, int start, int k)
    {
        var own = new JsonArray();
        var top = new JsonArray();
        for (var t = start; t < input.Length; t++)
        {
            if (t == 0 || scores is null) { own.Add(Entry(null, input[t])); top.Add(null); continue; }
            own.Add(Entry(scores.TargetLogProbs[t - 1], input[t]));
            top.Add(k == 0 ? null : new JsonArray(Enumerable.Range(0, Math.Min(k, scores.K)).Select(j =>
                (JsonNode)Entry(scores.LogProbs[(t - 1) * scores.K + j], scores.Ids[(t - 1) * scores.K + j])).ToArray()));
        }
        meta["input_token_logprobs"] = own;
        meta["input_top_logprobs"] = top;
    }

    static JsonArray Entry(float? logprob, int id) => new(logprob is { } l && float.IsFinite(l) ? l : null, id, null);
}
