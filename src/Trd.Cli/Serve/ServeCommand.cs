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
/// <c>trd serve --model DIR</c>: any Trd model directory behind the subsets of vLLM's and SGLang's APIs the runtime's
/// clients use (issue 14, §4): <c>/health</c>, <c>/v1/models</c>, vLLM's <c>/v1/completions</c> and
/// <c>/v1/load_lora_adapter</c>, SGLang's <c>/generate</c> and <c>/load_lora_adapter</c>. Kestrel on loopback unless
/// told otherwise; the address is printed at start (port 0 picks a free one). Concurrent requests are grouped into
/// sampler batches by the <see cref="ModelHost"/>.
/// </summary>
static class ServeCommand
{
    public static Command Create()
    {
        var model = new Option<DirectoryInfo>("--model", "-m") { Description = "A model directory (Hugging Face Qwen3: config.json, *.safetensors, tokenizer.json).", Required = true };
        var name = new Option<string?>("--name") { Description = "The model name clients send (default: the directory's name)." };
        var adapters = new Option<string[]>("--adapter")
        {
            Description = "A PEFT LoRA adapter to serve beside the base, as NAME=DIR or DIR (named by the directory); repeatable. More load at run time through /v1/load_lora_adapter.",
            AllowMultipleArgumentsPerToken = false,
        };
        var host = new Option<string>("--host") { Description = "The address to listen on (default 127.0.0.1: this machine only).", DefaultValueFactory = _ => "127.0.0.1" };
        var port = new Option<int>("--port") { Description = "The port (0: a free one, printed at start).", DefaultValueFactory = _ => 8000 };
        var maxBatch = new Option<int>("--max-batch") { Description = "The most prompts one sampler call takes when it groups waiting requests.", DefaultValueFactory = _ => 64 };
        var device = new Option<string?>("--device") { Description = "Torch device (cpu, cuda, cuda:1); default: TRD_DEVICE or the best available." };
        var command = new Command("serve", "Serve a model directory with vLLM's /v1/completions and SGLang's /generate (token ids in and out, prompt log-probabilities, LoRA adapters).")
            { model, name, adapters, host, port, maxBatch, device };
        Cli.Examples(command, "trd serve -m ~/.cache/trd/gym/student-ef7afb9ea3c4 --port 8000",
            "trd serve -m ~/models/Qwen3-1.7B --adapter trained=runs/x/train/checkpoints/step-000024/adapter");
        command.SetAction(parse => Cli.Guard(() =>
        {
            var chosen = parse.GetValue(port);
            if (chosen is < 0 or > 65535) throw new ArgumentException($"--port {chosen}: expected 0 … 65535");
            var batch = parse.GetValue(maxBatch);
            if (batch < 1) throw new ArgumentException($"--max-batch {batch}: expected ≥ 1");
            var directory = parse.GetRequiredValue(model).FullName;
            var named = (parse.GetValue(adapters) ?? []).Select(a => a.Split('=', 2) is [var n, var d] ? (n, d) : (Path.GetFileName(Path.GetFullPath(a).TrimEnd('/')), a)).ToArray();
            foreach (var (_, d) in named)
                if (!File.Exists(Path.Combine(d, Trd.Runtime.Lora.PeftAdapter.ConfigFileName)))
                    throw new ArgumentException($"--adapter {d}: no {Trd.Runtime.Lora.PeftAdapter.ConfigFileName} there");
            var on = parse.GetValue(device) is { } d2 ? Devices.Parse(d2) : Devices.Default;
            using var models = new ModelHost(directory, parse.GetValue(name) ?? Path.GetFileName(directory.TrimEnd('/')), on, batch);
            foreach (var (n, d) in named)
            {
                try { models.LoadAdapter(n, d).GetAwaiter().GetResult(); }
                catch (BadRequestException e) { throw new ArgumentException($"--adapter {d}: {e.Message}"); }
            }
            Run(models, parse.GetRequiredValue(host), chosen);
        }));
        return command;
    }

    static void Run(ModelHost models, string host, int port)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls($"http://{host}:{port}");
        var app = builder.Build();
        var completions = new CompletionsApi(models);
        var generate = new GenerateApi(models);
        app.MapGet("/health", () => Results.Ok());
        app.MapGet("/metrics", () => Results.Text(models.Metrics(), "text/plain; version=0.0.4"));
        app.MapGet("/v1/models", () => Results.Json(new JsonObject
        {
            ["object"] = "list",
            ["data"] = new JsonArray(models.Names.Select(n => (JsonNode)new JsonObject
            {
                ["id"] = n, ["object"] = "model", ["owned_by"] = "trd", ["max_model_len"] = models.MaxModelLength,
                ["root"] = models.AdapterOf(n) ?? n, ["parent"] = models.AdapterOf(n) is null ? null : models.Name,
            }).ToArray()),
        }));
        app.MapPost("/v1/completions", (Delegate)((HttpContext context) => Answer<CompletionRequest>(context, "/v1/completions", async r => await completions.Complete(r))));
        app.MapPost("/generate", (Delegate)((HttpContext context) => Answer<GenerateRequest>(context, "/generate", generate.Generate)));
        foreach (var path in new[] { "/v1/load_lora_adapter", "/load_lora_adapter" })
            app.MapPost(path, (Delegate)((HttpContext context) => Answer<LoadAdapterRequest>(context, path, async r =>
            {
                if (string.IsNullOrWhiteSpace(r.LoraName) || string.IsNullOrWhiteSpace(r.LoraPath)) throw new BadRequestException("lora_name and lora_path: both required");
                await models.LoadAdapter(r.LoraName, r.LoraPath);
                return (JsonNode)JsonValue.Create($"Success: LoRA adapter '{r.LoraName}' added successfully.");
            })));
        app.StartAsync().GetAwaiter().GetResult();
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        Console.WriteLine($"serving {string.Join(", ", models.Names)} on {address} (/health, /metrics, /v1/models, /v1/completions, /generate, /v1/load_lora_adapter){(host is "127.0.0.1" or "localhost" ? "; loopback only" : "")}");
        app.WaitForShutdownAsync().GetAwaiter().GetResult();
    }

    /// <summary>Reads a request of type T, runs it, answers its JSON, or 400 in vLLM's error shape naming what is wrong.</summary>
    static async Task<IResult> Answer<T>(HttpContext context, string path, Func<T, Task<JsonNode>> run)
    {
        T? request;
        try { request = await JsonSerializer.DeserializeAsync<T>(context.Request.Body, CompletionsApi.Json, context.RequestAborted); }
        catch (JsonException e) { return Error(400, $"the request is not valid JSON for {path}: {Trd.Runtime.Data.JsonErrors.Describe(e)}"); }
        if (request is null) return Error(400, "the request body is empty");
        try
        {
            var answer = await run(request);
            return answer is JsonValue text && text.TryGetValue<string>(out var sentence) ? Results.Text(sentence) : Results.Json(answer);
        }
        catch (BadRequestException e) { return Error(400, e.Message); }
    }

    /// <summary>vLLM's error shape.</summary>
    static IResult Error(int status, string message) => Results.Json(new JsonObject
    {
        ["object"] = "error", ["message"] = message, ["type"] = "BadRequestError", ["param"] = null, ["code"] = status,
    }, statusCode: status);
}

/// <summary>vLLM's and SGLang's adapter-loading request.</summary>
sealed record LoadAdapterRequest
{
    public string? LoraName { get; init; }
    public string? LoraPath { get; init; }
}
