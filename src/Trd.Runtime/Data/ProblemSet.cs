using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Parquet.Serialization;

namespace Trd.Runtime.Data;

/// <summary>
/// Reads problem sets: JSONL or parquet, in DeepScaleR's columns (<c>problem</c>, <c>answer</c>, <c>solution</c>) or
/// verl's layout (<c>prompt</c> as chat messages or text, <c>reward_model.ground_truth</c>, <c>extra_info</c>,
/// <c>data_source</c>). Every row becomes a problem or an error naming the file, row and field: none is dropped.
/// </summary>
/// <remarks>
/// Ids: the row's <c>id</c>, <c>unique_id</c> or <c>extra_info.id</c> when present; otherwise
/// <c>sha256(question + "\n" + answer)</c>'s first 16 hex digits, which survives reordering and re-exporting (an
/// exact repeat of a problem in one file gets <c>-2</c>, <c>-3</c>, …). Two rows with one explicit id are an error
/// naming both.
/// </remarks>
public static class ProblemSet
{
    /// <summary>Loads a problem file (.jsonl/.json lines or .parquet); <paramref name="dataSource"/> overrides the dataset name.</summary>
    public static IReadOnlyList<Problem> Load(string path, string? dataSource = null)
    {
        if (!File.Exists(path)) throw new ProblemSetException(path, null, null, "no such file");
        var rows = Path.GetExtension(path).ToLowerInvariant() switch
        {
            ".parquet" => ParquetRows(path),
            ".jsonl" or ".json" or ".ndjson" => JsonRows(path),
            var other => throw new ProblemSetException(path, null, null, $"unknown extension '{other}' (expected .jsonl or .parquet)"),
        };
        var name = dataSource ?? Path.GetFileNameWithoutExtension(path);
        var problems = new List<Problem>();
        var seen = new Dictionary<string, int>(StringComparer.Ordinal);
        var repeats = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var (row, node) in rows)
        {
            var problem = FromRow(path, row, node, name);
            if (problem.Id.Length == 0)
            {
                // A content id; an exact repeat of a problem in the same file (real sets have them) gets -2, -3, ….
                var content = ContentId(problem.Question, problem.Answer);
                var n = repeats[content] = repeats.GetValueOrDefault(content) + 1;
                problem = problem with { Id = n == 1 ? content : $"{content}-{n}" };
            }
            if (seen.TryGetValue(problem.Id, out var first))
                throw new ProblemSetException(path, row, "id", $"id '{problem.Id}' is also the id of row {first}");
            seen[problem.Id] = row;
            problems.Add(problem);
        }
        if (problems.Count == 0) throw new ProblemSetException(path, null, null, "the file holds no problems");
        return problems;
    }

    static IEnumerable<(int Row, JsonObject Node)> JsonRows(string path)
    {
        foreach (var (row, line) in RecordFile.Lines(path, input: true))
        {
            JsonNode? node;
            // A key given twice is refused (JSON allows it, and a reader would keep either one).
            try { node = JsonNode.Parse(line, documentOptions: new JsonDocumentOptions { AllowDuplicateProperties = false }); }
            catch (JsonException e) { throw new ProblemSetException(path, row, null, $"not valid JSON ({Trd.Runtime.Data.JsonErrors.Describe(e)})"); }
            if (node is not JsonObject obj) throw new ProblemSetException(path, row, null, "not a JSON object");
            yield return (row, obj);
        }
    }

    static IEnumerable<(int Row, JsonObject Node)> ParquetRows(string path)
    {
        IList<Dictionary<string, object>> data;
        try
        {
            using var stream = File.OpenRead(path);
            data = ParquetSerializer.DeserializeUntypedAsync(stream).GetAwaiter().GetResult().Data;
        }
        catch (Exception e) when (e is not ProblemSetException) { throw new ProblemSetException(path, null, null, $"not a readable parquet file ({e.Message})"); }
        for (var i = 0; i < data.Count; i++) yield return (i + 1, (JsonObject)ToNode(data[i])!);
    }

    static JsonNode? ToNode(object? value) => value switch
    {
        null => null,
        IDictionary<string, object> map => new JsonObject(map.Select(kv => KeyValuePair.Create(kv.Key, ToNode(kv.Value)))),
        string s => JsonValue.Create(s),
        System.Collections.IEnumerable list => new JsonArray(list.Cast<object?>().Select(ToNode).ToArray()),
        bool b => JsonValue.Create(b),
        DateTime d => JsonValue.Create(d),
        _ => JsonValue.Create(Convert.ToDouble(value, System.Globalization.CultureInfo.InvariantCulture)) is var n && IsIntegral(value) ? JsonValue.Create(Convert.ToInt64(value, System.Globalization.CultureInfo.InvariantCulture)) : n,
    };

    static bool IsIntegral(object v) => v is sbyte or byte or short or ushort or int or uint or long or ulong;

    static Problem FromRow(string path, int row, JsonObject node, string dataSource)
    {
        string? Text(JsonNode? n, string field, bool required)
        {
            if (n is null) return required ? throw new ProblemSetException(path, row, field, "missing") : null;
            if (n is JsonValue v && v.TryGetValue<string>(out var s)) return s;
            if (n is JsonValue number && (number.TryGetValue<long>(out _) || number.TryGetValue<double>(out _))) return number.ToJsonString();
            throw new ProblemSetException(path, row, field, $"expected a string, got {n.GetValueKind()}");
        }
        var extra = node["extra_info"] as JsonObject;
        string question, answer;
        string? solution;
        if (node.ContainsKey("problem") || node.ContainsKey("question"))
        {
            var field = node.ContainsKey("problem") ? "problem" : "question";
            question = Text(node[field], field, true)!;
            answer = Text(node["answer"], "answer", true)!;
            solution = Text(node["solution"], "solution", false);
        }
        else if (node.ContainsKey("prompt"))
        {
            question = node["prompt"] switch
            {
                JsonArray messages => LastUser(messages, path, row),
                var p => Text(p, "prompt", true)!,
            };
            var reward = node["reward_model"] as JsonObject ?? throw new ProblemSetException(path, row, "reward_model", "missing (verl layout needs reward_model.ground_truth)");
            answer = Text(reward["ground_truth"], "reward_model.ground_truth", true)!;
            solution = Text(extra?["solution"], "extra_info.solution", false) ?? Text(node["solution"], "solution", false);
        }
        else
            throw new ProblemSetException(path, row, null,
                $"unknown layout: columns {string.Join(", ", node.Select(kv => kv.Key))}; expected DeepScaleR's (problem, answer[, solution]) or verl's (prompt, reward_model.ground_truth[, extra_info])");
        if (string.IsNullOrWhiteSpace(question)) throw new ProblemSetException(path, row, "problem", "empty");
        if (string.IsNullOrWhiteSpace(answer)) throw new ProblemSetException(path, row, "answer", "empty");
        // extra_info.index is not an id: verl numbers rows per split, so it names a position, not a problem.
        var id = Text(node["id"], "id", false) ?? Text(node["unique_id"], "unique_id", false)
            ?? Text(extra?["id"], "extra_info.id", false);
        var source = Text(node["data_source"], "data_source", false) ?? dataSource;
        return new Problem(id ?? "", question, answer, string.IsNullOrEmpty(solution) ? null : solution, source);
    }

    static string LastUser(JsonArray messages, string path, int row)
    {
        string? Field(JsonObject m, int i, string key) => m[key] switch
        {
            null => null,
            JsonValue v when v.TryGetValue<string>(out var s) => s,
            var other => throw new ProblemSetException(path, row, $"prompt[{i}].{key}", $"expected a string, got {other.GetValueKind()}"),
        };
        for (var i = messages.Count - 1; i >= 0; i--)
        {
            if (messages[i] is not JsonObject m) throw new ProblemSetException(path, row, $"prompt[{i}]", $"expected a message object, got {messages[i]?.GetValueKind().ToString() ?? "null"}");
            if (Field(m, i, "role") == "user")
                return Field(m, i, "content") ?? throw new ProblemSetException(path, row, $"prompt[{i}].content", "missing");
        }
        throw new ProblemSetException(path, row, "prompt", "no message with role 'user'");
    }

    /// <summary>The content id of a problem without one: sha256(question + "\n" + answer), 16 hex digits.</summary>
    public static string ContentId(string question, string answer) =>
        Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(question + "\n" + answer)))[..16].ToLowerInvariant();

    /// <summary>Writes problems as DeepScaleR-layout JSONL (id, problem, answer, solution, data_source), atomically.</summary>
    public static void WriteJsonl(IEnumerable<Problem> problems, string path) =>
        Checkpoints.AtomicFile.Write(path, stream =>
        {
            foreach (var p in problems)
            {
                var line = JsonSerializer.Serialize(new { id = p.Id, problem = p.Question, answer = p.Answer, solution = p.Solution, data_source = p.DataSource });
                stream.Write(Encoding.UTF8.GetBytes(line + "\n"));
            }
        });
}
