using System.CommandLine;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Trd.Runtime;
using Trd.Runtime.Pipeline;

namespace Trd.Cli.Serve;

/// <summary>
/// <c>trd serve --model DIR</c>: any Trd model directory behind the subset of vLLM's OpenAI-compatible API the runtime's
/// client uses (issue 14, §4): <c>/health</c>, <c>/v1/models</c>, <c>/v1/completions</c> (text or token-id prompts,
/// n, seed, temperature, top_p, top_k, max_tokens, stop_token_ids, return_token_ids, prompt_logprobs). Kestrel on
/// loopback unless told otherwise; the address is printed at start (port 0 picks a free one).
/// </summary>
static class ServeCommand
{
    public static Command Create()
    {
        var model = new Option<DirectoryInfo>("--model", "-m") { Description = "A model directory (Hugging Face Qwen3: config.json, *.safetensors, tokenizer.json).", Required = true };
        var name = new Option<string?>("--name") { Description = "The model name clients send (default: the directory's name)." };
        var host = new Option<string>("--host") { Description = "The address to listen on (default 127.0.0.1: this machine only).", DefaultValueFactory = _ => "127.0.0.1" };
        var port = new Option<int>("--port") { Description = "The port (0: a free one, printed at start).", DefaultValueFactory = _ => 8000 };
        var device = new Option<string?>("--device") { Description = "Torch device (cpu, cuda, cuda:1); default: TRD_DEVICE or the best available." };
        var command = new Command("serve", "Serve a model directory with vLLM's /v1/completions API (token-id prompts and prompt log-probabilities included).")
            { model, name, host, port, device };
        command.SetAction(parse => Cli.Guard(() =>
        {
            var chosen = parse.GetValue(port);
            if (chosen is < 0 or > 65535) throw new ArgumentException($"--port {chosen}: expected 0 … 65535");
            var directory = parse.GetRequiredValue(model).FullName;
            var on = parse.GetValue(device) is { } d ? Devices.Parse(d) : Devices.Default;
            var loaded = ModelStore.Load(directory, on);
            using var _ = loaded.Model;
            loaded.Model.eval();
            var api = new CompletionsApi(loaded, parse.GetValue(name) ?? Path.GetFileName(directory.TrimEnd('/')));
            Run(api, parse.GetRequiredValue(host), parse.GetValue(port), loaded.Model.Config.MaxPositionEmbeddings);
        }));
        return command;
    }

    static void Run(CompletionsApi api, string host, int port, long maxModelLength)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls($"http://{host}:{port}");
        var app = builder.Build();
        app.MapGet("/health", () => Results.Ok());
        app.MapGet("/v1/models", () => Results.Json(new JsonObject
        {
            ["object"] = "list",
            ["data"] = new JsonArray(new JsonObject { ["id"] = api.Name, ["object"] = "model", ["owned_by"] = "trd", ["max_model_len"] = maxModelLength }),
        }));
        app.MapPost("/v1/completions", async (HttpContext context) =>
        {
            CompletionRequest? request;
            try { request = await JsonSerializer.DeserializeAsync<CompletionRequest>(context.Request.Body, CompletionsApi.Json, context.RequestAborted); }
            catch (JsonException e) { return Error(400, $"the request is not valid JSON for /v1/completions: {e.Message}"); }
            if (request is null) return Error(400, "the request body is empty");
            try { return Results.Json(await api.Complete(request, context.RequestAborted)); }
            catch (BadRequestException e) { return Error(400, e.Message); }
        });
        app.StartAsync().GetAwaiter().GetResult();
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        Console.WriteLine($"serving {api.Name} on {address} (/health, /v1/models, /v1/completions){(host is "127.0.0.1" or "localhost" ? "; loopback only" : "")}");
        app.WaitForShutdownAsync().GetAwaiter().GetResult();
    }

    /// <summary>vLLM's error shape.</summary>
    static IResult Error(int status, string message) => Results.Json(new JsonObject
    {
        ["object"] = "error", ["message"] = message, ["type"] = "BadRequestError", ["param"] = null, ["code"] = status,
    }, statusCode: status);
}
