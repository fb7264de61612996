using System.Net;
using System.Text.Json.Nodes;
using Trd.Core;
using Trd.Runtime.Data;
using Trd.Runtime.Generation;
using Trd.Runtime.Pipeline;

namespace Trd.Runtime.Serving;

/// <summary>
/// SGLang's native <c>POST /generate</c> (and <c>trd serve</c>'s), issue 14 §1–2. Generation: one request per sample,
/// holding the prompt's <c>input_ids</c> and <c>sampling_params</c> with <c>sampling_seed</c> = the sample's own seed
/// (prompt seed + j, <see cref="SequenceSampling.SampleSeed"/>; SGLang's n copies of one request would share a seed);
/// <c>output_ids</c> come back, and a stop token SGLang matched but did not return is appended, so a trajectory ends
/// as the in-process sampler's does. Scores: <c>return_logprob</c> with <c>top_logprobs_num: K</c> from position 0,
/// read from <c>meta_info.input_top_logprobs</c> and <c>input_token_logprobs</c>.
/// </summary>
public sealed class SglangClient : IServedModel
{
    readonly ServerPool _pool;
    readonly string _model;
    readonly Vocabulary _vocabulary;
    readonly string? _adapter;

    internal SglangClient(ServerPool pool, string model, Vocabulary vocabulary, string? adapter = null)
    {
        _pool = pool;
        _model = model;
        _vocabulary = vocabulary;
        _adapter = adapter;
    }

    /// <inheritdoc/>
    public string Name => $"{_adapter ?? _model} at {_pool.Describe}";

    JsonObject Body(int[] ids)
    {
        var body = new JsonObject { ["input_ids"] = VllmClient.Ids(ids) };
        if (_adapter is not null) body["lora_path"] = _adapter;
        return body;
    }

    /// <inheritdoc/>
    public IReadOnlyList<Generated> Generate(IReadOnlyList<int[]> prompts, SamplingOptions options)
    {
        var n = options.SamplesPerPrompt;
        var requests = Enumerable.Range(0, prompts.Count * n).Select(row =>
        {
            var (p, j) = (row / n, row % n);
            var seed = SequenceSampling.SampleSeed(options.SeedOf(p), j);
            var body = Body(prompts[p]);
            body["sampling_params"] = new JsonObject
            {
                ["max_new_tokens"] = options.MaxNewTokens, ["temperature"] = options.Temperature, ["top_p"] = options.TopP,
                ["top_k"] = options.TopK > 0 ? options.TopK : -1, ["sampling_seed"] = seed,
                ["stop_token_ids"] = VllmClient.Ids(options.StopTokenIds), ["skip_special_tokens"] = false, ["no_stop_trim"] = true,
            };
            var what = $"{_pool.Describe}/generate (prompt {p} of {prompts.Count}, sample {j}: {prompts[p].Length} tokens, seed {seed})";
            return new ServerRequest<Generated>("generate", body.ToJsonString(), what, answer => Read(answer, p, options, what));
        }).ToArray();
        return _pool.Send(requests);
    }

    Generated Read(JsonNode answer, int prompt, SamplingOptions options, string what)
    {
        var one = (answer is JsonArray a && a.Count == 1 ? a[0] : answer) as JsonObject
            ?? throw new ServerException($"{what}: expected one generation object");
        var ids = VllmClient.ReadIds(one["output_ids"] as JsonArray ?? throw new ServerException($"{what}: the response has no output_ids"), _vocabulary.Tokens, what).ToList();
        var finish = one["meta_info"]?["finish_reason"] as JsonObject ?? throw new ServerException($"{what}: the response has no meta_info.finish_reason");
        var type = finish["type"]?.GetValue<string>();
        if (type == "stop" && finish["matched"] is JsonValue matched && matched.TryGetValue<int>(out var stop)
            && options.StopTokenIds.Contains(stop) && (ids.Count == 0 || ids[^1] != stop))
            ids.Add(stop);
        if (ids.Count > options.MaxNewTokens) throw new ServerException($"{what}: {ids.Count} tokens, more than max_new_tokens = {options.MaxNewTokens}");
        return new Generated(prompt, ids.ToArray(), type == "length");
    }

    /// <inheritdoc/>
    public IReadOnlyList<TeacherScores> ScoreTopK(IReadOnlyList<ScoringRequest> requests, int k) =>
        _pool.Send(requests.Select(r =>
        {
            var body = Body(r.Context.Concat(r.Trajectory).ToArray());
            body["sampling_params"] = new JsonObject { ["max_new_tokens"] = 1, ["temperature"] = 0.0 };
            body["return_logprob"] = true;
            body["logprob_start_len"] = 0;
            body["top_logprobs_num"] = k;
            var what = $"{_pool.Describe}/generate (input_top_logprobs {k} of {r.Id}: {r.Trajectory.Length} positions)";
            return new ServerRequest<TeacherScores>("generate", body.ToJsonString(), what, answer => ReadInputLogprobs(answer, r, k, what));
        }).ToArray());

    TeacherScores ReadInputLogprobs(JsonNode answer, ScoringRequest r, int k, string what)
    {
        var meta = ((answer is JsonArray a && a.Count == 1 ? a[0] : answer) as JsonObject)?["meta_info"] as JsonObject
            ?? throw new ServerException($"{what}: the response has no meta_info");
        var top = meta["input_top_logprobs"] as JsonArray ?? throw new ServerException($"{what}: the response has no input_top_logprobs");
        var own = meta["input_token_logprobs"] as JsonArray ?? throw new ServerException($"{what}: the response has no input_token_logprobs");
        var length = r.Context.Length + r.Trajectory.Length;
        if (top.Count != length || own.Count != length)
            throw new ServerException($"{what}: {top.Count} top and {own.Count} token log-probabilities for an input of {length} tokens (logprob_start_len 0)");
        var scores = new TopKReader(r, k, _vocabulary.OutputRows, what);
        for (var t = 0; t < r.Trajectory.Length; t++)
        {
            var at = r.Context.Length + t;
            // Entries are [logprob, token_id, text]; the top list comes best first.
            var ranked = (top[at] as JsonArray ?? throw new ServerException($"{what}: position {t} has no top log-probabilities"))
                .Select(e => (Id: e?[1]?.GetValue<int>() ?? -1, LogProb: e?[0]?.GetValue<double?>())).ToArray();
            var mine = own[at] as JsonArray ?? throw new ServerException($"{what}: position {t} has no token log-probability");
            if (mine[1]?.GetValue<int>() != r.Trajectory[t])
                throw new ServerException($"{what}: position {t} scores token {mine[1]}, not the trajectory's {r.Trajectory[t]}");
            scores.Position(t, ranked, mine[0]?.GetValue<double?>(), "a top_logprobs_num limit");
        }
        return scores.Scores;
    }

    /// <inheritdoc/>
    public ITrajectoryGenerator WithAdapter(string name, string directory)
    {
        var body = new JsonObject { ["lora_name"] = name, ["lora_path"] = Path.GetFullPath(directory) };
        _pool.PostEach("load_lora_adapter", body.ToJsonString(), $"load the adapter {name} from {directory}",
            (status, text) => status == HttpStatusCode.BadRequest && text.Contains("already", StringComparison.OrdinalIgnoreCase));
        return new SglangClient(_pool, _model, _vocabulary, name);
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        if (_adapter is null) _pool.Dispose();
    }
}
