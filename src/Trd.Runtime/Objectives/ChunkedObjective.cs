using Trd.Core;
using TorchSharp;
using static TorchSharp.torch;

namespace Trd.Runtime.Objectives;

/// <summary>
/// Where the student's and the teacher's logits come from, one chunk of positions at a time: either given
/// ([N, V]) or projected from hidden states [N, H] with the output-projection weight [V, H] (fused: [N, V] is
/// never built).
/// </summary>
internal sealed class LogitSource
{
    public required Tensor Input { get; init; }   // [N, V] logits or [N, H] hidden states
    public Tensor? Weight { get; init; }          // [V, H] when fused
    public required string Name { get; init; }

    public long Positions => Input.shape[0];
    public long Vocabulary => Weight is null ? Input.shape[1] : Weight.shape[0];

    /// <summary>Chunk [start, start + length) as [C, V] logits in the compute dtype, from the given leaves.</summary>
    public Tensor Chunk(Tensor inputRows, Tensor? weight, ScalarType compute) =>
        (weight is null ? inputRows : inputRows.matmul(weight.t())).to(compute); // [C, H]·[H, V] → [C, V]
}

/// <summary>
/// Runs a recipe over N positions chunk by chunk. Each chunk's graph lives only while its own gradient is
/// taken; gradients with respect to the inputs are written into preallocated buffers, so memory stays
/// bounded in backward as well as forward (autograd over full logits keeps several [N, V] tensors alive).
/// </summary>
internal sealed class ChunkedRun
{
    public required Recipe Recipe { get; init; }
    public required ObjectiveOptions Options { get; init; }
    public required LogitSource Student { get; init; }
    public required LogitSource Teacher { get; init; }
    public required Tensor Mask { get; init; }        // [N]
    public Tensor? Targets { get; init; }             // [N] int64
    public required double Tokens { get; init; }
    public required bool ComputeGradients { get; init; }

    // Filled by Run.
    public Tensor? GradInput;   // like Student.Input
    public Tensor? GradWeight;  // like Student.Weight, when it requires grad
    public Tensor? Loss;        // 0-dim float32 (float64 when computing in float64)
    public Tensor? PerPosition, StudentTokenLogProbs, TeacherTokenLogProbs, EpistemicMass, TeacherMassOutsideTopK; // [N] float32
    public double PreSum, PostSum, ClippedCount;

    public void Run()
    {
        var n = Student.Positions;
        var device = Student.Input.device;
        var compute = Options.ComputeType;
        var normaliser = Options.Normaliser > 0 ? Options.Normaliser : Tokens;
        using var normaliserScalar = normaliser.ToScalar();
        var mask = Mask.to(compute);                                                  // [N]
        var needWeightGrad = ComputeGradients && Student.Weight is { requires_grad: true };
        var needInputGrad = ComputeGradients && Student.Input.requires_grad;

        PerPosition = empty(n, dtype: ScalarType.Float32, device: device);
        if (Options.TokenLogProbs)
        {
            StudentTokenLogProbs = empty(n, dtype: ScalarType.Float32, device: device);
            TeacherTokenLogProbs = empty(n, dtype: ScalarType.Float32, device: device);
        }
        Tensor? epistemicIds = null;
        if (Options.EpistemicTokenIds is { } ids)
        {
            EpistemicMass = empty(n, dtype: ScalarType.Float32, device: device);
            epistemicIds = tensor(ids.Distinct().ToArray(), dtype: ScalarType.Int64, device: device);
        }
        if (Options.TeacherTopKMassK is { } topK)
        {
            if (topK < 1) throw new ArgumentOutOfRangeException(nameof(Options), topK, "TeacherTopKMassK must be ≥ 1");
            TeacherMassOutsideTopK = empty(n, dtype: ScalarType.Float32, device: device);
        }
        if (needInputGrad) GradInput = zeros_like(Student.Input, requires_grad: false);
        if (needWeightGrad) GradWeight = zeros(Student.Weight!.shape, dtype: compute, device: device); // accumulated in the compute dtype
        var sums = zeros(3, dtype: ScalarType.Float64, device: device);               // [pre, post, clipped]
        var loss = zeros(Array.Empty<long>(), dtype: ScalarType.Float64, device: device);

        var teacherWeight = Teacher.Weight?.detach();
        var closedForm = Options.ClosedFormGradient && TensorDivergence.HasClosedFormGradient(Recipe) && Options.Shaping is null;
        for (long start = 0; start < n; start += Options.ChunkSize)
        {
            using var scope = NewDisposeScope();
            var length = Math.Min(Options.ChunkSize, n - start);
            var maskChunk = mask.narrow(0, start, length);                            // [C]
            var targetChunk = Targets?.narrow(0, start, length);                      // [C]

            Tensor zt;
            using (no_grad())
                zt = Teacher.Chunk(Teacher.Input.narrow(0, start, length).detach(), teacherWeight, compute); // [C, V]
            ObjectiveInputs.CheckLogitsChunk(zt, "teacher logits", start);

            var rows = Student.Input.narrow(0, start, length);                        // [C, V] or [C, H]
            TensorDivergence.Block block;
            Tensor zs;
            if (closedForm)
            {
                using (no_grad())
                {
                    zs = Student.Chunk(rows.detach(), Student.Weight?.detach(), compute); // [C, V]
                    ObjectiveInputs.CheckLogitsChunk(zs, "student logits", start);
                    var (forward, gz) = TensorDivergence.ForwardWithGradient(Recipe, zs, zt, maskChunk.div(normaliserScalar)); // gz: [C, V]
                    block = forward;
                    loss.add_((block.Contribution * maskChunk).sum().to(ScalarType.Float64).div(normaliserScalar), Scalars.One);
                    if (needInputGrad)
                        GradInput!.narrow(0, start, length).copy_(
                            Student.Weight is null ? gz : gz.to(Student.Weight.dtype).matmul(Student.Weight)); // [C, V]·[V, H] → [C, H]
                    if (needWeightGrad)
                        GradWeight!.add_(gz.t().matmul(rows.to(gz.dtype)), Scalars.One); // [V, C]·[C, H] → [V, H]
                }
            }
            else
            {
                var inputLeaf = rows.detach().requires_grad_(needInputGrad);
                var weightLeaf = Student.Weight?.detach().requires_grad_(needWeightGrad);
                using (enable_grad(needInputGrad || needWeightGrad))
                {
                    zs = Student.Chunk(inputLeaf, weightLeaf, compute);              // [C, V]
                    using (no_grad())
                        ObjectiveInputs.CheckLogitsChunk(zs, "student logits", start);
                    block = TensorDivergence.Evaluate(Recipe, zs, zt, targetChunk);
                    var term = Options.Shaping is { } shaping                                 // [C]: w_t ℓ_t, or the contribution
                        ? shaping.Term(Recipe, block.Contribution, zs, zt, targetChunk, start, length)
                        : block.Contribution;
                    var chunkLoss = (term * maskChunk).sum().div(normaliserScalar);           // []
                    if (needInputGrad || needWeightGrad)
                    {
                        var leaves = new List<Tensor>();
                        if (needInputGrad) leaves.Add(inputLeaf);
                        if (needWeightGrad) leaves.Add(weightLeaf!);
                        var grads = autograd.grad(new[] { chunkLoss }, leaves);
                        var next = 0;
                        if (needInputGrad) GradInput!.narrow(0, start, length).copy_(grads[next++]);
                        if (needWeightGrad) GradWeight!.add_(grads[next].to(compute), Scalars.One);
                    }
                    using (no_grad())
                        loss.add_(chunkLoss.detach().to(ScalarType.Float64), Scalars.One);
                }
            }

            using (no_grad())
            {
                var d = block.Divergence.detach();
                PerPosition.narrow(0, start, length).copy_(d);
                var m64 = maskChunk.to(ScalarType.Float64);
                sums[0].add_((d.to(ScalarType.Float64) * m64).sum(), Scalars.One);
                sums[1].add_((block.Contribution.detach().to(ScalarType.Float64) * m64).sum(), Scalars.One);
                sums[2].add_((block.Clipped.to(ScalarType.Float64) * m64).sum(), Scalars.One);
                if (targetChunk is not null && Options.TokenLogProbs)
                {
                    var index = targetChunk.unsqueeze(-1);                            // [C, 1]
                    StudentTokenLogProbs!.narrow(0, start, length).copy_(TensorDivergence.LogSoftmax(zs.detach()).gather(-1, index).squeeze(-1));
                    TeacherTokenLogProbs!.narrow(0, start, length).copy_(TensorDivergence.LogSoftmax(zt).gather(-1, index).squeeze(-1));
                }
                if (epistemicIds is not null)
                    EpistemicMass!.narrow(0, start, length).copy_(zt.softmax(-1).index_select(-1, epistemicIds).sum(-1));
                if (Options.TeacherTopKMassK is { } k)
                {
                    var kept = zt.softmax(-1).topk((int)Math.Min(k, zt.shape[^1]), dim: -1).values.sum(-1);  // [C]
                    TeacherMassOutsideTopK!.narrow(0, start, length).copy_(kept.neg().add_(Scalars.One, Scalars.One));
                }
            }
        }

        var totals = sums.cpu().data<double>().ToArray();
        PreSum = totals[0];
        PostSum = totals[1];
        ClippedCount = totals[2];
        Loss = loss.to(compute == ScalarType.Float64 ? ScalarType.Float64 : ScalarType.Float32);
        if (GradWeight is not null && GradWeight.dtype != Student.Weight!.dtype)
        {
            var accumulated = GradWeight;
            GradWeight = accumulated.to(Student.Weight.dtype);
            accumulated.Dispose();
        }
    }
}

/// <summary>
/// The autograd node of a chunked run: forward runs the chunks (taking the gradients as it goes), backward
/// scales the stored gradients by the upstream gradient. Inputs: the student's [N, V] logits or [N, H] hidden
/// states and [V, H] weight, then the <see cref="ChunkedRun"/>.
/// </summary>
internal sealed class ChunkedObjectiveFunction : autograd.MultiTensorFunction<ChunkedObjectiveFunction>
{
    public override string Name => nameof(ChunkedObjectiveFunction);

    public override List<Tensor> forward(autograd.AutogradContext ctx, params object[] vars)
    {
        var run = (ChunkedRun)vars[^1];
        run.Run();
        var saved = new List<Tensor>();
        if (run.GradInput is not null) saved.Add(run.GradInput);
        if (run.GradWeight is not null) saved.Add(run.GradWeight);
        ctx.save_for_backward(saved);
        ctx.save_data("hasInputGrad", run.GradInput is not null);
        ctx.save_data("hasWeightGrad", run.GradWeight is not null);
        ctx.save_data("fused", run.Student.Weight is not null);
        return new List<Tensor> { run.Loss! };
    }

    public override List<Tensor> backward(autograd.AutogradContext ctx, List<Tensor> grad_outputs)
    {
        var upstream = grad_outputs[0];                                              // []
        var saved = ctx.get_saved_variables();
        var next = 0;
        Tensor? Scaled(bool present)
        {
            if (!present) return null;
            var g = saved[next++];
            return g * upstream.to(g.dtype);
        }
        var grads = new List<Tensor> { Scaled((bool)ctx.get_data("hasInputGrad"))! };
        if ((bool)ctx.get_data("fused")) grads.Add(Scaled((bool)ctx.get_data("hasWeightGrad"))!);
        grads.Add(null!); // the ChunkedRun argument
        return grads;
    }
}
