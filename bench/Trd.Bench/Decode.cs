using System.Diagnostics;
using System.Globalization;
using System.Text;
using Trd.Runtime;
using Trd.Runtime.Checkpoints;
using Trd.Runtime.Generation;
using Trd.Runtime.Models;
using static TorchSharp.torch;

namespace Trd.Bench;

/// <summary>
/// Prefill and decode throughput of a Qwen3-shaped model of about 100M parameters (Qwen3's vocabulary, tied
/// embeddings): with the KV cache at batch 1 and 16, and with prefix recomputation, against the floor of reading
/// every weight once per decode step at the measured memory bandwidth.
/// </summary>
static class Decode
{
    static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    public static string Run(int newTokens, int recomputeTokens, int promptLength, double bandwidthGBs)
    {
        var config = Qwen3Config.Tiny(vocabSize: 151_936, hiddenSize: 512, numHiddenLayers: 8, numAttentionHeads: 8,
            numKeyValueHeads: 4, headDim: 64, intermediateSize: 1536, tieWordEmbeddings: true, maxPositionEmbeddings: 4096);
        using var model = new Qwen3ForCausalLM(config, CPU, ScalarType.Float32);
        model.InitialiseRandom(1);
        model.eval();
        var parameters = model.parameters().Sum(p => p.numel());
        var bytes = parameters * 4.0;
        var floor = bytes / (bandwidthGBs * 1e9); // seconds per decode step at batch 1
        var rng = new Random(0);
        int[] Prompt() => Enumerable.Range(0, promptLength).Select(_ => rng.Next(1, 151_000)).ToArray();

        // Warm-up: the first call pays for JIT compilation and libtorch's lazy initialisation.
        Sampler.Generate(model, new[] { Prompt() }, new SamplingOptions { Temperature = 0, MaxNewTokens = 4 });
        var rows = new List<string>();
        foreach (var batch in new[] { 1, 16 })
        {
            var prompts = Enumerable.Range(0, batch).Select(_ => Prompt()).ToArray();
            // Prefill alone: one token of decode.
            var prefill = Time(() => Sampler.Generate(model, prompts, new SamplingOptions { Temperature = 0, MaxNewTokens = 1 }));
            var total = Time(() => Sampler.Generate(model, prompts, new SamplingOptions { Temperature = 0, MaxNewTokens = newTokens }));
            var decodeSeconds = total - prefill;
            var perStep = decodeSeconds / (newTokens - 1);
            rows.Add($"| KV cache | {batch} | {promptLength} | {newTokens} | {batch * promptLength / prefill:N0} | {batch * (newTokens - 1) / decodeSeconds:N1} | {perStep * 1000:N1} | {perStep / floor:N2} |");
        }
        {
            var prompt = Prompt();
            var seconds = Time(() => Sampler.GreedyWithoutCache(model, prompt, recomputeTokens));
            var perStep = seconds / recomputeTokens;
            rows.Add($"| recompute prefix | 1 | {promptLength} | {recomputeTokens} | – | {recomputeTokens / seconds:N1} | {perStep * 1000:N1} | {perStep / floor:N2} |");
        }

        var sb = new StringBuilder();
        sb.AppendLine("## Qwen3 decode (issue: runtime)");
        sb.AppendLine();
        sb.AppendLine($"A random Qwen3 of {parameters / 1e6:N1}M parameters (vocabulary 151,936 tied, hidden 512, 8 layers, 8 query / 4 key-value heads of 64, MLP 1,536), float32 on the CPU, greedy decoding through `Sampler.Generate` (preallocated KV cache, one dispose scope per step) and `Sampler.GreedyWithoutCache` (the whole prefix recomputed every step).");
        sb.AppendLine();
        sb.AppendLine($"- Machine: {Machine.CpuModel()}, {Environment.ProcessorCount} cores, {Machine.MemInfoBytes("MemTotal") / Machine.GiB:F1} GiB RAM; {Devices.Describe(Devices.Default)}");
        sb.AppendLine($"- Date: {DateTime.Now:yyyy-MM-dd HH:mm}. Command: `dotnet run -c Release --project bench/Trd.Bench -- decode`");
        sb.AppendLine($"- Floor: reading every weight once per decode step, {bytes / 1e6:N0} MB at {bandwidthGBs:N1} GB/s (measured copy bandwidth) = {floor * 1000:N1} ms per step.");
        sb.AppendLine();
        sb.AppendLine("| decoding | batch | prompt | new tokens | prefill tokens/s | decode tokens/s | ms per step | × floor |");
        sb.AppendLine("|---|---:|---:|---:|---:|---:|---:|---:|");
        foreach (var r in rows) sb.AppendLine(r);
        sb.AppendLine();
        sb.AppendLine("After one warm-up generation, prefill is timed as a one-token generation and decode is the rest. Each figure is one run on a shared 2-core machine (10–20 % run-to-run noise); *× floor* compares a decode step with the time to read the weights once.");
        return sb.ToString();
    }

    /// <summary>GB/s of copy_ between two 1 GiB float32 tensors, bytes read + written, best of 3.</summary>
    public static double CopyBandwidth()
    {
        using var a = rand(1L << 28);
        using var b = empty(1L << 28);
        var best = double.MaxValue;
        for (var i = 0; i < 3; i++) best = Math.Min(best, Time(() => b.copy_(a)));
        return 2.0 * (1L << 30) / best / 1e9;
    }

    static double Time(Action action)
    {
        var clock = Stopwatch.StartNew();
        action();
        return clock.Elapsed.TotalSeconds;
    }
}
