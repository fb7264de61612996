using Parquet.Serialization;
using Trd.Core;

namespace Trd.Runtime.Data;

/// <summary>
/// Exports the corpus as a verl-style parquet file: <c>data_source</c>, <c>prompt</c> (chat messages),
/// <c>ability</c>, <c>reward_model</c> {style, ground_truth}, <c>extra_info</c> (ids, y*, y_o, y_r and their outcomes)
/// and <c>response</c> (the chosen trajectory). <see cref="ProblemSet.Load"/> reads it back.
/// </summary>
public static class VerlExport
{
    /// <summary>A chat message.</summary>
    public sealed class Message
    {
        /// <summary>"user".</summary>
        public string role { get; set; } = "";
        /// <summary>The text.</summary>
        public string content { get; set; } = "";
    }

    /// <summary>verl's reward model column.</summary>
    public sealed class RewardModel
    {
        /// <summary>"rule".</summary>
        public string style { get; set; } = "rule";
        /// <summary>The answer.</summary>
        public string ground_truth { get; set; } = "";
    }

    /// <summary>Everything else about the problem.</summary>
    public sealed class ExtraInfo
    {
        /// <summary>Row index.</summary>
        public long index { get; set; }
        /// <summary>Problem id.</summary>
        public string id { get; set; } = "";
        /// <summary>"train".</summary>
        public string split { get; set; } = "train";
        /// <summary>y*.</summary>
        public string? solution { get; set; }
        /// <summary>y_o.</summary>
        public string y_o { get; set; } = "";
        /// <summary>y_r (null without a refinement).</summary>
        public string? y_r { get; set; }
        /// <summary>Verifier outcome of y_o.</summary>
        public bool y_o_correct { get; set; }
        /// <summary>Verifier outcome of y_r (null without a refinement).</summary>
        public bool? y_r_correct { get; set; }
        /// <summary>Refinement status (null without a refinement).</summary>
        public string? y_r_status { get; set; }
    }

    /// <summary>One row.</summary>
    public sealed class Row
    {
        /// <summary>Dataset.</summary>
        public string data_source { get; set; } = "";
        /// <summary>The user message.</summary>
        public List<Message> prompt { get; set; } = new();
        /// <summary>"math".</summary>
        public string ability { get; set; } = "math";
        /// <summary>Ground truth.</summary>
        public RewardModel reward_model { get; set; } = new();
        /// <summary>Ids and trajectories.</summary>
        public ExtraInfo extra_info { get; set; } = new();
        /// <summary>The trajectory chosen for training.</summary>
        public string response { get; set; } = "";
    }

    /// <summary>Writes the rows atomically; <paramref name="trajectory"/> (y_r or y_o) picks the response column.</summary>
    public static void Write(string path, IEnumerable<(RolloutRecord Rollout, RefinementRecord? Refinement)> corpus, Trajectory trajectory)
    {
        ArgumentNullException.ThrowIfNull(trajectory);
        var rows = corpus.Select((x, i) => new Row
        {
            data_source = x.Rollout.DataSource,
            prompt = new() { new Message { role = "user", content = x.Rollout.Question } },
            reward_model = new RewardModel { ground_truth = x.Rollout.Answer },
            extra_info = new ExtraInfo
            {
                index = i, id = x.Rollout.Id, solution = x.Rollout.Solution, y_o = x.Rollout.YO, y_r = x.Refinement?.YR,
                y_o_correct = x.Rollout.YOCorrect, y_r_correct = x.Refinement?.YRCorrect, y_r_status = x.Refinement?.Status,
            },
            response = trajectory.IsRefined && x.Refinement is { Status: "ok" or "truncated" } f ? f.YR : x.Rollout.YO,
        }).ToList();
        Checkpoints.AtomicFile.Write(path, stream =>
        {
            using var buffer = new MemoryStream();
            ParquetSerializer.SerializeAsync(rows, buffer).GetAwaiter().GetResult();
            buffer.Position = 0;
            buffer.CopyTo(stream);
        });
    }
}
