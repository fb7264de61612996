using System.Diagnostics;
using System.Globalization;
using System.Text;
using Trd.Core;
using Trd.Runtime;
using Trd.Runtime.Data;
using Trd.Runtime.Generation;
using Trd.Runtime.Gym;
using Trd.Runtime.Pipeline;
using Trd.Runtime.Serving;
using static TorchSharp.torch;
using GymTask = Trd.Core.Gym;

namespace Trd.Bench;

/// <summary>
/// The served path against <c>trd serve</c> of the gym student (issue 14, §5): what one request costs beyond the
/// sampler call it makes (the same call timed in this process), requests per second at several client concurrencies
/// (with how many sampler calls the server grouped them into), and the teacher-score store's bytes per token.
/// </summary>
static class Serve
{
    static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    public static string Run(string repositoryRoot, int requests, int[] concurrencies)
    {
        var trd = Path.Combine(repositoryRoot, "src", "Trd.Cli", "bin", "Release", "net10.0", "linux-x64", "trd.dll");
        if (!File.Exists(trd)) throw new FileNotFoundException($"{trd} is missing: dotnet build src/Trd.Cli -c Release first");
        var directory = GymModels.Ensure(GymModels.Student, GymModels.DefaultCacheRoot());
        using var server = Process.Start(new ProcessStartInfo("dotnet", [trd, "serve", "--model", directory, "--port", "0"])
            { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false })!;
        try
        {
            var line = server.StandardOutput.ReadLine() ?? throw new InvalidOperationException("trd serve printed nothing");
            var url = System.Text.RegularExpressions.Regex.Match(line, @"http://[^ ]+").Value;
            var loaded = ModelStore.Load(directory, CPU);
            using var _ = loaded.Model;
            loaded.Model.eval();
            var tokenizer = loaded.Tokenizer;
            var builder = new PromptBuilder(tokenizer, enableThinking: false);
            var rng = new GymTask.Rng(5);
            var level = new GymLevel(4, 6);
            var prompts = Enumerable.Range(0, requests)
                .Select(_ => builder.Encode(Prompts.Initial(GymTask.Question(GymTask.DrawFrom(rng, level, GymSplit.Heldout))))).ToArray();
            SamplingOptions Options(int maxTokens, params long[] seeds) => new()
            {
                Temperature = 0.6, TopP = 0.95, TopK = 20, MaxNewTokens = maxTokens, PromptSeeds = seeds,
                StopTokenIds = tokenizer.StopIds, VocabularyLimit = tokenizer.VocabularySize,
            };

            // One request at a time, one token each: the served call against the same sampler call here.
            using var one = ServedModel.Connect(new ServerSpec { Urls = [url], MaxConcurrency = 1 }, Path.GetFileName(directory), tokenizer.VocabularySize);
            for (var i = 0; i < 10; i++) { one.Generate([prompts[i]], Options(1, i)); Sampler.Generate(loaded.Model, [prompts[i]], Options(1, i)); }
            var served = Seconds(() => { for (var i = 0; i < requests; i++) one.Generate([prompts[i]], Options(1, i)); }) / requests;
            var local = Seconds(() => { for (var i = 0; i < requests; i++) Sampler.Generate(loaded.Model, [prompts[i]], Options(1, i)); }) / requests;

            // Whole samples (up to 64 tokens) at several concurrencies: requests/s, tokens/s and the server's grouping.
            using var http = new HttpClient { BaseAddress = new Uri(url) };
            long Counter(string name) => long.Parse(http.GetStringAsync("/metrics").Result.Split('\n').First(l => l.StartsWith(name + " ", StringComparison.Ordinal)).Split(' ')[1], Inv);
            var rows = new List<string>();
            foreach (var c in concurrencies)
            {
                using var client = ServedModel.Connect(new ServerSpec { Urls = [url], MaxConcurrency = c }, Path.GetFileName(directory), tokenizer.VocabularySize);
                var (requestsBefore, batchesBefore) = (Counter("trd:requests_total"), Counter("trd:sampler_batches_total"));
                IReadOnlyList<Generated> samples = [];
                var seconds = Seconds(() => samples = client.Generate(prompts, Options(64, Enumerable.Range(0, requests).Select(i => (long)i).ToArray())));
                var tokens = samples.Sum(s => s.Tokens.Length);
                var (answered, batches) = (Counter("trd:requests_total") - requestsBefore, Counter("trd:sampler_batches_total") - batchesBefore);
                rows.Add($"| {c} | {requests} | {tokens:N0} | {seconds:N1} | {requests / seconds:N1} | {tokens / seconds:N0} | {batches} ({(double)answered / batches:N1} requests each) |");
            }
            var inProcess = Seconds(() => Sampler.Generate(loaded.Model, prompts, Options(64, Enumerable.Range(0, requests).Select(i => (long)i).ToArray())));

            // The teacher-score store: bytes on disk per scored token at K = 16 and 64.
            var store = new List<string>();
            foreach (var k in new[] { 16, 64 })
            {
                var dir = Path.Combine(Path.GetTempPath(), $"trd-bench-scores-{Guid.NewGuid():N}");
                try
                {
                    var s = TeacherScoreStore.Open(dir, k);
                    var random = new Random(k);
                    long positions = 0;
                    for (var i = 0; i < 100; i++)
                    {
                        var t = random.Next(100, 400);
                        positions += t;
                        s.Append(new TeacherScores($"p{i}", k, Enumerable.Range(0, t * k).Select(_ => random.Next(151_936)).ToArray(),
                            Enumerable.Range(0, t * k).Select(_ => -(float)random.NextDouble() * 10).ToArray(), Enumerable.Range(0, t).Select(_ => -(float)random.NextDouble()).ToArray()));
                    }
                    var files = Directory.GetFiles(dir);
                    var shards = files.Where(f => !f.EndsWith(TeacherScoreStore.IndexFile, StringComparison.Ordinal)).Sum(f => new FileInfo(f).Length);
                    var index = files.Where(f => f.EndsWith(TeacherScoreStore.IndexFile, StringComparison.Ordinal)).Sum(f => new FileInfo(f).Length);
                    store.Add($"| {k} | {positions:N0} | {(double)shards / positions:N1} | {(double)index / positions:N2} | {8 * k + 4} |");
                }
                finally { if (Directory.Exists(dir)) Directory.Delete(dir, true); }
            }

            var sb = new StringBuilder();
            sb.AppendLine("## Serving: the client against `trd serve` (issue 14)");
            sb.AppendLine();
            sb.AppendLine($"The gym student ({loaded.Model.parameters().Sum(p => p.numel()) / 1e6:N2}M parameters, float32, CPU) behind `trd serve` on loopback, driven by the runtime's vLLM client (`ServedModel.Connect`); {requests} gym prompts of {prompts.Min(p => p.Length)}–{prompts.Max(p => p.Length)} tokens, T 0.6, top-p 0.95, top-k 20, each prompt with its own seed. Server and client share the machine's cores.");
            sb.AppendLine();
            sb.AppendLine($"- Machine: {Machine.CpuModel()}, {Environment.ProcessorCount} cores, {Machine.MemInfoBytes("MemTotal") / Machine.GiB:F1} GiB RAM; {Devices.Describe(Devices.Default)}");
            sb.AppendLine($"- Date: {DateTime.Now:yyyy-MM-dd HH:mm}. Command: `dotnet run -c Release --project bench/Trd.Bench -- serve` (code: {Snapshot.CodeVersion(repositoryRoot)})");
            sb.AppendLine();
            sb.AppendLine($"**Per request.** One prompt, one token, one request at a time: {served * 1000:N1} ms served against {local * 1000:N1} ms for the same sampler call in-process, so a request costs {(served - local) * 1000:N1} ms beyond its sampling (HTTP on loopback, JSON both ways, the server's queue).");
            sb.AppendLine();
            sb.AppendLine($"**Throughput.** Up to 64 new tokens per prompt; the server groups waiting requests with the same settings into one sampler call (at most 64 prompts). The same {requests} prompts in one in-process sampler call take {inProcess:N1} s.");
            sb.AppendLine();
            sb.AppendLine("| client concurrency | requests | tokens | seconds | requests/s | tokens/s | sampler calls on the server |");
            sb.AppendLine("|---:|---:|---:|---:|---:|---:|---|");
            foreach (var r in rows) sb.AppendLine(r);
            sb.AppendLine();
            sb.AppendLine("**Stored teacher scores** (`TeacherScoreStore`, 100 trajectories of 100–400 positions, random values): per position K ids (int32), K log-probabilities (float32) and the trajectory token's log-probability (float32), plus a JSONL index line per trajectory.");
            sb.AppendLine();
            sb.AppendLine("| K | positions | shard bytes per token | index bytes per token | 8K + 4 |");
            sb.AppendLine("|---:|---:|---:|---:|---:|");
            foreach (var r in store) sb.AppendLine(r);
            return sb.ToString();
        }
        finally
        {
            if (!server.HasExited) server.Kill(true);
            server.WaitForExit();
        }
    }

    static double Seconds(Action action)
    {
        var watch = Stopwatch.StartNew();
        action();
        return watch.Elapsed.TotalSeconds;
    }
}
