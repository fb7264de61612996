using System.Globalization;
using Trd.Runtime.Logging;
using Trd.Runtime.Study;

namespace Trd.Cli;

/// <summary>
/// What `trd` shows on the console (issue 16): on a terminal, each long stage's progress on one line rewritten in
/// place; redirected, no control codes and no progress ticks. Detail lines (a line per training step; inside a study,
/// every pipeline's own lines) go to the log file only, and to the console with <c>--verbose</c>. A study ends with a
/// verdict table, coloured on a terminal.
/// </summary>
sealed class Terminal
{
    /// <summary>Whether standard error is a terminal that takes control codes (not redirected, not TERM=dumb).</summary>
    public static bool Interactive { get; } = !Console.IsErrorRedirected && Environment.GetEnvironmentVariable("TERM") is not "dumb"
        && Environment.GetEnvironmentVariable("NO_COLOR") is null;

    readonly Lock _lock = new();
    readonly Func<string, bool> _isDetail;
    bool _progressShown;

    /// <param name="verbose">Show detail lines on the console too.</param>
    /// <param name="isDetail">Which lines are detail.</param>
    public Terminal(bool verbose, Func<string, bool> isDetail)
    {
        Verbose = verbose;
        _isDetail = isDetail;
    }

    /// <summary>Whether detail lines reach the console.</summary>
    public bool Verbose { get; }

    /// <summary>Training's per-step lines: detail for every command.</summary>
    public static bool StepLine(string line) => line.StartsWith("step ", StringComparison.Ordinal);

    /// <summary>A log line: to the console unless it is detail (then only with --verbose).</summary>
    public void Line(string line)
    {
        if (!Verbose && _isDetail(line)) return;
        lock (_lock)
        {
            ClearProgress();
            Console.Error.WriteLine(line);
        }
    }

    /// <summary>A progress sink drawing one line in place on a terminal (nothing when redirected, unless verbose).</summary>
    public IProgressSink Progress() => Interactive ? new InPlace(this) : Verbose ? new ConsoleProgressSink(Console.Error) : new Silent();

    void ClearProgress()
    {
        if (!_progressShown) return;
        Console.Error.Write("\r\u001b[2K");
        _progressShown = false;
    }

    sealed class Silent : IProgressSink
    {
        public void Report(ProgressUpdate update) { }
    }

    /// <summary>Rewrites the current line at most five times a second; a finished stage's line is cleared.</summary>
    sealed class InPlace(Terminal terminal) : IProgressSink
    {
        long _last;

        public void Report(ProgressUpdate update)
        {
            var now = Environment.TickCount64;
            if (!update.IsComplete && now - _last < 200) return;
            _last = now;
            lock (terminal._lock)
            {
                var text = ConsoleProgressSink.Format(update);
                var width = Console.IsErrorRedirected ? 120 : Math.Max(20, Console.WindowWidth - 1);
                Console.Error.Write("\r\u001b[2K" + (text.Length > width ? text[..width] : text));
                terminal._progressShown = true;
                if (update.IsComplete) terminal.ClearProgress();
            }
        }
    }

    /// <summary>The study's verdicts as a table: claim × setting, one row per claim, coloured on a terminal.</summary>
    public static string VerdictTable(IReadOnlyList<ClaimResult> claims)
    {
        var settings = claims.Select(c => c.Setting).Distinct().ToArray();
        var rows = claims.Select(c => c.Id).Distinct().ToArray();
        var width = Math.Max(5, rows.Max(r => r.Length));
        const int cell = 16;
        var lines = new List<string> { "claim".PadRight(width) + "  " + string.Concat(settings.Select(s => s.ToUpperInvariant().PadRight(cell))) };
        foreach (var row in rows)
        {
            var line = row.PadRight(width) + "  ";
            foreach (var setting in settings)
            {
                var verdict = claims.FirstOrDefault(c => c.Id == row && c.Setting == setting)?.Verdict ?? "—";
                line += Colour(verdict, verdict.PadRight(cell));
            }
            lines.Add(line.TrimEnd());
        }
        var counts = claims.GroupBy(c => c.Verdict).Select(g => $"{g.Count()} {g.Key}");
        lines.Add(string.Join(", ", counts) + ". The measurements behind each: the report, or results.json's claims.");
        return string.Join("\n", lines);
    }

    /// <summary>
    /// The grid's headline: per cell and setting, TRD − best baseline on Avg@K and Pass@K (points, 95% interval), then
    /// the prediction's verdicts.
    /// </summary>
    public static string GridTable(GridResults grid)
    {
        static string Pts(Estimate e) => double.IsNaN(e.Mean) ? "n/a"
            : string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{100 * e.Mean:+0.0;-0.0;0.0} [{100 * e.Low:0.0}, {100 * e.High:0.0}]");
        var width = Math.Max(4, grid.Cells.Max(c => c.Name.Length));
        var lines = new List<string> { "cell".PadRight(width) + "  setting  TRD − best baseline, Avg@K (pts)      Pass@K (pts)" };
        foreach (var cell in grid.Cells)
            foreach (var s in cell.Settings)
                lines.Add(cell.Name.PadRight(width) + "  " + s.Setting.ToUpperInvariant().PadRight(7) + "  "
                    + $"{Pts(s.GapAvgAtK)} vs {s.BestAvgBaseline}".PadRight(34) + $"{Pts(s.GapPassAtK)} vs {s.BestPassBaseline}");
        if (grid.Predictions.Length > 0)
        {
            lines.Add("");
            lines.Add("prediction (TRD's advantage grows as the teacher collapses / as recovery gets longer):");
            foreach (var p in grid.Predictions)
                lines.Add("  " + Colour(p.Verdict, p.Verdict.PadRight(16)) + p.Measured);
        }
        return string.Join("\n", lines);
    }

    static string Colour(string verdict, string text) => !Interactive ? text : verdict switch
    {
        "reproduced" => $"\u001b[32m{text}\u001b[0m",
        "not reproduced" => $"\u001b[31m{text}\u001b[0m",
        "inconclusive" => $"\u001b[33m{text}\u001b[0m",
        _ => text,
    };

    /// <summary>A duration as the CLI prints it.</summary>
    public static string Duration(TimeSpan t) =>
        t.TotalMinutes >= 1 ? string.Format(CultureInfo.InvariantCulture, "{0:F1} min", t.TotalMinutes) : string.Format(CultureInfo.InvariantCulture, "{0:F0} s", t.TotalSeconds);
}
