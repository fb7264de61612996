using System.Buffers.Binary;
using System.Text.Json.Serialization;

namespace Trd.Runtime.Data;

/// <summary>
/// One trajectory scored by a teacher known by its top-K (issue 14, §2): at each of its T positions the teacher's top-K
/// ids, most likely first, their log-probabilities at T = 1, and the log-probability of the trajectory's own token.
/// Flat arrays, position-major: <c>Ids[t·K + j]</c>.
/// </summary>
public sealed record TeacherScores(string Id, int K, int[] Ids, float[] LogProbs, float[] TargetLogProbs)
{
    /// <summary>T, the trajectory's scored positions.</summary>
    public int Positions => TargetLogProbs.Length;

    /// <summary>Throws unless the arrays hold T·K ids and log-probabilities and T target log-probabilities.</summary>
    public TeacherScores Validated()
    {
        if (string.IsNullOrEmpty(Id)) throw new ArgumentException("teacher scores need the trajectory's id");
        if (K < 1) throw new ArgumentException($"{Id}: K must be ≥ 1, got {K}");
        if (Ids.Length != Positions * K || LogProbs.Length != Positions * K)
            throw new ArgumentException($"{Id}: {Positions} positions × K = {K} needs {Positions * K} ids and log-probabilities, got {Ids.Length} and {LogProbs.Length}");
        return this;
    }
}

/// <summary>Where one record lives: its shard, its byte offset there, and its size.</summary>
public sealed record TeacherScoreEntry(
    [property: JsonPropertyName("id")] string Id,
    [property: JsonPropertyName("shard")] int Shard,
    [property: JsonPropertyName("offset")] long Offset,
    [property: JsonPropertyName("positions")] int Positions,
    [property: JsonPropertyName("k")] int K);

/// <summary>
/// Teacher scores stored beside a corpus, for training without the teacher in memory: binary shards
/// (<c>shard-00000.bin</c>, …, each up to <see cref="ShardBytes"/>) and an index, <c>index.jsonl</c>, one line per
/// record, written through <see cref="RecordFile"/>. A record is its positions as little-endian int32 ids [T·K],
/// float32 log-probabilities [T·K] and float32 target log-probabilities [T]: <see cref="BytesPerToken"/> = 8K + 4
/// bytes per token (516 at K = 64; a 16k-token trajectory is 8.5 MB). Reading one record seeks to it; the store is
/// never read whole.
/// </summary>
/// <remarks>
/// Crash safety: a record's bytes are flushed to disk before its index line is appended, so an index line always
/// names whole bytes. Bytes after the last indexed record of a shard (a record in flight when the run stopped) are
/// cut away by the next writer; readers never modify the store.
/// </remarks>
public sealed class TeacherScoreStore
{
    /// <summary>The index's file name.</summary>
    public const string IndexFile = "index.jsonl";

    readonly Dictionary<string, TeacherScoreEntry> _entries;

    TeacherScoreStore(string directory, int k, long shardBytes, Dictionary<string, TeacherScoreEntry> entries) =>
        (Directory, K, ShardBytes, _entries) = (directory, k, shardBytes, entries);

    /// <summary>The store's directory.</summary>
    public string Directory { get; }
    /// <summary>K, the teacher entries per position.</summary>
    public int K { get; }
    /// <summary>The size at which a new shard is started (a record never straddles two shards).</summary>
    public long ShardBytes { get; }
    /// <summary>Stored bytes per scored token: 8K + 4.</summary>
    public long BytesPerToken => 8L * K + 4;
    /// <summary>The ids of the stored records.</summary>
    public IReadOnlyCollection<string> Ids => _entries.Keys;

    /// <summary>
    /// Opens (creating) the store in <paramref name="directory"/> for K entries per position. A store written with
    /// another K, or an index naming bytes its shard lacks, is an error naming the file.
    /// </summary>
    public static TeacherScoreStore Open(string directory, int k, long shardBytes = 256L << 20)
    {
        if (k < 1) throw new ArgumentException($"K must be ≥ 1, got {k}", nameof(k));
        if (shardBytes < 1) throw new ArgumentException($"the shard size must be ≥ 1 byte, got {shardBytes}", nameof(shardBytes));
        var full = Path.GetFullPath(directory);
        var index = Path.Combine(full, IndexFile);
        var entries = new Dictionary<string, TeacherScoreEntry>(StringComparer.Ordinal);
        foreach (var e in RecordFile.Read<TeacherScoreEntry>(index))
        {
            if (e.K != k) throw new CorpusException($"{index}: {e.Id} was stored with K = {e.K}, not {k}; score into another directory");
            var shard = ShardPath(full, e.Shard);
            var end = e.Offset + RecordBytes(e.Positions, e.K);
            if (!File.Exists(shard) || new FileInfo(shard).Length < end)
                throw new CorpusException($"{index}: {e.Id} names bytes {e.Offset}…{end} of {shard}, which it lacks");
            if (!entries.TryAdd(e.Id, e)) throw new CorpusException($"{index}: {e.Id} is stored twice");
        }
        return new TeacherScoreStore(full, k, shardBytes, entries);
    }

    static string ShardPath(string directory, int shard) => Path.Combine(directory, $"shard-{shard:D5}.bin");

    static long RecordBytes(int positions, int k) => (8L * k + 4) * positions;

    /// <summary>Whether <paramref name="id"/> is stored.</summary>
    public bool Contains(string id) => _entries.ContainsKey(id);

    /// <summary>Appends one record: its bytes flushed to disk, then its index line.</summary>
    public void Append(TeacherScores scores)
    {
        ArgumentNullException.ThrowIfNull(scores);
        scores.Validated();
        if (scores.K != K) throw new ArgumentException($"{scores.Id}: scored with K = {scores.K}, the store holds K = {K}", nameof(scores));
        if (_entries.ContainsKey(scores.Id)) throw new ArgumentException($"{scores.Id} is already stored in {Directory}", nameof(scores));
        System.IO.Directory.CreateDirectory(Directory);
        var size = RecordBytes(scores.Positions, K);
        var shard = _entries.Count == 0 ? 0 : _entries.Values.Max(e => e.Shard);
        var end = WrittenEnd(shard);
        if (end > 0 && end + size > ShardBytes) (shard, end) = (shard + 1, 0);

        var bytes = new byte[size];
        var span = bytes.AsSpan();
        for (var i = 0; i < scores.Ids.Length; i++) BinaryPrimitives.WriteInt32LittleEndian(span[(4 * i)..], scores.Ids[i]);
        var at = 4 * scores.Ids.Length;
        for (var i = 0; i < scores.LogProbs.Length; i++) BinaryPrimitives.WriteSingleLittleEndian(span[(at + 4 * i)..], scores.LogProbs[i]);
        at += 4 * scores.LogProbs.Length;
        for (var i = 0; i < scores.TargetLogProbs.Length; i++) BinaryPrimitives.WriteSingleLittleEndian(span[(at + 4 * i)..], scores.TargetLogProbs[i]);

        using (var stream = new FileStream(ShardPath(Directory, shard), FileMode.OpenOrCreate, FileAccess.Write, FileShare.Read))
        {
            stream.SetLength(end);                     // cut a record in flight when a run stopped (not indexed)
            stream.Seek(end, SeekOrigin.Begin);
            stream.Write(bytes);
            stream.Flush(flushToDisk: true);
        }
        var entry = new TeacherScoreEntry(scores.Id, shard, end, scores.Positions, K);
        RecordFile.Append(Path.Combine(Directory, IndexFile), [entry]);
        _entries[scores.Id] = entry;
    }

    /// <summary>The end of the indexed bytes of a shard.</summary>
    long WrittenEnd(int shard) =>
        _entries.Values.Where(e => e.Shard == shard).Select(e => e.Offset + RecordBytes(e.Positions, e.K)).DefaultIfEmpty(0).Max();

    /// <summary>One record, read from its shard alone.</summary>
    public TeacherScores Read(string id)
    {
        if (!_entries.TryGetValue(id, out var e)) throw new KeyNotFoundException($"{Directory}: no teacher scores for {id}");
        var bytes = new byte[RecordBytes(e.Positions, e.K)];
        using (var stream = new FileStream(ShardPath(Directory, e.Shard), FileMode.Open, FileAccess.Read, FileShare.ReadWrite))
        {
            stream.Seek(e.Offset, SeekOrigin.Begin);
            stream.ReadExactly(bytes);
        }
        var span = bytes.AsSpan();
        var n = e.Positions * e.K;
        var ids = new int[n];
        var logProbs = new float[n];
        var targets = new float[e.Positions];
        for (var i = 0; i < n; i++) ids[i] = BinaryPrimitives.ReadInt32LittleEndian(span[(4 * i)..]);
        for (var i = 0; i < n; i++) logProbs[i] = BinaryPrimitives.ReadSingleLittleEndian(span[(4 * (n + i))..]);
        for (var i = 0; i < e.Positions; i++) targets[i] = BinaryPrimitives.ReadSingleLittleEndian(span[(8 * n + 4 * i)..]);
        return new TeacherScores(id, e.K, ids, logProbs, targets);
    }
}
