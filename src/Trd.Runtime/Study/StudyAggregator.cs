using System.Text.Json;
using Trd.Core;
using Trd.Runtime.Data;
using Trd.Runtime.Logging;
using Trd.Runtime.Pipeline;
using Trd.Runtime.Tokenization;

namespace Trd.Runtime.Study;

/// <summary>
/// Turns a study directory's run artefacts into results.json: the raw evaluation samples into Avg@K, Pass@K, changes
/// from base, bucket scores and pass@k curves (bootstrap over seeds and problems — model seeds, then seeds, then problems
/// when the study trained several pairs of models — paired where compared);
/// the training logs into Fig. 3's series; the corpora into the trajectory analysis; and all of them into the claim
/// verdicts. It reads the run files, so a finished study can be re-aggregated (and checked) at any time; the study that
/// has just evaluated its runs passes what the evaluations computed (<see cref="EvalSummary"/> with its outcomes) and
/// those are not read again.
/// </summary>
public sealed class StudyAggregator
{
    readonly string _directory;
    readonly StudyOptions _options;
    readonly ITokenizer _tokenizer;
    readonly string[] _heldout;
    readonly StudyUnit[] _units;
    readonly int[] _groups;     // the model seed of each unit: the bootstrap's top level
    readonly Dictionary<string, IReadOnlyDictionary<string, bool[]>> _evaluated;   // samples file → verdicts per problem

    /// <summary>
    /// An aggregator over a study directory; the tokenizer measures y*'s length. <paramref name="evaluated"/>: summaries
    /// this process computed, whose outcomes stand for their samples files.
    /// </summary>
    public StudyAggregator(string directory, StudyOptions options, ITokenizer tokenizer, IEnumerable<EvalSummary>? evaluated = null)
    {
        _evaluated = (evaluated ?? []).SelectMany(s => s.Datasets)
            .Where(d => d.Outcomes is not null && d.SamplesPath is not null)
            .ToDictionary(d => Path.GetFullPath(d.SamplesPath!), d => d.Outcomes!);
        _directory = Path.GetFullPath(directory);
        _options = options;
        _tokenizer = tokenizer;
        _heldout = ProblemSet.Load(Path.Combine(_directory, "problems", "heldout.jsonl")).Select(p => p.Id).ToArray();
        _units = options.Units;
        // One model seed: every unit its own group, which draws exactly what the two-level bootstrap always drew.
        _groups = options.ModelSeeds == 1 ? Enumerable.Range(0, _units.Length).ToArray() : _units.Select(u => u.ModelSeed).ToArray();
    }

    Interval Mean(double[][] values) => Bootstrap.MeanNested(_groups, values);
    Interval Difference(double[][] a, double[][] b) => Bootstrap.DifferenceNested(_groups, a, b);

    /// <summary>A model directory's tokenizer.</summary>
    public static ITokenizer LoadTokenizer(string modelDirectory) => Qwen3Tokenizer.FromDirectory(modelDirectory);

    string Relative(string path) => Path.GetRelativePath(_directory, path).Replace('\\', '/');

    /// <summary>The outcomes [unit][problem][sample] of one model, in held-out order, and the files they came from.</summary>
    (bool[][][] Outcomes, string[] Sources) Outcomes(Func<StudyUnit, string> runDirectory, string model)
    {
        var outcomes = new List<bool[][]>();
        var sources = new List<string>();
        foreach (var unit in _units)
        {
            var path = Path.GetFullPath(Path.Combine(runDirectory(unit), "eval", model, "heldout.jsonl"));
            if (!_evaluated.TryGetValue(path, out var verdicts))
            {
                if (!File.Exists(path)) throw new FileNotFoundException($"{path}: missing evaluation (run the study again to finish it)", path);
                verdicts = RecordFile.ReadUnique<EvalRecord>(path, r => r.Id, _ => { }).ToDictionary(r => r.Id, r => r.Samples.Select(s => s.Correct).ToArray());
            }
            outcomes.Add(_heldout.Select(id => verdicts.TryGetValue(id, out var v) ? v
                : throw new InvalidDataException($"{path}: no samples for held-out problem {id}")).ToArray());
            sources.Add(Relative(path));
        }
        return (outcomes.ToArray(), sources.ToArray());
    }

    static double[][] Avg(bool[][][] o) => o.Select(seed => seed.Select(p => p.Average(x => x ? 1.0 : 0.0)).ToArray()).ToArray();
    static double[][] Pass(bool[][][] o) => o.Select(seed => seed.Select(p => p.Contains(true) ? 1.0 : 0.0).ToArray()).ToArray();
    static Estimate E(Interval i) => new(i.Mean, i.Low, i.High, i.Seeds, i.Problems);
    static double[][] Where(double[][] values, bool[][] keep) => values.Select((row, s) => row.Where((_, q) => keep[s][q]).ToArray()).ToArray();

    sealed record ModelOutcomes(string Id, bool[][][] Outcomes, string[] Sources)
    {
        public double[][] Avg => StudyAggregator.Avg(Outcomes);
        public double[][] Pass => StudyAggregator.Pass(Outcomes);
    }

    /// <summary>Aggregates everything into results.json's records (not written).</summary>
    public StudyResults Aggregate(StudyInfo info)
    {
        var rows = new List<ResultRow>();
        var diagnostics = new List<DiagnosticRun>();
        var trajectories = new List<TrajectoryAnalysis>();
        var subsets = _options.Subsets ? new List<SubsetRow>() : null;
        var claims = new List<ClaimResult>();
        var best = new List<BestBaselineGap>();
        var checks = new List<ObjectiveCheck>();
        var reference = (Func<StudyUnit, string>)(unit => GymStudy.ReferenceDirectory(_directory, unit));
        var (baseOutcomes, baseSources) = Outcomes(reference, TrdPipeline.BaseModelName);
        var baseModel = new ModelOutcomes("base", baseOutcomes, baseSources);
        var buckets = Metrics.Buckets(_options.K);
        var basePassCounts = baseOutcomes.Select(seed => seed.Select(p => p.Count(x => x)).ToArray()).ToArray();
        bool[][] Members(DifficultyBucket b) => basePassCounts.Select(seed => seed.Select(c => c >= b.Low && c <= b.High).ToArray()).ToArray();

        ResultRow Row(Setting setting, ModelOutcomes m, string? trajectory)
        {
            var isBase = m.Id == "base";
            var bucketRows = buckets.Select(b =>
            {
                var members = Members(b);
                return new BucketEstimate(b.Label, members.Average(s => (double)s.Count(x => x)),
                    E(Mean(Where(m.Avg, members))), E(Mean(Where(m.Pass, members))));
            }).ToArray();
            var curves = m.Outcomes.Select(Metrics.PassAtKCurve).ToArray();                       // [unit][k − 1]
            var curve = Enumerable.Range(0, _options.K).Select(k => curves.Average(c => c[k])).ToArray();
            var perSeed = m.Outcomes.Select((seed, s) => new SeedScore(_units[s].Seed, Metrics.AvgAtK(seed), Metrics.PassAtK(seed), m.Sources[s])
                { ModelSeed = _units[s].ModelSeed }).ToArray();
            return new ResultRow(setting.ConfigName, m.Id, Methods.Label(m.Id), trajectory, E(Mean(m.Avg)), E(Mean(m.Pass)),
                isBase ? null : E(Difference(m.Avg, baseModel.Avg)), isBase ? null : E(Difference(m.Pass, baseModel.Pass)),
                bucketRows, curve, perSeed);
        }

        foreach (var setting in _options.Settings)
        {
            rows.Add(Row(setting, baseModel, null));
            if (setting == Setting.Opd)
            {
                var (o, s) = Outcomes(reference, GymStudy.TeacherModelName);
                rows.Add(Row(setting, new ModelOutcomes("teacher", o, s), null));
            }
            var methods = new Dictionary<string, ModelOutcomes>();
            foreach (var method in _options.Methods)
            {
                var (o, s) = Outcomes(unit => GymStudy.MethodDirectory(_directory, unit, setting, method), TrdPipeline.TrainedModelName);
                methods[method.Id] = new ModelOutcomes(method.Id, o, s);
                rows.Add(Row(setting, methods[method.Id], Methods.RecipeOf(method, setting).Trajectory.ToString()));
                diagnostics.Add(Diagnostics(setting, method));
            }
            best.AddRange(BestBaseline(setting, methods));
            checks.AddRange(_options.Methods.Select(m => Check(setting, m)));
            var corpus = Corpus(setting);
            trajectories.Add(corpus.Analysis);
            claims.AddRange(Claims(setting, methods, baseModel, diagnostics.Where(d => d.Setting == setting.ConfigName).ToList(), corpus, Members));
            if (subsets is not null && setting == Setting.Opsd)
                foreach (var method in GymStudy.SubsetMethods.Where(_options.Methods.Contains))
                    foreach (var filter in GymStudy.SubsetFilters)
                    {
                        var (o, s) = Outcomes(unit => GymStudy.MethodDirectory(_directory, unit, setting, method, filter), TrdPipeline.TrainedModelName);
                        var m = new ModelOutcomes(method.Id, o, s);
                        var full = methods[method.Id];
                        var examples = _units.Sum(unit => ExampleCount(GymStudy.MethodDirectory(_directory, unit, setting, method, filter)));
                        subsets.Add(new SubsetRow(setting.ConfigName, method.Id, CorpusAnalysis.FilterName(filter), examples, E(Mean(m.Avg)), E(Mean(m.Pass)),
                            E(Difference(m.Avg, full.Avg)), E(Difference(m.Pass, full.Pass)), s));
                    }
        }
        return new StudyResults(info, rows.ToArray(), diagnostics.ToArray(), trajectories.ToArray(), subsets?.ToArray(), claims.ToArray())
        {
            BestBaseline = best.ToArray(), ObjectiveChecks = checks.ToArray(),
            Gym = _options.Variant.IsDefault ? null : _options.Variant.Turned(),
            ModelCards = Cards(info),
        };
    }

    /// <summary>
    /// The cards of the study's models (student and teacher of every model seed), read from the model cache where
    /// info.Models names them; null when the cache does not hold them all (a study aggregated on another machine).
    /// </summary>
    ModelCardSummary[]? Cards(StudyInfo info)
    {
        var cards = new List<ModelCardSummary>();
        for (var m = 1; m <= info.ModelSeeds; m++)
            foreach (var role in new[] { "student", "teacher" })
            {
                if (!info.Models.TryGetValue(m == 1 ? role : $"{role}_{m}", out var name)) return null;
                var directory = Path.Combine(_options.CacheRoot, "gym", name);
                if (!File.Exists(Path.Combine(directory, "card.json"))) return null;
                var card = Gym.GymModels.ReadCard(directory);
                cards.Add(new ModelCardSummary(role, m, name, card.SolveAccuracy, card.RefineAccuracy, card.RefineWithReferenceAccuracy));
            }
        return cards.ToArray();
    }

    /// <summary>
    /// The paper's dense-KL baselines among the methods run: its claims are against them, so shaped methods run beside
    /// them are reported but not counted.
    /// </summary>
    static ModelOutcomes[] PaperBaselines(Dictionary<string, ModelOutcomes> methods) =>
        methods.Values.Where(m => m.Id != Methods.Trd.Id && Methods.All.Any(p => p.Id == m.Id)).ToArray();

    /// <summary>TRD − the best baseline (highest mean) on Avg@K and on Pass@K, with the per-problem differences.</summary>
    IEnumerable<BestBaselineGap> BestBaseline(Setting setting, Dictionary<string, ModelOutcomes> methods)
    {
        var trd = methods[Methods.Trd.Id];
        var baselines = PaperBaselines(methods);
        if (baselines.Length == 0) yield break;
        foreach (var (metric, values) in new (string, Func<ModelOutcomes, double[][]>)[] { ("avg_at_k", m => m.Avg), ("pass_at_k", m => m.Pass) })
        {
            var top = baselines.MaxBy(b => values(b).SelectMany(x => x).Average())!;
            var a = values(trd);
            var b = values(top);
            var d = a.Select((row, s) => row.Select((x, q) => x - b[s][q]).ToArray()).ToArray();
            yield return new BestBaselineGap(setting.ConfigName, metric, top.Id, E(Difference(a, b)), _groups, d);
        }
    }

    /// <summary>One method's clip fraction and dropped top-K teacher mass (mean over steps, intervals over units and steps).</summary>
    ObjectiveCheck Check(Setting setting, ComparisonRow method)
    {
        var clip = MetricValues(setting, method, "clip_fraction");
        var outside = MetricValues(setting, method, "teacher_mass_outside_topk");
        var k = MetricValues(setting, method, "topk_mass_k").SelectMany(x => x).Select(x => (int)x).DefaultIfEmpty(0).Max();
        return new ObjectiveCheck(setting.ConfigName, method.Id, E(Mean(clip)), outside.Any(u => u.Length > 0) ? E(Mean(outside)) : null, k);
    }

    static int ExampleCount(string runDirectory)
    {
        var path = Path.Combine(runDirectory, "train", "examples.json");
        using var document = JsonDocument.Parse(File.ReadAllText(path));
        return document.RootElement.GetProperty("Refined").GetInt32() + document.RootElement.GetProperty("Rollout").GetInt32();
    }

    /// <summary>The Fig. 3 metrics logged per optimiser step.</summary>
    public static readonly string[] DiagnosticMetrics = ["kl_correct", "kl_incorrect", "ppl_gap", "ppl_student", "ppl_teacher", "epistemic_mass", "loss"];

    /// <summary>Per-unit values of one metric of one method's training log (NaN steps dropped).</summary>
    double[][] MetricValues(Setting setting, ComparisonRow method, string metric) => _units.Select(unit =>
        MetricsLog.Read(Path.Combine(GymStudy.MethodDirectory(_directory, unit, setting, method), "train", "metrics.jsonl")).Records
            .Select(r => r.Values.TryGetValue(metric, out var v) ? v ?? double.NaN : double.NaN).Where(double.IsFinite).ToArray()).ToArray();

    DiagnosticRun Diagnostics(Setting setting, ComparisonRow method)
    {
        var paths = _units.Select(unit => Path.Combine(GymStudy.MethodDirectory(_directory, unit, setting, method), "train", "metrics.jsonl")).ToArray();
        var logs = paths.Select(p => File.Exists(p) ? MetricsLog.Read(p).Records : throw new FileNotFoundException($"{p}: missing training log", p)).ToArray();
        var series = new Dictionary<string, Series>();
        foreach (var metric in DiagnosticMetrics)
        {
            var steps = logs.Min(l => l.Count);
            var columns = Enumerable.Range(0, steps).Select(i => logs.Select(l => l[i].Values.TryGetValue(metric, out var v) ? v ?? double.NaN : double.NaN)
                .Where(double.IsFinite).ToArray()).ToArray();
            series[metric] = new Series(Enumerable.Range(0, steps).Select(i => logs[0][i].Step ?? i).ToArray(),
                columns.Select(c => c.Length == 0 ? double.NaN : c.Average()).ToArray(),
                columns.Select(c => c.Length == 0 ? double.NaN : c.Min()).ToArray(),
                columns.Select(c => c.Length == 0 ? double.NaN : c.Max()).ToArray());
        }
        return new DiagnosticRun(setting.ConfigName, method.Id, method.Label, Methods.RecipeOf(method, setting).Trajectory.ToString(), series, paths.Select(Relative).ToArray());
    }

    sealed record CorpusData(TrajectoryAnalysis Analysis, double[][] YOLength, double[][] YRLength, double[][] YOCorrect, double[][] YRCorrect);

    CorpusData Corpus(Setting setting)
    {
        var yo = new List<RolloutRecord[]>();
        var yr = new List<Dictionary<string, RefinementRecord>>();
        var sources = new List<string>();
        foreach (var unit in _units)
        {
            var store = CorpusStore.Open(Path.Combine(GymStudy.CorpusDirectory(_directory, unit, setting), "corpus"));
            yo.Add(store.ReadRollouts().OrderBy(r => r.Id, StringComparer.Ordinal).ToArray());
            yr.Add(store.ReadRefinements().ToDictionary(r => r.Id));
            sources.Add(Relative(store.PathOf(CorpusStore.RolloutsStage)));
            sources.Add(Relative(store.PathOf(CorpusStore.RefinementsStage)));
        }
        // Everything about y_r is over the problems whose refinement produced one (TrdPipeline.Analyze counts the same
        // way): a refinement refused for its prompt's length has no y_r to measure or pair with y_o.
        var paired = yo.Select((seed, s) => seed.Where(r => yr[s].TryGetValue(r.Id, out var f) && f.HasRefinedTrajectory).ToArray()).ToArray();
        double[][] Column(Func<int, RolloutRecord, double> value) => paired.Select((seed, s) => seed.Select(r => value(s, r)).ToArray()).ToArray();
        var yoCorrect = Column((_, r) => r.YOCorrect ? 1.0 : 0.0);
        var yrCorrect = Column((s, r) => yr[s][r.Id].YRCorrect ? 1.0 : 0.0);
        var yoLength = Column((_, r) => r.YOTokenCount);
        var yrLength = Column((s, r) => yr[s][r.Id].YRTokenCount);
        var all = yo.SelectMany((seed, s) => seed.Select(r => (Seed: s, Record: r))).ToArray();
        var refined = paired.SelectMany((seed, s) => seed.Select(r => (Record: r, Refinement: yr[s][r.Id]))).ToArray();
        var star = yo[0].Select(r => r.Solution ?? "").ToArray();

        // Core's summary (interpolated quantiles, as analysis.json), with the values kept for the report's histograms.
        static LengthStats Lengths(IEnumerable<int> values)
        {
            var v = values.OrderBy(x => x).ToArray();
            if (v.Length == 0) return new LengthStats(0, double.NaN, double.NaN, double.NaN, double.NaN, v);
            var summary = CorpusAnalysis.Summarise(v);
            return new LengthStats(v.Length, summary.Mean, summary.Median, summary.P10, summary.P90, v);
        }
        var lengths = new Dictionary<string, LengthStats>
        {
            ["y_star"] = Lengths(star.Select(y => CorpusAnalysis.ReferenceLength(_tokenizer.Encode(y).Length))),
            ["y_o"] = Lengths(all.Select(x => x.Record.YOTokenCount)),
            ["y_o_correct"] = Lengths(all.Where(x => x.Record.YOCorrect).Select(x => x.Record.YOTokenCount)),
            ["y_o_incorrect"] = Lengths(all.Where(x => !x.Record.YOCorrect).Select(x => x.Record.YOTokenCount)),
            ["y_r"] = Lengths(refined.Select(x => x.Refinement.YRTokenCount)),
            ["y_r_correct"] = Lengths(refined.Where(x => x.Refinement.YRCorrect).Select(x => x.Refinement.YRTokenCount)),
            ["y_r_incorrect"] = Lengths(refined.Where(x => !x.Refinement.YRCorrect).Select(x => x.Refinement.YRTokenCount)),
        };
        var accuracy = new Dictionary<string, Estimate>
        {
            ["y_star"] = E(Bootstrap.Mean([yo[0].Select(r => Verifier.Verify(r.Solution ?? "", r.Answer) ? 1.0 : 0.0).ToArray()])),
            ["y_o"] = E(Mean(yo.Select(seed => seed.Select(r => r.YOCorrect ? 1.0 : 0.0).ToArray()).ToArray())),
            ["y_r"] = E(Mean(yrCorrect)),
        };
        var counts = CorpusAnalysis.Joint(refined.Select(x => new TrajectoryOutcome(x.Record.Id, x.Record.YOCorrect, x.Refinement.YRCorrect)).ToArray());
        var joint = new JointCounts(counts.PassPass, counts.PassFail, counts.FailPass, counts.FailFail);
        return new CorpusData(new TrajectoryAnalysis(setting.ConfigName, lengths, accuracy, joint, sources.ToArray()), yoLength, yrLength, yoCorrect, yrCorrect);
    }

    IEnumerable<ClaimResult> Claims(Setting setting, Dictionary<string, ModelOutcomes> methods, ModelOutcomes baseModel,
        List<DiagnosticRun> runs, CorpusData corpus, Func<DifficultyBucket, bool[][]> members)
    {
        var name = setting.ToString();
        ClaimResult Result(string id, string claim, ClaimOutcome o) => new(id, setting.ConfigName, claim, o.Verdict.Text, o.Measured, o.Rule);
        var trd = methods[Methods.Trd.Id];
        var baselines = PaperBaselines(methods);
        var k = _options.K;
        yield return Result("trd_beats_baselines", $"{name}: TRD ≥ the dense-KL baselines on Avg@{k} and Pass@{k} (Tables 1–4)",
            Trd.Core.Claims.TrdBeatsBaselines(baselines.SelectMany(b => new[]
            {
                new BaselineGap(Methods.Label(b.Id), $"Avg@{k}", Difference(trd.Avg, b.Avg)),
                new BaselineGap(Methods.Label(b.Id), $"Pass@{k}", Difference(trd.Pass, b.Pass)),
            }).ToArray()));

        // The y_o side of the Fig. 3 claims: Forward KL (TRD's objective along y_o) when it ran, else the first baseline.
        var yoMethod = _options.Methods.Contains(Methods.ForwardKl) ? Methods.ForwardKl : _options.Methods.First(m => m != Methods.Trd);
        Interval Metric(ComparisonRow method, string metric) => Mean(MetricValues(setting, method, metric));
        var yoLabel = yoMethod.Label;
        yield return Result("d_incorrect_near_zero", $"{name}: D^incorrect ≈ 0 on y_o — the teacher collapses onto the student's failure ({yoLabel} on y_o vs TRD on y_r; §4.3, Fig. 3 left)",
            Trd.Core.Claims.IncorrectKlNearZero(Metric(yoMethod, "kl_incorrect"), Metric(Methods.Trd, "kl_incorrect")));
        yield return Result("ppl_gap_opens", $"{name}: the PPL gap PPL_S − PPL_T opens on y_r ({yoLabel} on y_o vs TRD on y_r; Fig. 3 middle)",
            Trd.Core.Claims.PplGapOpens(Metric(yoMethod, "ppl_gap"), Metric(Methods.Trd, "ppl_gap")));
        yield return Result("epistemic_mass_lower", $"{name}: the teacher's epistemic-token mass is lower on y_r than on y_o ({yoLabel} vs TRD; Fig. 3 right)",
            Trd.Core.Claims.EpistemicMassLower(Metric(yoMethod, "epistemic_mass"), Metric(Methods.Trd, "epistemic_mass")));
        yield return Result("refined_shorter_more_correct", $"{name}: y_r is shorter and more often correct than y_o (§6.5, Fig. 5 left, App. B.1)",
            Trd.Core.Claims.RefinedShorterAndMoreCorrect(Difference(corpus.YRLength, corpus.YOLength), Difference(corpus.YRCorrect, corpus.YOCorrect)));
        var j = corpus.Analysis.Joint;
        var recovered = corpus.YOCorrect.Select((seed, s) => seed.Select((yo, q) => (yo == 0 && corpus.YRCorrect[s][q] == 1 ? 1.0 : 0.0)
            - (yo == 1 && corpus.YRCorrect[s][q] == 0 ? 1.0 : 0.0)).ToArray()).ToArray();
        yield return Result("fail_to_pass_dominates", $"{name}: fail→pass refinements far outnumber pass→fail (App. B.1, Figs. 6–7)",
            Trd.Core.Claims.FailToPassDominates(j.FailPass, j.PassFail, j.PassPass + j.PassFail + j.FailPass + j.FailFail, Mean(recovered)));
        var buckets = Metrics.Buckets(k);
        BucketGain[] Gains(Func<ModelOutcomes, double[][]> metric) => buckets.Select(b =>
            new BucketGain(b.Label, Difference(Where(metric(trd), members(b)), Where(metric(baseModel), members(b))))).ToArray();
        yield return Result("gains_hardest_bucket", $"{name}: TRD's gains over base concentrate on the hardest bucket {buckets[0].Label} (App. B.2, Fig. 8)",
            Trd.Core.Claims.GainsOnHardestBucket(Gains(m => m.Pass), Gains(m => m.Avg)));
    }
}
