using System.Text.Json;
using System.Text.Json.Serialization;

namespace Trd.Runtime.Study;

// grid-results.json: what `trd study --grid` measured in every cell, summarised from the cells' own results.json
// (each cell is a full study under cells/<variant>/, with its own report.html), and the mechanism's prediction judged
// across cells.

/// <summary>One setting of one cell: where TRD stands against the best baseline, and the mechanism's diagnostics.</summary>
public sealed record GridCellSetting(
    [property: JsonPropertyName("setting")] string Setting,
    [property: JsonPropertyName("source")] string Source,
    [property: JsonPropertyName("best_avg_baseline")] string BestAvgBaseline,
    [property: JsonPropertyName("gap_avg_at_k")] Estimate GapAvgAtK,
    [property: JsonPropertyName("best_pass_baseline")] string BestPassBaseline,
    [property: JsonPropertyName("gap_pass_at_k")] Estimate GapPassAtK,
    [property: JsonPropertyName("base_avg_at_k")] Estimate BaseAvgAtK,
    [property: JsonPropertyName("trd_avg_at_k")] Estimate TrdAvgAtK,
    [property: JsonPropertyName("d_incorrect_y_o")] double DIncorrectYO,
    [property: JsonPropertyName("d_incorrect_y_r")] double DIncorrectYR,
    [property: JsonPropertyName("epistemic_mass_y_o")] double EpistemicMassYO,
    [property: JsonPropertyName("epistemic_mass_y_r")] double EpistemicMassYR,
    [property: JsonPropertyName("y_o_accuracy")] Estimate YOAccuracy,
    [property: JsonPropertyName("y_r_accuracy")] Estimate YRAccuracy,
    [property: JsonPropertyName("joint")] JointCounts Joint,
    [property: JsonPropertyName("clip_fraction")] double? ClipFraction,
    [property: JsonPropertyName("teacher_mass_outside_topk")] double? TeacherMassOutsideTopK,
    [property: JsonPropertyName("verdicts")] Dictionary<string, string> Verdicts);

/// <summary>One cell of the grid: its variant, its models and its settings (OPSD possibly read from another cell).</summary>
public sealed record GridCell(
    [property: JsonPropertyName("name")] string Name,
    [property: JsonPropertyName("folder")] string Folder,
    [property: JsonPropertyName("knobs")] Dictionary<string, string> Knobs,
    [property: JsonPropertyName("student")] string Student,
    [property: JsonPropertyName("teacher")] string Teacher,
    [property: JsonPropertyName("cards")] ModelCardSummary[] Cards,
    [property: JsonPropertyName("settings")] GridCellSetting[] Settings);

/// <summary>What the grid ran: its axes, the plan every cell ran, the machine and the time.</summary>
public sealed record GridInfo(
    [property: JsonPropertyName("command")] string Command,
    [property: JsonPropertyName("quick")] bool Quick,
    [property: JsonPropertyName("axes")] GridAxis[] Axes,
    [property: JsonPropertyName("seeds")] long[] Seeds,
    [property: JsonPropertyName("model_seeds")] int ModelSeeds,
    [property: JsonPropertyName("train_problems")] int TrainProblems,
    [property: JsonPropertyName("heldout_problems")] int HeldoutProblems,
    [property: JsonPropertyName("k")] int K,
    [property: JsonPropertyName("settings")] string[] Settings,
    [property: JsonPropertyName("machine")] string Machine,
    [property: JsonPropertyName("started")] DateTime Started,
    [property: JsonPropertyName("seconds")] double Seconds,
    [property: JsonPropertyName("versions")] Dictionary<string, string> Versions);

/// <summary>grid-results.json: every cell, and the prediction's verdicts.</summary>
public sealed record GridResults(
    [property: JsonPropertyName("grid")] GridInfo Grid,
    [property: JsonPropertyName("cells")] GridCell[] Cells,
    [property: JsonPropertyName("predictions")] ClaimResult[] Predictions)
{
    /// <summary>grid-results.json's name in the grid directory.</summary>
    public const string FileName = "grid-results.json";

    /// <summary>Reads grid-results.json from a grid directory.</summary>
    public static GridResults Read(string gridDirectory)
    {
        var path = Path.Combine(gridDirectory, FileName);
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: no grid-results.json (has `trd study --grid` finished in this directory?)", path);
        return JsonSerializer.Deserialize<GridResults>(File.ReadAllText(path), StudyResults.Json)
            ?? throw new InvalidDataException($"{path}: empty");
    }

    /// <summary>Writes grid-results.json atomically.</summary>
    public void Write(string gridDirectory) =>
        Checkpoints.AtomicFile.Write(Path.Combine(gridDirectory, FileName), s => JsonSerializer.Serialize(s, this, StudyResults.Json));
}
