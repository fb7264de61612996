using System.Security.Cryptography;
using System.Text;
using Trd.Core;
using Trd.Runtime.Checkpoints;
using Trd.Runtime.Lora;
using Trd.Runtime.Models;
using Trd.Runtime.Pipeline;

namespace Trd.Runtime.Training;

/// <summary>What stage 3 trains: models, recipe, examples and settings.</summary>
/// <param name="Student">The student (base weights; adapters are attached here).</param>
/// <param name="Teacher">The teacher: a separate frozen model (OPD, or OPSD with full fine-tuning: a frozen copy), or the student itself (OPSD with LoRA: adapters off).</param>
/// <param name="Recipe">The objective.</param>
/// <param name="Examples">The training sequences, in corpus order (the trainer shuffles per epoch with the seed).</param>
/// <param name="Config">Optimiser, schedule, batch and checkpoint settings.</param>
/// <param name="Seed">The run's seed.</param>
/// <param name="Directory">Where checkpoints go (<c>checkpoints/</c> inside it).</param>
/// <param name="EpistemicTokenIds">ℰ under the student's tokenizer, for the epistemic-mass diagnostic.</param>
public sealed record TrainRequest(Qwen3ForCausalLM Student, Qwen3ForCausalLM? Teacher, Recipe Recipe, IReadOnlyList<TrainExample> Examples,
    TrainConfig Config, long Seed, string Directory, long[]? EpistemicTokenIds)
{
    /// <summary>The teacher's stored top-K scores of every example, used instead of <see cref="Teacher"/> when given.</summary>
    public Data.TeacherScoreStore? TeacherScores { get; init; }

    /// <summary>
    /// The run's metrics log (one line per step, written by the caller's step callback): each checkpoint keeps a copy,
    /// so a resumed run restores the log of every step it holds, whatever happened to the file since.
    /// </summary>
    public string? MetricsPath { get; init; }

    /// <summary>
    /// The student's base model (a directory or a Hub id), written as <c>base_model_name_or_path</c> in the LoRA
    /// adapters the checkpoints hold, so PEFT and vLLM know what the adapter goes on.
    /// </summary>
    public string? BaseModel { get; init; }
}

/// <summary>How a training run ended.</summary>
/// <param name="Steps">Optimiser steps in all.</param>
/// <param name="ResumedFrom">The step it resumed after (0: a fresh start).</param>
/// <param name="Checkpoint">The final checkpoint directory.</param>
public sealed record TrainOutcome(long Steps, long ResumedFrom, string Checkpoint);

/// <summary>
/// Stage 3's loop: shuffled epochs, steps of micro_batch × grad_accum sequences, linear warmup then cosine decay to
/// a floor (Trd.Core.Schedule), AdamW, gradient clipping, checkpoints every save_every steps. Everything random is
/// drawn from generators seeded by (seed, step, micro-batch) — never torch's global generator, whose state differs
/// from process to process — so two runs of one config write the same bytes, and a run stopped after any checkpoint
/// and resumed ends bit-identical to an uninterrupted one on CPU.
/// </summary>
public static class Trainer
{
    /// <summary>Checkpoints go here inside the training directory.</summary>
    public const string CheckpointsFolder = "checkpoints";

    /// <summary>Runs (or resumes) training; <paramref name="onStep"/> receives every step's metrics as it completes.</summary>
    public static TrainOutcome Run(TrainRequest request, bool resume, Action<StepMetrics>? onStep = null, Action<long, long>? progress = null)
    {
        var c = request.Config;
        if (request.Examples.Count == 0) throw new ArgumentException("no training examples (every record was skipped or filtered out)", nameof(request));
        var root = Path.Combine(request.Directory, CheckpointsFolder);
        var latest = Directory.Exists(root) ? TrainerCheckpoint.Latest(root) : null;
        if (latest is not null && !resume)
            throw new InvalidOperationException($"{root} already holds checkpoints; resume the run (--resume) or choose another output directory");

        var perStep = c.MicroBatch * c.GradAccum;
        var stepsPerEpoch = (request.Examples.Count + perStep - 1) / perStep;
        var totalSteps = (long)stepsPerEpoch * c.Epochs;
        var warmup = Schedule.WarmupSteps(c.WarmupRatio, checked((int)totalSteps));
        var fingerprint = Fingerprint(request.Examples);
        LoraConfig? lora = c.Lora is { } l ? new LoraConfig { Rank = l.Rank, Alpha = l.Alpha, Dropout = l.Dropout } : null;

        long start = 0;
        if (latest is not null)
        {
            var state = TrainerCheckpoint.ReadState(latest);
            if (state.DataFingerprint != fingerprint)
                throw new Checkpoints.CheckpointException(latest, null, $"the checkpoint was trained on other examples (fingerprint {state.DataFingerprint}, now {fingerprint}); resume needs the same corpus and config");
            if (state.TotalSteps != totalSteps || state.Seed != request.Seed)
                throw new Checkpoints.CheckpointException(latest, null, $"the checkpoint's run had {state.TotalSteps} steps and seed {state.Seed}; this one has {totalSteps} and {request.Seed}");
            TrainerCheckpoint.LoadWeights(latest, request.Student);
            start = state.Step;
        }
        else if (lora is not null) PeftAdapter.Attach(request.Student, lora, Derive(request.Seed, -1, 0));

        var trainable = request.Student.named_parameters().Where(p => p.parameter.requires_grad).Select(p => (p.name, p.parameter)).ToArray();
        using var optimiser = new AdamW(trainable, new AdamWOptions(c.Beta1, c.Beta2, c.Epsilon, c.WeightDecay));
        if (latest is not null) optimiser.Load(Path.Combine(latest, TrainerCheckpoint.OptimizerFileName));
        var distiller = request.TeacherScores is { } stored
            ? new Distiller(request.Student, stored, request.Recipe, c.ChunkSize, request.EpistemicTokenIds)
            : new Distiller(request.Student, request.Teacher ?? throw new ArgumentException("a teacher model or its stored scores", nameof(request)),
                request.Recipe, c.ChunkSize, request.EpistemicTokenIds);
        var checkpoint = latest ?? "";
        for (var step = start; step < totalSteps; step++)
        {
            // Every tensor of the step, the optimiser's and the checkpoint's included, is held by this scope while libtorch
            // reads it; a wrapper that only a dead local references can be finalized mid-call (docs/performance.md, "Stress").
            using var scope = TorchSharp.torch.NewDisposeScope();
            var epoch = (int)(step / stepsPerEpoch);
            var order = Order(request.Examples.Count, request.Seed, epoch);
            var first = (int)(step % stepsPerEpoch) * perStep;
            var batch = order.Skip(first).Take(perStep).Select(i => request.Examples[i]).ToArray();
            var (examples, cut) = Fit(batch, c.MaxLength);
            var lr = Schedule.LearningRate(c.LearningRate, warmup, checked((int)totalSteps), c.FloorRatio, checked((int)step));
            var s = step;
            var metrics = distiller.Step(step, examples, c.MicroBatch, optimiser, lr, c.GradClip, micro => Derive(request.Seed, s, micro), cut);
            onStep?.Invoke(metrics);
            progress?.Invoke(step + 1, totalSteps);
            if ((step + 1) % c.SaveEvery == 0 || step + 1 == totalSteps)
                checkpoint = TrainerCheckpoint.Save(root, request.Student, lora, optimiser, request.BaseModel, new TrainerState
                {
                    Step = step + 1, TotalSteps = totalSteps, Seed = request.Seed,
                    ExamplesSeen = Math.Min((long)(step + 1) * perStep, (long)request.Examples.Count * c.Epochs),
                    DataFingerprint = fingerprint,
                    Schedule = new ScheduleState { Peak = c.LearningRate, WarmupSteps = warmup, FloorRatio = c.FloorRatio },
                    Weights = lora is null ? "full" : "lora",
                }, metricsLog: request.MetricsPath);
        }
        return new TrainOutcome(totalSteps, start, checkpoint);
    }

    /// <summary>Examples whose context + trajectory exceed max_length have the trajectory cut at the end (counted).</summary>
    static (TrainExample[] examples, int cut) Fit(TrainExample[] batch, int maxLength)
    {
        var cut = 0;
        var fitted = batch.Select(e =>
        {
            var room = maxLength - Math.Max(e.StudentContext.Length, e.TeacherContext.Length);
            if (room < 1) throw new InvalidOperationException($"problem {e.Id}: its context ({Math.Max(e.StudentContext.Length, e.TeacherContext.Length)} tokens) leaves no room for a trajectory under train.max_length = {maxLength}");
            if (e.Trajectory.Length <= room) return e;
            cut++;
            return e with { Trajectory = e.Trajectory[..room] };
        }).ToArray();
        return (fitted, cut);
    }

    /// <summary>The epoch's order of example indices: a seeded Fisher–Yates shuffle.</summary>
    public static int[] Order(int count, long seed, int epoch)
    {
        var order = Enumerable.Range(0, count).ToArray();
        var random = new Random(unchecked((int)Derive(seed, epoch, 7)));
        for (var i = count - 1; i > 0; i--)
        {
            var j = random.Next(i + 1);
            (order[i], order[j]) = (order[j], order[i]);
        }
        return order;
    }

    /// <summary>A seed derived from (seed, a, b) by SplitMix64: independent streams for every step and micro-batch.</summary>
    public static long Derive(long seed, long a, long b)
    {
        static ulong Mix(ulong z)
        {
            z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
            z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
            return z ^ (z >> 31);
        }
        var h = Mix(unchecked((ulong)seed + 0x9E3779B97F4A7C15UL));
        h = Mix(h ^ unchecked((ulong)a));
        h = Mix(h ^ unchecked((ulong)b));
        return (long)(h >> 1);
    }

    static string Fingerprint(IReadOnlyList<TrainExample> examples)
    {
        using var sha = SHA256.Create();
        var text = new StringBuilder();
        foreach (var e in examples)
            text.Append(e.Id).Append(':').Append(e.Source).Append(':').Append(e.StudentContext.Length).Append('/')
                .Append(e.TeacherContext.Length).Append('/').Append(string.Join(',', e.Trajectory)).Append('\n');
        return Convert.ToHexString(sha.ComputeHash(Encoding.UTF8.GetBytes(text.ToString())))[..16].ToLowerInvariant();
    }
}
