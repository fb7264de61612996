using System.Text.Json;
using System.Text.Json.Serialization;
using Trd.Core;
using Trd.Runtime.Data;

namespace Trd.Runtime.Pipeline;

/// <summary>Length and verifier accuracy of one kind of trajectory over the corpus.</summary>
public sealed record TrajectoryStats(
    [property: JsonPropertyName("trajectory")] string Trajectory,
    [property: JsonPropertyName("count")] int Count,
    [property: JsonPropertyName("accuracy")] double Accuracy,
    [property: JsonPropertyName("lengths")] LengthSummary Lengths,
    [property: JsonPropertyName("histogram_edges")] double[] HistogramEdges,
    [property: JsonPropertyName("histogram_counts")] int[] HistogramCounts);

/// <summary>The corpus analysis (§6.5, App. B.1, B.3).</summary>
public sealed record CorpusReport(
    [property: JsonPropertyName("records")] int Records,
    [property: JsonPropertyName("trajectories")] TrajectoryStats[] Trajectories,
    [property: JsonPropertyName("joint")] JointOutcome? Joint,
    [property: JsonPropertyName("status")] Dictionary<string, int> Status,
    [property: JsonPropertyName("subsets")] Dictionary<string, int> Subsets);

public sealed partial class TrdPipeline
{
    /// <summary>analysis.json: the report's indented form, Core's records (lengths, joint outcome) in snake_case like the rest.</summary>
    static readonly System.Text.Json.JsonSerializerOptions AnalysisJson = new(RunJson.Indented) { PropertyNamingPolicy = System.Text.Json.JsonNamingPolicy.SnakeCaseLower };

    /// <summary>
    /// Lengths (in student tokens; y* with the end-of-turn token, as y_o and y_r are counted) and verifier accuracy of
    /// y*, y_o and y_r; the 2×2 joint outcome of y_o and y_r; the refinement statuses; the size of each subset filter.
    /// Everything about y_r is over the refinements that produced one (<see cref="RefinementRecord.HasRefinedTrajectory"/>),
    /// as the study's results.json counts it. Written to <c>analysis/analysis.json</c>; the
    /// corpus is also exported to <c>corpus/corpus.parquet</c> in verl's layout (along y_r when refined, else y_o).
    /// </summary>
    public CorpusReport Analyze()
    {
        var store = CorpusStore.Open(CorpusDirectory);
        var rollouts = store.ReadRollouts();
        if (rollouts.Count == 0) throw new InvalidOperationException($"{CorpusDirectory}: no rollouts to analyse; run the rollout stage first");
        var refinements = store.ReadRefinements().ToDictionary(r => r.Id);
        var tokenizer = StudentTokenizer;
        var stats = new List<TrajectoryStats>();
        TrajectoryStats Stats(string name, int[] lengths, bool[] correct)
        {
            var histogram = CorpusAnalysis.Histogram(lengths, 20);
            return new TrajectoryStats(name, lengths.Length, CorpusAnalysis.Accuracy(correct), CorpusAnalysis.Summarise(lengths), histogram.Edges, histogram.Counts);
        }
        var withReference = rollouts.Where(r => !string.IsNullOrEmpty(r.Solution)).ToArray();
        if (withReference.Length > 0)
            stats.Add(Stats("y*", withReference.Select(r => CorpusAnalysis.ReferenceLength(tokenizer.Encode(r.Solution!).Length)).ToArray(),
                withReference.Select(r => Verifier.Verify(r.Solution!, r.Answer)).ToArray()));
        stats.Add(Stats("y_o", rollouts.Select(r => r.YOTokenCount).ToArray(), rollouts.Select(r => r.YOCorrect).ToArray()));
        var refined = rollouts.Where(r => refinements.ContainsKey(r.Id)).ToArray();
        JointOutcome? joint = null;
        var subsets = new Dictionary<string, int>();
        if (refined.Length > 0)
        {
            var outcomes = refined.Select(r => new TrajectoryOutcome(r.Id, r.YOCorrect, refinements[r.Id].YRCorrect)).ToArray();
            var usable = refined.Select(r => refinements[r.Id]).Where(f => f.HasRefinedTrajectory).ToArray();
            stats.Add(Stats("y_r", usable.Select(f => f.YRTokenCount).ToArray(), usable.Select(f => f.YRCorrect).ToArray()));
            joint = CorpusAnalysis.Joint(outcomes.Where(o => refinements[o.Id].HasRefinedTrajectory).ToArray());
            foreach (var filter in CorpusAnalysis.Filters)
                subsets[CorpusAnalysis.FilterName(filter)] = CorpusAnalysis.Select(filter, outcomes).Length;
        }
        var status = refinements.Values.GroupBy(f => f.Status).ToDictionary(g => g.Key, g => g.Count());
        var report = new CorpusReport(rollouts.Count, stats.ToArray(), joint, status, subsets);
        Checkpoints.AtomicFile.Write(Path.Combine(AnalysisDirectory, "analysis.json"), s => JsonSerializer.Serialize(s, report, AnalysisJson));
        VerlExport.Write(Path.Combine(SharesCorpus ? AnalysisDirectory : CorpusDirectory, "corpus.parquet"),
            rollouts.Select(r => (r, refinements.TryGetValue(r.Id, out var f) ? f : null)), refined.Length > 0 ? Trajectory.Refined : Trajectory.Rollout);
        _log($"analyze: {rollouts.Count} records; y_o accuracy {stats.First(s => s.Trajectory == "y_o").Accuracy:P1}" +
             (joint is { } j ? $"; y_r accuracy {stats.First(s => s.Trajectory == "y_r").Accuracy:P1}; fail→pass {j.FailPass}, pass→fail {j.PassFail}" : "") +
             $" → {AnalysisDirectory}");
        return report;
    }
}
