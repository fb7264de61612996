using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Trd.Runtime.Pipeline;

namespace Trd.Runtime.Serving;

/// <summary>
/// One JSON post: its path, body, a description for messages ("4 prompts × n = 2, seed …"), and how to read the answer
/// (throwing a <see cref="ServerException"/> naming the request when it has the wrong shape).
/// </summary>
public sealed record ServerRequest<T>(string Path, string Json, string What, Func<JsonNode, T> Read);

/// <summary>A served model that failed a request for a reason that is not the input's: the URL and the last error.</summary>
public sealed class ServerException(string message) : Exception(message);

/// <summary>
/// The transport to the replicas of one served model (issue 14, §3): JSON posts spread over the URLs in turn, at most
/// <see cref="ServerSpec.MaxConcurrency"/> in flight, each retried on connection errors, timeouts, 429 and 5xx with
/// exponential backoff (0.5 s, 1 s, 2 s, …; a retry goes to the next URL), then failed naming the server and the last
/// error. A 4xx is the request's fault and is not retried. Engine protocols (<see cref="VllmClient"/>,
/// <see cref="SglangClient"/>) are built on it.
/// </summary>
public sealed class ServerPool : IDisposable
{
    readonly HttpClient[] _clients;
    readonly SemaphoreSlim _inFlight;
    readonly Action<string> _log;

    /// <summary>
    /// A pool for <paramref name="server"/>; <paramref name="transport"/> replaces the HTTP handler (a proxy, a
    /// test's replay) and is shared by every URL.
    /// </summary>
    public ServerPool(ServerSpec server, Action<string>? log = null, HttpMessageHandler? transport = null)
    {
        Server = server ?? throw new ArgumentNullException(nameof(server));
        if (server.Urls.Count == 0) throw new ConfigException("server.url: no URL given");
        _log = log ?? (_ => { });
        var token = server.ApiKeyEnv is { } variable
            ? Environment.GetEnvironmentVariable(variable) ?? throw new ConfigException($"server.api_key_env: ${variable} is not set")
            : null;
        _clients = server.Urls.Select(url =>
        {
            var client = transport is null ? new HttpClient() : new HttpClient(transport, disposeHandler: false);
            client.BaseAddress = new Uri(url.TrimEnd('/') + "/");
            client.Timeout = TimeSpan.FromSeconds(server.TimeoutS);
            if (token is not null) client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
            return client;
        }).ToArray();
        _inFlight = new SemaphoreSlim(server.MaxConcurrency, server.MaxConcurrency);
    }

    /// <summary>The server's settings.</summary>
    public ServerSpec Server { get; }

    /// <summary>The URLs, for messages.</summary>
    public string Describe => Server.Urls.Count == 1 ? Server.Urls[0] : $"{Server.Urls[0]} (+{Server.Urls.Count - 1} replicas)";

    /// <summary>
    /// Sends the requests, at most <see cref="ServerSpec.MaxConcurrency"/> at once, and returns what each one's
    /// <see cref="ServerRequest{T}.Read"/> makes of its answer, in order; request i goes first to URL i mod the URL count.
    /// When one fails the others still finish (none is left half-read), then the first failure is thrown.
    /// </summary>
    public T[] Send<T>(IReadOnlyList<ServerRequest<T>> requests)
    {
        var tasks = requests.Select(async (request, i) =>
        {
            await _inFlight.WaitAsync().ConfigureAwait(false);
            try { return request.Read(await PostAsync(i, request.Path, request.Json, request.What).ConfigureAwait(false)); }
            finally { _inFlight.Release(); }
        }).ToArray();
        try { Task.WaitAll(tasks); }
        catch (AggregateException)
        {
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(tasks.First(t => t.IsFaulted).Exception!.InnerExceptions[0]).Throw();
        }
        return tasks.Select(t => t.Result).ToArray();
    }

    /// <summary>
    /// Posts to every URL in turn (an adapter every replica must load): retried as <see cref="Send"/> retries, and an
    /// error answer that <paramref name="accept"/> takes (status, text) counts as done.
    /// </summary>
    public void PostEach(string path, string json, string what, Func<HttpStatusCode, string, bool> accept)
    {
        for (var i = 0; i < _clients.Length; i++)
            PostAsync(i, path, json, what, accept, oneUrl: true).GetAwaiter().GetResult();
    }

    async Task<JsonNode> PostAsync(int slot, string path, string json, string what, Func<HttpStatusCode, string, bool>? accept = null, bool oneUrl = false)
    {
        var last = "";
        for (var attempt = 1; attempt <= Server.Attempts; attempt++)
        {
            var client = _clients[(slot + (oneUrl ? 0 : attempt - 1)) % _clients.Length];
            var where = $"{client.BaseAddress!.ToString().TrimEnd('/')}/{path} ({what})";
            try
            {
                using var content = new StringContent(json, Encoding.UTF8, "application/json");
                using var response = await client.PostAsync(path, content).ConfigureAwait(false);
                var text = await response.Content.ReadAsStringAsync().ConfigureAwait(false);
                if (!response.IsSuccessStatusCode && accept?.Invoke(response.StatusCode, text) == true) return JsonValue.Create(text);
                if (response.IsSuccessStatusCode && accept is not null) return JsonValue.Create(text);   // a plain-text answer
                if (response.IsSuccessStatusCode)
                {
                    try { return JsonNode.Parse(text) ?? throw new ServerException($"{where}: the response is empty JSON"); }
                    catch (JsonException e) { throw new ServerException($"{where}: the response is not JSON ({Trd.Runtime.Data.JsonErrors.Describe(e)})"); }
                }
                var message = Message(text);
                if (response.StatusCode is not (HttpStatusCode.TooManyRequests or >= HttpStatusCode.InternalServerError))
                    throw new ServerException($"{where}: {(int)response.StatusCode} {message}");
                last = $"{where}: {(int)response.StatusCode} {message}";
            }
            catch (HttpRequestException e) { last = $"{where}: {e.Message}"; }
            catch (TaskCanceledException) { last = $"{where}: no answer within {Server.TimeoutS} s"; }
            if (attempt < Server.Attempts)
            {
                var wait = TimeSpan.FromSeconds(0.5 * Math.Pow(2, attempt - 1));
                _log($"{last}; attempt {attempt + 1} of {Server.Attempts} in {wait.TotalSeconds:F1} s");
                await Task.Delay(wait).ConfigureAwait(false);
            }
        }
        throw new ServerException($"{Describe}/{path} ({what}): failed {Server.Attempts} times; the last error: {last}");
    }

    /// <summary>The message of an error answer: vLLM's {"message"} or {"error": {"message"}}, SGLang's {"error": {"message"}} or the text.</summary>
    static string Message(string text)
    {
        try
        {
            var node = JsonNode.Parse(text);
            return (node?["message"] ?? node?["error"]?["message"] ?? node?["detail"])?.ToString() ?? text;
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException) { return text.Length > 300 ? text[..300] + "…" : text; }
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        foreach (var client in _clients) client.Dispose();
        _inFlight.Dispose();
    }
}
