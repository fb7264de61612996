using System.Diagnostics;
using TorchSharp;
using Trd.Core;
using Trd.Runtime.Objectives;
using static TorchSharp.torch;

namespace Trd.Bench;

/// <summary>
/// What runs inside a child process: one configuration (<see cref="RunOne"/>) or the floors
/// (<see cref="RunFloors"/>). A fresh process per configuration keeps peak RSS (VmHWM) that configuration's own.
/// </summary>
static class Child
{
    public static ScalarType ToScalar(string dtype) => dtype switch
    {
        "fp32" => ScalarType.Float32,
        "bf16" => ScalarType.BFloat16,
        _ => throw new ArgumentException($"dtype must be fp32 or bf16, got {dtype}"),
    };

    public const string AbortedPrefix = "ABORTED ";

    /// <summary>
    /// Stops this process (SIGKILL to itself, after an ABORTED line on stdout) as soon as its resident set passes
    /// <paramref name="limitGiB"/>: the safety net behind the parent's estimate, checked every 20 ms, far faster than
    /// libtorch can fault in the gigabytes between the limit and the machine's RAM.
    /// </summary>
    public static void StartWatchdog(double limitGiB)
    {
        var limit = (long)(limitGiB * Machine.GiB);
        var thread = new Thread(() =>
        {
            while (true)
            {
                var rss = Machine.StatusBytes("VmRSS");
                if (rss > limit)
                {
                    Console.Out.WriteLine($"{AbortedPrefix}stopped at RSS {rss / Machine.GiB:F1} GiB > {limitGiB:F1} GiB limit");
                    Console.Out.Flush();
                    Process.GetCurrentProcess().Kill();
                }
                Thread.Sleep(20);
            }
        }) { IsBackground = true, Name = "rss-watchdog" };
        thread.Start();
    }

    static void Log(string message) => Console.Error.WriteLine($"  [{DateTime.Now:HH:mm:ss}] {message}");

    /// <summary>
    /// Forward + backward of one path, warmup + timed iterations. All three paths start from the same hidden
    /// states and output weights, so the same projections are timed in each: naive and chunked project to
    /// [N, V] logits first (student with autograd, teacher under no_grad); fused projects chunk by chunk.
    /// </summary>
    public static ConfigResult RunOne(Config config, int warmup, int timed)
    {
        set_num_threads(Environment.ProcessorCount);
        var dtype = ToScalar(config.DType);
        var n = config.N;
        var recipe = Recipes.Trd; // forward KL over the full vocabulary
        var options = ObjectiveOptions.Default; // chunk size 512, float32 accumulation

        manual_seed(1234);
        // Made directly in the benchmark dtype (no float32 staging copy of W inflating the peak), uniform because
        // randn over 2 × 311M weights takes longer than some of the steps. Standard deviations: h 1, W 0.02, so the
        // logits h·Wᵀ have a standard deviation of about √H · 0.02 ≈ 0.9.
        var setup = Stopwatch.StartNew();
        var h = Uniform(new[] { n, Shapes.H }, dtype, 1.0).requires_grad_(true);          // [N, H] student hidden
        var w = Uniform(new[] { Shapes.V, Shapes.H }, dtype, 0.02).requires_grad_(true);  // [V, H] student output weight
        var ht = Uniform(new[] { n, Shapes.H }, dtype, 1.0);                              // [N, H_T] teacher hidden
        var wt = Uniform(new[] { Shapes.V, Shapes.H }, dtype, 0.02);                      // [V, H_T] teacher output weight
        var mask = ones(n, dtype: ScalarType.Float32);                                    // [N]
        GC.Collect();
        GC.WaitForPendingFinalizers();
        var baseline = Machine.StatusBytes("VmRSS");
        var peakReset = Machine.ResetPeak();
        Log($"{config}: inputs made in {setup.Elapsed.TotalSeconds:F1} s, baseline RSS {baseline / Machine.GiB:F2} GiB; {warmup} warm-up + {timed} timed iterations");

        var seconds = new List<double>();
        var forwardSeconds = new List<double>();
        var systemShare = new List<double>();
        var otherLoad = new List<double>();
        var self = Process.GetCurrentProcess();
        double loss = double.NaN;
        for (var i = 0; i < warmup + timed; i++)
        {
            // Gradients start empty each step (zero_grad(set_to_none) semantics): no accumulation buffer carried over.
            h.grad = null;
            w.grad = null;
            using var scope = NewDisposeScope();
            self.Refresh();
            var (user0, system0, busy0) = (self.UserProcessorTime, self.PrivilegedProcessorTime, Machine.BusyCpuSeconds());
            var clock = Stopwatch.StartNew();
            var result = Forward(config.Path, recipe, options, h, w, ht, wt, mask);
            var forward = clock.Elapsed.TotalSeconds;
            result.Loss.backward();
            var total = clock.Elapsed.TotalSeconds;
            self.Refresh();
            var user = (self.UserProcessorTime - user0).TotalSeconds;
            var system = (self.PrivilegedProcessorTime - system0).TotalSeconds;
            var others = Math.Max(0, Machine.BusyCpuSeconds() - busy0 - user - system) / (total * Environment.ProcessorCount);
            loss = result.Loss.item<float>();
            var kind = i < warmup ? "warm-up" : "timed";
            Log($"{config}: {kind} {total:F2} s (forward {forward:F2} s; CPU user {user:F1} s, system {system:F1} s; other processes {others:P0} of the CPU), loss {loss:G6}, RSS {Machine.StatusBytes("VmRSS") / Machine.GiB:F2} GiB, peak {Machine.StatusBytes("VmHWM") / Machine.GiB:F2} GiB");
            if (i >= warmup)
            {
                seconds.Add(total);
                forwardSeconds.Add(forward);
                systemShare.Add(system / Math.Max(1e-9, user + system));
                otherLoad.Add(others);
            }
        }

        return new ConfigResult
        {
            Path = config.Path,
            N = n,
            DType = config.DType,
            Warmup = warmup,
            Seconds = seconds.ToArray(),
            ForwardSeconds = forwardSeconds.ToArray(),
            SystemShare = Stats.Median(systemShare),
            OtherLoad = Stats.Median(otherLoad),
            Loss = loss,
            BaselineBytes = baseline,
            PeakBytes = Machine.StatusBytes("VmHWM"),
            PeakReset = peakReset,
        };
    }

    /// <summary>Uniform entries with mean 0 and the given standard deviation (half-width √3 · std).</summary>
    static Tensor Uniform(long[] shape, ScalarType dtype, double std) =>
        empty(shape, dtype: dtype).uniform_(-Math.Sqrt(3) * std, Math.Sqrt(3) * std);

    /// <summary>The loss of one path, with the graph that backward will walk.</summary>
    static ObjectiveResult Forward(string path, Recipe recipe, ObjectiveOptions options,
        Tensor h, Tensor w, Tensor ht, Tensor wt, Tensor mask)
    {
        if (path == "fused")
            return ObjectiveExecutor.Fused(recipe, h, w, ht, wt, mask, options: options); // never builds [N, V]

        var studentLogits = h.matmul(w.t());                          // [N, H]·[H, V] → [N, V], differentiable
        Tensor teacherLogits;
        using (no_grad())
            teacherLogits = ht.matmul(wt.t());                        // [N, V], constant
        return path switch
        {
            "naive" => ObjectiveExecutor.Naive(recipe, studentLogits, teacherLogits, mask, options: options),
            "chunked" => ObjectiveExecutor.FromLogits(recipe, studentLogits, teacherLogits, mask, options: options),
            _ => throw new ArgumentException($"path must be naive, chunked or fused, got {path}"),
        };
    }

    /// <summary>
    /// Memory bandwidth (copy_ between two tensors of copyGiB each, bytes read + written) and the matmul rate
    /// of the projection's three shapes per dtype at n positions. Each figure is the best of three runs after
    /// one warm-up: these are floors, what the machine can do at best.
    /// </summary>
    public static Floors RunFloors(double copyGiB, long n, long bf16N)
    {
        set_num_threads(Environment.ProcessorCount);
        manual_seed(1234);
        var self = Process.GetCurrentProcess();
        var busy0 = Machine.BusyCpuSeconds();
        var own0 = self.TotalProcessorTime;
        var clock = Stopwatch.StartNew();

        var elements = (long)(copyGiB * Machine.GiB / 4);
        double copySeconds;
        {
            using var scope = NewDisposeScope();
            var a = Uniform(new[] { elements }, ScalarType.Float32, 1.0); // [E] float32
            var b = empty(elements);                  // [E] float32
            copySeconds = Best(() => b.copy_(a), 3);
        }
        var copyGBps = 2.0 * elements * 4 / copySeconds / 1e9;
        Log($"floors: copy_ of {copyGiB:F1} GiB: {copySeconds * 1e3:F0} ms, {copyGBps:F1} GB/s");

        var rates = new List<MatmulRate>();
        foreach (var (name, rows) in new[] { ("fp32", n), ("bf16", bf16N) })
        {
            using var scope = NewDisposeScope();
            var dtype = ToScalar(name);
            var h = Uniform(new[] { rows, Shapes.H }, dtype, 1.0);        // [N, H]
            var w = Uniform(new[] { Shapes.V, Shapes.H }, dtype, 0.02);   // [V, H]
            var dz = Uniform(new[] { rows, Shapes.V }, dtype, 1e-4);      // [N, V]
            var flops = 2.0 * rows * Shapes.H * Shapes.V;
            double Rate(Func<Tensor> product, string what)
            {
                var s = Best(() => { using var inner = NewDisposeScope(); product(); }, 3);
                var gflops = flops / s / 1e9;
                Log($"floors: {name} {what} at N={rows}: {s:F2} s, {gflops:F1} GFLOP/s");
                return gflops;
            }
            rates.Add(new MatmulRate
            {
                DType = name,
                N = rows,
                ForwardGflops = Rate(() => h.matmul(w.t()), "[N,H]·[H,V]"),       // [N, V]
                GradHiddenGflops = Rate(() => dz.matmul(w), "[N,V]·[V,H]"),       // [N, H]
                GradWeightGflops = Rate(() => dz.t().matmul(h), "[V,N]·[N,H]"),   // [V, H]
            });
        }
        self.Refresh();
        var others = Math.Max(0, Machine.BusyCpuSeconds() - busy0 - (self.TotalProcessorTime - own0).TotalSeconds)
                     / (clock.Elapsed.TotalSeconds * Environment.ProcessorCount);
        return new Floors { CopyGBps = copyGBps, CopyBytes = 2 * elements * 4, Matmul = rates.ToArray(), OtherLoad = others };
    }

    /// <summary>Best wall time of <paramref name="runs"/> runs after one warm-up.</summary>
    static double Best(Action action, int runs)
    {
        action();
        var best = double.PositiveInfinity;
        for (var i = 0; i < runs; i++)
        {
            var clock = Stopwatch.StartNew();
            action();
            best = Math.Min(best, clock.Elapsed.TotalSeconds);
        }
        return best;
    }
}
