using System.Diagnostics;
using System.Text.Json;

namespace Trd.Bench;

/// <summary>One row of the table: a measured configuration, or one skipped or failed with the reason.</summary>
sealed record Row(Config Config, ConfigResult? Result, string? Note, string Runs);

/// <summary>
/// The parent process: measures the floors, then runs every configuration in a fresh child process (this same
/// executable with the <c>one</c> command), smallest N first, estimating each one's peak memory and time before
/// starting it so that a configuration that would not fit in RAM is skipped rather than run.
/// </summary>
sealed class Suite
{
    public required long[] Ns { get; init; }
    public required string[] DTypes { get; init; }
    public required string[] Paths { get; init; }
    public required double MaxGiB { get; init; }
    public int? Warmup { get; init; }       // fixed iteration counts (otherwise chosen from the predicted time)
    public int? Timed { get; init; }
    public long FloorN { get; init; } = 512;

    readonly List<Row> _rows = new();
    public IReadOnlyList<Row> Rows => _rows;
    public Floors Floors { get; private set; } = null!;

    static void Log(string message) => Console.Error.WriteLine($"[{DateTime.Now:HH:mm:ss}] {message}");

    public void Run()
    {
        Floors = MeasureFloors();

        var configs =
            from n in Ns.OrderBy(n => n)
            from dtype in DTypes
            from path in Paths
            select new Config(path, n, dtype);
        foreach (var config in configs)
            _rows.Add(Measure(config));

        // A configuration timed while other processes took a good share of the CPU gets one more try at the end;
        // the less disturbed of the two runs is kept (peak memory does not depend on it).
        for (var i = 0; i < _rows.Count; i++)
        {
            if (_rows[i].Result is not { OtherLoad: > BusyLoad } first) continue;
            Log($"{_rows[i].Config}: other processes used {first.OtherLoad:P0} of the CPU during it; running it again");
            var again = Measure(_rows[i].Config);
            if (again.Result is { } second && second.OtherLoad < first.OtherLoad)
                _rows[i] = again;
        }
        // Likewise the floors, which only the × floor column depends on once the configurations have run.
        if (Floors.OtherLoad > BusyLoad)
        {
            Log($"floors: other processes used {Floors.OtherLoad:P0} of the CPU during them; measuring them again");
            var again = MeasureFloors();
            if (again.OtherLoad < Floors.OtherLoad) Floors = again;
        }
    }

    Floors MeasureFloors()
    {
        Log($"floors: copy bandwidth, matmul rates at N={FloorN} (fp32, bf16)");
        var (line, error) = RunChild("FLOORS ", "floors", "--n", FloorN.ToString(), "--bf16-n", FloorN.ToString());
        return line is null ? throw new InvalidOperationException($"the floors child failed: {error}") : JsonSerializer.Deserialize<Floors>(line)!;
    }

    /// <summary>Above this share of the CPU taken by other processes, a configuration's timing is marked disturbed.</summary>
    public const double BusyLoad = 0.2;

    /// <summary>Estimates one configuration, then runs it in a child process unless it would not fit.</summary>
    Row Measure(Config config)
    {
        var predictedGiB = PredictPeakGiB(config);
        var availableGiB = Machine.MemInfoBytes("MemAvailable") / Machine.GiB;
        var limitGiB = Math.Min(MaxGiB, availableGiB - 1.0);
        if (predictedGiB > limitGiB)
        {
            var why = predictedGiB > MaxGiB ? $"{MaxGiB:F0} GiB limit" : $"{availableGiB:F1} GiB available now";
            Log($"{config}: skipped, estimated peak {predictedGiB:F1} GiB > {why}");
            return new Row(config, null, $"skipped: estimated peak {predictedGiB:F0} GiB > {why}", "–");
        }
        var iteration = PredictIterationSeconds(config);
        var watchdogGiB = Math.Min(MaxGiB, limitGiB + 0.5);
        var (warmup, timed) = Iterations(iteration);
        Log($"{config}: estimated peak {predictedGiB:F1} GiB, about {iteration:F0} s per iteration → {warmup} warm-up + {timed} timed");
        var clock = Stopwatch.StartNew();
        var (line, error) = RunChild("RESULT ", "one", "--path", config.Path, "--n", config.N.ToString(), "--dtype", config.DType,
            "--warmup", warmup.ToString(), "--timed", timed.ToString(), "--max-gib", watchdogGiB.ToString("F1", System.Globalization.CultureInfo.InvariantCulture));
        if (line is null)
        {
            Log($"{config}: failed ({error})");
            return new Row(config, null, $"failed: {error}", $"{warmup}+{timed}");
        }
        var result = JsonSerializer.Deserialize<ConfigResult>(line)!;
        Log($"{config}: median {result.MedianSeconds:F2} s, peak {result.PeakBytes / Machine.GiB:F2} GiB " +
            $"(baseline {result.BaselineBytes / Machine.GiB:F2} GiB), child wall {clock.Elapsed.TotalSeconds:F0} s");
        return new Row(config, result, null, $"{warmup}+{timed}");
    }

    /// <summary>
    /// Iterations for a configuration whose iteration is predicted to take <paramref name="seconds"/>: one warm-up
    /// and two timed up to 30 s; two timed and no warm-up up to 90 s; one timed beyond (this 2-core CPU runs an
    /// fp32 step at N = 4,096 in minutes). Every iteration allocates its large tensors afresh, so the warm-up
    /// buys little more than one-off library set-up at those sizes.
    /// </summary>
    (int warmup, int timed) Iterations(double seconds)
    {
        if (Warmup is not null || Timed is not null) return (Warmup ?? 1, Timed ?? 2);
        return seconds <= 30 ? (1, 2) : seconds <= 90 ? (0, 2) : (0, 1);
    }

    MatmulRate Rate(string dtype) => Floors!.Matmul.Single(m => m.DType == dtype);

    /// <summary>The matmul floor times the time/floor ratio this path had at the largest smaller N (2.5 before any).</summary>
    double PredictIterationSeconds(Config config)
    {
        var floor = Rate(config.DType).FloorSeconds(config.N);
        var previous = Measured(config).LastOrDefault();
        var ratio = previous is null ? 2.5 : previous.MedianSeconds / Rate(config.DType).FloorSeconds(previous.N);
        return floor * ratio;
    }

    IEnumerable<ConfigResult> Measured(Config config) =>
        _rows.Where(r => r.Result is not null && r.Config.Path == config.Path && r.Config.DType == config.DType && r.Config.N < config.N)
            .Select(r => r.Result!).OrderBy(r => r.N);

    /// <summary>
    /// Peak RSS before running, in GiB: the inputs' baseline plus the path's own memory, counted in float32 tensors
    /// of three sizes: g = [V, H] (weight gradients), c = [512, V] (one chunk's temporaries), u = [N, V] (full logits).
    /// The counts were fitted to the runs at N = 256 to 1,024 on the machine in docs/performance.md (fp32 and bf16
    /// alike; bf16 holds fewer bytes, so it is over-estimated) and err on the high side; 15 % margin on top.
    /// The child's RSS watchdog (<see cref="Child.StartWatchdog"/>) stops a configuration that would pass the limit anyway.
    /// </summary>
    public static double PredictPeakGiB(Config config)
    {
        var es = Shapes.ElementSize(config.DType);
        var baseline = 0.6 * Machine.GiB + (2.0 * Shapes.V * Shapes.H + 2.0 * config.N * Shapes.H) * es; // runtime + W, W_T, h, h_T
        var g = Shapes.V * Shapes.H * 4.0;
        var c = Math.Min(512, config.N) * Shapes.V * 4.0;
        var u = config.N * Shapes.V * 4.0;
        var own = config.Path switch
        {
            "naive" => 1 * g + 20 * u,            // W.grad; fp64 log-sum-exp inputs, log-probs, terms and their grads, all [N, V]
            "chunked" => 1 * g + 12.5 * c + 4 * u, // W.grad; one chunk's temporaries; logits, grad buffer, its scaled copy
            _ => 3 * g + 12.5 * c,                 // fused: weight-gradient buffers; one chunk's temporaries
        };
        return 1.15 * (baseline + own) / Machine.GiB;
    }

    /// <summary>
    /// Runs this executable with the given arguments; returns the payload of its stdout line starting with
    /// <paramref name="prefix"/>, or null and the reason. The child's progress (stderr) goes to this stderr.
    /// </summary>
    static (string? line, string? error) RunChild(string prefix, params string[] args)
    {
        var self = Environment.ProcessPath ?? throw new InvalidOperationException("cannot find this executable");
        var start = new ProcessStartInfo(self) { RedirectStandardOutput = true, UseShellExecute = false };
        // Started as `dotnet Trd.Bench.dll`: the host needs the assembly's path first.
        if (Path.GetFileNameWithoutExtension(self) == "dotnet")
            start.ArgumentList.Add(typeof(Suite).Assembly.Location);
        foreach (var a in args) start.ArgumentList.Add(a);
        using var child = Process.Start(start)!;
        string? payload = null, aborted = null;
        string? text;
        while ((text = child.StandardOutput.ReadLine()) is not null)
        {
            if (text.StartsWith(prefix, StringComparison.Ordinal)) payload = text[prefix.Length..];
            else if (text.StartsWith(Child.AbortedPrefix, StringComparison.Ordinal)) aborted = text[Child.AbortedPrefix.Length..];
            else Console.Error.WriteLine("  " + text);
        }
        child.WaitForExit();
        if (aborted is not null) return (null, aborted);
        if (child.ExitCode != 0)
        {
            // 137 = SIGKILL, which is what the kernel's OOM killer sends.
            var why = child.ExitCode == 137 ? "killed (SIGKILL, likely out of memory)" : $"exit code {child.ExitCode}";
            return (null, why);
        }
        return payload is null ? (null, "no result line") : (payload, null);
    }
}
