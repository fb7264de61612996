using Trd.Core;
using Trd.Runtime.Checkpoints;
using Trd.Runtime.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Trd.Runtime.Generation;

/// <summary>
/// Batched sampling from a Qwen3 model with a preallocated KV cache: the prompts are prefilled once (right-padded,
/// each row at its own positions), their cache rows are repeated for the samples of each prompt, then one token
/// per row is decoded per step. One dispose scope per step; only the cache lives across steps.
/// </summary>
public static class Sampler
{
    /// <summary>Samples <see cref="SamplingOptions.SamplesPerPrompt"/> continuations of every prompt.</summary>
    public static IReadOnlyList<Sample> Generate(Qwen3ForCausalLM model, IReadOnlyList<int[]> prompts, SamplingOptions options, Device? device = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(prompts);
        options.Validate();
        if (prompts.Count == 0) return Array.Empty<Sample>();
        if (options.PromptSeeds is { } given && given.Count != prompts.Count)
            throw new ArgumentException($"PromptSeeds holds {given.Count} seeds for {prompts.Count} prompts", nameof(options));
        for (var i = 0; i < prompts.Count; i++)
        {
            if (prompts[i].Length == 0) throw new ArgumentException($"prompt {i} is empty", nameof(prompts));
            foreach (var id in prompts[i])
                if (id < 0 || id >= model.Config.VocabSize)
                    throw new ArgumentException($"prompt {i} holds token id {id}, outside the vocabulary [0, {model.Config.VocabSize})", nameof(prompts));
        }
        device ??= model.OutputWeight.device;
        var n = options.SamplesPerPrompt;
        var rows = prompts.Count * n;
        var lengths = prompts.SelectMany(p => Enumerable.Repeat((long)p.Length, n)).ToArray(); // per sample row
        var maxPositions = prompts.Max(p => p.Length) + options.MaxNewTokens;
        // Per-sequence streams (Trd.Core.SequenceSampling) when the prompts carry seeds; else one generator for the call.
        var sequenceSeeds = options.PromptSeeds is { } seeds
            ? Enumerable.Range(0, rows).Select(r => SequenceSampling.SampleSeed(seeds[r / n], r % n)).ToArray()
            : null;
        using var generator = new Generator((ulong)options.Seed, device);                                // unused with sequence seeds
        var stop = new HashSet<int>(options.StopTokenIds);

        var tokens = Enumerable.Range(0, rows).Select(_ => new List<int>()).ToArray();
        var logProbs = Enumerable.Range(0, rows).Select(_ => new List<float>()).ToArray();
        var done = new bool[rows];

        using var _ = no_grad();
        KvCache cache;
        Tensor next; // [rows, V] next-token logits
        var prompt = new KvCache(model.Config, prompts.Count, maxPositions, device, model.OutputWeight.dtype);
        using (var scope = NewDisposeScope())
        {
            var width = prompts.Max(p => p.Length);
            var ids = tensor(prompts.SelectMany(p => p.Concat(Enumerable.Repeat(0, width - p.Length))).Select(x => (long)x).ToArray(),
                dtype: ScalarType.Int64, device: device).view(prompts.Count, width);                        // [P, W], right-padded
            var positions = Scalars.Range(width, device).unsqueeze(0).expand(prompts.Count, -1);           // [P, W]
            prompt.BeginStep(positions);
            var hidden = model.Hidden(ids, positions, prompt);                                                // [P, W, H]
            var last = tensor(prompts.Select(p => (long)p.Length - 1).ToArray(), device: device);             // [P]
            var lastHidden = hidden.gather(1, last.view(-1, 1, 1).expand(-1, 1, hidden.shape[2])).squeeze(1); // [P, H]
            next = model.Logits(lastHidden).to(ScalarType.Float32).repeat_interleave(n, dim: 0).MoveToOuterDisposeScope(); // [rows, V]
            // One sample per prompt decodes in the prompt's own cache; several get their rows repeated.
            cache = n == 1 ? prompt : prompt.RepeatRows(n);
        }
        if (!ReferenceEquals(cache, prompt)) prompt.Dispose();

        using (cache)
        {
            for (var step = 0; step < options.MaxNewTokens; step++)
            {
                using var scope = NewDisposeScope();
                var uniforms = sequenceSeeds is null ? null
                    : tensor(sequenceSeeds.Select(seed => SequenceSampling.Uniform(seed, step)).ToArray(), dtype: ScalarType.Float64, device: device); // [rows]
                var (chosen, chosenLogProbs) = Choose(next, options, uniforms is null ? generator : null, uniforms);                    // [rows] each
                var chosenIds = chosen.cpu().data<long>().ToArray();
                var chosenLp = chosenLogProbs.cpu().data<float>().ToArray();
                for (var r = 0; r < rows; r++)
                {
                    if (done[r]) continue;
                    tokens[r].Add((int)chosenIds[r]);
                    logProbs[r].Add(chosenLp[r]);
                    if (stop.Contains((int)chosenIds[r])) done[r] = true;
                }
                if (done.All(d => d) || step == options.MaxNewTokens - 1) { next.Dispose(); break; }

                var positions = tensor(Enumerable.Range(0, rows).Select(r => lengths[r] + tokens[r].Count - 1).ToArray(), device: device).view(rows, 1); // [rows, 1]
                cache.BeginStep(positions);
                var hidden = model.Hidden(chosen.view(rows, 1), positions, cache);                            // [rows, 1, H]
                next.Dispose();
                next = model.Logits(hidden.squeeze(1)).to(ScalarType.Float32).MoveToOuterDisposeScope();        // [rows, V]
            }
        }

        return Enumerable.Range(0, rows)
            .Select(r => new Sample(r / n, tokens[r].ToArray(), logProbs[r].ToArray(), Truncated: !done[r]))
            .ToArray();
    }

    /// <summary>
    /// The next token of every row from logits [rows, V] (float32): greedy at T = 0, else softmax(z/T) restricted
    /// to the top-k and then the top-p nucleus, sampled with the generator, or, given <paramref name="uniforms"/> [rows]
    /// (float64, in (0, 1)), by inverting each row's cumulative distribution at its uniform: the tensor path of
    /// <see cref="SequenceSampling.Draw"/>, which tests hold it to. Returns the ids [rows] and their log-probabilities
    /// at T = 1 [rows].
    /// </summary>
    public static (Tensor ids, Tensor logProbs) Choose(Tensor logits, SamplingOptions options, Generator? generator, Tensor? uniforms = null)
    {
        if (options.VocabularyLimit > 0 && options.VocabularyLimit < logits.shape[1])
            logits = logits.index_fill(-1, Scalars.Range(options.VocabularyLimit, logits.shape[1], logits.device), Scalars.NegativeInfinity); // [rows, V]
        var logProbs = logits.log_softmax(-1);                                                            // [rows, V]
        Tensor ids;
        if (options.Temperature == 0)
            ids = logits.argmax(-1);                                                                      // [rows]
        else
        {
            using var temperature = options.Temperature.ToScalar();
            var z = logits.div(temperature);                                                              // [rows, V]
            if (options.TopK > 0 && options.TopK < z.shape[1])
            {
                var kth = z.topk(options.TopK, dim: -1).values.narrow(-1, options.TopK - 1, 1);          // [rows, 1]
                z = z.masked_fill(z < kth, Scalars.NegativeInfinity);
            }
            if (options.TopP < 1)
            {
                var (sorted, order) = z.sort(-1, descending: true);                                       // [rows, V]
                var probabilities = sorted.softmax(-1);                                                   // [rows, V]
                // Drop a token when the mass before it already reaches p (the first token is always kept).
                using var topP = options.TopP.ToScalar();
                var drop = (probabilities.cumsum(-1) - probabilities).ge(topP);                          // [rows, V]
                z = z.scatter(-1, order, sorted.masked_fill(drop, Scalars.NegativeInfinity));
            }
            var p = z.softmax(-1);                                                                        // [rows, V]
            if (uniforms is null) ids = p.multinomial(1, generator: generator).squeeze(-1);              // [rows]
            else
            {
                if (uniforms.shape.Length != 1 || uniforms.shape[0] != logits.shape[0])
                    throw new ArgumentException($"uniforms: expected [{logits.shape[0]}], got [{string.Join(", ", uniforms.shape)}]", nameof(uniforms));
                var cumulative = p.to_type(ScalarType.Float64).cumsum(-1);                                // [rows, V]
                var target = uniforms.unsqueeze(-1) * cumulative.narrow(-1, cumulative.shape[1] - 1, 1); // [rows, 1]
                ids = cumulative.lt(target).sum(-1);                                                      // [rows]: the first index reaching it
            }
        }
        return (ids, logProbs.gather(-1, ids.unsqueeze(-1)).squeeze(-1));
    }

    /// <summary>
    /// Greedy decoding by recomputing the whole prefix at every step, without a cache: the slow reference that
    /// the cached path must match token for token (and the benchmark's baseline).
    /// </summary>
    public static int[] GreedyWithoutCache(Qwen3ForCausalLM model, int[] prompt, int maxNewTokens, IReadOnlyCollection<int>? stopTokenIds = null, Device? device = null)
    {
        device ??= model.OutputWeight.device;
        var sequence = new List<int>(prompt);
        using var _ = no_grad();
        for (var step = 0; step < maxNewTokens; step++)
        {
            using var scope = NewDisposeScope();
            var ids = tensor(sequence.Select(x => (long)x).ToArray(), device: device).view(1, -1);   // [1, T]
            var logits = model.Forward(ids);                                                         // [1, T, V]
            var token = (int)logits[0, -1].argmax().item<long>();
            sequence.Add(token);
            if (stopTokenIds?.Contains(token) == true) break;
        }
        return sequence.Skip(prompt.Length).ToArray();
    }
}
