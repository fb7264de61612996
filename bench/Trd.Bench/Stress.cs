using Trd.Core;
using System.Diagnostics;
using Trd.Runtime.Gym;
using Trd.Runtime.Study;

namespace Trd.Bench;

/// <summary>
/// The stress run of one study stage (docs/performance.md, "Stress"): trains one method of the quick study's corpus
/// again and again in one process — by default Forward KL w/ Clip in OPSD, the stage where a native
/// "Expected false to be true" was once seen in about one of fourteen <c>trd study --quick</c> runs — optionally with
/// busy threads competing for the cores, and counts the iterations that throw.
/// </summary>
static class Stress
{
    /// <param name="wholeStudy">--study: each iteration runs the whole quick study (both settings, every method:
    /// sampling, teacher scoring, training and evaluation) in a fresh directory instead of one training stage.</param>
    public static int Run(int iterations, int loadThreads, Setting setting, ComparisonRow method, string directory, bool gcPressure = false,
        bool wholeStudy = false)
    {
        var options = new StudyOptions
        {
            Directory = directory, CacheRoot = GymModels.DefaultCacheRoot(), Settings = [setting], Methods = method == Methods.Trd ? [method] : [method, Methods.Trd],
            Command = "trd-bench stress",
        }.AsQuick();
        var study = new GymStudy(options, _ => { });
        var (student, teacher) = wholeStudy ? ("", "") : study.Prepare();
        var unit = new StudyUnit(1, options.Seeds[0]);
        if (!wholeStudy) study.DrawCorpus(unit, setting, student, teacher);

        using var stop = new CancellationTokenSource();
        var load = Enumerable.Range(0, loadThreads).Select(_ => new Thread(() =>
        {
            var x = 0.0;
            while (!stop.IsCancellationRequested) x = Math.Sqrt(x + 1.0);
        }) { IsBackground = true }).ToList();
        // --gc-pressure: a thread that forces a gen-0 collection about every millisecond, so a GC falls inside most
        // native calls of the training loop that last that long. A TorchSharp Scalar or Tensor that nothing references
        // while libtorch reads its handle is then finalized under it (docs/performance.md, "Stress"). (Collecting
        // without a pause made an iteration take about a minute instead of about a second on two cores.)
        if (gcPressure)
            load.Add(new Thread(() =>
            {
                while (!stop.IsCancellationRequested)
                {
                    _ = new byte[10_000];
                    GC.Collect(0, GCCollectionMode.Forced, blocking: false);
                    Thread.Sleep(1);
                }
            }) { IsBackground = true });
        load.ForEach(t => t.Start());

        var failures = new List<string>();
        var clock = Stopwatch.StartNew();
        for (var i = 0; i < iterations; i++)
        {
            var run = Path.Combine(directory, "stress", wholeStudy ? $"study-{i:D4}" : $"{method}-{i:D4}");
            if (Directory.Exists(run)) Directory.Delete(run, recursive: true);
            try
            {
                if (wholeStudy)
                    new GymStudy(new StudyOptions { Directory = run, CacheRoot = options.CacheRoot, Command = "trd-bench stress --study" }.AsQuick(), _ => { }).Run();
                else
                    using (study.Trained(unit, setting, method, student, teacher, directory: run)) { }
            }
            catch (Exception e)
            {
                failures.Add($"iteration {i}: {e.GetType().Name}: {e.Message.Split('\n')[0]}");
                Console.Error.WriteLine(failures[^1]);
            }
            finally { if (Directory.Exists(run)) Directory.Delete(run, recursive: true); }
            if ((i + 1) % 10 == 0) Console.Error.WriteLine($"{i + 1}/{iterations} iterations, {failures.Count} failed, {clock.Elapsed.TotalSeconds / (i + 1):F2} s each");
        }
        stop.Cancel();
        Console.WriteLine($"stress {(wholeStudy ? "quick study" : $"{setting.ConfigName}/{method.ConfigName}")}: {iterations} iterations, {failures.Count} failed, {loadThreads} load thread(s)"
            + (gcPressure ? ", GC pressure" : "") + $", {clock.Elapsed.TotalMinutes:F1} min");
        return failures.Count == 0 ? 0 : 1;
    }
}
