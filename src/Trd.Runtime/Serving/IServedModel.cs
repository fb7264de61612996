using Trd.Runtime.Data;
using Trd.Runtime.Pipeline;

namespace Trd.Runtime.Serving;

/// <summary>One trajectory to score: its id, the teacher's context and the trajectory itself (token ids).</summary>
public sealed record ScoringRequest(string Id, int[] Context, int[] Trajectory);

/// <summary>
/// A model served by an engine (issue 14): it generates (one request per prompt, each prompt with its own seed, at most
/// <see cref="ServerSpec.MaxConcurrency"/> in flight over the replicas), scores trajectories with its top-K, and loads
/// PEFT adapters to generate with.
/// </summary>
public interface IServedModel : ITrajectoryGenerator, IDisposable
{
    /// <summary>
    /// The model's top-K log-probabilities at every trajectory position under its context, and the trajectory's own
    /// token's: what <see cref="Scoring.TeacherScoring.TopK"/> computes in-process. One request per trajectory.
    /// </summary>
    IReadOnlyList<TeacherScores> ScoreTopK(IReadOnlyList<ScoringRequest> requests, int k);

    /// <summary>
    /// Generation from this model with the PEFT adapter in <paramref name="directory"/> loaded on every replica under
    /// <paramref name="name"/> (vLLM: <c>POST /v1/load_lora_adapter</c>, the server started with <c>--enable-lora</c>;
    /// SGLang: <c>POST /load_lora_adapter</c>). The servers must see the directory at that path.
    /// </summary>
    ITrajectoryGenerator WithAdapter(string name, string directory);
}

/// <summary>The ids a served model may answer: generated tokens below Tokens, scored ids below OutputRows.</summary>
public sealed record Vocabulary(int Tokens, int OutputRows);

/// <summary>Connects to a served model with the client its engine speaks.</summary>
public static class ServedModel
{
    /// <summary>
    /// The client of <paramref name="server"/> serving <paramref name="model"/>: generated tokens must be ids of its
    /// tokenizer's <paramref name="vocabulary"/>, scored ids rows of its output layer (<paramref name="outputRows"/>,
    /// config.json's vocab_size, often padded past the tokenizer; default: the vocabulary); <paramref name="transport"/>
    /// replaces the HTTP handler (a test's replay).
    /// </summary>
    public static IServedModel Connect(ServerSpec server, string model, int vocabulary, Action<string>? log = null, HttpMessageHandler? transport = null, int? outputRows = null)
    {
        var pool = new ServerPool(server, log, transport);
        var ids = new Vocabulary(vocabulary, outputRows ?? vocabulary);
        return server.Engine switch
        {
            ServingEngine.Vllm => new VllmClient(pool, model, ids),
            ServingEngine.Sglang => new SglangClient(pool, model, ids),
            _ => throw new ConfigException($"server.engine: {server.Engine} has no client"),
        };
    }
}
