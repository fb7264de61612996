using Trd.Runtime.Checkpoints;
using Trd.Runtime.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Trd.Runtime.Scoring;

/// <summary>A context and the continuation to score after it, as token ids.</summary>
/// <param name="Context">The conditioning tokens (prompt, and for a teacher its privileged context); at least one.</param>
/// <param name="Continuation">The tokens whose next-token distributions are wanted (the trajectory y).</param>
public sealed record ScoringPair(int[] Context, int[] Continuation);

/// <summary>
/// The continuation positions of a batch of pairs, flattened to N = Σ |continuation| rows in pair order:
/// hidden states [N, H] with the output projection [V, H] (the fused objective's inputs, no [N, V]), the
/// targets [N], and each pair's [Offset, Offset + Length) range.
/// </summary>
public sealed class ScoredPositions : IDisposable
{
    /// <summary>Hidden states before the output layer, [N, H].</summary>
    public required Tensor Hidden { get; init; }

    /// <summary>The model's output projection [V, H] (not owned: it is the model's parameter).</summary>
    public required Tensor OutputWeight { get; init; }

    /// <summary>The continuation tokens, [N] int64.</summary>
    public required Tensor Targets { get; init; }

    /// <summary>Each pair's first row in the flattened positions.</summary>
    public required int[] Offsets { get; init; }

    /// <summary>Each pair's number of continuation tokens.</summary>
    public required int[] Lengths { get; init; }

    /// <summary>Logits [N, V] (materialised: use for small vocabularies or diagnostics).</summary>
    public Tensor Logits() => Hidden.matmul(OutputWeight.t());

    /// <summary>log π(y_t | context, y_&lt;t) at temperature 1 for every continuation token, [N].</summary>
    public Tensor TokenLogProbs(int chunkSize = 512)
    {
        var n = Hidden.shape[0];
        var result = empty(n, dtype: ScalarType.Float32, device: Hidden.device);
        for (long start = 0; start < n; start += chunkSize)
        {
            using var scope = NewDisposeScope();
            var length = Math.Min(chunkSize, n - start);
            var logits = Hidden.narrow(0, start, length).matmul(OutputWeight.t()).to(ScalarType.Float32); // [C, V]
            var index = Targets.narrow(0, start, length).unsqueeze(-1);                                     // [C, 1]
            result.narrow(0, start, length).copy_(logits.log_softmax(-1).gather(-1, index).squeeze(-1));
        }
        return result;
    }

    /// <inheritdoc />
    public void Dispose()
    {
        Hidden.Dispose();
        Targets.Dispose();
    }
}

/// <summary>Teacher-forced scoring: one forward pass over context ++ continuation per pair, batched and right-padded.</summary>
public static class TeacherForcing
{
    /// <summary>
    /// The hidden states that predict each continuation token: for pair (c, y), token y_j is predicted at index
    /// |c| + j − 1 of c ++ y. Gradients flow to the model when grad mode is on.
    /// </summary>
    public static ScoredPositions Score(Qwen3ForCausalLM model, IReadOnlyList<ScoringPair> pairs, Device? device = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(pairs);
        if (pairs.Count == 0) throw new ArgumentException("no pairs to score", nameof(pairs));
        for (var i = 0; i < pairs.Count; i++)
        {
            if (pairs[i].Context.Length == 0) throw new ArgumentException($"pair {i} has an empty context: the first continuation token needs one token before it", nameof(pairs));
            if (pairs[i].Continuation.Length == 0) throw new ArgumentException($"pair {i} has an empty continuation", nameof(pairs));
            foreach (var id in pairs[i].Context.Concat(pairs[i].Continuation))
                if (id < 0 || id >= model.Config.VocabSize)
                    throw new ArgumentException($"pair {i} holds token id {id}, outside the vocabulary [0, {model.Config.VocabSize})", nameof(pairs));
        }
        device ??= model.OutputWeight.device;
        var width = pairs.Max(p => p.Context.Length + p.Continuation.Length);
        var ids = pairs.SelectMany(p => p.Context.Concat(p.Continuation).Concat(Enumerable.Repeat(0, width - p.Context.Length - p.Continuation.Length)))
            .Select(x => (long)x).ToArray();
        using var scope = NewDisposeScope();
        var hidden = model.Hidden(tensor(ids, device: device).view(pairs.Count, width));   // [P, W, H]
        // Row index in [P·W] of each predicting position, in pair order.
        var rows = pairs.SelectMany((p, i) => Enumerable.Range(p.Context.Length - 1, p.Continuation.Length).Select(j => (long)i * width + j)).ToArray();
        var selected = hidden.reshape(-1, hidden.shape[2]).index_select(0, tensor(rows, device: device)); // [N, H]
        var targets = tensor(pairs.SelectMany(p => p.Continuation).Select(x => (long)x).ToArray(), device: device);
        var lengths = pairs.Select(p => p.Continuation.Length).ToArray();
        var offsets = new int[pairs.Count];
        for (var i = 1; i < offsets.Length; i++) offsets[i] = offsets[i - 1] + lengths[i - 1];
        return new ScoredPositions
        {
            Hidden = selected.MoveToOuterDisposeScope(),
            OutputWeight = model.OutputWeight,
            Targets = targets.MoveToOuterDisposeScope(),
            Offsets = offsets,
            Lengths = lengths,
        };
    }

    /// <summary>
    /// Checks that a trajectory's tokens are the same under the student's and the teacher's contexts (they are
    /// tokenised separately from their contexts, so a merge across the boundary would change them). Throws naming
    /// the first differing index.
    /// </summary>
    public static void CheckSameContinuation(int[] student, int[] teacher, string what = "continuation")
    {
        var common = Math.Min(student.Length, teacher.Length);
        for (var i = 0; i < common; i++)
            if (student[i] != teacher[i])
                throw new ArgumentException($"the {what} tokenises differently under the student's and the teacher's contexts: first difference at token {i} ({student[i]} against {teacher[i]})");
        if (student.Length != teacher.Length)
            throw new ArgumentException($"the {what} has {student.Length} tokens under the student's context but {teacher.Length} under the teacher's");
    }
}
