using Trd.Runtime.Data;
using Trd.Runtime.Models;
using Trd.Runtime.Objectives;
using TorchSharp;
using static TorchSharp.torch;

namespace Trd.Runtime.Scoring;

/// <summary>
/// A teacher's top-K at every continuation position (T = 1), computed in-process exactly as a served engine's prompt
/// log-probabilities give them (issue 14, §2): what <see cref="TeacherScoreStore"/> holds and training from stored
/// scores reads. Used to score once with a teacher in memory, and as the reference a served teacher is checked against.
/// </summary>
public static class TeacherScoring
{
    /// <summary>
    /// The top-K ids, their log-probabilities and the continuation token's log-probability at each position of each
    /// (id, pair), scored in chunks of <paramref name="chunkSize"/> positions ([C, V] at a time), without gradients.
    /// </summary>
    public static IReadOnlyList<TeacherScores> TopK(Qwen3ForCausalLM teacher, IReadOnlyList<(string Id, ScoringPair Pair)> pairs, int k, int chunkSize = 512)
    {
        ArgumentNullException.ThrowIfNull(teacher);
        ArgumentNullException.ThrowIfNull(pairs);
        var v = teacher.Config.VocabSize;
        if (k < 1 || k > v) throw new ArgumentException($"K = {k} must lie in [1, V = {v}]", nameof(k));
        if (chunkSize < 1) throw new ArgumentException($"the chunk size must be ≥ 1, got {chunkSize}", nameof(chunkSize));
        using var noGrad = no_grad();
        using var scored = TeacherForcing.Score(teacher, pairs.Select(p => p.Pair).ToArray());
        var n = scored.Hidden.shape[0];
        var ids = new int[n * k];
        var logProbs = new float[n * k];
        var targets = new float[n];
        for (long start = 0; start < n; start += chunkSize)
        {
            using var scope = NewDisposeScope();
            var length = Math.Min(chunkSize, n - start);
            var logits = scored.Hidden.narrow(0, start, length).matmul(scored.OutputWeight.t()).to(ScalarType.Float32); // [C, V]
            var lp = TensorDivergence.LogSoftmax(logits);                                                                // [C, V]
            var (values, indexes) = lp.topk(k, dim: -1);                                                                  // [C, K] each, largest first
            var target = lp.gather(-1, scored.Targets.narrow(0, start, length).unsqueeze(-1)).squeeze(-1);               // [C]
            indexes.to(ScalarType.Int32).cpu().data<int>().CopyTo(ids, (int)(start * k));
            values.cpu().data<float>().CopyTo(logProbs, (int)(start * k));
            target.cpu().data<float>().CopyTo(targets, (int)start);
        }
        return pairs.Select((p, i) =>
        {
            var (offset, count) = (scored.Offsets[i], scored.Lengths[i]);
            return new TeacherScores(p.Id, k, ids[(offset * k)..((offset + count) * k)], logProbs[(offset * k)..((offset + count) * k)],
                targets[offset..(offset + count)]);
        }).ToArray();
    }
}
