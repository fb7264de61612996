using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Trd.Runtime.Generation;
using Trd.Runtime.Pipeline;

namespace Trd.Runtime.Serving;

/// <summary>A served model that failed a request for a reason that is not the input's: the URL and the last error.</summary>
public sealed class ServerException(string message) : Exception(message);

/// <summary>
/// Generation from a vLLM server (or <c>trd serve</c>) through <c>POST /v1/completions</c> (issue 14, §1): one call is
/// one request holding the batch's prompts as token ids, with n, the batch's seed and the sampling options, asking for
/// token ids back (<c>return_token_ids</c>). Against <c>trd serve</c> of the same directory this draws exactly the
/// in-process samples. Connection errors, timeouts, 429 and 5xx are retried with exponential backoff; a 4xx, a
/// response with the wrong number of choices or an id outside the vocabulary is an error naming the request.
/// </summary>
public sealed class VllmGenerator : ITrajectoryGenerator, IDisposable
{
    readonly HttpClient _http;
    readonly ServerSpec _server;
    readonly string _model;
    readonly int _vocabulary;
    readonly Action<string> _log;

    /// <summary>
    /// A client for <paramref name="server"/> serving <paramref name="model"/> over a vocabulary of
    /// <paramref name="vocabulary"/> ids; <paramref name="transport"/> replaces the HTTP handler (a proxy, a test's replay).
    /// </summary>
    public VllmGenerator(ServerSpec server, string model, int vocabulary, Action<string>? log = null, HttpMessageHandler? transport = null)
    {
        _server = server ?? throw new ArgumentNullException(nameof(server));
        _model = model;
        _vocabulary = vocabulary;
        _log = log ?? (_ => { });
        _http = transport is null ? new HttpClient() : new HttpClient(transport);
        _http.BaseAddress = new Uri(server.Url.TrimEnd('/') + "/");
        _http.Timeout = TimeSpan.FromSeconds(server.TimeoutS);
        if (server.ApiKeyEnv is { } variable)
            _http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer",
                Environment.GetEnvironmentVariable(variable) ?? throw new ConfigException($"server.api_key_env: ${variable} is not set"));
    }

    /// <inheritdoc/>
    public string Name => $"{_model} at {_server.Url}";

    /// <inheritdoc/>
    public IReadOnlyList<Generated> Generate(IReadOnlyList<int[]> prompts, SamplingOptions options)
    {
        var n = options.SamplesPerPrompt;
        var body = new JsonObject
        {
            ["model"] = _model,
            ["prompt"] = new JsonArray(prompts.Select(p => (JsonNode)new JsonArray(p.Select(id => (JsonNode)id).ToArray())).ToArray()),
            ["n"] = n, ["max_tokens"] = options.MaxNewTokens, ["temperature"] = options.Temperature, ["top_p"] = options.TopP,
            ["top_k"] = options.TopK > 0 ? options.TopK : -1, ["seed"] = options.Seed,
            ["stop_token_ids"] = new JsonArray(options.StopTokenIds.Select(id => (JsonNode)id).ToArray()),
            ["skip_special_tokens"] = false, ["return_token_ids"] = true,
        };
        var what = $"{_server.Url}/v1/completions ({prompts.Count} prompts × n = {n}, seed {options.Seed})";
        var response = Post("v1/completions", body.ToJsonString(), what);
        var choices = response["choices"] as JsonArray ?? throw new ServerException($"{what}: the response has no choices");
        if (choices.Count != prompts.Count * n)
            throw new ServerException($"{what}: {choices.Count} choices for {prompts.Count} prompts × n = {n}");
        var result = new Generated[choices.Count];
        for (var i = 0; i < choices.Count; i++)
        {
            var choice = choices[i] as JsonObject ?? throw new ServerException($"{what}: choice {i} is not an object");
            var index = choice["index"]?.GetValue<int>() ?? i;
            if (index < 0 || index >= result.Length || result[index] is not null) throw new ServerException($"{what}: choice {i} has index {index}");
            var ids = (choice["token_ids"] as JsonArray ?? throw new ServerException($"{what}: choice {index} has no token_ids (the server must support return_token_ids: vLLM ≥ 0.10, or trd serve)"))
                .Select(x => x!.GetValue<int>()).ToArray();
            var bad = Array.FindIndex(ids, id => id < 0 || id >= _vocabulary);
            if (bad >= 0) throw new ServerException($"{what}: choice {index} holds token id {ids[bad]}, outside the vocabulary [0, {_vocabulary})");
            if (ids.Length > options.MaxNewTokens) throw new ServerException($"{what}: choice {index} has {ids.Length} tokens, more than max_tokens = {options.MaxNewTokens}");
            result[index] = new Generated(index / n, ids, choice["finish_reason"]?.GetValue<string>() == "length");
        }
        return result;
    }

    /// <summary>
    /// The served model's top-K at every trajectory position, read from vLLM's <c>prompt_logprobs</c> over context ++
    /// trajectory (one request per pair, <c>max_tokens: 1</c>): what <see cref="Scoring.TeacherScoring.TopK"/> computes
    /// in-process. A position with fewer than K ranked entries, or without the trajectory's own token, is an error.
    /// </summary>
    public Data.TeacherScores ScoreTopK(string id, int[] context, int[] trajectory, int k)
    {
        var sequence = context.Concat(trajectory).ToArray();
        var body = new JsonObject
        {
            ["model"] = _model, ["prompt"] = new JsonArray(sequence.Select(x => (JsonNode)x).ToArray()), ["max_tokens"] = 1,
            ["temperature"] = 0.0, ["prompt_logprobs"] = k, ["skip_special_tokens"] = false,
        };
        var what = $"{_server.Url}/v1/completions (prompt_logprobs {k} of {id}: {trajectory.Length} positions)";
        var response = Post("v1/completions", body.ToJsonString(), what);
        var all = (response["choices"] as JsonArray)?.FirstOrDefault()?["prompt_logprobs"] as JsonArray
            ?? throw new ServerException($"{what}: the response has no prompt_logprobs");
        if (all.Count != sequence.Length) throw new ServerException($"{what}: {all.Count} prompt positions for a prompt of {sequence.Length} tokens");
        var ids = new int[trajectory.Length * k];
        var logProbs = new float[trajectory.Length * k];
        var targets = new float[trajectory.Length];
        for (var t = 0; t < trajectory.Length; t++)
        {
            var position = all[context.Length + t] as JsonObject ?? throw new ServerException($"{what}: position {t} has no log-probabilities");
            var ranked = position
                .Select(p => (Id: int.Parse(p.Key, System.Globalization.CultureInfo.InvariantCulture), Rank: p.Value?["rank"]?.GetValue<int?>(), LogProb: p.Value?["logprob"]?.GetValue<double?>()))
                .Where(x => x.Rank is >= 1 && x.Rank <= k).OrderBy(x => x.Rank).ToArray();
            if (ranked.Length != k) throw new ServerException($"{what}: position {t} has {ranked.Length} of the top-{k} (start the server with --max-logprobs ≥ {k})");
            for (var j = 0; j < k; j++)
            {
                if (ranked[j].Id < 0 || ranked[j].Id >= _vocabulary) throw new ServerException($"{what}: position {t} ranks token id {ranked[j].Id}, outside the vocabulary [0, {_vocabulary})");
                ids[t * k + j] = ranked[j].Id;
                logProbs[t * k + j] = (float)(ranked[j].LogProb ?? double.NegativeInfinity);
            }
            var own = position[trajectory[t].ToString(System.Globalization.CultureInfo.InvariantCulture)]
                ?? throw new ServerException($"{what}: position {t} lacks the trajectory's own token {trajectory[t]}");
            targets[t] = (float)(own["logprob"]?.GetValue<double?>() ?? double.NegativeInfinity);
        }
        return new Data.TeacherScores(id, k, ids, logProbs, targets);
    }

    JsonObject Post(string path, string json, string what)
    {
        string last = "";
        for (var attempt = 1; attempt <= _server.Attempts; attempt++)
        {
            try
            {
                using var content = new StringContent(json, Encoding.UTF8, "application/json");
                using var response = _http.PostAsync(path, content).GetAwaiter().GetResult();
                var text = response.Content.ReadAsStringAsync().GetAwaiter().GetResult();
                if (response.IsSuccessStatusCode)
                {
                    try { return JsonNode.Parse(text) as JsonObject ?? throw new ServerException($"{what}: the response is not a JSON object"); }
                    catch (JsonException e) { throw new ServerException($"{what}: the response is not JSON ({e.Message})"); }
                }
                var message = Message(text);
                if (response.StatusCode is not (HttpStatusCode.TooManyRequests or >= HttpStatusCode.InternalServerError))
                    throw new ServerException($"{what}: {(int)response.StatusCode} {message}");
                last = $"{(int)response.StatusCode} {message}";
            }
            catch (HttpRequestException e) { last = e.Message; }
            catch (TaskCanceledException) { last = $"no answer within {_server.TimeoutS} s"; }
            if (attempt < _server.Attempts)
            {
                var wait = TimeSpan.FromSeconds(0.5 * Math.Pow(2, attempt - 1));
                _log($"{what}: {last}; attempt {attempt + 1} of {_server.Attempts} in {wait.TotalSeconds:F1} s");
                Thread.Sleep(wait);
            }
        }
        throw new ServerException($"{what}: failed {_server.Attempts} times; the last error: {last}");
    }

    static string Message(string text)
    {
        // vLLM's two error shapes: {"object": "error", "message": …} and, in newer releases, {"error": {"message": …}}.
        try { var node = JsonNode.Parse(text); return (node?["message"] ?? node?["error"]?["message"])?.GetValue<string>() ?? text; }
        catch (Exception e) when (e is JsonException or InvalidOperationException) { return text.Length > 300 ? text[..300] + "…" : text; }
    }

    /// <inheritdoc/>
    public void Dispose() => _http.Dispose();
}
