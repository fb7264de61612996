using System.Globalization;
using System.Text;

namespace Trd.Bench;

/// <summary>The markdown section for docs/performance.md, and its replacement in that file.</summary>
static class Report
{
    public const string Heading = "## Objective executor (issue: foundation)";

    static readonly CultureInfo Inv = CultureInfo.InvariantCulture;
    static string F(double x, int digits) => x.ToString("N" + digits, Inv);
    static double GiB(long bytes) => bytes / Machine.GiB;

    public static string Section(Suite suite, string machine, string runtime, string command, TimeSpan wall, DateTime date)
    {
        var floors = suite.Floors!;
        var sb = new StringBuilder();
        sb.AppendLine(Heading).AppendLine();
        sb.AppendLine("Forward + backward of `ObjectiveExecutor` on the TRD recipe (forward KL over the full vocabulary, chunk size 512) " +
                      $"at Qwen3-1.7B's output layer, V = {Shapes.V:N0}, H = H_T = {Shapes.H:N0}. All three paths start from the same hidden " +
                      "states [N, H] and output weights [V, H] (student and teacher), so every timing includes the same projections:");
        sb.AppendLine();
        sb.AppendLine("- **naive**: student logits h·Wᵀ with autograd and teacher logits under no_grad, both [N, V], then `ObjectiveExecutor.Naive` (plain autograd over the full logits), then backward.");
        sb.AppendLine("- **chunked**: the same [N, V] logits, then `ObjectiveExecutor.FromLogits` (chunked, custom backward), then backward through the projection.");
        sb.AppendLine("- **fused**: `ObjectiveExecutor.Fused` on the hidden states and weights (projects 512 positions at a time; no [N, V] tensor), then backward.");
        sb.AppendLine();
        sb.AppendLine("Each configuration runs in a fresh child process. *Baseline* is the resident set (VmRSS) after TorchSharp is loaded and the inputs " +
                      "(W, W_T, h, h_T) are allocated; *peak* is VmHWM at the end (reset to the baseline just before the first iteration); *own* = peak − baseline " +
                      "is the memory the step itself needs, gradients included. *Runs* is warm-up + timed iterations; the time is the median of the timed ones " +
                      "(an iteration predicted to take over 30 s drops the warm-up, over 90 s gets one timed run, to keep the suite near 25 minutes on this 2-core CPU); *fwd s* is the part until the loss exists, and the chunked and fused paths take their gradients inside forward, so their backward is only the projection's (chunked) or a rescaling (fused). *× floor* is the median time over the " +
                      "time the step's four matmuls (student and teacher projection, dh, dW: 8·N·H·V FLOPs) take at the measured matmul rate below. *sys* is the kernel's share of the " +
                      "step's CPU time (mostly page faults: libtorch returns large tensors to the OS, so each step maps and zeroes its memory afresh); " +
                      "*others* is the share of the machine's CPU that other processes used during the step (from /proc/stat), 0 % on a quiet machine.");
        if (suite.Rows.Any(r => r.Result is { PeakReset: false }))
            sb.AppendLine("(This kernel refused to reset VmHWM, so *peak* also covers making the inputs.)");
        sb.AppendLine();
        sb.AppendLine("### Machine and command").AppendLine();
        sb.AppendLine($"- Machine: {machine}");
        sb.AppendLine($"- Runtime: {runtime}");
        sb.AppendLine($"- Date: {date:yyyy-MM-dd HH:mm} (local), whole suite {F(wall.TotalMinutes, 1)} min");
        sb.AppendLine($"- Command: `{command}` (this table). Smoke run: `dotnet run -c Release --project bench/Trd.Bench -- --quick` " +
                      "(N = 256 and 1,024, one timed iteration each, prints the table without touching this file). " +
                      "One configuration alone: `... -- one --path fused --n 4096 --dtype bf16`.");
        sb.AppendLine();
        sb.AppendLine("### Floors").AppendLine();
        sb.AppendLine($"Measured before the configurations (again at the end if other processes disturbed them); other processes used {F(100 * floors.OtherLoad, 0)} % of the CPU meanwhile.").AppendLine();
        sb.AppendLine($"- Memory bandwidth: {F(floors.CopyGBps, 1)} GB/s (`copy_` between two 1 GiB float32 tensors, bytes read + written, best of 3).");
        foreach (var m in floors.Matmul)
            sb.AppendLine($"- Matmul {m.DType} at N = {m.N:N0} (best of 2): [N,H]·[H,V] {F(m.ForwardGflops, 1)}, [N,V]·[V,H] {F(m.GradHiddenGflops, 1)}, " +
                          $"[V,N]·[N,H] {F(m.GradWeightGflops, 1)} GFLOP/s; the step's mix {F(m.StepGflops, 1)} GFLOP/s, i.e. " +
                          $"{F(m.FloorSeconds(1024), 1)} s per step at N = 1,024.");
        sb.AppendLine();
        sb.AppendLine("### Results").AppendLine();
        sb.AppendLine("| path | dtype | N | runs | median s | fwd s | tokens/s | baseline GiB | peak GiB | own GiB | × floor | sys | others |");
        sb.AppendLine("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        foreach (var row in suite.Rows.OrderBy(r => r.Config.DType == "fp32" ? 0 : 1).ThenBy(r => PathOrder(r.Config.Path)).ThenBy(r => r.Config.N))
        {
            var c = row.Config;
            if (row.Result is not { } r)
            {
                sb.AppendLine($"| {c.Path} | {c.DType} | {c.N:N0} | {row.Runs} | {row.Note} | | | | | | | | |");
                continue;
            }
            var floor = floors.Matmul.Single(m => m.DType == c.DType).FloorSeconds(c.N);
            var mark = r.OtherLoad > Suite.BusyLoad ? " †" : "";
            sb.AppendLine($"| {c.Path} | {c.DType} | {c.N:N0} | {row.Runs} | {F(r.MedianSeconds, 2)}{mark} | {F(r.MedianForwardSeconds, 2)} | " +
                          $"{F(c.N / r.MedianSeconds, 0)} | {F(GiB(r.BaselineBytes), 2)} | {F(GiB(r.PeakBytes), 2)} | " +
                          $"{F(GiB(r.PeakBytes - r.BaselineBytes), 2)} | {F(r.MedianSeconds / floor, 2)} | {F(100 * r.SystemShare, 0)} % | {F(100 * r.OtherLoad, 0)} % |");
        }
        if (suite.Rows.Any(r => r.Result is { } x && x.OtherLoad > Suite.BusyLoad))
            sb.AppendLine().AppendLine($"† Timed while other processes used over {F(100 * Suite.BusyLoad, 0)} % of the CPU, even after one retry at the end of the suite: slower than this machine can do.");
        sb.AppendLine();
        sb.AppendLine("### Reading the table").AppendLine();
        foreach (var line in Reading(suite)) sb.AppendLine(line).AppendLine();
        return sb.ToString().TrimEnd() + Environment.NewLine;
    }

    static int PathOrder(string path) => path switch { "naive" => 0, "chunked" => 1, _ => 2 };

    /// <summary>Sentences computed from the numbers: growth of own memory in N, speed against the floor, agreement of the losses.</summary>
    static IEnumerable<string> Reading(Suite suite)
    {
        var measured = suite.Rows.Where(r => r.Result is not null).Select(r => r.Result!).ToArray();
        ConfigResult? At(string path, string dtype, long n) => measured.FirstOrDefault(r => r.Path == path && r.DType == dtype && r.N == n);
        double Own(ConfigResult r) => GiB(r.PeakBytes - r.BaselineBytes);

        foreach (var dtype in suite.DTypes)
        {
            var parts = new List<string>();
            foreach (var path in suite.Paths)
            {
                var points = measured.Where(r => r.Path == path && r.DType == dtype).OrderBy(r => r.N).ToArray();
                if (points.Length < 2) continue;
                var (lo, hi) = (points[^2], points[^1]);
                var perPosition = (Own(hi) - Own(lo)) / (hi.N - lo.N);          // GiB per position
                var rows = perPosition * Machine.GiB / (Shapes.V * 4.0);       // float32 [1, V] rows per position
                var values = string.Join(", ", points.Select(r => $"{F(Own(r), 2)} GiB at N = {r.N:N0}"));
                var text = $"**{path}** {values}: {F(perPosition * 1000, 2)} GiB per 1,000 positions between the last two " +
                           $"(as if {F(rows, 1)} float32 [N, V] tensors were alive at the peak)";
                var skipped = suite.Rows.FirstOrDefault(r => r.Config.Path == path && r.Config.DType == dtype && r.Result is null);
                if (skipped is not null)
                    text += $"; N = {skipped.Config.N:N0} not run ({skipped.Note}; the measured slope extrapolates to " +
                            $"{F(Own(hi) + perPosition * (skipped.Config.N - hi.N), 0)} GiB of its own)";
                parts.Add(text + ".");
            }
            if (parts.Count > 0)
                yield return $"Memory, {dtype}: " + string.Join(" ", parts);

            var fused1 = At("fused", dtype, 1024);
            var fused4 = At("fused", dtype, 4096);
            var naive = measured.Where(r => r.Path == "naive" && r.DType == dtype).OrderBy(r => r.N).ToArray();
            if (fused1 is not null && fused4 is not null)
            {
                var growth = Own(fused4) / Own(fused1);
                var fusedText = Math.Abs(growth - 1) <= 0.15
                    ? $"the fused path's own memory is flat in N (×{F(growth, 2)} from N = 1,024 to 4,096; what is left is " +
                      "N-independent: the [V, H] weight-gradient buffers and one chunk's [512, V] temporaries)"
                    : $"the fused path's own memory is **not** flat in N (×{F(growth, 2)} from N = 1,024 to 4,096)";
                var naiveText = naive.Length >= 2
                    ? $"; the naive path's grows ×{F(Own(naive[^1]) / Own(naive[^2]), 2)} from N = {naive[^2].N:N0} to {naive[^1].N:N0} (×{F((double)naive[^1].N / naive[^2].N, 0)} positions)"
                    : "";
                yield return $"Done-criterion, {dtype}: {fusedText}{naiveText}.";
            }
        }

        foreach (var dtype in suite.DTypes)
        foreach (var n in suite.Ns)
        {
            var here = suite.Paths.Select(p => At(p, dtype, n)).Where(r => r is not null).Select(r => r!).ToArray();
            if (here.Length < 2) continue;
            var speeds = string.Join(", ", here.Select(r => $"{r.Path} {F(r.N / r.MedianSeconds, 0)}{(r.OtherLoad > Suite.BusyLoad ? " †" : "")}"));
            var spread = here.Max(r => r.Loss) - here.Min(r => r.Loss);
            yield return $"Speed, {dtype}, N = {n:N0}: tokens/s {speeds}; the losses agree to {spread:G2} (value {here[0].Loss:G6}).";
        }

        yield return "The × floor column is the honest summary of speed: the matmuls dominate the step on this CPU, and a ratio near 1 means the " +
                     "divergence, the log-sum-exps and the bookkeeping around them cost little next to the projections. Timings on a shared " +
                     "2-core machine vary by 10–20 % from run to run (see *others*); peak memory repeats to within a few tens of MiB from one iteration to the next.";
    }

    /// <summary>
    /// Writes <paramref name="section"/> into the markdown file at <paramref name="path"/>: replaces the existing section
    /// with the same heading (up to the next "## " heading), appends it otherwise, creates the file if needed.
    /// </summary>
    public static void WriteSection(string path, string section)
    {
        var lines = File.Exists(path) ? File.ReadAllLines(path).ToList() : new List<string> { "# Performance", "" };
        var sectionLines = section.TrimEnd().Split('\n').Select(l => l.TrimEnd('\r')).ToList();
        var heading = sectionLines[0].TrimEnd(); // each section starts with its own "## " heading
        var start = lines.FindIndex(l => l.TrimEnd() == heading);
        if (start < 0)
        {
            while (lines.Count > 0 && lines[^1].Trim().Length == 0) lines.RemoveAt(lines.Count - 1);
            lines.Add("");
            lines.AddRange(sectionLines);
        }
        else
        {
            var end = lines.FindIndex(start + 1, l => l.StartsWith("## ", StringComparison.Ordinal));
            if (end < 0) end = lines.Count;
            var replacement = new List<string>(sectionLines);
            if (end < lines.Count) replacement.Add("");
            lines.RemoveRange(start, end - start);
            lines.InsertRange(start, replacement);
        }
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        File.WriteAllText(path, string.Join("\n", lines).TrimEnd() + "\n");
    }
}
