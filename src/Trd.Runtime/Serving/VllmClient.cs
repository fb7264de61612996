using System.Globalization;
using System.Net;
using System.Text.Json.Nodes;
using Trd.Runtime.Data;
using Trd.Runtime.Generation;
using Trd.Runtime.Pipeline;

namespace Trd.Runtime.Serving;

/// <summary>
/// vLLM's OpenAI-compatible <c>POST /v1/completions</c> (and <c>trd serve</c>'s), issue 14 §1–2. Generation: one request
/// per prompt holding its token ids, n, the prompt's seed (vLLM seeds sample j with seed + j, as
/// <see cref="Trd.Core.SequenceSampling"/> does) and the sampling options, asking for token ids back
/// (<c>return_token_ids</c>, vLLM ≥ 0.10). Scores: <c>prompt_logprobs: K</c> with <c>max_tokens: 1</c> over context ++
/// trajectory. A response with the wrong number of choices, missing ids or an id outside the vocabulary is an error
/// naming the request.
/// </summary>
public sealed class VllmClient : IServedModel
{
    readonly ServerPool _pool;
    readonly string _model;
    readonly Vocabulary _vocabulary;
    readonly bool _ownsPool;

    internal VllmClient(ServerPool pool, string model, Vocabulary vocabulary, bool ownsPool = true)
    {
        _pool = pool;
        _model = model;
        _vocabulary = vocabulary;
        _ownsPool = ownsPool;
    }

    /// <inheritdoc/>
    public string Name => $"{_model} at {_pool.Describe}";

    /// <inheritdoc/>
    public IReadOnlyList<Generated> Generate(IReadOnlyList<int[]> prompts, SamplingOptions options)
    {
        var n = options.SamplesPerPrompt;
        var requests = prompts.Select((prompt, p) =>
        {
            var body = new JsonObject
            {
                ["model"] = _model, ["prompt"] = Ids(prompt),
                ["n"] = n, ["max_tokens"] = options.MaxNewTokens, ["temperature"] = options.Temperature, ["top_p"] = options.TopP,
                ["top_k"] = options.TopK > 0 ? options.TopK : -1, ["seed"] = options.SeedOf(p),
                ["stop_token_ids"] = Ids(options.StopTokenIds),
                ["skip_special_tokens"] = false, ["return_token_ids"] = true,
            };
            var what = $"{_pool.Describe}/v1/completions (prompt {p} of {prompts.Count}: {prompt.Length} tokens, n = {n}, seed {options.SeedOf(p)})";
            return new ServerRequest<Generated[]>("v1/completions", body.ToJsonString(), what, answer => ReadChoices(answer, p, n, options.MaxNewTokens, what));
        }).ToArray();
        return _pool.Send(requests).SelectMany(x => x).ToArray();
    }

    Generated[] ReadChoices(JsonNode answer, int prompt, int n, int maxTokens, string what)
    {
        var choices = answer["choices"] as JsonArray ?? throw new ServerException($"{what}: the response has no choices");
        if (choices.Count != n) throw new ServerException($"{what}: {choices.Count} choices for n = {n}");
        var result = new Generated[n];
        for (var i = 0; i < n; i++)
        {
            var choice = choices[i] as JsonObject ?? throw new ServerException($"{what}: choice {i} is not an object");
            var index = choice["index"]?.GetValue<int>() ?? i;
            if (index < 0 || index >= n || result[index] is not null) throw new ServerException($"{what}: choice {i} has index {index}");
            var ids = ReadIds(choice["token_ids"] as JsonArray
                ?? throw new ServerException($"{what}: choice {index} has no token_ids (the server must support return_token_ids: vLLM ≥ 0.10, or trd serve)"), _vocabulary.Tokens, $"{what}: choice {index}");
            if (ids.Length > maxTokens) throw new ServerException($"{what}: choice {index} has {ids.Length} tokens, more than max_tokens = {maxTokens}");
            result[index] = new Generated(prompt, ids, choice["finish_reason"]?.GetValue<string>() == "length");
        }
        return result;
    }

    /// <inheritdoc/>
    public IReadOnlyList<TeacherScores> ScoreTopK(IReadOnlyList<ScoringRequest> requests, int k) =>
        _pool.Send(requests.Select(r =>
        {
            var sequence = r.Context.Concat(r.Trajectory).ToArray();
            var body = new JsonObject
            {
                ["model"] = _model, ["prompt"] = Ids(sequence), ["max_tokens"] = 1,
                ["temperature"] = 0.0, ["prompt_logprobs"] = k, ["skip_special_tokens"] = false,
            };
            var what = $"{_pool.Describe}/v1/completions (prompt_logprobs {k} of {r.Id}: {r.Trajectory.Length} positions)";
            return new ServerRequest<TeacherScores>("v1/completions", body.ToJsonString(), what, answer => ReadPromptLogprobs(answer, r, k, what));
        }).ToArray());

    TeacherScores ReadPromptLogprobs(JsonNode answer, ScoringRequest r, int k, string what)
    {
        var all = (answer["choices"] as JsonArray)?.FirstOrDefault()?["prompt_logprobs"] as JsonArray
            ?? throw new ServerException($"{what}: the response has no prompt_logprobs");
        var length = r.Context.Length + r.Trajectory.Length;
        if (all.Count != length) throw new ServerException($"{what}: {all.Count} prompt positions for a prompt of {length} tokens");
        var scores = new TopKReader(r, k, _vocabulary.OutputRows, what);
        for (var t = 0; t < r.Trajectory.Length; t++)
        {
            var position = all[r.Context.Length + t] as JsonObject ?? throw new ServerException($"{what}: position {t} has no log-probabilities");
            var ranked = position
                .Select(p => (Id: int.Parse(p.Key, CultureInfo.InvariantCulture), Rank: p.Value?["rank"]?.GetValue<int?>(), LogProb: p.Value?["logprob"]?.GetValue<double?>()))
                .Where(x => x.Rank is >= 1 && x.Rank <= k).OrderBy(x => x.Rank).Select(x => (x.Id, x.LogProb)).ToArray();
            var own = position[r.Trajectory[t].ToString(CultureInfo.InvariantCulture)]
                ?? throw new ServerException($"{what}: position {t} lacks the trajectory's own token {r.Trajectory[t]}");
            scores.Position(t, ranked, own["logprob"]?.GetValue<double?>(), "--max-logprobs");
        }
        return scores.Scores;
    }

    /// <inheritdoc/>
    public ITrajectoryGenerator WithAdapter(string name, string directory)
    {
        var body = new JsonObject { ["lora_name"] = name, ["lora_path"] = Path.GetFullPath(directory) };
        // vLLM answers 200 with a sentence, and 400 "… has already been loaded" when it holds the name: both are done.
        _pool.PostEach("v1/load_lora_adapter", body.ToJsonString(), $"load the adapter {name} from {directory}",
            (status, text) => status == HttpStatusCode.BadRequest && text.Contains("already been loaded", StringComparison.OrdinalIgnoreCase));
        return new VllmClient(_pool, name, _vocabulary, ownsPool: false);
    }

    internal static JsonArray Ids(IEnumerable<int> ids) => new(ids.Select(id => (JsonNode)id).ToArray());

    internal static int[] ReadIds(JsonArray array, int vocabulary, string what)
    {
        var ids = new int[array.Count];
        for (var i = 0; i < ids.Length; i++)
        {
            if (array[i] is not JsonValue v || !v.TryGetValue<int>(out var id)) throw new ServerException($"{what}: token {i} is not an integer id");
            if (id < 0 || id >= vocabulary) throw new ServerException($"{what}: holds token id {id}, outside the vocabulary [0, {vocabulary})");
            ids[i] = id;
        }
        return ids;
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        if (_ownsPool) _pool.Dispose();
    }
}

/// <summary>Collects one trajectory's top-K from an engine's answer, position by position, checking what it is given.</summary>
sealed class TopKReader(ScoringRequest request, int k, int vocabulary, string what)
{
    readonly int[] _ids = new int[request.Trajectory.Length * k];
    readonly float[] _logProbs = new float[request.Trajectory.Length * k];
    readonly float[] _targets = new float[request.Trajectory.Length];

    /// <summary>Position t: its ranked (id, log-prob) entries, best first, and the own token's log-prob.</summary>
    public void Position(int t, IReadOnlyList<(int Id, double? LogProb)> ranked, double? own, string flag)
    {
        if (ranked.Count < k) throw new ServerException($"{what}: position {t} has {ranked.Count} of the top-{k} (start the server with {flag} ≥ {k})");
        for (var j = 0; j < k; j++)
        {
            if (ranked[j].Id < 0 || ranked[j].Id >= vocabulary) throw new ServerException($"{what}: position {t} ranks token id {ranked[j].Id}, outside the vocabulary [0, {vocabulary})");
            _ids[t * k + j] = ranked[j].Id;
            _logProbs[t * k + j] = (float)(ranked[j].LogProb ?? double.NegativeInfinity);
        }
        _targets[t] = (float)(own ?? double.NegativeInfinity);
    }

    public TeacherScores Scores => new(request.Id, k, _ids, _logProbs, _targets);
}
