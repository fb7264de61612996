namespace Trd.Runtime.Data;

/// <summary>
/// The corpus of a run: one record per problem and stage, in <c>rollouts.jsonl</c> and <c>refinements.jsonl</c>
/// (append-only, a batch at a time, flushed to disk; see <see cref="RecordFile"/>). Opening reports a torn tail left by
/// a killed run (in <see cref="Repairs"/>) without touching the file; the stage's next append cuts it away. A duplicate
/// id or a bad line elsewhere is a
/// <see cref="CorpusException"/>. Stages skip <see cref="CompletedIds"/>, so a rerun resumes.
/// </summary>
public sealed class CorpusStore
{
    /// <summary>Stage names (and file stems).</summary>
    public const string RolloutsStage = "rollouts", RefinementsStage = "refinements";

    readonly List<string> _repairs = new();

    CorpusStore(string directory) => Directory = directory;

    /// <summary>The corpus directory.</summary>
    public string Directory { get; }

    /// <summary>What opening found to repair (torn final lines, left unread until the next append removes them), for the caller to report.</summary>
    public IReadOnlyList<string> Repairs => _repairs;

    /// <summary>Opens (creating) a corpus directory and reports torn tails.</summary>
    public static CorpusStore Open(string directory)
    {
        System.IO.Directory.CreateDirectory(directory);
        var store = new CorpusStore(directory);
        store.ReadRollouts();
        store.ReadRefinements();
        return store;
    }

    /// <summary>The file of a stage.</summary>
    public string PathOf(string stage) => Path.Combine(Directory, stage + ".jsonl");

    /// <summary>Stage 1's records, in file order.</summary>
    public IReadOnlyList<RolloutRecord> ReadRollouts() => RecordFile.ReadUnique<RolloutRecord>(PathOf(RolloutsStage), r => r.Id, _repairs.Add);

    /// <summary>Stage 2's records, in file order.</summary>
    public IReadOnlyList<RefinementRecord> ReadRefinements() => RecordFile.ReadUnique<RefinementRecord>(PathOf(RefinementsStage), r => r.Id, _repairs.Add);

    /// <summary>The ids a stage has written.</summary>
    public HashSet<string> CompletedIds(string stage) => stage switch
    {
        RolloutsStage => ReadRollouts().Select(r => r.Id).ToHashSet(StringComparer.Ordinal),
        RefinementsStage => ReadRefinements().Select(r => r.Id).ToHashSet(StringComparer.Ordinal),
        _ => throw new ArgumentException($"unknown stage '{stage}' (expected '{RolloutsStage}' or '{RefinementsStage}')", nameof(stage)),
    };

    /// <summary>Appends a batch of stage-1 records.</summary>
    public void AppendRollouts(IEnumerable<RolloutRecord> records) => RecordFile.Append(PathOf(RolloutsStage), records);

    /// <summary>Appends a batch of stage-2 records.</summary>
    public void AppendRefinements(IEnumerable<RefinementRecord> records) => RecordFile.Append(PathOf(RefinementsStage), records);
}
