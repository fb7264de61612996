namespace Trd.Bench;

/// <summary>Qwen3-1.7B's output layer: vocabulary V and hidden size H (the teacher's H_T is taken equal to H).</summary>
static class Shapes
{
    public const long V = 151_936;
    public const long H = 2_048;

    /// <summary>Multiply-adds ×2 of one forward + backward step: student and teacher projections forward
    /// (2 · 2·N·H·V) and the student's two backward products dh, dW (2 · 2·N·H·V).</summary>
    public static double StepFlops(long n) => 8.0 * n * H * V;

    public static long ElementSize(string dtype) => dtype == "bf16" ? 2 : 4;
}

/// <summary>One configuration: path (naive | chunked | fused), positions N, input dtype (fp32 | bf16).</summary>
sealed record Config(string Path, long N, string DType)
{
    public override string ToString() => $"{Path} {DType} N={N}";
}

/// <summary>What a child process reports for one configuration.</summary>
sealed record ConfigResult
{
    public required string Path { get; init; }
    public required long N { get; init; }
    public required string DType { get; init; }
    public required int Warmup { get; init; }
    public required double[] Seconds { get; init; }         // forward + backward, timed iterations
    public required double[] ForwardSeconds { get; init; }  // of which forward (the loss computed)
    public required double SystemShare { get; init; }       // kernel share of the CPU time (page faults of fresh allocations)
    public required double OtherLoad { get; init; }         // share of the machine's CPU other processes used meanwhile
    public required double Loss { get; init; }              // last iteration's loss (the paths must agree)
    public required long BaselineBytes { get; init; }       // RSS after TorchSharp init and the inputs
    public required long PeakBytes { get; init; }           // VmHWM at the end
    public required bool PeakReset { get; init; }           // whether VmHWM was reset after the inputs were made

    public double MedianSeconds => Stats.Median(Seconds);
    public double MedianForwardSeconds => Stats.Median(ForwardSeconds);
}

/// <summary>The machine's floors, measured in a child process.</summary>
sealed record Floors
{
    public required double CopyGBps { get; init; }          // GB/s (10^9), bytes read + written by copy_
    public required long CopyBytes { get; init; }
    public required MatmulRate[] Matmul { get; init; }
    public required double OtherLoad { get; init; }         // share of the machine's CPU other processes used meanwhile
}

/// <summary>Matmul rate of one dtype at the projection's shapes, N positions.</summary>
sealed record MatmulRate
{
    public required string DType { get; init; }
    public required long N { get; init; }
    public required double ForwardGflops { get; init; }     // [N, H]·[H, V]
    public required double GradHiddenGflops { get; init; }  // [N, V]·[V, H]
    public required double GradWeightGflops { get; init; }  // [V, N]·[N, H]

    /// <summary>The step's four products (2 forward, dh, dW) at these rates, as one effective rate.</summary>
    public double StepGflops => 1.0 / ((2.0 / ForwardGflops + 1.0 / GradHiddenGflops + 1.0 / GradWeightGflops) / 4.0);

    /// <summary>Seconds the step's matmuls alone take at N positions: the floor a path is compared with.</summary>
    public double FloorSeconds(long n) => Shapes.StepFlops(n) / (StepGflops * 1e9);
}

static class Stats
{
    public static double Median(IReadOnlyList<double> xs)
    {
        if (xs.Count == 0) return double.NaN;
        var s = xs.OrderBy(x => x).ToArray();
        return s.Length % 2 == 1 ? s[s.Length / 2] : 0.5 * (s[s.Length / 2 - 1] + s[s.Length / 2]);
    }
}
