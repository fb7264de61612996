using System.CommandLine;
using Trd.Runtime.Gym;
using Trd.Runtime.Logging;
using Trd.Runtime.Study;

namespace Trd.Cli;

/// <summary>
/// trd study: the paper's comparison on the prefix-failure gym, to results.json and an offline report.html
/// (docs/study.md). With no arguments it runs the full plan into runs/study and prints where the report is.
/// </summary>
static class StudyCommand
{
    public static Command Create(Func<StudyResults, string, string>? writeReport, Func<GridResults, string, string>? writeGridReport = null)
    {
        var output = new Option<DirectoryInfo?>("--out", "-o") { Description = "The study directory (default: runs/study, or runs/study-quick with --quick). A rerun resumes it." };
        var quick = new Option<bool>("--quick") { Description = "One seed, 64 corpus and 32 held-out problems: the CI plan (a few minutes)." };
        var seeds = new Option<int?>("--seeds") { Description = "Number of seeds (1, 2, …; default 3, or 1 with --quick)." };
        var modelSeeds = new Option<int?>("--model-seeds") { Description = "Independent trainings of the gym student and teacher (default 1); every seed runs under each, and the intervals resample model seeds, then seeds, then problems." };
        var train = new Option<int?>("--train-problems") { Description = "Corpus problems per seed (default 192; 64 with --quick)." };
        var heldout = new Option<int?>("--heldout-problems") { Description = "Held-out problems (default 64; 32 with --quick)." };
        var subsets = new Option<bool>("--subsets") { Description = "Also run the subset-filter ablation of App. B.3 (OPSD; fail, succ, fail→succ)." };
        var cache = new Option<DirectoryInfo?>("--cache") { Description = "The gym model cache (default: $TRD_CACHE, else $XDG_CACHE_HOME/trd, else ~/.cache/trd)." };
        var grid = new Option<string[]>("--grid")
        {
            Description = "Run the comparison in every cell of a grid of gym variants: KNOB=V1,V2,… per knob (catch, recovery, slip, terms; docs/gym.md, \"Knobs\"). A knob left out keeps its default.",
            AllowMultipleArgumentsPerToken = true,
        };
        var methods = new Option<string?>("--methods")
        {
            Description = "Comma-separated methods to compare (default: the paper's five, forward-kl,forward-kl-clip,reverse-kl,reverse-kl-topk,trd). " +
                "The shaped methods of docs/methods.md (topd, sg-opd, ta-opd, tropd-mask, tropd-clip, tropd-switch, fire-opd, gndpo, kat, esr, opd-plus, tinker, …) may be added at their defaults, e.g. --methods forward-kl,gndpo,trd; trd must be one.",
        };
        var verbose = new Option<bool>("--verbose", "-v") { Description = "Print every pipeline's lines (each training step, each evaluation) too; they always go to logs/study.log." };
        var command = new Command("study", "Run the paper's comparison (TRD against four dense-KL baselines, OPD and OPSD) on the prefix-failure gym and write report.html.")
            { output, quick, seeds, modelSeeds, train, heldout, methods, subsets, grid, cache, verbose };
        Cli.Examples(command, "trd study --quick                 # one seed, the CI plan: about a minute with the models cached",
            "trd study --grid catch=0,0.4,0.8 recovery=line,restart   # where TRD wins: six gym variants, into runs/grid");
        command.SetAction(parse => Cli.Guard(() =>
        {
            var isQuick = parse.GetValue(quick);
            var gridArguments = parse.GetValue(grid) ?? [];
            var isGrid = parse.GetResult(grid) is not null;
            var defaultName = (isGrid ? "grid" : "study") + (isQuick ? "-quick" : "");
            var directory = parse.GetValue(output)?.FullName ?? Path.GetFullPath(Path.Combine("runs", defaultName));
            var options = new StudyOptions
            {
                Directory = directory, CacheRoot = parse.GetValue(cache)?.FullName ?? GymModels.DefaultCacheRoot(),
                Subsets = parse.GetValue(subsets), Command = "trd " + string.Join(' ', Environment.GetCommandLineArgs().Skip(1)),
            };
            if (isQuick) options = options.AsQuick();
            if (parse.GetValue(seeds) is { } n)
                options = n >= 1 ? options with { Seeds = Enumerable.Range(1, n).Select(i => (long)i).ToArray() }
                    : throw new ArgumentException($"--seeds {n}: at least 1");
            if (parse.GetValue(modelSeeds) is { } m) options = options with { ModelSeeds = m };   // checked by StudyOptions.Validated
            if (parse.GetValue(train) is { } t) options = options with { TrainProblems = t };
            if (parse.GetValue(heldout) is { } h) options = options with { HeldoutProblems = h };
            if (parse.GetValue(methods) is { } list)
                options = options with
                {
                    Methods = list.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)
                        .Select(name => Trd.Core.Methods.TryOfConfigName(name)
                            ?? throw new ArgumentException($"--methods: unknown method '{name}' (expected some of {string.Join(", ", Trd.Runtime.Pipeline.RecipeNames.All)})"))
                        .ToArray(),
                };
            var plan = isGrid ? GridPlan.Parse(options, gridArguments) : null;   // every knob and cell checked before anything is written
            // On the console: the models, the study's own progress and the verdicts; every pipeline's lines go to the log.
            var terminal = new Terminal(parse.GetValue(verbose), line => !line.StartsWith("gym ", StringComparison.Ordinal));
            var log = new RunLog(directory, terminal);
            var started = DateTime.UtcNow;
            if (plan is not null)
            {
                var gridResults = new GymGrid(plan, log.Line, StudyProgress(terminal)).Run((cell, cellResults) =>
                {
                    var cellReport = writeReport?.Invoke(cellResults, plan.CellDirectory(cell));
                    Console.WriteLine($"cell {cell}: " + (cellReport ?? Path.Combine(plan.CellDirectory(cell), StudyResults.FileName)));
                });
                Console.WriteLine(Terminal.GridTable(gridResults));
                var gridReport = writeGridReport?.Invoke(gridResults, directory);
                Console.WriteLine($"grid finished in {Terminal.Duration(DateTime.UtcNow - started)}: {Path.Combine(directory, GridResults.FileName)}");
                if (gridReport is not null) Console.WriteLine($"report: {gridReport}");
                return;
            }
            var results = new GymStudy(options, log.Line, StudyProgress(terminal)).Run();
            Console.WriteLine(Terminal.VerdictTable(results.Claims));
            var report = writeReport?.Invoke(results, directory);   // from the results in memory; `trd report` rebuilds it from results.json
            Console.WriteLine($"study finished in {Terminal.Duration(DateTime.UtcNow - started)}: {Path.Combine(directory, StudyResults.FileName)}");
            if (report is not null) Console.WriteLine($"report: {report}");
        }));
        return command;
    }

    /// <summary><c>trd report --study DIR</c>: report.html rebuilt from the study's results.json (the artefact).</summary>
    public static Command Report(Func<string, string> writeReport)
    {
        var study = new Option<DirectoryInfo>("--study", "-s") { Description = "The study directory holding results.json, or a grid's holding grid-results.json.", Required = true };
        var command = new Command("report", "Rebuild report.html from a study's results.json or a grid's grid-results.json (checked against the results schema).") { study };
        Cli.Examples(command, "trd report --study runs/study", "trd report --study runs/grid       # a grid: the heatmaps and the prediction");
        command.SetAction(parse => Cli.Guard(() => Console.WriteLine($"report: {writeReport(parse.GetRequiredValue(study).FullName)}")));
        return command;
    }

    /// <summary>
    /// The study's progress: the study's own units with the overall ETA (the pipelines' stages are detail). On a terminal
    /// one line in place; redirected, a line at each tenth of the plan (all of them with --verbose).
    /// </summary>
    static IProgressSink StudyProgress(Terminal terminal)
    {
        var inner = terminal.Verbose ? new ConsoleProgressSink(Console.Error) : terminal.Progress();
        var tenths = -1L;
        return new Filter(update =>
        {
            if (update.Stage != "study" && !terminal.Verbose) return;
            if (Terminal.Interactive || terminal.Verbose) { inner.Report(update); return; }
            var tenth = update.Total > 0 ? update.Done * 10 / update.Total : 0;
            if (tenth == Interlocked.Exchange(ref tenths, tenth)) return;
            Console.Error.WriteLine(ConsoleProgressSink.Format(update));
        });
    }

    sealed class Filter(Action<ProgressUpdate> report) : IProgressSink
    {
        public void Report(ProgressUpdate update) => report(update);
    }

    /// <summary>Log lines to logs/study.log in the study directory, and to the console as the terminal decides.</summary>
    sealed class RunLog(string directory, Terminal terminal)
    {
        readonly string _path = Path.Combine(directory, "logs", "study.log");

        public void Line(string message)
        {
            terminal.Line(message);
            Directory.CreateDirectory(Path.GetDirectoryName(_path)!);
            File.AppendAllText(_path, $"{DateTime.UtcNow:O} {message}\n");
        }
    }
}
