using Trd.Core;
using Trd.Runtime.Gym;
using Trd.Runtime.Logging;
using Trd.Runtime.Pipeline;

namespace Trd.Runtime.Study;

/// <summary>
/// <c>trd study --grid</c> (docs/study.md, "The grid"): the study in every cell of a grid of gym variants, then
/// grid-results.json — where TRD stands against the best baseline in each cell, the mechanism's diagnostics, and the
/// prediction that TRD's advantage grows as the teacher collapses onto failures and as recovery gets longer.
/// Each cell is an ordinary study directory (cells/&lt;variant&gt;/), so the grid resumes cell by cell and run by run;
/// models are shared through the cache (a cell that changes only the teacher reuses the student), and OPSD, which
/// never uses the OPD teacher, runs once per student (<see cref="GridPlan.SettingsOf"/>).
/// </summary>
public sealed class GymGrid
{
    readonly GridPlan _plan;
    readonly Action<string> _log;
    readonly IProgressSink? _progress;

    /// <summary>A grid over a validated plan.</summary>
    public GymGrid(GridPlan plan, Action<string>? log = null, IProgressSink? progress = null)
    {
        _plan = (plan ?? throw new ArgumentNullException(nameof(plan))).Validated();
        _log = log ?? (_ => { });
        _progress = progress;
    }

    /// <summary>
    /// Runs (or resumes) every cell, calling <paramref name="cellDone"/> with each cell's results as it finishes (the
    /// CLI writes the cell's report), then aggregates and writes grid-results.json. Returns the grid's results.
    /// </summary>
    public GridResults Run(Action<GymVariant, StudyResults>? cellDone = null)
    {
        var root = _plan.Base.Directory;
        using var held = RunLock.Acquire(root, _plan.Base.Command, _log);
        _plan.Record();
        var started = DateTime.UtcNow;
        var cells = _plan.Cells;
        var results = new Dictionary<GymVariant, StudyResults>();
        for (var i = 0; i < cells.Length; i++)
        {
            var cell = cells[i];
            _log($"grid cell {i + 1}/{cells.Length}: {cell} ({string.Join(", ", _plan.SettingsOf(cell).Select(s => s.ConfigName))})");
            results[cell] = new GymStudy(_plan.OptionsOf(cell), _log, _progress).Run();
            cellDone?.Invoke(cell, results[cell]);
        }
        var manifest = RunManifest.Capture(_plan.Base.Command, _plan.ToJson(), _plan.Base.Seeds[0], TorchSharp.torch.CPU, root);
        var versions = manifest.VersionsWithGit();
        var info = new GridInfo(_plan.Base.Command, _plan.Base.Quick, _plan.Axes, _plan.Base.Seeds, _plan.Base.ModelSeeds, _plan.Base.TrainProblems,
            _plan.Base.HeldoutProblems, _plan.Base.K, _plan.Base.Settings.Select(s => s.ConfigName).ToArray(),
            $"{manifest.OperatingSystem}, {manifest.ProcessorCount} cores, {manifest.Runtime}, cpu", started, (DateTime.UtcNow - started).TotalSeconds, versions);
        var grid = Aggregate(_plan, info, results);
        grid.Write(root);
        return grid;
    }

    /// <summary>The grid's results from its cells' results (in memory, or read back from each cell's results.json).</summary>
    public static GridResults Aggregate(GridPlan plan, GridInfo info, IReadOnlyDictionary<GymVariant, StudyResults> results)
    {
        var cells = plan.Cells.Select(cell =>
        {
            var own = results[cell];
            var settings = plan.Base.Settings.Select(setting =>
            {
                var source = setting == Setting.Opsd ? plan.OpsdSource(cell) : cell;
                return Summarise(results[source], setting, source.Folder);
            }).ToArray();
            var (student, teacher) = plan.OptionsOf(cell).ModelsOf(1);
            return new GridCell(cell.ToString(), cell.Folder, cell.Turned(), $"{student.Name}-{student.Key}", $"{teacher.Name}-{teacher.Key}",
                own.ModelCards ?? [], settings);
        }).ToArray();
        return new GridResults(info, cells, Predictions(plan, results).ToArray());
    }

    static GridCellSetting Summarise(StudyResults r, Setting setting, string source)
    {
        var name = setting.ConfigName;
        BestBaselineGap Best(string metric) => r.BestBaseline?.SingleOrDefault(b => b.Setting == name && b.Metric == metric)
            ?? throw new InvalidDataException($"{source}: results.json has no best-baseline gap for {name} {metric} (rerun the grid to re-aggregate it)");
        ResultRow Row(string model) => r.Rows.Single(x => x.Setting == name && x.Model == model);
        double MeanOf(string method, string metric) =>
            r.Diagnostics.SingleOrDefault(d => d.Setting == name && d.Method == method)?.Metrics.GetValueOrDefault(metric) is { } series
                ? series.Mean.Where(double.IsFinite).DefaultIfEmpty(double.NaN).Average() : double.NaN;
        var yoMethod = r.Study.Methods.Contains(Methods.ForwardKl.Id) ? Methods.ForwardKl.Id : r.Study.Methods.First(m => m != Methods.Trd.Id);
        var trajectories = r.Trajectories.Single(t => t.Setting == name);
        double? Check(string method, Func<ObjectiveCheck, Estimate?> value) =>
            r.ObjectiveChecks?.SingleOrDefault(c => c.Setting == name && c.Method == method) is { } c && value(c) is { } e ? e.Mean : null;
        var avg = Best("avg_at_k");
        var pass = Best("pass_at_k");
        return new GridCellSetting(name, source, avg.Baseline, avg.Gap, pass.Baseline, pass.Gap, Row("base").AvgAtK, Row(Methods.Trd.Id).AvgAtK,
            MeanOf(yoMethod, "kl_incorrect"), MeanOf(Methods.Trd.Id, "kl_incorrect"),
            MeanOf(yoMethod, "epistemic_mass"), MeanOf(Methods.Trd.Id, "epistemic_mass"),
            trajectories.Accuracy["y_o"], trajectories.Accuracy["y_r"], trajectories.Joint,
            Check(Methods.ForwardKlClip.Id, c => c.ClipFraction), Check(Methods.ReverseKlTopK.Id, c => c.TeacherMassOutsideTopK),
            r.Claims.Where(c => c.Setting == name).ToDictionary(c => c.Id, c => c.Verdict));
    }

    /// <summary>
    /// The prediction per axis it speaks to, setting and metric: for every group of cells equal but for the axis, the
    /// favoured end (the lowest catch rate; the longest recovery) against the other end. The catch axis is not judged
    /// in OPSD, whose runs do not use the OPD teacher.
    /// </summary>
    static IEnumerable<ClaimResult> Predictions(GridPlan plan, IReadOnlyDictionary<GymVariant, StudyResults> results)
    {
        var cells = plan.Cells;
        foreach (var setting in plan.Base.Settings)
            foreach (var axis in plan.Axes.Where(a => a.Knob is "catch" or "recovery"))
            {
                if (axis.Knob == "catch" && setting == Setting.Opsd) continue;
                // favoured end first: the lowest catch (the teacher collapses most), the longest recovery
                var ordered = axis.Knob == "catch"
                    ? axis.Values.OrderBy(v => double.Parse(v, System.Globalization.CultureInfo.InvariantCulture)).ToArray()
                    : axis.Values.OrderByDescending(v => Array.FindIndex(Recovery.All, r => r.ConfigName == v)).ToArray();
                var (favoured, other) = (ordered[0], ordered[^1]);
                var seen = new HashSet<string>();
                foreach (var cell in cells.Where(c => c.ValueOf(axis.Knob) == favoured))
                {
                    var partner = cell.With(axis.Knob, other);
                    var a = setting == Setting.Opsd ? plan.OpsdSource(cell) : cell;
                    var b = setting == Setting.Opsd ? plan.OpsdSource(partner) : partner;
                    if (!seen.Add(a.Folder + "|" + b.Folder)) continue;   // OPSD: cells sharing a student compare once
                    var rest = string.Join(" ", GymVariant.Knobs.Where(k => k != axis.Knob && (setting != Setting.Opsd || k != "catch"))
                        .Select(k => cell.ValueOf(k) is { } v ? $"{k}={v}" : null).Where(x => x is not null));
                    foreach (var metric in new[] { "avg_at_k", "pass_at_k" })
                    {
                        var ga = results[a].BestBaseline!.Single(g => g.Setting == setting.ConfigName && g.Metric == metric);
                        var gb = results[b].BestBaseline!.Single(g => g.Setting == setting.ConfigName && g.Metric == metric);
                        var contrast = Bootstrap.Contrast(ga.Groups, ga.Values, gb.Groups, gb.Values);
                        var label = metric == "avg_at_k" ? $"Avg@{plan.Base.K}" : $"Pass@{plan.Base.K}";
                        var comparison = $"{axis.Knob} {favoured} vs {other}" + (rest.Length > 0 ? $" ({rest})" : "");
                        var claim = axis.Knob == "catch"
                            ? $"{setting}: TRD's advantage over the best baseline grows as the teacher collapses onto the student's failures — {comparison}, {label}"
                            : $"{setting}: TRD's advantage over the best baseline grows as recovery gets longer — {comparison}, {label}";
                        var o = Trd.Core.Claims.AdvantageGrows(comparison, label, Interval(ga.Gap), Interval(gb.Gap), contrast);
                        yield return new ClaimResult($"advantage_grows_{axis.Knob}", setting.ConfigName, claim, o.Verdict.Text, o.Measured, o.Rule);
                    }
                }
            }
    }

    static Interval Interval(Estimate e) => new(e.Mean, e.Low, e.High, e.Seeds, e.Problems);
}
