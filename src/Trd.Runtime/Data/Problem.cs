namespace Trd.Runtime.Data;

/// <summary>One problem: the question x, the ground-truth answer the verifier checks, and the reference solution y*.</summary>
/// <param name="Id">Stable id: the file's own id when it has one, otherwise derived from the content (see <see cref="ProblemSet"/>).</param>
/// <param name="Question">The problem text x.</param>
/// <param name="Answer">The ground truth (<c>answer</c>, or verl's <c>reward_model.ground_truth</c>).</param>
/// <param name="Solution">The reference solution y* (OPSD needs it; OPD does not), or null.</param>
/// <param name="DataSource">The dataset it came from (verl's <c>data_source</c>, else the file name).</param>
public sealed record Problem(string Id, string Question, string Answer, string? Solution, string DataSource);

/// <summary>A problem file that cannot be read, naming the file, the 1-based row and the field.</summary>
public sealed class ProblemSetException(string file, int? row, string? field, string message)
    : Exception($"{Path.GetFileName(file)}{(row is { } r ? $", row {r}" : "")}{(field is null ? "" : $", field '{field}'")}: {message}")
{
    /// <summary>The file.</summary>
    public string File { get; } = file;
    /// <summary>The 1-based row (JSONL: line), when the problem is in one row.</summary>
    public int? Row { get; } = row;
    /// <summary>The field, when one is at fault.</summary>
    public string? Field { get; } = field;
}

/// <summary>A corpus file that cannot be read back, naming the file and line.</summary>
public sealed class CorpusException(string message) : Exception(message);
